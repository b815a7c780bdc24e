//! The Prometheus endpoint after the seed's path.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_logins_suspensions_and_resets() {
    // Port 0: the endpoint is bound when the server is built, so no other
    // test can take its port between choosing and binding it.
    let app = spawn_app_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_addr = app.metrics_addr.expect("the metrics endpoint is bound");
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.suspend(&id).await;
    app.login("jean", STRONG_PASSWORD).await.unwrap_err();
    app.reset_password_by_email("jean", "jean@example.fr", NEW_PASSWORD)
        .await;

    let mut stream = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        value(&response, "gardien_logins_total{outcome=\"success\"}") >= 1.0,
        "{response}"
    );
    assert!(value(&response, "gardien_logins_total{outcome=\"suspended\"}") >= 1.0);
    assert!(value(&response, "gardien_password_suspensions_total") >= 1.0);
    assert!(value(&response, "gardien_password_resets_total") >= 1.0);
    assert!(value(&response, "gardien_rpc_requests_total{") >= 6.0);
    assert!(response.contains("gardien_rpc_duration_seconds_bucket"));
    assert!(response.contains("gardien_hashing_queue_depth"));
    assert!(response.contains("gardien_outbox_messages"));
    // The worker's own counters are exported, not only kept.
    assert!(response.contains("gardien_outbox_delivery_attempts_total"));
    assert!(response.contains("gardien_outbox_messages{status=\"queued\"}"));
    assert!(response.contains("gardien_db_pool_connections"));
    assert!(!response.contains(STRONG_PASSWORD) && !response.contains("gdr_"));
}

/// Issue 23 item 2: the `method` label took the path the caller sent, so
/// made-up methods grew the endpoint without bound (200 paths: 16 KB to
/// 243 KB). They now count under one "unknown" label.
#[tokio::test]
async fn made_up_methods_cannot_grow_the_metrics() {
    // Port 0: the endpoint is bound when the server is built, so no other
    // test can take its port between choosing and binding it.
    let app = spawn_app_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_addr = app.metrics_addr.expect("the metrics endpoint is bound");
    let channel = app.channel().await;
    for i in 0..200 {
        let path = format!("/gardien.accountsecurity.v1.AccountSecurityService/MadeUp{i:03}x");
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let refused = grpc
            .unary(
                tonic::Request::new(Vec::new()),
                http::uri::PathAndQuery::try_from(path.as_str()).unwrap(),
                crate::hostile::RawCodec,
            )
            .await
            .unwrap_err();
        assert_ne!(refused.code(), tonic::Code::Ok);
    }
    let response = scrape(metrics_addr).await;
    assert!(
        !response.contains("MadeUp"),
        "a made-up method became a label"
    );
    assert!(
        value(
            &response,
            "gardien_rpc_requests_total{service=\"unknown\",method=\"unknown\""
        ) >= 200.0,
        "{response}"
    );
    // The methods the server has keep their own label.
    app.login("nobody", STRONG_PASSWORD).await.unwrap_err();
    let response = scrape(metrics_addr).await;
    assert!(response.contains(
        "service=\"gardien.accountsecurity.v1.AccountSecurityService\",method=\"Login\""
    ));
}

async fn scrape(metrics_addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The `# TYPE` and `# HELP` of each metric family of a scrape.
fn families(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut types = Vec::new();
    let mut helps = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("#"), Some("TYPE"), Some(name), Some(kind)) => {
                types.push((name.to_string(), kind.to_string()));
            }
            (Some("#"), Some("HELP"), Some(name), Some(_)) => helps.push(name.to_string()),
            _ => {}
        }
    }
    (types, helps)
}

/// Prometheus conventions: every metric has a `# HELP`, a `_total` is a
/// counter (the rate-limit and outbox counters were exported as gauges),
/// the process's own metrics are there, and so are the rate limiter's
/// fail-open and fail-closed counts (kept, never exported). The RPC latency
/// histogram is labelled by service, method and gRPC code.
#[tokio::test]
async fn every_metric_is_described_and_typed_by_prometheus_conventions() {
    let app = spawn_app_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_addr = app.metrics_addr.expect("the metrics endpoint is bound");
    app.login("nobody", STRONG_PASSWORD).await.unwrap_err();

    let response = scrape(metrics_addr).await;

    let (types, helps) = families(&response);
    let undescribed: Vec<_> = types
        .iter()
        .filter(|(name, _)| !helps.contains(name))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(undescribed.is_empty(), "no # HELP: {undescribed:?}");
    let not_counters: Vec<_> = types
        .iter()
        .filter(|(name, kind)| name.ends_with("_total") && kind != "counter")
        .collect();
    assert!(not_counters.is_empty(), "{not_counters:?}");
    for (name, kind) in [
        ("process_resident_memory_bytes", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_open_fds", "gauge"),
        ("gardien_rate_limited_total", "counter"),
        ("gardien_rate_limit_backend_errors_total", "counter"),
        ("gardien_rate_limit_failed_open_total", "counter"),
        ("gardien_rate_limit_failed_closed_total", "counter"),
        ("gardien_outbox_delivered_total", "counter"),
        ("gardien_rpc_duration_seconds", "histogram"),
    ] {
        assert!(
            types.contains(&(name.to_string(), kind.to_string())),
            "{name} is not exported as a {kind}:\n{response}"
        );
    }
    assert!(value(&response, "process_resident_memory_bytes") > 0.0);
    assert!(value(&response, "process_open_fds") > 0.0);
    // The recorder is the process's: other tests' logins are there too,
    // under other codes, so the line looked for names all three labels.
    let login = response.lines().find(|line| {
        line.starts_with("gardien_rpc_duration_seconds_count{")
            && line.contains("service=\"gardien.accountsecurity.v1.AccountSecurityService\"")
            && line.contains("method=\"Login\"")
            && line.contains("code=\"Unauthenticated\"")
    });
    assert!(
        login.is_some(),
        "no latency of Login by service, method and code:\n{response}"
    );
}

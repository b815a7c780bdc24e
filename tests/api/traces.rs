//! Traces over OTLP: the real binary, configured with `traces.otlp_endpoint`,
//! sends its spans to an OTLP/gRPC receiver started by the test; a call
//! with a W3C `traceparent` continues the caller's trace, and the database
//! work of the call is in it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use gardien::proto::accountsecurity::v1::{
    self as pb, account_security_service_client::AccountSecurityServiceClient,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    },
    trace::v1::Span,
};

use crate::{faults::process::Deployment, helpers::*};

/// An OTLP/gRPC trace receiver keeping every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

impl Receiver {
    /// A receiver serving on a free port of 127.0.0.1, and that address.
    async fn start() -> (Self, std::net::SocketAddr) {
        let receiver = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (receiver, addr)
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| format!("{:?}", a.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test]
async fn an_rpc_and_its_database_work_are_exported_in_the_callers_trace() {
    let (receiver, collector) = Receiver::start().await;

    let dir = tempfile::tempdir().unwrap();
    // On PostgreSQL, a password in the URL (trust authentication ignores
    // it), which sea-orm's connect span carries: neither exported nor
    // logged, even with sea-orm's spans in the log.
    let password = "Tr4ceS3cretPw";
    let url = fresh_postgres_url()
        .await
        .map(|url| url.replacen("://postgres@", &format!("://postgres:{password}@"), 1));
    let mut deployment = Deployment::new(dir.path(), url);
    deployment.set("GARDIEN_LOG", "sea_orm=trace,info");
    deployment.set(
        "GARDIEN_TRACES__OTLP_ENDPOINT",
        format!("http://{collector}"),
    );
    deployment.set("GARDIEN_TRACES__SERVICE_NAME", "gardien-under-test");
    let service = deployment.credential("service", "onboarding").await;
    let server = deployment.start().await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(pb::CreateAccountRequest {
        login: "jeanne".into(),
        email: "jeanne@example.fr".into(),
        password: STRONG_PASSWORD.into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {service}").parse().unwrap(),
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01").parse().unwrap(),
    );
    AccountSecurityServiceClient::new(server.channel())
        .create_account(request)
        .await
        .unwrap();

    // The batch is sent within seconds (or when the server stops).
    let wanted = hex::decode(trace_id).unwrap();
    let mut ours = Vec::new();
    for _ in 0..200 {
        ours = receiver
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, span)| span.trace_id == wanted)
            .cloned()
            .collect::<Vec<_>>();
        if ours
            .iter()
            .any(|(_, s)| s.parent_span_id != hex::decode(caller_span).unwrap())
            && ours.iter().any(|(_, s)| s.name.contains("CreateAccount"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<&str> = ours.iter().map(|(_, s)| s.name.as_str()).collect();
    let rpc = ours
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount")
        .unwrap_or_else(|| panic!("no span for the RPC in the caller's trace: {names:?}"));
    assert_eq!(
        rpc.parent_span_id,
        hex::decode(caller_span).unwrap(),
        "the RPC span is the caller's span's child"
    );
    assert_eq!(rpc.kind, 2, "a server span");
    assert!(ours[0].0.contains("gardien-under-test"), "{:?}", ours[0].0);
    // Its database work, under it: sea-orm's calls (execute, query_one,
    // begin, commit …) as descendants of the RPC span.
    let children_of = |parent: &[u8]| {
        ours.iter()
            .filter(move |(_, s)| s.parent_span_id == parent)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
    };
    let mut below = Vec::new();
    let mut frontier = vec![rpc.span_id.clone()];
    while let Some(parent) = frontier.pop() {
        for child in children_of(&parent) {
            frontier.push(child.span_id.clone());
            below.push(child.name.clone());
        }
    }
    assert!(
        below.iter().any(
            |name| ["execute", "query_one", "query_all", "begin", "commit"]
                .iter()
                .any(|db| name.contains(db))
        ),
        "no database span below the RPC: {below:?}"
    );
    // Nothing secret in what was exported, nor in the log.
    let everything = format!("{:?}", receiver.spans.lock().unwrap());
    assert!(
        !everything.contains(password),
        "the database password was exported"
    );
    assert!(
        !server.logs().contains(password),
        "the database password was logged"
    );
    let exported = format!("{ours:?}");
    assert!(!exported.contains(&service), "the credential was exported");
    assert!(
        !exported.contains(STRONG_PASSWORD),
        "the password was exported"
    );
    assert!(
        !exported.contains("jeanne@example.fr"),
        "the e-mail was exported"
    );
}

/// A made-up method does not name a span after what the caller sent.
#[tokio::test]
async fn a_made_up_method_names_no_span() {
    let (receiver, collector) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), None);
    deployment.set(
        "GARDIEN_TRACES__OTLP_ENDPOINT",
        format!("http://{collector}"),
    );
    let mut server = deployment.start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel());
    grpc.ready().await.unwrap();
    let made_up = "/gardien.accountsecurity.v1.AccountSecurityService/MadeUpXyz123";
    let _ = grpc
        .unary::<(), (), _>(
            tonic::Request::new(()),
            made_up.parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    // Stopping flushes what is left.
    server.terminate();
    server.wait(Duration::from_secs(20)).await;
    let spans = receiver.spans.lock().unwrap().clone();
    assert!(
        spans.iter().any(|(_, s)| s.name == "unknown"),
        "{:?}",
        spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
    );
    assert!(
        spans.iter().all(|(_, s)| !s.name.contains("MadeUpXyz123")),
        "a span is named after the made-up path"
    );
}

/// A collector that cannot be reached: the server says at start where its
/// spans go, warns (in its log format) that they could not be sent, keeps
/// serving, and still stops promptly.
#[tokio::test]
async fn an_unreachable_collector_is_reported_and_hurts_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), None);
    deployment.set("GARDIEN_TRACES__OTLP_ENDPOINT", format!("http://{closed}"));
    let mut server = deployment.start().await;
    assert!(
        server.logs().contains("traces: spans are sent over OTLP"),
        "{}",
        server.logs()
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let mut warned = false;
    for _ in 0..150 {
        health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("the server keeps serving");
        if server.logs().contains("spans could not be sent") {
            warned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(warned, "{}", server.logs());
    let line = server
        .logs()
        .lines()
        .find(|line| line.contains("spans could not be sent"))
        .unwrap()
        .to_string();
    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["level"], "WARN", "{line}");
    let stopping = std::time::Instant::now();
    server.terminate();
    assert!(server.wait(Duration::from_secs(20)).await.is_some());
    assert!(stopping.elapsed() < Duration::from_secs(15));
}

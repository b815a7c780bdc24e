//! The HTTP probes on the metrics address (issue 23, item 5): `/livez`
//! answers while the process runs, `/readyz` when the database answers with
//! every migration applied and, with the Redis rate-limit backend, Redis
//! answers PING; the gRPC health service follows readiness.

use std::time::{Duration, Instant};

use gardien::config::RateLimitBackend;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::helpers::*;

/// `GET path` on the metrics address: (status code, body).
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string();
    (code, body)
}

async fn health(app: &TestApp) -> ServingStatus {
    HealthClient::new(app.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status()
}

#[tokio::test]
async fn livez_and_readyz_answer_200_on_a_healthy_server() {
    let app = spawn_app_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = app.metrics_addr.expect("the metrics endpoint is bound");

    let live = get(addr, "/livez").await;
    let ready = get(addr, "/readyz").await;

    assert_eq!(live.0, 200, "{live:?}");
    assert_eq!(ready.0, 200, "{ready:?}");
    assert_eq!(health(&app).await, ServingStatus::Serving);
}

#[tokio::test]
async fn readyz_is_503_naming_redis_and_health_not_serving_while_redis_is_unreachable() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        c.rate_limit.backend = RateLimitBackend::Redis;
        c.rate_limit.redis_url = Some(SecretString::from(format!("redis://127.0.0.1:{closed}")));
    })
    .await;
    let addr = app.metrics_addr.expect("the metrics endpoint is bound");

    let live = get(addr, "/livez").await;
    let ready = get(addr, "/readyz").await;

    assert_eq!(live.0, 200, "{live:?}");
    assert_eq!(ready.0, 503, "{ready:?}");
    assert!(ready.1.contains("redis"), "{ready:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&app).await != ServingStatus::NotServing {
        assert!(Instant::now() < deadline, "health still SERVING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server on the embedded SQLite database, with its metrics address.
async fn spawn_sqlite_app() -> (TestApp, std::net::SocketAddr, std::path::PathBuf) {
    let app = spawn_app_with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        c.database_url = None;
    })
    .await;
    let addr = app.metrics_addr.expect("the metrics endpoint is bound");
    let file = app.ctx.config.data_dir.join("gardien.db");
    assert_eq!(get(addr, "/readyz").await.0, 200);
    // Every connection of the pool opened before the file is touched, as on
    // an instance that has run a while: a connection opened later on a
    // replaced file would take over the write-ahead index the others have
    // mapped (truncating it under them kills the whole test process).
    let pool = app.ctx.db.get_sqlite_connection_pool();
    let mut opened = Vec::new();
    for _ in 0..app.ctx.config.database.max_connections {
        opened.push(pool.acquire().await.unwrap());
    }
    drop(opened);
    (app, addr, file)
}

/// `/readyz` 503 naming the database, and health `NOT_SERVING` soon after.
async fn assert_not_ready_over_the_database(app: &TestApp, addr: std::net::SocketAddr) {
    let ready = get(addr, "/readyz").await;
    assert_eq!(ready.0, 503, "{ready:?}");
    assert!(ready.1.contains("database"), "{ready:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(app).await != ServingStatus::NotServing {
        assert!(Instant::now() < deadline, "health still SERVING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` stayed 200 once the SQLite file was deleted: the open
/// connections still read the deleted file, and every write from then on
/// was lost with it.
#[tokio::test]
async fn readyz_is_503_once_the_sqlite_file_is_deleted() {
    let (app, addr, file) = spawn_sqlite_app().await;

    std::fs::remove_file(&file).unwrap();

    assert_not_ready_over_the_database(&app, addr).await;
}

/// The same when another file takes its place (a backup restored over a
/// running instance): this instance would go on writing to the old one.
#[tokio::test]
async fn readyz_is_503_once_the_sqlite_file_is_replaced() {
    let (app, addr, file) = spawn_sqlite_app().await;
    let copy = file.with_extension("copy");
    std::fs::copy(&file, &copy).unwrap();

    std::fs::rename(&copy, &file).unwrap();

    assert_not_ready_over_the_database(&app, addr).await;
}

/// And when the file can no longer be written. Root writes whatever the
/// mode: the test needs another user, and is skipped as root.
#[tokio::test]
async fn readyz_is_503_once_the_sqlite_file_is_read_only() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (app, addr, file) = spawn_sqlite_app().await;
    if std::fs::metadata(&file).unwrap().uid() == 0 {
        eprintln!("skipped: root writes any file");
        return;
    }

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();

    assert_not_ready_over_the_database(&app, addr).await;
}

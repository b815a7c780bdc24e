//! Rate limiting (in-process and Redis backends) and the overload guards in
//! the same stack: message size and load shedding.

use std::time::Duration;

use gardien::{
    config::{Config, Limit, RateLimitBackend},
    proto::accountsecurity::v1 as pb,
};
use sea_orm::EntityTrait;
use secrecy::SecretString;
use tonic::{metadata::MetadataValue, Code, Request};
use tonic_types::StatusExt;

use crate::helpers::*;

/// A credential class of 6 calls a minute (one per 10 s) with a burst of `burst`.
fn strict_credential(config: &mut Config, burst: u32) {
    config.rate_limit.credential.per_address = Limit::new(6, burst);
}

fn from_address<T>(mut request: Request<T>, address: &str) -> Request<T> {
    request
        .metadata_mut()
        .insert("x-forwarded-for", MetadataValue::try_from(address).unwrap());
    request
}

async fn recover_login(app: &TestApp, address: Option<&str>) -> Result<(), tonic::Status> {
    let mut request = Request::new(pb::RecoverLoginRequest {
        email: "nobody@example.fr".into(),
    });
    if let Some(address) = address {
        request = from_address(request, address);
    }
    app.client().await.recover_login(request).await.map(|_| ())
}

async fn account_status(app: &TestApp, token: &str, address: &str) -> Result<(), tonic::Status> {
    let request = authed(
        token,
        pb::GetAccountStatusRequest {
            account_id: String::new(),
            login: "jean".into(),
        },
    );
    app.client()
        .await
        .get_account_status(from_address(request, address))
        .await
        .map(|_| ())
}

fn assert_rate_limited(status: &tonic::Status) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(status), "RATE_LIMITED");
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay")
}

/// Failed logins recorded for every login identifier (written before
/// `Login` answers, so a call that ran its handler shows here at once).
async fn failures_recorded(app: &TestApp) -> i32 {
    gardien::entity::login_throttle::Entity::find()
        .all(&app.ctx.db)
        .await
        .unwrap()
        .iter()
        .map(|row| row.failures)
        .sum()
}

#[tokio::test]
pub async fn the_credential_limit_trips_after_the_burst_with_retry_info_and_skips_the_handler() {
    let app = spawn_app_with(|config| strict_credential(config, 3)).await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    for _ in 0..3 {
        let status = app
            .login("jean", "not the password at all")
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    }
    assert_eq!(failures_recorded(&app).await, 3);

    let refused = app
        .login("jean", "not the password at all")
        .await
        .unwrap_err();
    let retry_after = assert_rate_limited(&refused);
    assert!(
        retry_after > Duration::from_secs(9) && retry_after <= Duration::from_secs(10),
        "{retry_after:?}"
    );
    assert_eq!(
        failures_recorded(&app).await,
        3,
        "the refused call never reached Login"
    );
    assert!(
        app.rate_limit_metrics
            .limited
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[tokio::test]
async fn a_limited_client_recovers_after_the_retry_delay() {
    let app = spawn_app_with(|config| strict_credential(config, 2)).await;
    recover_login(&app, None).await.unwrap();
    recover_login(&app, None).await.unwrap();
    let retry_after = assert_rate_limited(&recover_login(&app, None).await.unwrap_err());

    app.clock.advance(retry_after / 2);
    assert_rate_limited(&recover_login(&app, None).await.unwrap_err());

    app.clock.advance(retry_after);
    recover_login(&app, None).await.unwrap();
    assert_rate_limited(&recover_login(&app, None).await.unwrap_err());
}

#[tokio::test]
pub async fn limits_are_independent_per_address_per_class_and_per_principal() {
    let app = spawn_app_with(|config| {
        strict_credential(config, 2);
        config.rate_limit.read.per_principal = Limit::new(6, 2);
        config.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;

    // Addresses: one client exhausted, another untouched.
    let first = Some("203.0.113.1");
    recover_login(&app, first).await.unwrap();
    recover_login(&app, first).await.unwrap();
    assert_rate_limited(&recover_login(&app, first).await.unwrap_err());
    recover_login(&app, Some("203.0.113.2")).await.unwrap();

    // Classes: the exhausted address still reads.
    account_status(&app, &app.service_token, "203.0.113.1")
        .await
        .unwrap();

    // Principals: the service credential's reads follow it across addresses;
    // the security credential has its own.
    account_status(&app, &app.service_token, "203.0.113.3")
        .await
        .unwrap();
    let refused = account_status(&app, &app.service_token, "203.0.113.4")
        .await
        .unwrap_err();
    assert_rate_limited(&refused);
    account_status(&app, &app.security_token, "203.0.113.4")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_untrusted_peer_cannot_escape_its_limit_with_x_forwarded_for() {
    let app = spawn_app_with(|config| strict_credential(config, 2)).await;
    recover_login(&app, Some("203.0.113.1")).await.unwrap();
    recover_login(&app, Some("203.0.113.2")).await.unwrap();
    let refused = recover_login(&app, Some("203.0.113.3")).await.unwrap_err();
    assert_rate_limited(&refused);
}

#[tokio::test]
async fn an_oversized_request_is_refused_and_the_server_keeps_serving() {
    let app = spawn_app_with(|config| config.max_message_bytes = 64 * 1024).await;
    let status = app
        .client()
        .await
        .login(pb::LoginRequest {
            login: "jean".into(),
            password: "x".repeat(256 * 1024),
        })
        .await
        .unwrap_err();
    assert!(
        // tonic answers OUT_OF_RANGE for a message over the decode limit.
        matches!(
            status.code(),
            Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
        ) && status.message().contains("too large"),
        "{status:?}"
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel().await);
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
}

// --- Redis backend -------------------------------------------------------

fn redis_backend(config: &mut Config, url: &str, prefix: &str) {
    config.rate_limit.backend = RateLimitBackend::Redis;
    config.rate_limit.redis_url = Some(SecretString::from(url.to_string()));
    config.rate_limit.redis_key_prefix = prefix.to_string();
}

fn unique_prefix() -> String {
    format!("gardien-test:{}:", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn two_instances_share_one_limit_through_redis() {
    let Some(url) = external_service("GARDIEN_TEST_REDIS_URL") else {
        return;
    };
    let prefix = unique_prefix();
    let a = spawn_app_with(|config| {
        redis_backend(config, &url, &prefix);
        strict_credential(config, 4);
    })
    .await;
    let b = a.spawn_second_instance(|_| {}).await;

    for app in [&a, &b, &a, &b] {
        recover_login(app, None).await.unwrap();
    }
    assert_rate_limited(&recover_login(&a, None).await.unwrap_err());
    assert_rate_limited(&recover_login(&b, None).await.unwrap_err());
}

/// A Redis server of this test's own, on a free port, that the test can stop.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    async fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        // Owned at once, so that the process is killed and reaped on every path.
        let redis = Self {
            port,
            child: Some(child),
        };
        // Wait (bounded) for the real process to accept connections.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
pub async fn a_redis_outage_fails_closed_for_credentials_and_open_for_reads_then_recovers() {
    // Only where Redis is part of the test environment.
    if external_service("GARDIEN_TEST_REDIS_URL").is_none() {
        return;
    }
    let mut redis = OwnRedis::start(OwnRedis::free_port()).await;
    let app = spawn_app_with(|config| redis_backend(config, &redis.url(), "gardien-test:")).await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    recover_login(&app, None).await.unwrap();
    account_status(&app, &app.service_token, "203.0.113.1")
        .await
        .unwrap();

    redis.stop();
    let started = std::time::Instant::now();
    let refused = recover_login(&app, None).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "UNAVAILABLE");
    account_status(&app, &app.service_token, "203.0.113.1")
        .await
        .expect("reads fail open");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "an unreachable Redis must not hang calls: {:?}",
        started.elapsed()
    );
    let metrics = &app.rate_limit_metrics;
    use std::sync::atomic::Ordering::Relaxed;
    assert!(metrics.failed_closed.load(Relaxed) >= 1);
    assert!(metrics.failed_open.load(Relaxed) >= 1);
    assert!(captured_logs().contains("rate-limit backend unavailable: failing closed"));

    let _redis = OwnRedis::start(redis.port).await;
    // The connection manager reconnects on its own; wait (bounded) for it.
    let mut recovered = false;
    for _ in 0..100 {
        if recover_login(&app, None).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "credential calls work again once Redis is back");
}

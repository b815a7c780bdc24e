//! The test harness. `spawn_app()`: a real server with a fresh database, a
//! movable clock, the file mail transport in a temporary folder, and typed
//! clients. Beside it: the shared flows (`flows`), the registry of secrets
//! that no log may hold (`secrets`), and the protobuf tap that registers
//! every secret on the wire (`wire`).

mod flows;
mod secrets;
mod tls;
mod wire;

pub use flows::*;
pub use secrets::*;
pub use tls::*;
pub use wire::*;

use std::{
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use gardien::{
    clock::ManualClock,
    config::{Config, Limit, LogFormat, MailTransportKind},
    domain::{credentials, principal::Role},
    proto::{
        accountsecurity::v1::{
            self as pb, account_security_service_client::AccountSecurityServiceClient,
        },
        support::v1::support_service_client::SupportServiceClient,
    },
    Application,
};
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use tonic::{metadata::MetadataValue, transport::Channel, Request};

pub type AsClient = AccountSecurityServiceClient<Recorded>;

/// Every log line of every server in this test process.
pub fn captured_logs() -> String {
    let buffer = log_buffer().lock().unwrap();
    String::from_utf8_lossy(&buffer).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        log_to_file(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        register_secret(STRONG_PASSWORD);
        register_secret(NEW_PASSWORD);
        let buffer = log_buffer().clone();
        gardien::telemetry::init_with_writer(
            LogFormat::Json,
            "debug,sqlx=warn,h2=info,hyper=info,tower=info",
            move || BufferWriter(buffer.clone()),
            false,
        )
        .unwrap();
    });
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// The metrics endpoint, when `metrics_addr` is configured.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub clock: ManualClock,
    pub ctx: gardien::domain::Context,
    pub mail_dir: PathBuf,
    pub service_token: String,
    pub security_token: String,
    pub agent_token: String,
    pub rate_limit_metrics: Arc<gardien::middleware::rate_limit::RateLimitMetrics>,
    /// The CA (PEM) the server's certificate comes from, when it speaks TLS.
    pub tls_ca: Option<String>,
    /// Where this instance's part of the captured log starts.
    log_start: usize,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Everything logged while this instance ran (by any server of the
        // process) holds no secret registered so far.
        if !std::thread::panicking() {
            assert_no_secret_logged_since(self.log_start);
        }
    }
}

/// A fresh PostgreSQL database when `GARDIEN_TEST_POSTGRES_URL` is set.
pub async fn database_url() -> Option<String> {
    let admin_url = std::env::var("GARDIEN_TEST_POSTGRES_URL").ok()?;
    let name = format!("gardien_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(admin_url.as_str())
        .await
        .expect("GARDIEN_TEST_POSTGRES_URL is set but PostgreSQL is unreachable");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("cannot create a test database");
    admin.close().await.ok();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    Some(format!("{base}/{name}"))
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        shutdown_grace_secs: 2,
        ..Default::default()
    };
    config.mail.transport = MailTransportKind::File;
    config.mail.poll_interval_ms = 20;
    config.password.hashing_workers = 2;
    config.password.hashing_queue = 256;
    // Tests log in many times from 127.0.0.1: limits far above any test's
    // needs; the rate-limit tests set strict ones.
    let generous = Limit::new(1_000_000, 100_000);
    for class in [
        &mut config.rate_limit.credential,
        &mut config.rate_limit.read,
        &mut config.rate_limit.write,
    ] {
        class.per_address = generous;
        class.per_principal = generous;
    }
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    if let Some(url) = database_url().await {
        config.database_url = Some(SecretString::from(url));
    }
    adjust(&mut config);
    start(config, dir, None).await
}

impl TestApp {
    /// Stops this instance (server and outbox worker) as a shutdown would,
    /// keeping its data directory and database for a next instance.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Another instance on this one's database (and TOTP key), with its own
    /// data directory, mail folder and clock, as a second replica behind a
    /// load balancer would be.
    pub async fn spawn_second_instance(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let first = &self.ctx.config;
        let mut config = (**first).clone();
        config.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().to_path_buf();
        config.mail.dir = None;
        config.database_url = Some(first.effective_database_url());
        if first.totp.encryption_key.is_none() {
            config.totp.key_file = Some(first.totp_key_file());
        }
        adjust(&mut config);
        let tokens = [
            self.service_token.clone(),
            self.security_token.clone(),
            self.agent_token.clone(),
        ];
        let mut second = start(config, dir, Some(tokens)).await;
        second.tls_ca = self.tls_ca.clone();
        second
    }
}

/// Builds and runs a server; creates the three credentials unless given.
async fn start(config: Config, dir: tempfile::TempDir, tokens: Option<[String; 3]>) -> TestApp {
    let log_start = log_position();
    let mail_dir = config.mail_dir();
    let clock = ManualClock::new();
    let app = Application::build_with_clock(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let ctx = app.context().clone();
    let rate_limit_metrics = app.rate_limit_metrics();
    let tokens = match tokens {
        Some(tokens) => tokens,
        None => {
            let now = ctx.now();
            let mut tokens: [String; 3] = Default::default();
            for (slot, (name, role)) in tokens.iter_mut().zip([
                ("billing", Role::Service),
                ("secops", Role::Security),
                ("agent-alice", Role::Agent),
            ]) {
                let (_, secret) = credentials::create(&ctx.db, now, name, role).await.unwrap();
                *slot = secret.expose_secret().to_string();
            }
            tokens
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    tokens.iter().for_each(|token| register_secret(token));
    let [service_token, security_token, agent_token] = tokens;
    TestApp {
        addr,
        metrics_addr,
        clock,
        ctx,
        mail_dir,
        service_token,
        security_token,
        agent_token,
        rate_limit_metrics,
        tls_ca: None,
        log_start,
        shutdown,
        _dir: dir,
    }
}

/// An external service's URL from `variable`, for tests that need it. When
/// it is unset the test is skipped, except under CI (`CI` set), where a
/// missing service must fail the run rather than pass it silently.
pub fn external_service(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{variable} is not set under CI: this test needs it")
        }
        _ => {
            eprintln!("skipped: {variable} is not set");
            None
        }
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

pub const STRONG_PASSWORD: &str = "correct horse battery staple 42";
pub const NEW_PASSWORD: &str = "une falaise bleue au-dessus de la mer";

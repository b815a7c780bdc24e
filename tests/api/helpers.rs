//! `spawn_app()`: a real server with a fresh database, a movable clock, the
//! file mail transport in a temporary folder, and typed clients.

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

pub type AsClient = AccountSecurityServiceClient<Channel>;

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
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let buffer = log_buffer().clone();
        gardien::telemetry::init_with_writer(
            LogFormat::Json,
            "debug,sqlx=warn,h2=info,hyper=info,tower=info",
            move || BufferWriter(buffer.clone()),
        );
    });
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub clock: ManualClock,
    pub ctx: gardien::domain::Context,
    pub mail_dir: PathBuf,
    pub service_token: String,
    pub security_token: String,
    pub agent_token: String,
    pub rate_limit_metrics: Arc<gardien::middleware::rate_limit::RateLimitMetrics>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A fresh PostgreSQL database when `GARDIEN_TEST_POSTGRES_URL` is set.
async fn database_url() -> Option<String> {
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
        start(config, dir, Some(tokens)).await
    }
}

/// Builds and runs a server; creates the three credentials unless given.
async fn start(config: Config, dir: tempfile::TempDir, tokens: Option<[String; 3]>) -> TestApp {
    let mail_dir = config.mail_dir();
    let clock = ManualClock::new();
    let app = Application::build_with_clock(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let addr = app.local_addr();
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
    let [service_token, security_token, agent_token] = tokens;
    TestApp {
        addr,
        clock,
        ctx,
        mail_dir,
        service_token,
        security_token,
        agent_token,
        rate_limit_metrics,
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

impl TestApp {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> AsClient {
        AccountSecurityServiceClient::new(self.channel().await)
    }

    pub async fn support(&self) -> SupportServiceClient<Channel> {
        SupportServiceClient::new(self.channel().await)
    }

    /// Creates an account through the API (service credential) and returns its id.
    pub async fn create_account(&self, login: &str, email: &str, password: &str) -> String {
        self.create_account_in(login, email, password, pb::Locale::En)
            .await
    }

    pub async fn create_account_in(
        &self,
        login: &str,
        email: &str,
        password: &str,
        locale: pb::Locale,
    ) -> String {
        let response = self
            .client()
            .await
            .create_account(authed(
                &self.service_token,
                pb::CreateAccountRequest {
                    login: login.into(),
                    email: email.into(),
                    password: password.into(),
                    locale: locale.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        response.into_inner().account.unwrap().account_id
    }

    pub async fn login(
        &self,
        login: &str,
        password: &str,
    ) -> Result<pb::SessionGrant, tonic::Status> {
        let response = self
            .client()
            .await
            .login(pb::LoginRequest {
                login: login.into(),
                password: password.into(),
            })
            .await?;
        match response.into_inner().result {
            Some(pb::login_response::Result::Session(grant)) => Ok(grant),
            other => panic!("expected a session, got {other:?}"),
        }
    }

    pub async fn suspend(&self, account_id: &str) -> pb::SuspendPasswordResponse {
        self.client()
            .await
            .suspend_password(authed(
                &self.security_token,
                pb::SuspendPasswordRequest {
                    account_id: account_id.into(),
                    reason: pb::SuspensionReason::SuspectedCompromise.into(),
                    note: "credentials seen on a paste site".into(),
                    evidence_event_ids: vec![],
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits (bounded) until `count` e-mails to `recipient` are on disk; returns their texts, oldest first.
    pub async fn wait_for_mails(&self, recipient: &str, count: usize) -> Vec<String> {
        for _ in 0..300 {
            let mails = self.mails_to(recipient);
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {count} e-mail(s) to {recipient}, found {}",
            self.mails_to(recipient).len()
        );
    }

    pub fn mails_to(&self, recipient: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut mails: Vec<(String, String)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| {
                Some((
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).ok()?,
                ))
            })
            .filter(|(_, text)| {
                text.lines()
                    .any(|l| l.starts_with("To:") && l.contains(recipient))
            })
            .collect();
        mails.sort();
        mails.into_iter().map(|(_, text)| text).collect()
    }

    /// The reset token from the newest reset e-mail to `recipient`.
    pub async fn reset_token_from_mail(&self, recipient: &str, expected_mails: usize) -> String {
        let mails = self.wait_for_mails(recipient, expected_mails).await;
        let mail = mails
            .iter()
            .rev()
            .find(|m| m.contains("token=gdr_"))
            .expect("no reset e-mail");
        token_in(mail)
    }

    /// Security events of an account, as (kind, actor_kind) pairs, oldest first.
    pub async fn events_of(&self, account_id: &str) -> Vec<String> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        gardien::entity::security_event::Entity::find()
            .filter(
                gardien::entity::security_event::Column::AccountId
                    .eq(uuid::Uuid::parse_str(account_id).unwrap()),
            )
            .order_by_asc(gardien::entity::security_event::Column::Id)
            .all(&self.ctx.db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

pub fn token_in(mail: &str) -> String {
    let start = mail.find("token=gdr_").expect("no token in the e-mail") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// The `ErrorInfo.reason` of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// The fields named by a status's `BadRequest` details.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// RFC 6238 code (SHA-1, 6 digits, 30 s) computed here with plain
/// HMAC-SHA1, independently of gardien's TOTP module.
pub fn totp_code(secret_base32: &str, now_ms: i64) -> String {
    use hmac::{Hmac, Mac};
    let secret = base32_decode(secret_base32);
    let step = (now_ms.div_euclid(1000) / 30) as u64;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&secret).unwrap();
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .unwrap() as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

impl TestApp {
    /// Logs in, enrols TOTP and confirms it; returns (base32 secret, recovery codes, session).
    pub async fn enable_totp(
        &self,
        login: &str,
        password: &str,
    ) -> (String, Vec<String>, pb::SessionGrant) {
        let session = self.login(login, password).await.unwrap();
        let enrollment = self
            .client()
            .await
            .begin_totp_enrollment(authed(
                &session.session_token,
                pb::BeginTotpEnrollmentRequest::default(),
            ))
            .await
            .unwrap()
            .into_inner();
        let code = totp_code(&enrollment.secret_base32, self.clock_now());
        let codes = self
            .client()
            .await
            .confirm_totp_enrollment(authed(
                &session.session_token,
                pb::ConfirmTotpEnrollmentRequest { totp_code: code },
            ))
            .await
            .unwrap()
            .into_inner()
            .recovery_codes;
        (enrollment.secret_base32, codes, session)
    }

    pub fn clock_now(&self) -> i64 {
        use gardien::clock::Clock;
        self.clock.now_ms()
    }

    /// `Login` on a 2FA account: the challenge token.
    pub async fn login_challenge(
        &self,
        login: &str,
        password: &str,
    ) -> Result<String, tonic::Status> {
        let response = self
            .client()
            .await
            .login(pb::LoginRequest {
                login: login.into(),
                password: password.into(),
            })
            .await?;
        match response.into_inner().result {
            Some(pb::login_response::Result::Challenge(challenge)) => Ok(challenge.challenge_token),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    pub async fn verify_totp(
        &self,
        challenge: &str,
        code: &str,
    ) -> Result<pb::SessionGrant, tonic::Status> {
        self.verify_challenge(
            challenge,
            pb::verify_login_challenge_request::Code::TotpCode(code.into()),
        )
        .await
    }

    pub async fn verify_challenge(
        &self,
        challenge: &str,
        code: pb::verify_login_challenge_request::Code,
    ) -> Result<pb::SessionGrant, tonic::Status> {
        self.client()
            .await
            .verify_login_challenge(pb::VerifyLoginChallengeRequest {
                challenge_token: challenge.into(),
                code: Some(code),
            })
            .await
            .map(|r| r.into_inner().session.unwrap())
    }
}

/// A fresh PostgreSQL database (as `spawn_app` makes one) when
/// `GARDIEN_TEST_POSTGRES_URL` is set, for tests that run the real binary.
pub async fn fresh_postgres_url() -> Option<String> {
    database_url().await
}

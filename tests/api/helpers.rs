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
    let log_start = log_position();
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
    tokens.iter().for_each(|token| register_secret(token));
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

impl TestApp {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> AsClient {
        AccountSecurityServiceClient::new(Recorded::new(self.channel().await))
    }

    pub async fn support(&self) -> SupportServiceClient<Recorded> {
        SupportServiceClient::new(Recorded::new(self.channel().await))
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
        mails_in_dir(&self.mail_dir, recipient)
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

/// The `.eml` files in `dir` addressed to `recipient`, oldest first (by
/// file name); the tokens they carry are registered as secrets.
pub fn mails_in_dir(dir: &std::path::Path, recipient: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
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
    mails
        .into_iter()
        .map(|(_, text)| {
            register_tokens_in(&text);
            text
        })
        .collect()
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
    let code = format!("{:06}", value % 1_000_000);
    register_secret(&code);
    code
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

// ---------------------------------------------------------------------------
// Secret hygiene across the whole suite.
//
// Every secret a test sends or receives is registered: the clients of
// `client()` and `support()` go through [`Recorded`], which decodes each
// request and response against the descriptor set and registers every
// string field named like a secret (passwords, tokens, codes, TOTP secrets,
// recovery codes) and every bearer token; helpers register what they read
// elsewhere (credential secrets, TOTP codes, tokens in e-mails). The log of
// every server in the process is checked against the whole registry when
// each `TestApp` is dropped, and is also written with the registry to
// `target/tmp/gardien-test-logs/<pid>.{log,secrets,codes}` so that CI can
// scan the complete log of the run once it has ended.
// ---------------------------------------------------------------------------

/// Secrets shorter than this (6-digit codes) are matched as whole words, and
/// never in the `timestamp` field, whose microseconds would match by chance;
/// longer ones anywhere.
const SHORT_SECRET: usize = 8;
/// Nothing shorter is a secret of this service (a TOTP code has 6 digits).
const MIN_SECRET: usize = 6;

/// Where the log and the registry of this test process are written.
pub fn hygiene_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gardien-test-logs")
}

struct Registry {
    secrets: std::collections::HashSet<String>,
    long_file: Option<std::fs::File>,
    short_file: Option<std::fs::File>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let open = |extension: &str| {
            let dir = hygiene_dir();
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::File::create(dir.join(format!("{}.{extension}", std::process::id()))).ok()
        };
        Mutex::new(Registry {
            secrets: Default::default(),
            long_file: open("secrets"),
            short_file: open("codes"),
        })
    })
}

/// Appends log bytes to this process's log file.
fn log_to_file(bytes: &[u8]) {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let dir = hygiene_dir();
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("{}.log", std::process::id()));
        std::fs::File::create(path).ok().map(Mutex::new)
    });
    if let Some(file) = file {
        file.lock().unwrap().write_all(bytes).unwrap();
    }
}

/// The forms in which a secret could reach a log line: as given, NFKC
/// normalised (what the server hashes), escaped for JSON or by
/// `escape_debug`, in either case when it is plain ASCII, without a token's
/// kind prefix, and a recovery code without its dashes.
fn secret_forms(secret: &str) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization;
    let mut forms = vec![secret.to_string(), secret.nfkc().collect()];
    let json = serde_json::to_string(secret).unwrap();
    forms.push(json[1..json.len() - 1].to_string());
    forms.push(secret.escape_debug().to_string());
    if secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        forms.push(secret.to_lowercase());
        forms.push(secret.to_uppercase());
        forms.push(secret.replace('-', ""));
        if gardien::crypto::token::TokenKind::of(secret).is_some()
            && secret.len() == gardien::crypto::token::TOKEN_LEN
        {
            forms.push(secret[4..].to_string());
        }
    }
    forms
        .into_iter()
        .flat_map(|form| {
            // One pattern per line in the files CI reads.
            form.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .filter(|form| form.chars().count() >= MIN_SECRET)
        .collect()
}

/// Registers a secret that no log line may contain.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET {
        return;
    }
    let mut registry = registry().lock().unwrap();
    for form in secret_forms(secret) {
        if !registry.secrets.insert(form.clone()) {
            continue;
        }
        let file = if form.len() < SHORT_SECRET {
            registry.short_file.as_mut()
        } else {
            registry.long_file.as_mut()
        };
        if let Some(file) = file {
            writeln!(file, "{form}").unwrap();
        }
    }
}

/// Registers every token (`gd?_` and 43 base64url characters) in `text`.
pub fn register_tokens_in(text: &str) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("gd") {
        let start = from + found;
        from = start + 2;
        let body: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if bytes.get(start + 3) == Some(&b'_')
            && gardien::crypto::token::TokenKind::of(&body).is_some()
            && body.len() >= gardien::crypto::token::TOKEN_LEN
        {
            register_secret(&body[..gardien::crypto::token::TOKEN_LEN]);
        }
    }
}

/// Where in a log a registered secret was found, without showing it.
pub struct Leak {
    pub secret_chars: usize,
    pub line: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a registered secret ({} characters) reached the logs, in this line (secret masked): {}",
            self.secret_chars, self.line
        )
    }
}

/// Multi-pattern search: long secrets are found by their first 8 bytes in a
/// hash map, so a scan costs one look-up per byte of log whatever the number
/// of secrets; short ones by whole words.
struct Matcher {
    long: std::collections::HashMap<u64, Vec<String>>,
    short: std::collections::HashSet<String>,
}

impl Matcher {
    fn new<'a>(secrets: impl IntoIterator<Item = &'a String>) -> Self {
        let mut long: std::collections::HashMap<u64, Vec<String>> = Default::default();
        let mut short = std::collections::HashSet::new();
        for secret in secrets {
            if secret.len() < SHORT_SECRET {
                short.insert(secret.clone());
            } else {
                long.entry(prefix_key(secret.as_bytes()))
                    .or_default()
                    .push(secret.clone());
            }
        }
        Self { long, short }
    }

    fn scan(&self, text: &[u8]) -> Option<Leak> {
        let leak = |line_of: usize, secret: &str| {
            let start = text[..line_of]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let end = text[line_of..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |p| line_of + p);
            let line = String::from_utf8_lossy(&text[start..end]).replace(secret, "<SECRET>");
            Leak {
                secret_chars: secret.chars().count(),
                line,
            }
        };
        for at in 0..text.len().saturating_sub(SHORT_SECRET - 1) {
            if let Some(candidates) = self.long.get(&prefix_key(&text[at..])) {
                if let Some(secret) = candidates
                    .iter()
                    .find(|s| text[at..].starts_with(s.as_bytes()))
                {
                    return Some(leak(at, secret));
                }
            }
        }
        if self.short.is_empty() {
            return None;
        }
        let mut offset = 0;
        for line in text.split(|&b| b == b'\n') {
            let skip = timestamp_field(line);
            let mut word_start = None;
            for (i, &b) in line.iter().chain(std::iter::once(&b' ')).enumerate() {
                let in_word = b.is_ascii_alphanumeric() || b == b'_';
                match (in_word, word_start) {
                    (true, None) => word_start = Some(i),
                    (false, Some(start)) => {
                        word_start = None;
                        if skip.contains(&start) || i - start >= SHORT_SECRET {
                            continue;
                        }
                        let word = std::str::from_utf8(&line[start..i]).unwrap_or_default();
                        if self.short.contains(word) {
                            return Some(leak(offset + start, word));
                        }
                    }
                    _ => {}
                }
            }
            offset += line.len() + 1;
        }
        None
    }
}

fn prefix_key(bytes: &[u8]) -> u64 {
    let mut key = [0u8; 8];
    key.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(key)
}

/// The byte range of the value of `"timestamp":"…"` in a JSON log line.
fn timestamp_field(line: &[u8]) -> std::ops::Range<usize> {
    const KEY: &[u8] = b"\"timestamp\":\"";
    let Some(key) = line.windows(KEY.len()).position(|w| w == KEY) else {
        return 0..0;
    };
    let start = key + KEY.len();
    let end = line[start..]
        .iter()
        .position(|&b| b == b'"')
        .map_or(line.len(), |p| start + p);
    start..end
}

/// The first registered secret found in `text`, if any.
pub fn find_secret_in(text: &[u8]) -> Option<Leak> {
    let registry = registry().lock().unwrap();
    Matcher::new(&registry.secrets).scan(text)
}

/// Length of the captured log so far, to check only what follows.
pub fn log_position() -> usize {
    log_buffer().lock().unwrap().len()
}

/// Panics if a registered secret was logged since `position`.
pub fn assert_no_secret_logged_since(position: usize) {
    let window = log_buffer().lock().unwrap()[position..].to_vec();
    if let Some(leak) = find_secret_in(&window) {
        panic!("{leak}");
    }
}

/// What a gRPC method takes and answers, and each message's fields, from
/// the descriptor set served through reflection.
struct Schema {
    methods: std::collections::HashMap<String, (String, String)>,
    messages: std::collections::HashMap<String, Vec<prost_types::FieldDescriptorProto>>,
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        use prost::Message;
        fn add(
            messages: &mut std::collections::HashMap<
                String,
                Vec<prost_types::FieldDescriptorProto>,
            >,
            scope: &str,
            message: &prost_types::DescriptorProto,
        ) {
            let name = format!("{scope}.{}", message.name());
            for nested in &message.nested_type {
                add(messages, &name, nested);
            }
            messages.insert(name, message.field.clone());
        }
        let set =
            prost_types::FileDescriptorSet::decode(gardien::proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut schema = Schema {
            methods: Default::default(),
            messages: Default::default(),
        };
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    schema.methods.insert(
                        format!("/{package}.{}/{}", service.name(), method.name()),
                        (method.input_type().into(), method.output_type().into()),
                    );
                }
            }
            for message in &file.message_type {
                add(&mut schema.messages, &format!(".{package}"), message);
            }
        }
        schema
    })
}

/// Whether a proto field holds a secret, by its name: passwords, tokens,
/// codes and TOTP secrets, but not paging tokens nor postal or country codes.
pub fn is_secret_field(name: &str) -> bool {
    const NOT_SECRET: [&str; 4] = [
        "page_token",
        "next_page_token",
        "postal_code",
        "country_code",
    ];
    !NOT_SECRET.contains(&name)
        && (name.contains("password")
            || name.contains("secret")
            || name.contains("otpauth")
            || name.ends_with("_token")
            || name.ends_with("_code")
            || name.ends_with("_codes"))
}

/// Registers the secret fields of an encoded message of type `type_name`
/// (and of the messages inside it; everything inside a secret field is secret).
fn register_secret_fields(type_name: &str, mut bytes: &[u8], inside_secret: bool) {
    use prost::encoding::decode_varint;
    use prost_types::field_descriptor_proto::Type;
    let Some(fields) = schema().messages.get(type_name) else {
        return;
    };
    while !bytes.is_empty() {
        let Ok(key) = decode_varint(&mut bytes) else {
            return;
        };
        let skip = match key & 7 {
            0 => decode_varint(&mut bytes).map(|_| 0).unwrap_or(usize::MAX),
            1 => 8,
            5 => 4,
            2 => {
                let Ok(len) = decode_varint(&mut bytes) else {
                    return;
                };
                let len = len as usize;
                if bytes.len() < len {
                    return;
                }
                let (value, rest) = bytes.split_at(len);
                bytes = rest;
                let number = (key >> 3) as i32;
                if let Some(field) = fields.iter().find(|f| f.number() == number) {
                    let secret = inside_secret || is_secret_field(field.name());
                    match field.r#type() {
                        Type::String if secret => {
                            register_secret(&String::from_utf8_lossy(value));
                        }
                        Type::Message => register_secret_fields(field.type_name(), value, secret),
                        _ => {}
                    }
                }
                0
            }
            _ => usize::MAX,
        };
        if skip > bytes.len() {
            return;
        }
        bytes = &bytes[skip..];
    }
}

/// A body that passes through unchanged while registering the secret fields
/// of each gRPC message in it.
pub struct Tap {
    inner: tonic::body::Body,
    message_type: Option<String>,
    pending: Vec<u8>,
}

impl Tap {
    fn new(inner: tonic::body::Body, message_type: Option<String>) -> Self {
        Self {
            inner,
            message_type,
            pending: Vec::new(),
        }
    }

    fn inspect(&mut self, data: &[u8]) {
        let Some(message_type) = &self.message_type else {
            return;
        };
        self.pending.extend_from_slice(data);
        // Length-prefixed messages: a compression flag and a 4-byte length.
        while self.pending.len() >= 5 {
            let len = u32::from_be_bytes(self.pending[1..5].try_into().unwrap()) as usize;
            if self.pending.len() < 5 + len {
                break;
            }
            let frame: Vec<u8> = self.pending.drain(..5 + len).collect();
            if frame[0] == 0 {
                register_secret_fields(message_type, &frame[5..], false);
            }
        }
    }
}

impl http_body::Body for Tap {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.inspect(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A channel that registers every secret crossing it (see [`Tap`]) and
/// every bearer token it carries.
#[derive(Clone)]
pub struct Recorded {
    inner: Channel,
}

impl Recorded {
    pub fn new(inner: Channel) -> Self {
        Self { inner }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Recorded {
    type Response = http::Response<Tap>;
    type Error = tonic::transport::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some((_, token)) = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
        {
            register_secret(token);
        }
        let (input, output) = schema().methods.get(request.uri().path()).cloned().unzip();
        let request = request.map(|body| tonic::body::Body::new(Tap::new(body, input)));
        let future = tower::Service::call(&mut self.inner, request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| Tap::new(body, output)))
        })
    }
}

// ---------------------------------------------------------------------------
// Support resets of the second factor.
// ---------------------------------------------------------------------------

impl TestApp {
    /// The agent records an identity verification on `ticket_id`.
    pub async fn verify_ticket_identity(&self, ticket_id: &str) {
        use gardien::proto::support::v1 as spb;
        self.support()
            .await
            .verify_ticket_identity(authed(
                &self.agent_token,
                spb::VerifyTicketIdentityRequest {
                    ticket_id: ticket_id.into(),
                    method: spb::IdentityVerificationMethod::VideoCall.into(),
                    evidence_reference: "KYC-CASE-7731".into(),
                },
            ))
            .await
            .unwrap();
    }

    /// The agent asks for a 2FA reset of `account_id` under `ticket_id`.
    pub async fn reset_totp(
        &self,
        account_id: &str,
        ticket_id: &str,
        reason: &str,
    ) -> Result<gardien::proto::support::v1::ResetTotpResponse, tonic::Status> {
        use gardien::proto::support::v1 as spb;
        self.support()
            .await
            .reset_totp(authed(
                &self.agent_token,
                spb::ResetTotpRequest {
                    account_id: account_id.into(),
                    ticket_id: ticket_id.into(),
                    reason: reason.into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Whether the account has TOTP on, read from the database.
    pub async fn totp_enabled(&self, account_id: &str) -> bool {
        use sea_orm::EntityTrait;
        gardien::entity::account::Entity::find_by_id(uuid::Uuid::parse_str(account_id).unwrap())
            .one(&self.ctx.db)
            .await
            .unwrap()
            .unwrap()
            .totp_secret
            .is_some()
    }

    /// Waits (bounded) for the background task to make due factor resets
    /// take effect; the clock must already be past their delay.
    pub async fn wait_until_totp_off(&self, account_id: &str) {
        for _ in 0..500 {
            if !self.totp_enabled(account_id).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("2FA of {account_id} is still on");
    }
}

impl TestApp {
    /// Waits (bounded) until the background task has handled every factor
    /// reset that is due at the current (test) clock.
    pub async fn wait_for_due_factor_resets(&self) {
        use gardien::entity::factor_reset;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        for _ in 0..500 {
            let due = factor_reset::Entity::find()
                .filter(factor_reset::Column::Status.eq("pending"))
                .filter(factor_reset::Column::DueAt.lte(self.clock_now()))
                .count(&self.ctx.db)
                .await
                .unwrap();
            if due == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("due factor resets were left pending");
    }
}

/// The token of the factor-reset cancel link in an e-mail.
pub fn cancel_token_in(mail: &str) -> String {
    let start = mail
        .find("token=gdf_")
        .expect("no cancel link in the e-mail")
        + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

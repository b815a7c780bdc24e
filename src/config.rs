//! Configuration: built-in defaults < a TOML file (`--config`) < `GARDIEN_*`
//! environment variables (`GARDIEN_PASSWORD__MIN_CHARS` for nested keys).
//!
//! Unknown keys and bad values are refused with a message naming the key.
//! Secrets live in `SecretString`s that never print.

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    providers::{Env, Format, Toml},
    Figment,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

mod key_rotation;
mod rate_limit;

pub use key_rotation::KeyRotationConfig;
pub use rate_limit::{ClassLimits, Limit, RateLimitBackend, RateLimitConfig};

/// Environment variables with this prefix belong to the test suite, not to
/// the server's configuration.
const RESERVED_ENV: &[&str] = &["TEST_", "CONFIG"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen_addr: SocketAddr,
    /// Where the embedded database, keys and e-mail files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default a SQLite file in `data_dir`.
    pub database_url: Option<SecretString>,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `gardien=debug,info`.
    pub log_level: String,
    /// Seconds that in-flight calls get to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Deadline of one RPC in seconds (a shorter `grpc-timeout` wins).
    pub request_timeout_secs: u64,
    /// RPCs served at once; beyond it calls are shed with `UNAVAILABLE`.
    pub max_concurrent_requests: usize,
    /// Largest decoded request message, in bytes.
    pub max_message_bytes: usize,
    /// Where Prometheus scrapes `/metrics` (HTTP); off when unset. Keep it on
    /// loopback or a private network.
    pub metrics_addr: Option<SocketAddr>,
    /// Browser origins allowed to call gRPC-Web (CORS), e.g.
    /// `["https://account.example.com"]`; empty allows none (same-origin and
    /// non-browser clients are unaffected).
    pub cors_allowed_origins: Vec<String>,
    pub database: DatabaseConfig,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub reset: ResetConfig,
    pub mail: MailConfig,
    pub totp: TotpConfig,
    pub key_rotation: KeyRotationConfig,
    pub information_centre: InformationCentreConfig,
    pub rate_limit: RateLimitConfig,
    pub support: SupportConfig,
    pub background: BackgroundConfig,
    /// `GARDIEN_*` variables that set no known key, left out (warned about
    /// at start-up).
    #[serde(skip)]
    pub ignored_env: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportConfig {
    /// How long a support reset of the second factor (`ResetTotp`) waits
    /// before it takes effect; the customer can cancel it meanwhile.
    pub factor_reset_delay_secs: u64,
    /// How often each instance looks for factor resets that are due.
    pub factor_reset_poll_ms: u64,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            factor_reset_delay_secs: 24 * 3600,
            factor_reset_poll_ms: 10_000,
        }
    }
}

/// Work done off the response path (reset links, login reminders, failed
/// login records): a queue of fixed size served by a fixed number of workers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackgroundConfig {
    /// Workers, each on at most one pooled connection at a time; fewer than
    /// `database.max_connections`, so calls always find a connection.
    pub workers: usize,
    /// Jobs allowed to wait in memory. Reset and reminder requests are
    /// recorded in the database first: beyond it they wait there, and the
    /// sweeper hands them over as room frees up.
    pub queue_capacity: usize,
    /// How often each instance looks for recorded requests nobody works on
    /// (left by a crash, a full queue or a failed attempt).
    pub rescan_ms: u64,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            queue_capacity: 1024,
            rescan_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InformationCentreConfig {
    /// Event kinds whose dispute ("this wasn't me") suspends the password.
    pub suspend_on_dispute: Vec<String>,
}

impl Default for InformationCentreConfig {
    fn default() -> Self {
        Self {
            suspend_on_dispute: [
                "login_succeeded",
                "order_placed",
                "service_ordered",
                "password_changed",
                "password_reset_completed",
                "totp_enabled",
                "totp_disabled",
                "contact_details_changed",
                "contact_email_change_requested",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    /// Minimum length in Unicode code points after NFKC (never below 8).
    pub min_chars: usize,
    /// Maximum length in code points (at least 128).
    pub max_chars: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashing threads; 0 means one per core.
    pub hashing_workers: usize,
    /// Hashing jobs allowed to wait; beyond it `RESOURCE_EXHAUSTED`.
    pub hashing_queue: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub absolute_ttl_secs: u64,
    pub idle_ttl_secs: u64,
    /// Live sessions (and as many credentials) each instance keeps in
    /// memory; a revocation anywhere still takes effect on the next call.
    /// 0 reads the database on every call.
    pub cache_capacity: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Consecutive failures allowed before any back-off.
    pub free_failures: u32,
    /// The back-off doubles from one second up to this many seconds.
    pub max_backoff_secs: u64,
    /// Consecutive failures after which only a password reset reopens login.
    pub max_failures: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResetConfig {
    pub token_ttl_secs: u64,
    /// Reset or login-recovery e-mails sent per account and hour.
    pub max_requests_per_hour: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TotpConfig {
    /// Issuer shown by authenticator apps.
    pub issuer: String,
    /// A session younger than this counts as a recent authentication.
    pub recent_auth_secs: u64,
    /// Base64 of the 32-byte AES-256-GCM key sealing TOTP secrets. Shared by
    /// every instance; without it (and without `encryption_keys`) a key file
    /// in `data_dir` is used (created with mode 0600 on first start).
    pub encryption_key: Option<SecretString>,
    /// Several such keys, for rotation: the first seals, every one opens.
    /// Replaces `encryption_key` (set one or the other).
    pub encryption_keys: Vec<SecretString>,
    /// The key file; default `<data_dir>/totp.key`.
    pub key_file: Option<PathBuf>,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            issuer: "gardien".into(),
            recent_auth_secs: 600,
            encryption_key: None,
            encryption_keys: Vec::new(),
            key_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    /// One `.eml` file per message in `mail.dir`.
    File,
    /// The message is logged (without its body).
    Log,
    /// Delivered to the relay described by `[mail.smtp]`.
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// TLS from the first byte (SMTPS, port 465 by default).
    Implicit,
    /// Plain connection upgraded with STARTTLS, required (port 587 by default).
    Starttls,
    /// No TLS at all: allowed only towards a loopback host (port 25 by default).
    None,
}

/// The SMTP relay of `mail.transport = "smtp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 465 for `implicit`, 587 for `starttls`, 25 for `none`.
    pub port: Option<u16>,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Connect and per-command timeout (at most 40: a whole delivery must
    /// fit in the outbox lease).
    pub timeout_secs: u64,
    /// Connections kept open for bursts.
    pub pool_max_size: u32,
    /// An idle pooled connection is closed after this long.
    pub pool_idle_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: None,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout_secs: 30,
            pool_max_size: 4,
            pool_idle_secs: 60,
        }
    }
}

impl SmtpConfig {
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Implicit => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        })
    }

    fn host_is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransportKind,
    /// Folder of the `file` transport; default `<data_dir>/mail`.
    pub dir: Option<PathBuf>,
    pub from_address: String,
    pub from_name: String,
    /// The reset link is this URL with `?token=…` appended.
    pub reset_url: String,
    /// The customer's information centre.
    pub information_centre_url: String,
    /// The help page on a suspended password.
    pub help_url: String,
    /// The "this wasn't me" page; `?token=…` is appended.
    pub report_url: String,
    /// The page confirming a new contact e-mail; `?token=…` is appended.
    pub confirm_email_url: String,
    /// The page cancelling a scheduled support reset of the second factor
    /// ("this was not me"); `?token=…` is appended.
    pub factor_reset_cancel_url: String,
    pub poll_interval_ms: u64,
    /// Delivery attempts before a message is marked failed (a permanent
    /// 5xx rejection fails it at once).
    pub max_attempts: u32,
    pub smtp: SmtpConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("gardien-data"),
            database_url: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            shutdown_grace_secs: 20,
            request_timeout_secs: 30,
            max_concurrent_requests: 1024,
            max_message_bytes: 1024 * 1024,
            cors_allowed_origins: Vec::new(),
            metrics_addr: None,
            database: DatabaseConfig::default(),
            password: PasswordConfig::default(),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            reset: ResetConfig::default(),
            mail: MailConfig::default(),
            totp: TotpConfig::default(),
            key_rotation: KeyRotationConfig::default(),
            information_centre: InformationCentreConfig::default(),
            rate_limit: RateLimitConfig::default(),
            support: SupportConfig::default(),
            background: BackgroundConfig::default(),
            ignored_env: Vec::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout_secs: 5,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_chars: 15,
            max_chars: 256,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hashing_workers: 0,
            hashing_queue: 64,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            absolute_ttl_secs: 12 * 3600,
            idle_ttl_secs: 3600,
            cache_capacity: 100_000,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            max_backoff_secs: 15 * 60,
            max_failures: 100,
        }
    }
}

impl Default for ResetConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: 30 * 60,
            max_requests_per_hour: 5,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::File,
            dir: None,
            from_address: "security@gardien.localhost".into(),
            from_name: "gardien".into(),
            reset_url: "http://localhost:8080/password/reset".into(),
            information_centre_url: "http://localhost:8080/security".into(),
            help_url: "http://localhost:8080/help/password-suspended".into(),
            report_url: "http://localhost:8080/security/not-me".into(),
            confirm_email_url: "http://localhost:8080/security/confirm-email".into(),
            factor_reset_cancel_url: "http://localhost:8080/security/cancel-factor-reset".into(),
            poll_interval_ms: 500,
            max_attempts: 10,
            smtp: SmtpConfig::default(),
        }
    }
}

/// A configuration that could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // Unknown `GARDIEN_*` variables are set by others too (Kubernetes
        // gives every pod `GARDIEN_PORT`, `GARDIEN_SERVICE_HOST`… for a
        // Service named gardien): they are left out with a warning, while an
        // unknown key in the file stays an error.
        let mut ignored: Vec<String> = Vec::new();
        loop {
            let skip = ignored.clone();
            let env = Env::prefixed("GARDIEN_")
                .filter(move |key| {
                    let upper = key.as_str().to_ascii_uppercase();
                    !RESERVED_ENV
                        .iter()
                        .any(|reserved| upper.starts_with(reserved))
                        && !skip.contains(&upper)
                })
                .split("__");
            match figment.clone().merge(env).extract::<Config>() {
                Ok(mut config) => {
                    config.validate()?;
                    config.ignored_env =
                        ignored.iter().map(|key| format!("GARDIEN_{key}")).collect();
                    return Ok(config);
                }
                Err(error) => {
                    let unknown: Vec<String> = error
                        .clone()
                        .into_iter()
                        .filter_map(|error| unknown_env_key(&error))
                        .filter(|key| !ignored.contains(key))
                        .collect();
                    if unknown.is_empty() || ignored.len() > 256 {
                        return Err(ConfigError(describe(error)));
                    }
                    ignored.extend(unknown);
                }
            }
        }
    }

    /// Checks the values serde cannot, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("`{key}`: {why}")));
        if self.password.min_chars < 8 {
            return fail("password.min_chars", "must be at least 8");
        }
        if self.password.max_chars < 128 {
            return fail("password.max_chars", "must be at least 128");
        }
        if self.password.min_chars > self.password.max_chars {
            return fail("password.min_chars", "must not exceed password.max_chars");
        }
        if self.password.argon2_memory_kib < 19_456 {
            return fail("password.argon2_memory_kib", "must be at least 19456");
        }
        if self.password.argon2_iterations < 2 {
            return fail("password.argon2_iterations", "must be at least 2");
        }
        if self.password.argon2_parallelism == 0 {
            return fail("password.argon2_parallelism", "must be at least 1");
        }
        if self.background.workers == 0
            || self.background.workers >= self.database.max_connections as usize
        {
            return fail(
                "background.workers",
                "must be at least 1 and less than database.max_connections",
            );
        }
        if self.background.queue_capacity == 0 {
            return fail("background.queue_capacity", "must be at least 1");
        }
        if self.background.rescan_ms < 10 {
            return fail("background.rescan_ms", "must be at least 10");
        }
        if self.session.idle_ttl_secs == 0 || self.session.absolute_ttl_secs == 0 {
            return fail("session", "lifetimes must be positive");
        }
        if self.session.idle_ttl_secs > self.session.absolute_ttl_secs {
            return fail(
                "session.idle_ttl_secs",
                "must not exceed session.absolute_ttl_secs",
            );
        }
        if self.login.max_failures == 0 || self.login.max_failures > 100 {
            return fail("login.max_failures", "must be between 1 and 100");
        }
        if self.login.free_failures >= self.login.max_failures {
            return fail("login.free_failures", "must be below login.max_failures");
        }
        if self.reset.token_ttl_secs == 0 || self.reset.token_ttl_secs > 3600 {
            return fail("reset.token_ttl_secs", "must be between 1 and 3600");
        }
        if self.totp.issuer.trim().is_empty() || self.totp.issuer.contains(':') {
            return fail("totp.issuer", "must be non-empty and contain no ':'");
        }
        self.validate_sealing_keys()?;
        self.key_rotation.validate().map_err(ConfigError)?;
        if let Some(unknown) = self
            .information_centre
            .suspend_on_dispute
            .iter()
            .find(|kind| crate::kinds::EventKind::parse(kind).is_none())
        {
            return fail(
                "information_centre.suspend_on_dispute",
                &format!("{unknown:?} is not an event kind"),
            );
        }
        for origin in &self.cors_allowed_origins {
            if http::HeaderValue::from_str(origin).is_err()
                || !(origin.starts_with("https://") || origin.starts_with("http://"))
            {
                return fail(
                    "cors_allowed_origins",
                    &format!("{origin:?} is not an http(s) origin"),
                );
            }
        }
        if self.max_concurrent_requests == 0 {
            return fail("max_concurrent_requests", "must be at least 1");
        }
        if self.request_timeout_secs == 0 {
            return fail("request_timeout_secs", "must be at least 1");
        }
        self.rate_limit.validate().map_err(ConfigError)?;
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return fail("database_url", "must start with sqlite: or postgres://");
            }
        }
        for (key, value) in [
            ("mail.reset_url", &self.mail.reset_url),
            (
                "mail.information_centre_url",
                &self.mail.information_centre_url,
            ),
            ("mail.help_url", &self.mail.help_url),
            ("mail.report_url", &self.mail.report_url),
            ("mail.confirm_email_url", &self.mail.confirm_email_url),
            (
                "mail.factor_reset_cancel_url",
                &self.mail.factor_reset_cancel_url,
            ),
        ] {
            if !(value.starts_with("https://") || value.starts_with("http://")) {
                return fail(key, "must be an http(s) URL");
            }
        }
        if self.support.factor_reset_delay_secs == 0 {
            return fail("support.factor_reset_delay_secs", "must be at least 1");
        }
        if self.support.factor_reset_poll_ms < 10 {
            return fail("support.factor_reset_poll_ms", "must be at least 10");
        }
        if self.mail.max_attempts == 0 || self.mail.max_attempts > 100 {
            return fail("mail.max_attempts", "must be between 1 and 100");
        }
        if self.mail.transport == MailTransportKind::Smtp {
            let smtp = &self.mail.smtp;
            if smtp.host.trim().is_empty() {
                return fail("mail.smtp.host", "must not be empty");
            }
            if smtp.tls == SmtpTls::None && !smtp.host_is_loopback() {
                return fail(
                    "mail.smtp.tls",
                    "\"none\" is allowed only for a loopback host (localhost, 127.0.0.1, ::1)",
                );
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return fail("mail.smtp.username", "username and password go together");
            }
            // Six round trips at most must fit in the outbox lease (5 min).
            if smtp.timeout_secs == 0 || smtp.timeout_secs > 40 {
                return fail("mail.smtp.timeout_secs", "must be between 1 and 40");
            }
            if smtp.pool_max_size == 0 {
                return fail("mail.smtp.pool_max_size", "must be at least 1");
            }
        }
        Ok(())
    }

    /// Every configured sealing key is base64 of 32 bytes, listed once; the
    /// message names the key by its place, never by its value.
    fn validate_sealing_keys(&self) -> Result<(), ConfigError> {
        use crate::crypto::secretbox::Sealer;
        let fail = |key: String, why: String| Err(ConfigError(format!("`{key}`: {why}")));
        if self.totp.encryption_key.is_some() && !self.totp.encryption_keys.is_empty() {
            return fail(
                "totp.encryption_keys".into(),
                "set either totp.encryption_key or totp.encryption_keys, not both".into(),
            );
        }
        if let Some(key) = &self.totp.encryption_key {
            if let Err(error) = Sealer::from_base64(key.expose_secret()) {
                return fail("totp.encryption_key".into(), error.to_string());
            }
        }
        let mut keys = Vec::new();
        for (i, key) in self.totp.encryption_keys.iter().enumerate() {
            match Sealer::from_base64(key.expose_secret()) {
                Ok(sealer) => keys.push(sealer),
                Err(error) => return fail(format!("totp.encryption_keys[{i}]"), error.to_string()),
            }
        }
        if !keys.is_empty() {
            if let Err(error) = Sealer::ring(keys) {
                return fail("totp.encryption_keys".into(), error.to_string());
            }
        }
        Ok(())
    }

    /// The database URL in effect: the configured one, or SQLite in `data_dir`.
    pub fn effective_database_url(&self) -> SecretString {
        match &self.database_url {
            Some(url) => url.clone(),
            None => SecretString::from(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("gardien.db").display()
            )),
        }
    }

    pub fn totp_key_file(&self) -> PathBuf {
        self.totp
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("totp.key"))
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.mail
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mail"))
    }

    pub fn hashing_workers(&self) -> usize {
        match self.password.hashing_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// The variable (after `GARDIEN_`, upper case, `__` between levels) of an
/// unknown key that came from the environment; `None` for any other error.
fn unknown_env_key(error: &figment::Error) -> Option<String> {
    let figment::error::Kind::UnknownField(field, _) = &error.kind else {
        return None;
    };
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|metadata| metadata.name.contains("environment"));
    if !from_env {
        return None;
    }
    let mut path = error.path.clone();
    if path.last() != Some(field) {
        path.push(field.clone());
    }
    Some(path.join("__").to_ascii_uppercase())
}

/// figment's message, with the key path spelled as in the file
/// (`password.min_chars`) and the environment variable that sets it.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let mut message = error.kind.to_string();
            if !key.is_empty() {
                let env = format!("GARDIEN_{}", error.path.join("__").to_ascii_uppercase());
                message = format!("`{key}` (or {env}): {message}");
            }
            if let Some(source) = &error.metadata.as_ref().and_then(|m| m.source.clone()) {
                message.push_str(&format!(" (from {source})"));
            }
            message
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in(jail: &mut Jail, toml: &str) -> Result<Config, ConfigError> {
        jail.create_file("gardien.toml", toml).expect("write file");
        Config::load(Some(std::path::Path::new("gardien.toml")))
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        Jail::expect_with(|_| {
            let config = Config::load(None).expect("defaults load");
            assert_eq!(config.listen_addr.to_string(), "127.0.0.1:50051");
            assert_eq!(config.data_dir, PathBuf::from("gardien-data"));
            assert!(config
                .effective_database_url()
                .expose_secret()
                .starts_with("sqlite://gardien-data/gardien.db"));
            assert_eq!(config.password.min_chars, 15);
            assert_eq!(config.session.idle_ttl_secs, 3600);
            Ok(())
        });
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.set_env("GARDIEN_LISTEN_ADDR", "127.0.0.1:6000");
            jail.set_env("GARDIEN_PASSWORD__MIN_CHARS", "20");
            jail.set_env("GARDIEN_TEST_POSTGRES_URL", "postgres://ignored");
            let config = load_in(
                jail,
                "listen_addr = \"0.0.0.0:7000\"\ndata_dir = \"/srv/gardien\"\n[password]\nmin_chars = 16\nmax_chars = 300\n",
            )
            .expect("loads");
            assert_eq!(config.listen_addr.to_string(), "127.0.0.1:6000");
            assert_eq!(config.data_dir, PathBuf::from("/srv/gardien"));
            assert_eq!(config.password.min_chars, 20);
            assert_eq!(config.password.max_chars, 300);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        Jail::expect_with(|jail| {
            let error = load_in(jail, "listen_adr = \"127.0.0.1:1\"\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("listen_adr"), "{error}");
            let error = load_in(jail, "[password]\nminimum = 3\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("minimum"), "{error}");
            Ok(())
        });
    }

    /// Issue 23 item 3: a Kubernetes Service named gardien gives every pod
    /// of its namespace `GARDIEN_PORT=tcp://…` and the like, which stopped
    /// the server. Unknown variables are now left out and named; known ones
    /// still apply, and a bad value of a known one is still refused.
    #[test]
    fn unknown_environment_variables_are_ignored_and_named() {
        Jail::expect_with(|jail| {
            jail.set_env("GARDIEN_PORT", "tcp://10.0.0.1:50051");
            jail.set_env("GARDIEN_SERVICE_HOST", "10.0.0.1");
            jail.set_env("GARDIEN_PORT_50051_TCP_ADDR", "10.0.0.1");
            jail.set_env("GARDIEN_PASSWORD__MINIMUM", "3");
            jail.set_env("GARDIEN_PASSWORD__MIN_CHARS", "20");
            let config = Config::load(None).expect("loads");
            assert_eq!(config.password.min_chars, 20);
            let mut ignored = config.ignored_env.clone();
            ignored.sort();
            assert_eq!(
                ignored,
                [
                    "GARDIEN_PASSWORD__MINIMUM",
                    "GARDIEN_PORT",
                    "GARDIEN_PORT_50051_TCP_ADDR",
                    "GARDIEN_SERVICE_HOST"
                ]
            );
            // The file's unknown keys stay errors, with such variables set.
            let error = load_in(jail, "listen_adr = \"127.0.0.1:1\"\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("listen_adr"), "{error}");
            jail.set_env("GARDIEN_SESSION__IDLE_TTL_SECS", "soon");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.contains("session.idle_ttl_secs"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_key() {
        Jail::expect_with(|jail| {
            let error = load_in(jail, "listen_addr = \"not an address\"\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("listen_addr"), "{error}");
            let error = load_in(jail, "[password]\nmin_chars = 4\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("password.min_chars"), "{error}");
            let error = load_in(jail, "[password]\nargon2_memory_kib = 1024\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("password.argon2_memory_kib"), "{error}");
            jail.set_env("GARDIEN_SESSION__IDLE_TTL_SECS", "soon");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.contains("session.idle_ttl_secs"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn the_sample_configuration_is_valid_and_matches_the_defaults() {
        Jail::expect_with(|_| {
            let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/gardien.toml");
            let config = Config::load(Some(std::path::Path::new(sample))).expect("sample loads");
            let defaults = Config::default();
            assert_eq!(config.listen_addr, defaults.listen_addr);
            assert_eq!(config.password.min_chars, defaults.password.min_chars);
            assert_eq!(
                config.rate_limit.credential.per_address.burst,
                defaults.rate_limit.credential.per_address.burst
            );
            assert_eq!(
                config.information_centre.suspend_on_dispute,
                defaults.information_centre.suspend_on_dispute
            );
            assert_eq!(config.key_rotation.online, defaults.key_rotation.online);
            assert_eq!(
                config.key_rotation.batch_size,
                defaults.key_rotation.batch_size
            );
            assert_eq!(config.key_rotation.pause_ms, defaults.key_rotation.pause_ms);
            assert_eq!(
                config.key_rotation.rescan_secs,
                defaults.key_rotation.rescan_secs
            );
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "GARDIEN_DATABASE_URL",
                "postgres://gardien:hunter2-secret@db/gardien",
            );
            let config = Config::load(None).expect("loads");
            assert!(!format!("{config:?}").contains("hunter2-secret"));
            Ok(())
        });
    }

    #[test]
    fn rate_limit_keys_override_one_by_one_and_bad_values_are_named() {
        Jail::expect_with(|jail| {
            jail.set_env("GARDIEN_RATE_LIMIT__CREDENTIAL__PER_ADDRESS__BURST", "3");
            let config = load_in(
                jail,
                "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\n",
            )
            .expect("loads");
            let credential = config.rate_limit.credential;
            assert_eq!(credential.per_address.burst, 3);
            assert_eq!(
                credential.per_address.per_minute,
                RateLimitConfig::default().credential.per_address.per_minute
            );
            assert!(!credential.fail_open);
            assert_eq!(config.rate_limit.trusted_networks().len(), 2);

            let error = load_in(jail, "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/33\"]\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("rate_limit.trusted_proxies"), "{error}");
            let error = load_in(jail, "[rate_limit]\nbackend = \"redis\"\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("rate_limit.redis_url"), "{error}");
            let error = load_in(jail, "[rate_limit.read.per_address]\nbrust = 3\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("brust"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn smtp_settings_load_and_plain_text_is_refused_off_loopback() {
        Jail::expect_with(|jail| {
            jail.set_env("GARDIEN_MAIL__SMTP__PASSWORD", "s3cret");
            let config = load_in(
                jail,
                "[mail]\ntransport = \"smtp\"\nmax_attempts = 5\n[mail.smtp]\nhost = \"smtp.example.com\"\ntls = \"implicit\"\nusername = \"gardien\"\n",
            )
            .expect("loads");
            assert_eq!(config.mail.transport, MailTransportKind::Smtp);
            assert_eq!(config.mail.max_attempts, 5);
            assert_eq!(config.mail.smtp.effective_port(), 465);
            assert!(!format!("{:?}", config.mail.smtp).contains("s3cret"));

            let error = load_in(
                jail,
                "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"smtp.example.com\"\ntls = \"none\"\n",
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains("mail.smtp.tls"), "{error}");
            jail.clear_env();
            let config = load_in(
                jail,
                "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\n",
            )
            .expect("plain text towards loopback loads");
            assert_eq!(config.mail.smtp.effective_port(), 2525);
            let error = load_in(jail, "[mail]\nmax_attempts = 0\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("mail.max_attempts"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn sealing_keys_load_as_a_list_and_a_bad_one_is_named_by_its_place_only() {
        use base64::{engine::general_purpose::STANDARD, Engine};
        let (new, old) = (STANDARD.encode([1u8; 32]), STANDARD.encode([2u8; 32]));
        Jail::expect_with(|jail| {
            jail.set_env(
                "GARDIEN_TOTP__ENCRYPTION_KEYS",
                format!("[\"{new}\", \"{old}\"]"),
            );
            let config = Config::load(None).expect("loads");
            let keys: Vec<_> = config
                .totp
                .encryption_keys
                .iter()
                .map(|k| k.expose_secret().to_string())
                .collect();
            assert_eq!(keys, [new.clone(), old.clone()]);
            assert!(!format!("{config:?}").contains(&new));

            let short = STANDARD.encode([3u8; 16]);
            for (keys, named) in [
                (
                    format!("[\"{new}\", \"{short}\"]"),
                    "totp.encryption_keys[1]",
                ),
                (format!("[\"{new}\", \"{new}\"]"), "totp.encryption_keys"),
            ] {
                jail.set_env("GARDIEN_TOTP__ENCRYPTION_KEYS", keys);
                let error = Config::load(None).unwrap_err().to_string();
                assert!(error.contains(named), "{error}");
                assert!(!error.contains(&new) && !error.contains(&short), "{error}");
            }

            jail.set_env("GARDIEN_TOTP__ENCRYPTION_KEYS", format!("[\"{new}\"]"));
            jail.set_env("GARDIEN_TOTP__ENCRYPTION_KEY", &old);
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.contains("not both"), "{error}");
            jail.clear_env();
            let error = load_in(jail, "[key_rotation]\nbatch_size = 0\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("key_rotation.batch_size"), "{error}");
            Ok(())
        });
    }
}

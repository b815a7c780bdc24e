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
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

mod key_rotation;
mod mail;
mod passkeys;
mod rate_limit;
mod sections;
#[cfg(test)]
mod tests;
mod tls;
mod traces;
mod validate;

pub use key_rotation::KeyRotationConfig;
pub use mail::{MailConfig, MailTransportKind, SmtpConfig, SmtpTls};
pub use passkeys::PasskeyConfig;
pub use rate_limit::{ClassLimits, Limit, RateLimitBackend, RateLimitConfig};
pub use sections::{
    BackgroundConfig, DatabaseConfig, InformationCentreConfig, LoginConfig, PasswordConfig,
    ResetConfig, SessionConfig, SupportConfig, TotpConfig,
};
pub use tls::TlsConfig;
pub use traces::TracesConfig;

/// Environment variables with this prefix belong to the test suite, not to
/// the server's configuration.
const RESERVED_ENV: &[&str] = &["TEST_", "CONFIG"];

/// The log filter's variable: it overrides `log_level`. `GARDIEN_LOG_LEVEL`,
/// which the generic mapping would read as the same key, is refused.
const LOG_ENV: &str = "GARDIEN_LOG";
const LOG_LEVEL_ENV: &str = "GARDIEN_LOG_LEVEL";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen_addr: SocketAddr,
    /// Where the embedded database, keys and e-mail files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default a SQLite file in `data_dir`.
    #[serde(serialize_with = "redacted")]
    pub database_url: Option<SecretString>,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `gardien=debug,info`; the
    /// `GARDIEN_LOG` variable overrides it.
    pub log_level: String,
    /// Seconds that in-flight calls get to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Deadline of one RPC in seconds (a shorter `grpc-timeout` wins).
    pub request_timeout_secs: u64,
    /// RPCs served at once; beyond it calls are shed with `UNAVAILABLE`.
    pub max_concurrent_requests: usize,
    /// Connections to the gRPC listener open at once; beyond it the
    /// listener waits for one to close before accepting another.
    pub max_connections: usize,
    /// Connections open at once from one address, an IPv6 one counted by
    /// its /64 (trusted proxies, see `rate_limit.trusted_proxies`,
    /// excepted); more are closed at once.
    pub max_connections_per_address: usize,
    /// A connection over which no byte has gone either way for this many
    /// seconds is closed (clients reconnect as they need).
    pub connection_idle_secs: u64,
    /// Largest decoded request message, in bytes.
    pub max_message_bytes: usize,
    /// Where Prometheus scrapes `/metrics` (HTTP); off when unset. Keep it on
    /// loopback or a private network.
    pub metrics_addr: Option<SocketAddr>,
    /// Browser origins allowed to call gRPC-Web (CORS), e.g.
    /// `["https://account.example.com"]`; empty allows none (same-origin and
    /// non-browser clients are unaffected).
    pub cors_allowed_origins: Vec<String>,
    pub tls: TlsConfig,
    pub traces: TracesConfig,
    pub database: DatabaseConfig,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub reset: ResetConfig,
    pub mail: MailConfig,
    pub totp: TotpConfig,
    pub passkeys: PasskeyConfig,
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
            max_connections: 4096,
            max_connections_per_address: 256,
            connection_idle_secs: 300,
            max_message_bytes: 1024 * 1024,
            cors_allowed_origins: Vec::new(),
            metrics_addr: None,
            tls: TlsConfig::default(),
            traces: TracesConfig::default(),
            database: DatabaseConfig::default(),
            password: PasswordConfig::default(),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            reset: ResetConfig::default(),
            mail: MailConfig::default(),
            totp: TotpConfig::default(),
            passkeys: PasskeyConfig::default(),
            key_rotation: KeyRotationConfig::default(),
            information_centre: InformationCentreConfig::default(),
            rate_limit: RateLimitConfig::default(),
            support: SupportConfig::default(),
            background: BackgroundConfig::default(),
            ignored_env: Vec::new(),
        }
    }
}

/// What a secret serialises as: never its value.
const REDACTED: &str = "[REDACTED]";

fn redacted<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_some(REDACTED),
        None => serializer.serialize_none(),
    }
}

fn redacted_list<S: serde::Serializer>(
    secrets: &[SecretString],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(secrets.iter().map(|_| REDACTED))
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
        if std::env::var_os(LOG_LEVEL_ENV).is_some() {
            return Err(ConfigError(format!(
                "{LOG_LEVEL_ENV} is not read: the log filter's variable is {LOG_ENV} \
                 (it overrides `log_level`)"
            )));
        }
        let log_filter = match std::env::var(LOG_ENV) {
            Ok(filter) => {
                validate::check_log_filter(&filter).map_err(|why| {
                    ConfigError(format!("{LOG_ENV} (overrides `log_level`): {why}"))
                })?;
                Some(filter)
            }
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ConfigError(format!("{LOG_ENV}: not valid UTF-8")))
            }
        };
        let own = |upper: &str| format!("GARDIEN_{upper}") == LOG_ENV;
        let mut ignored: Vec<String> = Vec::new();
        loop {
            let skip = ignored.clone();
            let env = Env::prefixed("GARDIEN_")
                .filter(move |key| {
                    let upper = key.as_str().to_ascii_uppercase();
                    !RESERVED_ENV
                        .iter()
                        .any(|reserved| upper.starts_with(reserved))
                        && !own(&upper)
                        && !skip.contains(&upper)
                })
                .split("__");
            match figment.clone().merge(env).extract::<Config>() {
                Ok(mut config) => {
                    if let Some(filter) = &log_filter {
                        config.log_level = filter.clone();
                    }
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

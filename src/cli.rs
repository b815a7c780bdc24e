//! The command line: `serve`, `migrate`, `credential …`, `account …`,
//! `outbox …`, `keys …`. Every
//! command reads the same configuration as `serve`.

mod account;
mod keys;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::{
    clock::{Clock, SystemClock},
    config::{Config, LogFormat},
    domain::{credentials, principal::Role},
    server,
    store::db,
    telemetry, Application,
};

pub use account::AccountCommand;

#[derive(Debug, Parser)]
#[command(name = "gardien", version, about = "gRPC account-security backend")]
pub struct Cli {
    /// A TOML configuration file (defaults < file < GARDIEN_* variables).
    #[arg(long, global = true, env = "GARDIEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format; overrides `log_format` from the configuration.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration as `serve` would before touching the
    /// database (keys, key file, log filter, Redis URL, mail transport) and
    /// print the effective values (secrets masked); writes nothing.
    CheckConfig,
    /// Ask the running server's grpc.health.v1 service; exit 0 when SERVING
    /// (for container health checks). With `[tls]` set it speaks TLS and
    /// checks the server's certificate.
    HealthCheck {
        /// PEM certificates trusted for the server's certificate; default
        /// those of `tls.cert_file` (its own chain, self-signed included).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// The name the server's certificate is checked against.
        #[arg(long, default_value = "localhost")]
        server_name: String,
    },
    /// Manage credentials of services, support agents and the security team.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Manage customer accounts by hand.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Inspect the e-mail outbox and requeue failed messages.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Sealing keys: which key seals how many values, and rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Count the sealed values under each key (and legacy values, sealed
    /// before key ids existed).
    Status,
    /// Re-seal every value under the sealing key (the first of
    /// `totp.encryption_keys`), in batches, while the service runs.
    Rotate {
        /// Values per transaction; default `key_rotation.batch_size`.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: Option<u64>,
        /// Pause between batches; default `key_rotation.pause_ms`.
        #[arg(long)]
        pause_ms: Option<u64>,
    },
    /// Print a new random key (base64, alone on stdout) and its id.
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List messages (never their bodies), oldest first; by default every
    /// message not yet sent.
    List {
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::mail::queue::STATUSES))]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Put failed messages back in the queue, due now, with a fresh budget
    /// of attempts.
    Retry {
        /// The message to requeue.
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        id: Option<uuid::Uuid>,
        /// Requeue every failed message.
        #[arg(long)]
        all_failed: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Create a credential; its secret is printed once, alone on stdout.
    Create {
        #[arg(long, value_parser = parse_credential_role)]
        role: Role,
        #[arg(long)]
        name: String,
        /// Bind it to a client certificate identity: a URI such as a SPIFFE
        /// ID (the certificate's URI names), `dns:NAME` (its DNS names) or
        /// `cn:NAME` (its only subject common name). Presented without that
        /// certificate (mutual TLS, `tls.client_ca_file`), the secret is
        /// refused.
        #[arg(long)]
        bind_certificate: Option<String>,
        /// Who creates it, kept on the credential; default $USER.
        #[arg(long, env = "USER", value_parser = account::parse_operator)]
        operator: Option<String>,
        /// When a credential of this name exists (with this role), give it
        /// the new secret instead of failing: its old secret is refused
        /// from the next call on, on every instance.
        #[arg(long)]
        replace: bool,
    },
    /// List credentials (never their secrets).
    List,
    /// Revoke a credential by name; it is refused from the next call on.
    Revoke {
        #[arg(long)]
        name: String,
        /// Who revokes it, kept on the credential; default $USER.
        #[arg(long, env = "USER", value_parser = account::parse_operator)]
        operator: Option<String>,
    },
}

fn parse_credential_role(value: &str) -> Result<Role, String> {
    match Role::parse(value) {
        Some(role @ (Role::Service | Role::Agent | Role::Security)) => Ok(role),
        _ => Err("must be one of: service, agent, security".into()),
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(format) = self.log_format {
            config.log_format = format;
        }
        if let Command::CheckConfig = self.command {
            // What serve checks before it touches the database, without
            // touching it (nor creating the key file).
            server::preflight(&config)?;
            println!("{config:#?}");
            for variable in &config.ignored_env {
                eprintln!("warning: {variable} sets no configuration key; ignored");
            }
            eprintln!("configuration is valid");
            return Ok(());
        }
        // Spans are exported by the server only; kept until it has stopped,
        // then flushed.
        let _traces = match self.command {
            Command::Serve => {
                telemetry::init_traced(config.log_format, &config.log_level, &config.traces)?
            }
            _ => {
                telemetry::init(config.log_format, &config.log_level)?;
                None
            }
        };
        for variable in &config.ignored_env {
            tracing::warn!(%variable, "environment variable sets no configuration key; ignored");
        }
        match self.command {
            Command::CheckConfig => Ok(()),
            Command::HealthCheck {
                ca_file,
                server_name,
            } => health_check(&config, ca_file.as_deref(), &server_name).await,
            Command::Serve => serve(config).await,
            Command::Migrate => {
                let db = db::connect(&config).await?;
                let applied = db::migrate(&db).await?;
                eprintln!("{applied} migration(s) applied");
                Ok(())
            }
            Command::Credential(command) => credential(config, command).await,
            Command::Account(command) => account::run(config, command).await,
            Command::Outbox(command) => outbox(config, command).await,
            Command::Keys(command) => keys::run(config, command).await,
        }
    }
}

async fn health_check(
    config: &Config,
    ca_file: Option<&std::path::Path>,
    server_name: &str,
) -> anyhow::Result<()> {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    let mut addr = config.listen_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let ca_file_given = ca_file;
    let endpoint = match ca_file.or(config.tls.cert_file.as_deref()) {
        None => tonic::transport::Channel::from_shared(format!("http://{addr}"))?,
        Some(ca_file) => {
            let setting = match ca_file_given {
                Some(_) => "--ca-file",
                None => "`tls.cert_file`",
            };
            let ca = std::fs::read(ca_file)
                .map_err(|error| anyhow::anyhow!("{setting} {}: {error}", ca_file.display()))?;
            {
                use rustls::pki_types::{pem::PemObject, CertificateDer};
                if !CertificateDer::pem_slice_iter(&ca).any(|cert| cert.is_ok()) {
                    anyhow::bail!("{setting} {}: no PEM certificate in it", ca_file.display());
                }
            }
            tonic::transport::Channel::from_shared(format!("https://{addr}"))?.tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                    .domain_name(server_name),
            )?
        }
    };
    // One bound for the whole check: a server that accepts the connection
    // but never finishes its TLS handshake or answer fails it too.
    let check = async {
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(3))
            .timeout(std::time::Duration::from_secs(3))
            .connect()
            .await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        anyhow::Ok(answer.into_inner().status())
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), check)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {addr} within 5 s"))?
        .map_err(|error| match (ca_file, &config.tls.cert_file) {
            (None, Some(cert_file)) => error.context(format!(
                "trusting the certificates of `tls.cert_file` {}: when it holds the \
                 server's certificate without its issuer, pass --ca-file",
                cert_file.display()
            )),
            _ => error,
        })?;
    anyhow::ensure!(status == ServingStatus::Serving, "not serving: {status:?}");
    println!("SERVING");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let database = describe_database(&config);
    let mail = crate::mail::transport::Transport::describe(&config.mail, &config.mail_dir());
    let data_dir = config.data_dir.display().to_string();
    let app = Application::build(config).await?;
    tracing::info!(data_dir = %data_dir, "data directory");
    tracing::info!(database = %database, "database");
    tracing::info!(mail = %mail, "e-mail goes to");
    app.run().await
}

/// The database in effect, without any password in its URL: the user
/// information is masked and the query left out (it can carry
/// `password=`, `sslpassword=` and the like).
fn describe_database(config: &Config) -> String {
    let url = config.effective_database_url();
    let url = url.expose_secret();
    if db::is_sqlite(url) {
        return url.to_string();
    }
    let (base, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?…"),
        None => (url, ""),
    };
    match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}{query}", &base[..scheme], &base[at + 1..])
        }
        _ => format!("{base}{query}"),
    }
}

async fn credential(config: Config, command: CredentialCommand) -> anyhow::Result<()> {
    let db = db::connect(&config).await?;
    db::migrate(&db).await?;
    let now = SystemClock.now_ms();
    match command {
        CredentialCommand::Create {
            role,
            name,
            bind_certificate,
            operator,
            replace,
        } => {
            let (created, secret, replaced) = credentials::create_or_replace(
                &db,
                now,
                &name,
                role,
                bind_certificate.as_deref(),
                operator.as_deref(),
                replace,
            )
            .await
            .map_err(|error| match error {
                crate::domain::error::Error::AlreadyExists { .. } => anyhow::anyhow!(
                    "a credential named {name:?} exists already; `credential create --replace` \
                     gives it a new secret (the old one stops working)"
                ),
                other => other.into(),
            })?;
            tracing::info!(
                credential = %created.name,
                role = %created.role,
                operator = operator.as_deref().unwrap_or("-"),
                replaced,
                "credential created"
            );
            let what = if replaced {
                "replaced the secret of"
            } else {
                "created"
            };
            let bound = created
                .bound_certificate
                .as_ref()
                .map(|identity| format!(", bound to the client certificate {identity:?}"))
                .unwrap_or_default();
            eprintln!(
                "{what} {} credential {:?}{bound}; the secret below is shown only once:",
                created.role, created.name
            );
            println!("{}", secret.expose_secret());
        }
        CredentialCommand::List => {
            println!(
                "{:<36}  {:<9}  {:<24}  {:<8}  {:<16}  {:<16}  client certificate",
                "id", "role", "name", "status", "created by", "revoked by"
            );
            for c in credentials::list(&db).await? {
                let status = if c.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let bound = c.bound_certificate.as_deref().unwrap_or("-");
                let created_by = c.created_by.as_deref().unwrap_or("-");
                let revoked_by = match (&c.revoked_at, c.revoked_by.as_deref()) {
                    (None, _) => "",
                    (Some(_), by) => by.unwrap_or("-"),
                };
                println!(
                    "{:<36}  {:<9}  {:<24}  {status:<8}  {created_by:<16}  {revoked_by:<16}  {bound}",
                    c.id, c.role, c.name
                );
            }
        }
        CredentialCommand::Revoke { name, operator } => {
            let revoked = credentials::revoke(&db, now, &name, operator.as_deref()).await?;
            if revoked.revoked_at == Some(now) {
                tracing::info!(
                    credential = %revoked.name,
                    operator = operator.as_deref().unwrap_or("-"),
                    "credential revoked"
                );
                eprintln!("credential {:?} revoked", revoked.name);
            } else {
                eprintln!(
                    "credential {:?} was already revoked (by {}); nothing changed",
                    revoked.name,
                    revoked.revoked_by.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

async fn outbox(config: Config, command: OutboxCommand) -> anyhow::Result<()> {
    use crate::mail::queue;
    let db = db::connect(&config).await?;
    db::migrate(&db).await?;
    match command {
        OutboxCommand::List { status, limit } => {
            println!(
                "{:<36}  {:<8}  {:>8}  {:<26}  {:<32}  last error",
                "id", "status", "attempts", "kind", "recipient"
            );
            for entry in queue::list(&db, status.as_deref(), limit).await? {
                println!(
                    "{:<36}  {:<8}  {:>8}  {:<26}  {:<32}  {}",
                    entry.id,
                    entry.status,
                    entry.attempts,
                    entry.kind,
                    entry.recipient.escape_debug(),
                    entry.last_error.as_deref().unwrap_or("").escape_debug()
                );
            }
        }
        OutboxCommand::Retry { id, all_failed } => {
            let target = if all_failed { None } else { id };
            let requeued = queue::retry(&db, SystemClock.now_ms(), target).await?;
            if let (Some(id), 0) = (target, requeued) {
                anyhow::bail!("no failed message with id {id}");
            }
            eprintln!("{requeued} message(s) requeued");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::describe_database;
    use crate::config::Config;

    fn described(url: &str) -> String {
        describe_database(&Config {
            database_url: Some(SecretString::from(url.to_string())),
            ..Config::default()
        })
    }

    #[test]
    fn the_database_is_described_without_any_password() {
        assert_eq!(
            described("postgres://app:pa55@db:5432/gardien"),
            "postgres://***@db:5432/gardien"
        );
        let query = described("postgres://db:5432/gardien?user=app&password=pa55");
        assert_eq!(query, "postgres://db:5432/gardien?…");
        // An '@' in the query is not taken for the user information's.
        let both = described("postgres://app:pa55@db/gardien?sslpassword=x@y");
        assert_eq!(both, "postgres://***@db/gardien?…");
        assert_eq!(described("postgres://db/gardien"), "postgres://db/gardien");
    }
}

//! Delivery of a rendered message: to an SMTP relay (pooled connections,
//! reused across a burst), to a folder of `.eml` files (the embedded
//! default, so a person reads the reset link from disk) or to the log
//! (metadata only, never the body).

use std::{path::PathBuf, time::Duration};

use lettre::{
    message::{
        header::{ContentTransferEncoding, ContentType},
        Body, Mailbox, Message, MultiPart, SinglePart,
    },
    transport::smtp::{authentication::Credentials, PoolConfig},
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
};
use secrecy::ExposeSecret;

use crate::{
    config::{MailConfig, MailTransportKind, SmtpConfig, SmtpTls},
    entity::outbox,
};

#[derive(Clone)]
pub enum Transport {
    File(PathBuf),
    Log,
    /// Cheap to clone: clones share one connection pool.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::File(dir) => f.debug_tuple("File").field(dir).finish(),
            Transport::Log => f.write_str("Log"),
            Transport::Smtp(_) => f.write_str("Smtp"),
        }
    }
}

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A 5xx rejection or a message that cannot be built: retrying cannot help.
    #[error("permanent: {0}")]
    Permanent(String),
    /// A 4xx answer, a connection error, a timeout: try again later.
    #[error("transient: {0}")]
    Transient(String),
}

impl DeliveryError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Permanent(_))
    }
}

impl From<lettre::transport::smtp::Error> for DeliveryError {
    fn from(error: lettre::transport::smtp::Error) -> Self {
        // lettre's Display carries the server's code and text, never the body.
        if error.is_permanent() {
            DeliveryError::Permanent(error.to_string())
        } else {
            DeliveryError::Transient(error.to_string())
        }
    }
}

impl Transport {
    pub fn from_config(config: &MailConfig, dir: PathBuf) -> anyhow::Result<Self> {
        Ok(match config.transport {
            MailTransportKind::File => Transport::File(dir),
            MailTransportKind::Log => Transport::Log,
            MailTransportKind::Smtp => Transport::Smtp(smtp_transport(&config.smtp)?),
        })
    }

    /// A short description for the start-up log line.
    pub fn describe(config: &MailConfig, dir: &std::path::Path) -> String {
        match config.transport {
            MailTransportKind::File => format!("files in {}", dir.display()),
            MailTransportKind::Log => "the log".to_string(),
            MailTransportKind::Smtp => format!(
                "SMTP {}:{} ({:?})",
                config.smtp.host,
                config.smtp.effective_port(),
                config.smtp.tls
            ),
        }
    }

    /// Delivers one outbox row. Delivering the same row twice to a file
    /// rewrites the same file, so a retry after a crash never makes a second
    /// copy; over SMTP the Message-ID is the row id, so a receiver can
    /// recognise a duplicate sent after a lost acknowledgement.
    pub async fn deliver(
        &self,
        config: &MailConfig,
        row: &outbox::Model,
    ) -> Result<(), DeliveryError> {
        match self {
            Transport::File(dir) => {
                let bytes = build_message(config, row)?.formatted();
                let io = |error: std::io::Error| DeliveryError::Transient(error.to_string());
                crate::store::files::create_private_dir_all(dir).map_err(io)?;
                let final_path = dir.join(format!("{}.eml", row.id));
                let temp_path = dir.join(format!(".{}.eml.tmp", row.id));
                crate::store::files::write_private(&temp_path, &bytes)
                    .await
                    .map_err(io)?;
                tokio::fs::rename(&temp_path, &final_path)
                    .await
                    .map_err(io)?;
                Ok(())
            }
            Transport::Log => {
                tracing::info!(
                    outbox_id = %row.id,
                    kind = %row.kind,
                    recipient = %crate::telemetry::pseudonym(&row.recipient),
                    "e-mail delivered to the log transport"
                );
                Ok(())
            }
            Transport::Smtp(smtp) => {
                let message = build_message(config, row)?;
                smtp.send(message).await?;
                Ok(())
            }
        }
    }
}

fn smtp_transport(config: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match config.tls {
        SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)?,
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)?,
        // Validation allows this only towards a loopback host.
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
    };
    let mut builder = builder
        .port(config.effective_port())
        .timeout(Some(Duration::from_secs(config.timeout_secs)))
        .pool_config(
            PoolConfig::new()
                .max_size(config.pool_max_size)
                .idle_timeout(Duration::from_secs(config.pool_idle_secs)),
        );
    if let (Some(username), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(
            username.clone(),
            password.expose_secret().to_string(),
        ));
    }
    Ok(builder.build())
}

/// The message of a row: multipart/alternative with the text part first
/// and the HTML part (when the row has one) second.
pub fn build_message(config: &MailConfig, row: &outbox::Model) -> Result<Message, DeliveryError> {
    let permanent = |what: &str, error: &dyn std::fmt::Display| {
        DeliveryError::Permanent(format!("{what}: {error}"))
    };
    let address = config
        .from_address
        .parse()
        .map_err(|e| permanent("sender address", &e))?;
    let from = Mailbox::new(Some(config.from_name.clone()), address);
    let to: Mailbox = row
        .recipient
        .parse()
        .map_err(|e| permanent("recipient address", &e))?;
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(row.subject.clone())
        .message_id(Some(format!("<{}@gardien>", row.id)));
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(eight_bit_body(&row.body_text));
    let message = match &row.body_html {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(eight_bit_body(html)),
            ),
        ),
        None => builder.singlepart(text),
    };
    message.map_err(|e| permanent("message", &e))
}

/// Text and HTML sent as 8bit so that a link is never split or escaped (lines
/// up to the 998 bytes RFC 5322 allows); anything else as lettre chooses.
fn eight_bit_body(text: &str) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if !crlf.contains('\0') && crlf.split("\r\n").all(|line| line.len() <= 998) {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text.to_string())
    }
}

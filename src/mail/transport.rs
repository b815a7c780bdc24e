//! Delivery of a rendered message: to a folder of `.eml` files (the
//! embedded default, so a person reads the reset link from disk) or to the
//! log (metadata only, never the body).

use std::path::PathBuf;

use lettre::message::{header::ContentTransferEncoding, Body, Mailbox, Message, SinglePart};

use crate::{
    config::{MailConfig, MailTransportKind},
    entity::outbox,
};

#[derive(Debug, Clone)]
pub enum Transport {
    File(PathBuf),
    Log,
}

impl Transport {
    pub fn from_config(config: &MailConfig, dir: PathBuf) -> Self {
        match config.transport {
            MailTransportKind::File => Transport::File(dir),
            MailTransportKind::Log => Transport::Log,
        }
    }

    /// Delivers one outbox row. Delivering the same row twice rewrites the
    /// same file, so a retry after a crash never makes a second copy.
    pub async fn deliver(&self, config: &MailConfig, row: &outbox::Model) -> anyhow::Result<()> {
        match self {
            Transport::File(dir) => {
                let bytes = build_message(config, row)?.formatted();
                tokio::fs::create_dir_all(dir).await?;
                let final_path = dir.join(format!("{}.eml", row.id));
                let temp_path = dir.join(format!(".{}.eml.tmp", row.id));
                tokio::fs::write(&temp_path, &bytes).await?;
                tokio::fs::rename(&temp_path, &final_path).await?;
                Ok(())
            }
            Transport::Log => {
                tracing::info!(
                    outbox_id = %row.id,
                    kind = %row.kind,
                    recipient = %row.recipient.escape_debug(),
                    "e-mail delivered to the log transport"
                );
                Ok(())
            }
        }
    }
}

pub fn build_message(config: &MailConfig, row: &outbox::Model) -> anyhow::Result<Message> {
    let from = Mailbox::new(Some(config.from_name.clone()), config.from_address.parse()?);
    let to: Mailbox = row.recipient.parse()?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(row.subject.clone())
        .message_id(Some(format!("<{}@gardien>", row.id)))
        .singlepart(
            SinglePart::builder()
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(text_body(&row.body_text)),
        )?;
    Ok(message)
}

/// Plain text sent as 8bit so that a link is never split or escaped (lines
/// up to the 998 bytes RFC 5322 allows); anything else as lettre chooses.
fn text_body(text: &str) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if !crlf.contains('\0') && crlf.split("\r\n").all(|line| line.len() <= 998) {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text.to_string())
    }
}

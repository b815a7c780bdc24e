//! The `[mail]` section: the transport, the SMTP relay and the sender.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 465 for `implicit`, 587 for `starttls`, 25 for `none`.
    pub port: Option<u16>,
    pub tls: SmtpTls,
    pub username: Option<String>,
    #[serde(serialize_with = "super::redacted")]
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

    /// Why `host` is not a bare host name, without ever quoting it: a
    /// password written into it would be printed by `check-config` and
    /// logged at start-up.
    pub(super) fn host_problem(&self) -> Option<&'static str> {
        if self.host.contains('@') {
            Some(
                "holds credentials (user@host); give the host alone and the \
                 credentials in mail.smtp.username and mail.smtp.password",
            )
        } else if self.host.contains("://") || self.host.contains('/') {
            Some(
                "must be a host name, not a URL; the port goes in mail.smtp.port, \
                 credentials in mail.smtp.username and mail.smtp.password",
            )
        } else if self.host.contains(':')
            && self
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::Ipv6Addr>()
                .is_err()
        {
            Some("must be a host name without a port; the port goes in mail.smtp.port")
        } else if self.host.chars().any(char::is_whitespace) {
            Some("must be a host name, without spaces")
        } else {
            None
        }
    }

    pub(super) fn host_is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

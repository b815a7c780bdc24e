//! The messages gardien sends, in English and French (the account's
//! locale). A message never holds a password or a TOTP secret; a reset
//! token appears only inside its link.

mod message;
#[cfg(test)]
mod tests;

pub use message::Mail;

use crate::{config::MailConfig, kinds::Locale};

/// A rendered message: subject, plain-text body and HTML body.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A template that failed to render: a defect (every kind and locale is
/// rendered by the unit tests), reported rather than sending a broken
/// message.
#[derive(Debug, thiserror::Error)]
#[error("e-mail template {kind}: {source}")]
pub struct RenderError {
    kind: &'static str,
    #[source]
    source: minijinja::Error,
}

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(
            (concat!($name, ".txt.j2"), include_str!(concat!("templates/", $name, ".txt.j2"))),
            (concat!($name, ".html.j2"), include_str!(concat!("templates/", $name, ".html.j2"))),
        )*]
    };
}

/// Every template, compiled into the binary: a layout per part and, per
/// kind, one text template (with the subject block) and one HTML template.
const TEMPLATES: &[(&str, &str)] = embedded![
    "layout",
    "suspension_notice",
    "reset_link",
    "login_recovery",
    "password_changed",
    "totp_enabled",
    "totp_disabled",
    "recovery_codes_regenerated",
    "recovery_code_used",
    "new_login",
    "email_change_requested",
    "confirm_email",
    "email_changed",
    "contact_details_changed",
    "dispute_received",
    "ticket_reply",
    "ticket_resolved",
    "factor_reset_scheduled",
    "passkey_added",
    "passkey_removed",
];

fn environment() -> Result<&'static minijinja::Environment<'static>, minijinja::Error> {
    static ENVIRONMENT: std::sync::OnceLock<minijinja::Environment<'static>> =
        std::sync::OnceLock::new();
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    let mut environment = minijinja::Environment::new();
    environment.set_trim_blocks(true);
    environment.set_lstrip_blocks(true);
    // A misspelt variable fails the unit tests instead of vanishing.
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // HTML templates escape every value (logins, addresses, ticket
    // subjects are the customer's); text templates escape nothing.
    environment.set_auto_escape_callback(|name| {
        if name.ends_with(".html.j2") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    // The default HTML escaping also turns `/` into `&#x2f;`, which mangles
    // every link for readers of the raw part; this escapes only what HTML
    // needs (`& < > " '`).
    environment.set_formatter(
        |out, state, value| match (state.auto_escape(), value.as_str()) {
            (minijinja::AutoEscape::Html, Some(text)) if !value.is_safe() => out
                .write_str(&escape_html(text))
                .map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure)),
            _ => minijinja::escape_formatter(out, state, value),
        },
    );
    for (name, source) in TEMPLATES {
        environment.add_template(name, source)?;
    }
    Ok(ENVIRONMENT.get_or_init(|| environment))
}

/// What the templates of `mail` see, besides `fr`, the links and
/// `report_link`. Tokens never go in here: only the links built from them.
fn values(mail: &Mail, links: &MailConfig) -> serde_json::Value {
    use serde_json::json;
    match mail {
        Mail::SuspensionNotice { login, reason } => {
            json!({ "login": login, "reason": reason.as_str() })
        }
        Mail::PasswordChanged { login, .. }
        | Mail::TotpEnabled { login, .. }
        | Mail::TotpDisabled { login, .. }
        | Mail::RecoveryCodesRegenerated { login } => json!({ "login": login }),
        Mail::ResetLink {
            login,
            token,
            valid_minutes,
        } => json!({
            "login": login,
            "valid_minutes": valid_minutes,
            "link": token_link(&links.reset_url, token),
        }),
        Mail::LoginRecovery { logins } => json!({ "logins": logins }),
        Mail::PasskeyAdded { login, name, .. } | Mail::PasskeyRemoved { login, name, .. } => {
            json!({ "login": login, "name": name })
        }
        Mail::RecoveryCodeUsed { login, remaining } => {
            json!({ "login": login, "remaining": remaining })
        }
        Mail::NewLogin { login, address, .. } => json!({ "login": login, "address": address }),
        Mail::EmailChangeRequested {
            login, new_email, ..
        }
        | Mail::EmailChanged {
            login, new_email, ..
        } => json!({ "login": login, "new_email": new_email }),
        Mail::ContactDetailsChanged {
            login,
            field,
            removed,
            ..
        } => json!({ "login": login, "field": field.as_str(), "removed": removed }),
        Mail::ConfirmEmail { login, token } => json!({
            "login": login,
            "link": token_link(&links.confirm_email_url, token),
        }),
        Mail::DisputeReceived { login, reference } => {
            json!({ "login": login, "reference": reference })
        }
        Mail::TicketReply { reference, subject } | Mail::TicketResolved { reference, subject } => {
            json!({ "reference": reference, "ticket_subject": subject })
        }
        Mail::FactorResetScheduled {
            login,
            effective_at,
            cancel_token,
        } => {
            let (date, time) = utc_date_and_time(*effective_at);
            json!({
                "login": login,
                "date": date,
                "time": time,
                "link": token_link(&links.factor_reset_cancel_url, cancel_token),
            })
        }
    }
}

/// Renders `mail` in `locale`, links built from the configured base URLs.
pub fn render(mail: &Mail, locale: Locale, links: &MailConfig) -> Result<Rendered, RenderError> {
    let kind = mail.kind();
    let fail = |source| RenderError { kind, source };
    let mut context = values(mail, links);
    if let Some(map) = context.as_object_mut() {
        map.insert("fr".into(), matches!(locale, Locale::Fr).into());
        map.insert("centre".into(), links.information_centre_url.clone().into());
        map.insert("help".into(), links.help_url.clone().into());
        map.insert(
            "report_link".into(),
            mail.report_token()
                .map(|token| token_link(&links.report_url, token))
                .into(),
        );
    }
    let environment = environment().map_err(fail)?;
    let text_template = environment
        .get_template(&format!("{kind}.txt.j2"))
        .map_err(fail)?;
    let mut captured = text_template.render_captured(&context).map_err(fail)?;
    let subject = captured
        .with_state_mut(|state| state.render_block("subject"))
        .map_err(fail)?
        // One line, whatever the template's whitespace.
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let text = captured.into_output();
    if let Some(map) = context.as_object_mut() {
        map.insert("subject".into(), subject.clone().into());
    }
    let html = environment
        .get_template(&format!("{kind}.html.j2"))
        .and_then(|template| template.render(&context))
        .map_err(fail)?;
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

/// The secrets of a message rendered by [`render_masked`]: what replaces
/// each placeholder at delivery. Kept only in memory or sealed.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Secrets {
    /// Random per message, so no text the customer typed can imitate a
    /// placeholder.
    marker: String,
    values: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("count", &self.values.len())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Placeholder `index`: letters and digits only, so that HTML escaping
    /// and URL encoding leave it as it is, and ended by a letter so that
    /// placeholder 1 is not the start of placeholder 10.
    fn placeholder(marker: &str, index: usize) -> String {
        format!("{marker}s{index}e")
    }

    /// Puts the secrets back into a message rendered with placeholders,
    /// escaped as the template escaped them: verbatim in the subject and
    /// the text part, HTML-escaped in the HTML part.
    pub fn reveal(&self, subject: &mut String, text: &mut String, html: Option<&mut String>) {
        let mut html = html;
        for (index, value) in self.values.iter().enumerate() {
            let placeholder = Self::placeholder(&self.marker, index);
            *subject = subject.replace(&placeholder, value);
            *text = text.replace(&placeholder, value);
            if let Some(html) = html.as_deref_mut() {
                *html = html.replace(&placeholder, &escape_html(value));
            }
        }
    }
}

/// Renders `mail` with a placeholder where each of its secrets goes, and
/// returns those secrets apart (`None` when the message holds none), so that
/// the rendered text can be stored in clear and the secrets sealed.
pub fn render_masked(
    mail: &Mail,
    locale: Locale,
    links: &MailConfig,
) -> Result<(Rendered, Option<Secrets>), RenderError> {
    use rand::Rng;
    let marker: String = {
        let mut rng = rand::rngs::OsRng;
        let tail: String = (0..20)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36usize)]))
            .collect();
        format!("gardiensecret{tail}")
    };
    let mut values = Vec::new();
    let masked = mail.map_secrets(|secret| {
        values.push(secret.to_string());
        Secrets::placeholder(&marker, values.len() - 1)
    });
    if values.is_empty() {
        return Ok((render(mail, locale, links)?, None));
    }
    Ok((
        render(&masked, locale, links)?,
        Some(Secrets { marker, values }),
    ))
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `("2026-12-04", "10:55")` for a time in Unix milliseconds, in UTC.
pub fn utc_date_and_time(ms: i64) -> (String, String) {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(at) => (
            at.format("%Y-%m-%d").to_string(),
            at.format("%H:%M").to_string(),
        ),
        None => (String::from("?"), String::from("?")),
    }
}

fn token_link(base: &str, token: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}token={token}")
}

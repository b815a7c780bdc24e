//! The messages gardien sends, in English and French (the account's
//! locale). A message never holds a password or a TOTP secret; a reset
//! token appears only inside its link.

use crate::{
    config::MailConfig,
    kinds::{Field, Locale, Reason},
};

/// One message to send, with what its template needs.
#[derive(Debug, Clone)]
pub enum Mail {
    /// The password was suspended: why, in words fit for `reason` (never
    /// the staff note), and the seed's steps (scan devices, secure the
    /// e-mail, reset, check, ticket).
    SuspensionNotice { login: String, reason: Reason },
    /// The reset link; `token` goes only into the link.
    ResetLink {
        login: String,
        token: String,
        valid_minutes: u64,
    },
    /// The login identifiers held by this contact e-mail.
    LoginRecovery { logins: Vec<String> },
    /// The password was changed or reset; `report_token` goes into the
    /// single-use "this wasn't me" link.
    PasswordChanged { login: String, report_token: String },
    /// Two-factor authentication was turned on.
    TotpEnabled { login: String, report_token: String },
    /// Two-factor authentication was turned off.
    TotpDisabled { login: String, report_token: String },
    /// A login from an address not seen before on this account.
    NewLogin {
        login: String,
        address: String,
        report_token: String,
    },
    /// To the OLD address: a change of the contact e-mail was requested.
    EmailChangeRequested {
        login: String,
        new_email: String,
        report_token: String,
    },
    /// To the NEW address: the link that confirms it.
    ConfirmEmail { login: String, token: String },
    /// To the OLD address: the change of the contact e-mail took effect.
    EmailChanged {
        login: String,
        new_email: String,
        report_token: String,
    },
    /// The phone or the postal address changed (or was removed); names the
    /// detail, never its value.
    ContactDetailsChanged {
        login: String,
        field: Field,
        removed: bool,
        report_token: String,
    },
    /// The customer reported "this wasn't me": what happens next.
    DisputeReceived { login: String, reference: String },
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated { login: String },
    /// A recovery code was used; `remaining` are left.
    RecoveryCodeUsed { login: String, remaining: u64 },
    /// An agent answered a ticket (the answer is read in the information centre).
    TicketReply { reference: String, subject: String },
    /// An agent resolved a ticket.
    TicketResolved { reference: String, subject: String },
    /// Support scheduled the removal of 2FA; `cancel_token` goes only into
    /// the single-use "cancel, this was not me" link.
    FactorResetScheduled {
        login: String,
        /// When it takes effect, Unix milliseconds (shown in UTC).
        effective_at: i64,
        cancel_token: String,
    },
}

impl Mail {
    /// The token of the "this wasn't me" link the message carries, if any.
    fn report_token(&self) -> Option<&str> {
        match self {
            Mail::PasswordChanged { report_token, .. }
            | Mail::TotpEnabled { report_token, .. }
            | Mail::TotpDisabled { report_token, .. }
            | Mail::NewLogin { report_token, .. }
            | Mail::EmailChangeRequested { report_token, .. }
            | Mail::EmailChanged { report_token, .. }
            | Mail::ContactDetailsChanged { report_token, .. } => Some(report_token),
            _ => None,
        }
    }

    /// A copy of this message with every secret it carries (link tokens,
    /// the login identifiers of a reminder) replaced by `replace(secret)`.
    /// The match is exhaustive on purpose: a new kind must say what in it is
    /// secret, or it would be stored in clear in the outbox.
    fn map_secrets(&self, mut replace: impl FnMut(&str) -> String) -> Mail {
        let mut mail = self.clone();
        match &mut mail {
            Mail::ResetLink { token, .. } | Mail::ConfirmEmail { token, .. } => {
                *token = replace(token);
            }
            Mail::FactorResetScheduled { cancel_token, .. } => {
                *cancel_token = replace(cancel_token);
            }
            Mail::PasswordChanged { report_token, .. }
            | Mail::TotpEnabled { report_token, .. }
            | Mail::TotpDisabled { report_token, .. }
            | Mail::NewLogin { report_token, .. }
            | Mail::EmailChangeRequested { report_token, .. }
            | Mail::EmailChanged { report_token, .. }
            | Mail::ContactDetailsChanged { report_token, .. } => {
                *report_token = replace(report_token);
            }
            Mail::LoginRecovery { logins } => {
                for login in logins.iter_mut() {
                    *login = replace(login);
                }
            }
            Mail::SuspensionNotice { .. }
            | Mail::DisputeReceived { .. }
            | Mail::RecoveryCodesRegenerated { .. }
            | Mail::RecoveryCodeUsed { .. }
            | Mail::TicketReply { .. }
            | Mail::TicketResolved { .. } => {}
        }
        mail
    }

    /// A stable name for logs and the outbox `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Mail::SuspensionNotice { .. } => "suspension_notice",
            Mail::ResetLink { .. } => "reset_link",
            Mail::LoginRecovery { .. } => "login_recovery",
            Mail::PasswordChanged { .. } => "password_changed",
            Mail::TotpEnabled { .. } => "totp_enabled",
            Mail::TotpDisabled { .. } => "totp_disabled",
            Mail::RecoveryCodesRegenerated { .. } => "recovery_codes_regenerated",
            Mail::RecoveryCodeUsed { .. } => "recovery_code_used",
            Mail::NewLogin { .. } => "new_login",
            Mail::EmailChangeRequested { .. } => "email_change_requested",
            Mail::ConfirmEmail { .. } => "confirm_email",
            Mail::EmailChanged { .. } => "email_changed",
            Mail::ContactDetailsChanged { .. } => "contact_details_changed",
            Mail::DisputeReceived { .. } => "dispute_received",
            Mail::TicketReply { .. } => "ticket_reply",
            Mail::TicketResolved { .. } => "ticket_resolved",
            Mail::FactorResetScheduled { .. } => "factor_reset_scheduled",
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<Mail> {
        let login = || "jean".to_string();
        let report_token = || "gdx_SECRET".to_string();
        let reference = || "T-ABCDEFGH".to_string();
        vec![
            Mail::SuspensionNotice {
                login: login(),
                reason: Reason::SuspectedCompromise,
            },
            Mail::ResetLink {
                login: login(),
                token: "gdr_SECRET".into(),
                valid_minutes: 30,
            },
            Mail::LoginRecovery {
                logins: vec![login(), "jean2".into()],
            },
            Mail::PasswordChanged {
                login: login(),
                report_token: report_token(),
            },
            Mail::TotpEnabled {
                login: login(),
                report_token: report_token(),
            },
            Mail::TotpDisabled {
                login: login(),
                report_token: report_token(),
            },
            Mail::RecoveryCodesRegenerated { login: login() },
            Mail::RecoveryCodeUsed {
                login: login(),
                remaining: 9,
            },
            Mail::NewLogin {
                login: login(),
                address: "192.0.2.7".into(),
                report_token: report_token(),
            },
            Mail::EmailChangeRequested {
                login: login(),
                new_email: "new@example.fr".into(),
                report_token: report_token(),
            },
            Mail::ConfirmEmail {
                login: login(),
                token: "gde_SECRET".into(),
            },
            Mail::EmailChanged {
                login: login(),
                new_email: "new@example.fr".into(),
                report_token: report_token(),
            },
            Mail::ContactDetailsChanged {
                login: login(),
                field: Field::Phone,
                removed: false,
                report_token: report_token(),
            },
            Mail::ContactDetailsChanged {
                login: login(),
                field: Field::PostalAddress,
                removed: true,
                report_token: report_token(),
            },
            Mail::DisputeReceived {
                login: login(),
                reference: reference(),
            },
            Mail::TicketReply {
                reference: reference(),
                subject: "Login".into(),
            },
            Mail::TicketResolved {
                reference: reference(),
                subject: "Login".into(),
            },
            Mail::FactorResetScheduled {
                login: login(),
                effective_at: 1_796_376_900_000,
                cancel_token: "gdf_SECRET".into(),
            },
        ]
    }

    #[test]
    fn security_notices_carry_the_wasnt_me_link_and_others_do_not() {
        let links = MailConfig::default();
        for mail in all_kinds() {
            for locale in [Locale::En, Locale::Fr] {
                let text = render(&mail, locale, &links).unwrap().text;
                let link = format!("{}?token=gdx_SECRET", links.report_url);
                assert_eq!(
                    text.contains(&link),
                    mail.report_token().is_some(),
                    "{}",
                    mail.kind()
                );
                assert!(text.matches("gdx_SECRET").count() <= 1);
            }
        }
    }

    #[test]
    fn every_kind_renders_in_both_locales() {
        let links = MailConfig::default();
        for mail in all_kinds() {
            let en = render(&mail, Locale::En, &links).unwrap();
            let fr = render(&mail, Locale::Fr, &links).unwrap();
            assert!(!en.subject.is_empty() && !fr.subject.is_empty());
            assert_ne!(en.text, fr.text, "{} is not translated", mail.kind());
            assert!(fr.text.starts_with("Bonjour"));
            for secret in ["gdr_SECRET", "gde_SECRET", "gdx_SECRET", "gdf_SECRET"] {
                assert!(!en.subject.contains(secret) && !fr.subject.contains(secret));
            }
        }
        assert_eq!(all_kinds().len(), 18, "every kind is rendered here");
    }

    #[test]
    fn the_reset_token_appears_only_inside_the_link() {
        let links = MailConfig::default();
        let rendered = render(&all_kinds()[1], Locale::En, &links).unwrap();
        assert_eq!(rendered.text.matches("gdr_SECRET").count(), 1);
        assert!(rendered
            .text
            .contains(&format!("{}?token=gdr_SECRET", links.reset_url)));
        assert!(!rendered.subject.contains("gdr_SECRET"));
    }

    /// Every secret of `all_kinds` with the only link it may appear in.
    fn secrets_and_links(links: &MailConfig) -> Vec<(&'static str, String)> {
        vec![
            (
                "gdr_SECRET",
                format!("{}?token=gdr_SECRET", links.reset_url),
            ),
            (
                "gde_SECRET",
                format!("{}?token=gde_SECRET", links.confirm_email_url),
            ),
            (
                "gdx_SECRET",
                format!("{}?token=gdx_SECRET", links.report_url),
            ),
            (
                "gdf_SECRET",
                format!("{}?token=gdf_SECRET", links.factor_reset_cancel_url),
            ),
        ]
    }

    #[test]
    fn every_kind_renders_a_text_and_an_html_part_in_both_locales() {
        let links = MailConfig::default();
        for mail in all_kinds() {
            for locale in [Locale::En, Locale::Fr] {
                let rendered = render(&mail, locale, &links).unwrap();
                let kind = mail.kind();
                assert!(!rendered.subject.is_empty() && !rendered.subject.contains('\n'));
                assert!(
                    !rendered.text.contains("{{") && !rendered.text.contains("{%"),
                    "{kind}"
                );
                assert!(rendered.html.starts_with("<!DOCTYPE html>"), "{kind}");
                assert!(rendered.html.contains("</html>"), "{kind}");
                assert!(!rendered.html.contains("{{"), "{kind}");
                let greeting = match locale {
                    Locale::En => "Hello,",
                    Locale::Fr => "Bonjour,",
                };
                assert!(rendered.text.starts_with(greeting), "{kind}");
                assert!(rendered.html.contains(greeting), "{kind}");
                let html_lang = match locale {
                    Locale::En => "lang=\"en\"",
                    Locale::Fr => "lang=\"fr\"",
                };
                assert!(rendered.html.contains(html_lang), "{kind}");
                if let Some(token) = mail.report_token() {
                    let link = format!("{}?token={token}", links.report_url);
                    assert!(
                        rendered.html.contains(&format!("href=\"{link}\"")),
                        "{kind}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_rendered_message_holds_a_secret_outside_its_link() {
        let links = MailConfig::default();
        for mail in all_kinds() {
            for locale in [Locale::En, Locale::Fr] {
                let rendered = render(&mail, locale, &links).unwrap();
                for (secret, link) in secrets_and_links(&links) {
                    assert!(!rendered.subject.contains(secret), "{}", mail.kind());
                    for body in [&rendered.text, &rendered.html] {
                        assert!(
                            !body.replace(&link, "").contains(secret),
                            "{} holds {secret} outside its link",
                            mail.kind()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_masked_message_holds_no_secret_and_reveals_to_the_plain_rendering() {
        let links = MailConfig::default();
        let mut kinds = all_kinds();
        // Secrets with every character HTML escapes, and ten of them, so
        // placeholder 1 and placeholder 10 are both in play.
        kinds.push(Mail::LoginRecovery {
            logins: (0..11).map(|i| format!("a<b&\"c'{i}")).collect(),
        });
        for mail in kinds {
            for locale in [Locale::En, Locale::Fr] {
                let plain = render(&mail, locale, &links).unwrap();
                let (masked, secrets) = render_masked(&mail, locale, &links).unwrap();
                let mut secret_values = Vec::new();
                mail.map_secrets(|secret| {
                    secret_values.push(secret.to_string());
                    String::new()
                });
                assert_eq!(secrets.is_some(), !secret_values.is_empty());
                for secret in &secret_values {
                    for part in [&masked.subject, &masked.text, &masked.html] {
                        assert!(!part.contains(secret.as_str()), "{}", mail.kind());
                        assert!(!part.contains(&escape_html(secret)), "{}", mail.kind());
                    }
                }
                let Rendered {
                    mut subject,
                    mut text,
                    mut html,
                } = masked;
                if let Some(secrets) = &secrets {
                    secrets.reveal(&mut subject, &mut text, Some(&mut html));
                    assert!(!format!("{secrets:?}").contains("gd"));
                }
                assert_eq!(subject, plain.subject, "{}", mail.kind());
                assert_eq!(text, plain.text, "{}", mail.kind());
                assert_eq!(html, plain.html, "{}", mail.kind());
            }
        }
    }

    #[test]
    fn every_secret_bearing_kind_has_its_secrets_masked() {
        for mail in all_kinds() {
            let mut count = 0;
            mail.map_secrets(|_| {
                count += 1;
                String::new()
            });
            let expected = match mail.kind() {
                "login_recovery" => 2,
                _ if mail.report_token().is_some() => 1,
                "reset_link" | "confirm_email" | "factor_reset_scheduled" => 1,
                _ => 0,
            };
            assert_eq!(count, expected, "{}", mail.kind());
        }
    }

    #[test]
    fn html_escapes_what_the_customer_typed_and_text_keeps_it_verbatim() {
        let links = MailConfig::default();
        let mail = Mail::TicketReply {
            reference: "T-ABCDEFGH".into(),
            subject: "<script>alert('x')</script> & \"co\"".into(),
        };
        for locale in [Locale::En, Locale::Fr] {
            let rendered = render(&mail, locale, &links).unwrap();
            assert!(!rendered.html.contains("<script>"));
            assert!(rendered.html.contains("&lt;script&gt;"));
            assert!(rendered.html.contains("&amp;"));
            assert!(rendered
                .text
                .contains("<script>alert('x')</script> & \"co\""));
        }
        let recovery = Mail::LoginRecovery {
            logins: vec!["a<b".into(), "jean".into()],
        };
        let rendered = render(&recovery, Locale::En, &links).unwrap();
        assert!(rendered.html.contains("a&lt;b") && !rendered.html.contains("a<b"));
        assert!(rendered.text.contains("  - a<b\n  - jean\n"));
    }

    #[test]
    fn the_french_reset_e_mail_is_in_french_with_the_link_in_both_parts() {
        let links = MailConfig::default();
        let rendered = render(&all_kinds()[1], Locale::Fr, &links).unwrap();
        assert_eq!(rendered.subject, "Réinitialisez votre mot de passe");
        assert!(rendered.text.contains("ouvrez ce lien dans les 30 minutes"));
        let link = format!("{}?token=gdr_SECRET", links.reset_url);
        assert!(rendered.text.contains(&format!("\n\n{link}\n\n")));
        assert!(rendered
            .html
            .contains(&format!("<a href=\"{link}\">{link}</a>")));
    }

    #[test]
    fn each_suspension_reason_is_worded_apart_in_both_locales() {
        let links = MailConfig::default();
        for locale in [Locale::En, Locale::Fr] {
            let bodies: Vec<String> = Reason::ALL
                .iter()
                .map(|&reason| {
                    let mail = Mail::SuspensionNotice {
                        login: "jean".into(),
                        reason,
                    };
                    let rendered = render(&mail, locale, &links).unwrap();
                    assert!(rendered.html.contains("jean"));
                    rendered.text
                })
                .collect();
            for (index, body) in bodies.iter().enumerate() {
                assert!(
                    bodies[index + 1..].iter().all(|other| other != body),
                    "{:?} in {locale:?} reads like another reason",
                    Reason::ALL[index]
                );
            }
        }
    }
}

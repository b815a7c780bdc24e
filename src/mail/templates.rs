//! The messages gardien sends, in English and French (the account's
//! locale). A message never holds a password or a TOTP secret; a reset
//! token appears only inside its link.

use crate::{config::MailConfig, domain::types::Locale};

/// One message to send, with what its template needs.
#[derive(Debug, Clone)]
pub enum Mail {
    /// The security team suspended the password: what happened and the
    /// seed's steps (scan devices, secure the e-mail, reset, check, ticket).
    SuspensionNotice { login: String },
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
}

impl Mail {
    /// The token of the "this wasn't me" link the message carries, if any.
    fn report_token(&self) -> Option<&str> {
        match self {
            Mail::PasswordChanged { report_token, .. }
            | Mail::TotpEnabled { report_token, .. }
            | Mail::TotpDisabled { report_token, .. }
            | Mail::NewLogin { report_token, .. }
            | Mail::EmailChangeRequested { report_token, .. } => Some(report_token),
            _ => None,
        }
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
            Mail::DisputeReceived { .. } => "dispute_received",
            Mail::TicketReply { .. } => "ticket_reply",
            Mail::TicketResolved { .. } => "ticket_resolved",
        }
    }
}

/// A rendered message: subject and plain-text body.
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

pub fn render(mail: &Mail, locale: Locale, links: &MailConfig) -> Rendered {
    let centre = &links.information_centre_url;
    let help = &links.help_url;
    let (subject, text) = match (mail, locale) {
        (Mail::SuspensionNotice { login }, Locale::En) => (
            "Your password has been suspended".to_string(),
            format!(
                "Hello,\n\n\
                 Our security team has suspended the password of your account {login} because \
                 a compromise is suspected. Until you reset it, that password opens nothing, so \
                 nobody can use your account while it is being secured.\n\n\
                 What to do now:\n\
                 1. Scan your computers and phones with an up-to-date antivirus.\n\
                 2. Make sure your e-mail address is not compromised: reset links are sent to it.\n\
                 3. Reset your password with the \"forgotten password\" link on the login page.\n\
                 4. Once back in, check your information centre: no action you did not perform, \
                 no order placed without your consent, contact details unchanged:\n   {centre}\n\
                 5. In any doubt, open a support ticket so that an agent runs further checks.\n\n\
                 More help: {help}\n"
            ),
        ),
        (Mail::SuspensionNotice { login }, Locale::Fr) => (
            "Votre mot de passe a été suspendu".to_string(),
            format!(
                "Bonjour,\n\n\
                 Notre équipe sécurité a suspendu le mot de passe de votre compte {login} suite \
                 à une suspicion de compromission. Tant qu'il n'est pas réinitialisé, ce mot de \
                 passe ne permet aucun accès : personne ne peut utiliser votre compte pendant sa \
                 sécurisation.\n\n\
                 Que faire :\n\
                 1. Analysez vos ordinateurs et téléphones avec un antivirus à jour.\n\
                 2. Vérifiez que votre adresse e-mail n'est pas compromise : les liens de \
                 réinitialisation y sont envoyés.\n\
                 3. Réinitialisez votre mot de passe avec le lien « mot de passe oublié » de la \
                 page de connexion.\n\
                 4. Une fois reconnecté, consultez votre centre d'information : aucune action que \
                 vous n'avez pas faite, aucune commande passée sans votre accord, coordonnées \
                 inchangées :\n   {centre}\n\
                 5. En cas de doute, ouvrez un ticket d'assistance afin qu'un agent procède à des \
                 vérifications complémentaires.\n\n\
                 Aide : {help}\n"
            ),
        ),
        (
            Mail::ResetLink {
                login,
                token,
                valid_minutes,
            },
            Locale::En,
        ) => (
            "Reset your password".to_string(),
            format!(
                "Hello,\n\n\
                 A password reset was requested for your account {login}. To choose a new \
                 password, open this link within {valid_minutes} minutes:\n\n{}\n\n\
                 Only the most recent link works, and only once. If you did not ask for this, \
                 ignore this message: your password is unchanged.\n",
                reset_link(&links.reset_url, token)
            ),
        ),
        (
            Mail::ResetLink {
                login,
                token,
                valid_minutes,
            },
            Locale::Fr,
        ) => (
            "Réinitialisez votre mot de passe".to_string(),
            format!(
                "Bonjour,\n\n\
                 Une réinitialisation du mot de passe a été demandée pour votre compte {login}. \
                 Pour choisir un nouveau mot de passe, ouvrez ce lien dans les {valid_minutes} \
                 minutes :\n\n{}\n\n\
                 Seul le lien le plus récent fonctionne, une seule fois. Si vous n'êtes pas à \
                 l'origine de cette demande, ignorez ce message : votre mot de passe reste \
                 inchangé.\n",
                reset_link(&links.reset_url, token)
            ),
        ),
        (Mail::LoginRecovery { logins }, Locale::En) => (
            "Your login identifier".to_string(),
            format!(
                "Hello,\n\n\
                 You asked for the login identifiers linked to this e-mail address:\n\n{}\n\n\
                 If you did not ask for this, ignore this message.\n",
                bullet_list(logins)
            ),
        ),
        (Mail::LoginRecovery { logins }, Locale::Fr) => (
            "Votre identifiant de connexion".to_string(),
            format!(
                "Bonjour,\n\n\
                 Vous avez demandé les identifiants liés à cette adresse e-mail :\n\n{}\n\n\
                 Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n",
                bullet_list(logins)
            ),
        ),
        (Mail::PasswordChanged { login, .. }, Locale::En) => (
            "Your password was changed".to_string(),
            format!(
                "Hello,\n\n\
                 The password of your account {login} was just changed, and every session was \
                 signed out. If you did not do this, reset your password at once and open a \
                 support ticket; your information centre lists what happened:\n   {centre}\n"
            ),
        ),
        (Mail::PasswordChanged { login, .. }, Locale::Fr) => (
            "Votre mot de passe a été modifié".to_string(),
            format!(
                "Bonjour,\n\n\
                 Le mot de passe de votre compte {login} vient d'être modifié, et toutes les \
                 sessions ont été fermées. Si vous n'êtes pas à l'origine de ce changement, \
                 réinitialisez votre mot de passe immédiatement et ouvrez un ticket \
                 d'assistance ; votre centre d'information retrace les actions :\n   {centre}\n"
            ),
        ),
        (Mail::TotpEnabled { login, .. }, Locale::En) => (
            "Two-factor authentication is on".to_string(),
            format!(
                "Hello,\n\n\
                 Two-factor authentication was turned on for your account {login}: logging in \
                 now needs a code from your authenticator app. Keep your recovery codes in a safe \
                 place. If you did not do this, reset your password at once and open a support \
                 ticket:\n   {centre}\n"
            ),
        ),
        (Mail::TotpEnabled { login, .. }, Locale::Fr) => (
            "La double authentification est activée".to_string(),
            format!(
                "Bonjour,\n\n\
                 La double authentification a été activée sur votre compte {login} : la \
                 connexion demande désormais un code de votre application d'authentification. \
                 Conservez vos codes de secours en lieu sûr. Si vous n'êtes pas à l'origine de \
                 ce changement, réinitialisez votre mot de passe immédiatement et ouvrez un \
                 ticket d'assistance :\n   {centre}\n"
            ),
        ),
        (Mail::TotpDisabled { login, .. }, Locale::En) => (
            "Two-factor authentication is off".to_string(),
            format!(
                "Hello,\n\n\
                 Two-factor authentication was turned off for your account {login}, and your \
                 other sessions were signed out. If you did not do this, reset your password at \
                 once and open a support ticket:\n   {centre}\n"
            ),
        ),
        (Mail::TotpDisabled { login, .. }, Locale::Fr) => (
            "La double authentification est désactivée".to_string(),
            format!(
                "Bonjour,\n\n\
                 La double authentification a été désactivée sur votre compte {login}, et vos \
                 autres sessions ont été fermées. Si vous n'êtes pas à l'origine de ce \
                 changement, réinitialisez votre mot de passe immédiatement et ouvrez un ticket \
                 d'assistance :\n   {centre}\n"
            ),
        ),
        (Mail::RecoveryCodesRegenerated { login }, Locale::En) => (
            "New recovery codes".to_string(),
            format!(
                "Hello,\n\n\
                 New two-factor recovery codes were generated for your account {login}; the old \
                 ones no longer work. If you did not do this, open a support ticket:\n   {centre}\n"
            ),
        ),
        (Mail::RecoveryCodesRegenerated { login }, Locale::Fr) => (
            "Nouveaux codes de secours".to_string(),
            format!(
                "Bonjour,\n\n\
                 De nouveaux codes de secours ont été générés pour votre compte {login} ; les \
                 anciens ne fonctionnent plus. Si vous n'êtes pas à l'origine de cette action, \
                 ouvrez un ticket d'assistance :\n   {centre}\n"
            ),
        ),
        (Mail::RecoveryCodeUsed { login, remaining }, Locale::En) => (
            "A recovery code was used".to_string(),
            format!(
                "Hello,\n\n\
                 A two-factor recovery code was just used on your account {login}; {remaining} \
                 remain. If you did not do this, reset your password at once and open a support \
                 ticket:\n   {centre}\n"
            ),
        ),
        (Mail::RecoveryCodeUsed { login, remaining }, Locale::Fr) => (
            "Un code de secours a été utilisé".to_string(),
            format!(
                "Bonjour,\n\n\
                 Un code de secours vient d'être utilisé sur votre compte {login} ; il en reste \
                 {remaining}. Si vous n'êtes pas à l'origine de cette connexion, réinitialisez \
                 votre mot de passe immédiatement et ouvrez un ticket d'assistance :\n   {centre}\n"
            ),
        ),
        (Mail::TicketReply { reference, subject }, Locale::En) => (
            format!("[{reference}] A support agent answered your ticket"),
            format!(
                "Hello,\n\n\
                 A support agent answered your ticket {reference} (\"{subject}\"). Read the answer \
                 and reply in your information centre:\n   {centre}\n"
            ),
        ),
        (Mail::TicketReply { reference, subject }, Locale::Fr) => (
            format!("[{reference}] Un agent a répondu à votre ticket"),
            format!(
                "Bonjour,\n\n\
                 Un agent du support a répondu à votre ticket {reference} (« {subject} »). \
                 Lisez la réponse et répondez depuis votre centre d'information :\n   {centre}\n"
            ),
        ),
        (Mail::TicketResolved { reference, subject }, Locale::En) => (
            format!("[{reference}] Your ticket is resolved"),
            format!(
                "Hello,\n\n\
                 Your ticket {reference} (\"{subject}\") is resolved. If something is still wrong, \
                 reply to it in your information centre and it will reopen:\n   {centre}\n"
            ),
        ),
        (Mail::TicketResolved { reference, subject }, Locale::Fr) => (
            format!("[{reference}] Votre ticket est résolu"),
            format!(
                "Bonjour,\n\n\
                 Votre ticket {reference} (« {subject} ») est résolu. Si un problème persiste, \
                 répondez-y depuis votre centre d'information et il sera rouvert :\n   {centre}\n"
            ),
        ),
        (Mail::NewLogin { login, address, .. }, Locale::En) => (
            "New login to your account".to_string(),
            format!(
                "Hello,\n\n\
                 Someone logged in to your account {login} from the address {address}, which \
                 had not been used before. If it was you, there is nothing to do.\n"
            ),
        ),
        (Mail::NewLogin { login, address, .. }, Locale::Fr) => (
            "Nouvelle connexion à votre compte".to_string(),
            format!(
                "Bonjour,\n\n\
                 Une connexion à votre compte {login} a eu lieu depuis l'adresse {address}, \
                 jamais utilisée auparavant. Si c'était vous, vous n'avez rien à faire.\n"
            ),
        ),
        (
            Mail::EmailChangeRequested {
                login, new_email, ..
            },
            Locale::En,
        ) => (
            "Your contact e-mail is being changed".to_string(),
            format!(
                "Hello,\n\n\
                 A change of the contact e-mail of your account {login} to {new_email} was \
                 requested. It takes effect only once the new address confirms it.\n"
            ),
        ),
        (
            Mail::EmailChangeRequested {
                login, new_email, ..
            },
            Locale::Fr,
        ) => (
            "Votre adresse e-mail de contact va changer".to_string(),
            format!(
                "Bonjour,\n\n\
                 Le remplacement de l'adresse e-mail de contact de votre compte {login} par \
                 {new_email} a été demandé. Il ne prendra effet qu'après confirmation par la \
                 nouvelle adresse.\n"
            ),
        ),
        (Mail::ConfirmEmail { login, token }, Locale::En) => (
            "Confirm your new contact e-mail".to_string(),
            format!(
                "Hello,\n\n\
                 To make this address the contact e-mail of the account {login}, open this link \
                 within 24 hours:\n\n{}\n\n\
                 If you did not ask for this, ignore this message.\n",
                token_link(&links.confirm_email_url, token)
            ),
        ),
        (Mail::ConfirmEmail { login, token }, Locale::Fr) => (
            "Confirmez votre nouvelle adresse e-mail".to_string(),
            format!(
                "Bonjour,\n\n\
                 Pour faire de cette adresse l'e-mail de contact du compte {login}, ouvrez ce \
                 lien dans les 24 heures :\n\n{}\n\n\
                 Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n",
                token_link(&links.confirm_email_url, token)
            ),
        ),
        (Mail::DisputeReceived { login, reference }, Locale::En) => (
            format!("[{reference}] We are securing your account"),
            format!(
                "Hello,\n\n\
                 You reported an action on your account {login} that you did not do. We \
                 signed out the sessions, opened the ticket {reference} for our security team \
                 and, where needed, suspended the password: reset it with the \
                 \"forgotten password\" link before logging in again. Then check your \
                 information centre:\n   {centre}\n"
            ),
        ),
        (Mail::DisputeReceived { login, reference }, Locale::Fr) => (
            format!("[{reference}] Nous sécurisons votre compte"),
            format!(
                "Bonjour,\n\n\
                 Vous avez signalé sur votre compte {login} une action que vous n'avez pas \
                 faite. Nous avons fermé les sessions, ouvert le ticket {reference} pour notre \
                 équipe sécurité et, si nécessaire, suspendu le mot de passe : réinitialisez-le \
                 avec le lien « mot de passe oublié » avant de vous reconnecter. Consultez \
                 ensuite votre centre d'information :\n   {centre}\n"
            ),
        ),
    };
    let mut text = text;
    if let Some(token) = mail.report_token() {
        let link = token_link(&links.report_url, token);
        text.push_str(&match locale {
            Locale::En => format!(
                "\nThis wasn't you? Open this link (valid 7 days, once): it suspends the \
                 password, signs out every session and alerts our security team.\n{link}\n"
            ),
            Locale::Fr => format!(
                "\nCe n'était pas vous ? Ouvrez ce lien (valable 7 jours, une fois) : il \
                 suspend le mot de passe, ferme toutes les sessions et alerte notre équipe \
                 sécurité.\n{link}\n"
            ),
        });
    }
    Rendered { subject, text }
}

fn token_link(base: &str, token: &str) -> String {
    reset_link(base, token)
}

fn reset_link(base: &str, token: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}token={token}")
}

fn bullet_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("  - {item}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<Mail> {
        let login = || "jean".to_string();
        let report_token = || "gdx_SECRET".to_string();
        let reference = || "T-ABCDEFGH".to_string();
        vec![
            Mail::SuspensionNotice { login: login() },
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
        ]
    }

    #[test]
    fn security_notices_carry_the_wasnt_me_link_and_others_do_not() {
        let links = MailConfig::default();
        for mail in all_kinds() {
            for locale in [Locale::En, Locale::Fr] {
                let text = render(&mail, locale, &links).text;
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
            let en = render(&mail, Locale::En, &links);
            let fr = render(&mail, Locale::Fr, &links);
            assert!(!en.subject.is_empty() && !fr.subject.is_empty());
            assert_ne!(en.text, fr.text, "{} is not translated", mail.kind());
            assert!(fr.text.starts_with("Bonjour"));
            for secret in ["gdr_SECRET", "gde_SECRET", "gdx_SECRET"] {
                assert!(!en.subject.contains(secret) && !fr.subject.contains(secret));
            }
        }
        assert_eq!(all_kinds().len(), 14, "every kind is rendered here");
    }

    #[test]
    fn the_reset_token_appears_only_inside_the_link() {
        let links = MailConfig::default();
        let rendered = render(&all_kinds()[1], Locale::En, &links);
        assert_eq!(rendered.text.matches("gdr_SECRET").count(), 1);
        assert!(rendered
            .text
            .contains(&format!("{}?token=gdr_SECRET", links.reset_url)));
        assert!(!rendered.subject.contains("gdr_SECRET"));
    }
}

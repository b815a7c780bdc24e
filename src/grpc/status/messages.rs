//! What a customer is told, in French or English, for each `ErrorInfo`
//! reason: the `google.rpc.LocalizedMessage` a front end can show as it is.
//! Plain words, no internal detail, nothing from the request; the status
//! `message` stays the developer's text.

use std::collections::HashMap;

use crate::domain::types::Locale;

/// The customer's message for `reason` (and, for `PASSWORD_TOO_WEAK`, the
/// `rule` and lengths in `metadata`). A reason without its own wording gets
/// a generic one, so no error goes without.
pub fn customer_message(
    locale: Locale,
    reason: &str,
    metadata: &HashMap<String, String>,
) -> String {
    if reason == "PASSWORD_TOO_WEAK" {
        return password_rule(locale, metadata);
    }
    let (en, fr) = match reason {
        "INVALID_ARGUMENT" => (
            "Some of the information entered is not valid. Check it and try again.",
            "Certaines informations saisies ne sont pas valides. Vérifiez-les et réessayez.",
        ),
        "INVALID_CREDENTIALS" => (
            "The login, password or code is incorrect.",
            "L'identifiant, le mot de passe ou le code est incorrect.",
        ),
        "PASSWORD_SUSPENDED" => (
            "Your password has been suspended to protect your account. To get back in, ask for a password reset: the link is sent to your contact e-mail address.",
            "Votre mot de passe a été suspendu pour protéger votre compte. Pour retrouver l'accès, demandez la réinitialisation de votre mot de passe : le lien est envoyé à votre adresse e-mail de contact.",
        ),
        "TOKEN_INVALID" => (
            "This link or code is not valid or was already used. Ask for a new one.",
            "Ce lien ou ce code n'est pas valide ou a déjà été utilisé. Demandez-en un nouveau.",
        ),
        "TOKEN_EXPIRED" => (
            "This link or code has expired. Ask for a new one.",
            "Ce lien ou ce code a expiré. Demandez-en un nouveau.",
        ),
        "RATE_LIMITED" => (
            "Too many attempts. Wait a moment, then try again.",
            "Trop de tentatives. Patientez un instant, puis réessayez.",
        ),
        "LOGIN_BACKOFF" => (
            "Too many failed attempts. Wait before trying again, or reset your password.",
            "Trop d'essais infructueux. Patientez avant de réessayer, ou réinitialisez votre mot de passe.",
        ),
        "UNAUTHENTICATED" => (
            "Your session has ended. Log in again.",
            "Votre session a pris fin. Reconnectez-vous.",
        ),
        "SESSION_REVOKED" => match metadata.get("cause").map(String::as_str) {
            Some("SUSPENSION") => (
                "Your session was ended because your password was suspended to protect your account. Reset your password: the link is sent to your contact e-mail address.",
                "Votre session a pris fin car votre mot de passe a été suspendu pour protéger votre compte. Réinitialisez votre mot de passe : le lien est envoyé à votre adresse e-mail de contact.",
            ),
            _ => (
                "Your session was ended for your security. Log in again.",
                "Votre session a été fermée pour votre sécurité. Reconnectez-vous.",
            ),
        },
        "IDENTITY_NOT_VERIFIED" => (
            "The customer's identity must be verified on this ticket first.",
            "L'identité du client doit d'abord être vérifiée sur ce ticket.",
        ),
        "FACTOR_RESET_PENDING" => (
            "A reset of two-factor authentication is already scheduled for this account.",
            "Une réinitialisation de la double authentification est déjà prévue pour ce compte.",
        ),
        "PERMISSION_DENIED" => (
            "This action is not allowed.",
            "Cette action n'est pas autorisée.",
        ),
        "NOT_FOUND" => (
            "This item could not be found.",
            "Cet élément est introuvable.",
        ),
        "ALREADY_EXISTS" => (
            "This has already been done, or already exists.",
            "Cela a déjà été fait, ou existe déjà.",
        ),
        "RECENT_AUTHENTICATION_REQUIRED" => (
            "For your security, confirm your password to continue.",
            "Pour votre sécurité, confirmez votre mot de passe pour continuer.",
        ),
        "SECOND_FACTOR_REQUIRED" => (
            "Enter a code from your authenticator app, or one of your recovery codes.",
            "Saisissez un code de votre application d'authentification, ou l'un de vos codes de secours.",
        ),
        "INVALID_STATE_TRANSITION" => (
            "This action is not possible at the moment.",
            "Cette action n'est pas possible pour le moment.",
        ),
        "TOTP_ALREADY_ENABLED" => (
            "Two-factor authentication is already enabled.",
            "La double authentification est déjà activée.",
        ),
        "TOTP_NOT_ENABLED" => (
            "Two-factor authentication is not enabled.",
            "La double authentification n'est pas activée.",
        ),
        "OVERLOADED" => (
            "The service is very busy. Try again in a moment.",
            "Le service est très sollicité. Réessayez dans un instant.",
        ),
        "UNAVAILABLE" => (
            "The service is temporarily unavailable. Try again shortly.",
            "Le service est momentanément indisponible. Réessayez dans quelques instants.",
        ),
        "INTERNAL" => (
            "Something went wrong on our side. Try again later.",
            "Une erreur s'est produite de notre côté. Réessayez plus tard.",
        ),
        _ => (
            "The request could not be completed.",
            "La demande n'a pas pu aboutir.",
        ),
    };
    pick(locale, en, fr).to_string()
}

fn pick<'a>(locale: Locale, en: &'a str, fr: &'a str) -> &'a str {
    match locale {
        Locale::En => en,
        Locale::Fr => fr,
    }
}

fn password_rule(locale: Locale, metadata: &HashMap<String, String>) -> String {
    let length = |key: &str| metadata.get(key).map(String::as_str).unwrap_or_default();
    match metadata.get("rule").map(String::as_str).unwrap_or_default() {
        "too_short" => match locale {
            Locale::En => format!(
                "Your password must have at least {} characters.",
                length("min_length")
            ),
            Locale::Fr => format!(
                "Votre mot de passe doit comporter au moins {} caractères.",
                length("min_length")
            ),
        },
        "too_long" => match locale {
            Locale::En => format!(
                "Your password must have at most {} characters.",
                length("max_length")
            ),
            Locale::Fr => format!(
                "Votre mot de passe doit comporter au plus {} caractères.",
                length("max_length")
            ),
        },
        rule => {
            let (en, fr) = match rule {
                "too_common" => (
                    "This password is among the most commonly used ones. Choose another.",
                    "Ce mot de passe fait partie des plus utilisés. Choisissez-en un autre.",
                ),
                "contains_login" => (
                    "Your password must not be based on your login or e-mail address.",
                    "Votre mot de passe ne doit pas reprendre votre identifiant ni votre adresse e-mail.",
                ),
                "same_as_current" => (
                    "Your new password must differ from your current one.",
                    "Votre nouveau mot de passe doit être différent de l'actuel.",
                ),
                "known_compromised" => (
                    "This password can no longer be used on this account: it may be known to someone else. Choose a new one.",
                    "Ce mot de passe ne peut plus être utilisé sur ce compte : il est peut-être connu d'un tiers. Choisissez-en un nouveau.",
                ),
                _ => (
                    "This password is too easy to guess. Add less common words, or make it longer.",
                    "Ce mot de passe est trop facile à deviner. Ajoutez des mots moins courants, ou allongez-le.",
                ),
            };
            pick(locale, en, fr).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rule: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
        std::iter::once(("rule", rule))
            .chain(extra.iter().copied())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_too_short_password_is_told_its_minimum_in_both_languages() {
        let metadata = rule("too_short", &[("min_length", "15")]);
        assert!(customer_message(Locale::En, "PASSWORD_TOO_WEAK", &metadata)
            .contains("at least 15 characters"));
        assert!(customer_message(Locale::Fr, "PASSWORD_TOO_WEAK", &metadata)
            .contains("au moins 15 caractères"));
    }

    #[test]
    fn every_wording_differs_between_the_languages() {
        let reasons = [
            "INVALID_ARGUMENT",
            "INVALID_CREDENTIALS",
            "PASSWORD_SUSPENDED",
            "TOKEN_INVALID",
            "TOKEN_EXPIRED",
            "RATE_LIMITED",
            "LOGIN_BACKOFF",
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "RECENT_AUTHENTICATION_REQUIRED",
            "SECOND_FACTOR_REQUIRED",
            "INVALID_STATE_TRANSITION",
            "TOTP_ALREADY_ENABLED",
            "TOTP_NOT_ENABLED",
            "OVERLOADED",
            "UNAVAILABLE",
            "INTERNAL",
            "A_REASON_WITHOUT_WORDING",
        ];
        let none = HashMap::new();
        for reason in reasons {
            let en = customer_message(Locale::En, reason, &none);
            let fr = customer_message(Locale::Fr, reason, &none);
            assert!(!en.is_empty() && !fr.is_empty() && en != fr, "{reason}");
        }
        for name in [
            "too_short",
            "too_long",
            "too_common",
            "contains_login",
            "too_guessable",
            "same_as_current",
            "known_compromised",
        ] {
            let metadata = rule(name, &[]);
            let en = customer_message(Locale::En, "PASSWORD_TOO_WEAK", &metadata);
            let fr = customer_message(Locale::Fr, "PASSWORD_TOO_WEAK", &metadata);
            assert_ne!(en, fr, "{name}");
        }
    }
}

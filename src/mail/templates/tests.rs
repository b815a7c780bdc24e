use super::*;
use crate::kinds::{Field, Reason};

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
        Mail::PasskeyAdded {
            login: login(),
            name: "Laptop".into(),
            report_token: report_token(),
        },
        Mail::PasskeyRemoved {
            login: login(),
            name: "Laptop".into(),
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
    assert_eq!(all_kinds().len(), 20, "every kind is rendered here");
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

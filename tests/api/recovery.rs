//! The seed's procedure: suspension, reset through the e-mailed link,
//! login recovery, and the rules on reset tokens.

use std::time::Duration;

use gardien::proto::accountsecurity::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

#[tokio::test]
pub async fn the_seed_path_from_suspension_to_a_new_password() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();

    let suspended = app.suspend(&id).await;
    assert!(!suspended.already_suspended);
    assert_eq!(suspended.sessions_revoked, 1);

    // The old session is refused on its very next call.
    let refused = app
        .client()
        .await
        .list_sessions(authed(
            &session.session_token,
            pb::ListSessionsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // The right password is told it is suspended, with the help link; a wrong one is not.
    let status = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "PASSWORD_SUSPENDED");
    let help = status.get_details_help().unwrap();
    assert_eq!(help.links[0].url, app.ctx.config.mail.help_url);
    let wrong = app
        .login("jean", "definitely not the password")
        .await
        .unwrap_err();
    assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");

    // The suspension notice explains the steps.
    let notice = app.wait_for_mails("jean@example.fr", 1).await;
    assert!(notice[0].contains("Subject: Your password has been suspended"));
    assert!(notice[0].contains("Scan your computers"));

    app.reset_password_by_email("jean", "jean@example.fr", NEW_PASSWORD)
        .await;

    let status = app
        .client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: id.clone(),
                login: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.account.unwrap().password_state(),
        pb::PasswordState::Active
    );
    assert!(status.active_suspension.is_none());

    assert_eq!(
        app.login("jean", STRONG_PASSWORD).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    app.login("jean", NEW_PASSWORD).await.unwrap();

    let events = app.events_of(&id).await;
    for kind in [
        "password_suspended",
        "password_reset_requested",
        "suspension_lifted",
        "password_reset_completed",
        "login_succeeded",
    ] {
        assert!(
            events.iter().any(|e| e == kind),
            "{kind} missing from {events:?}"
        );
    }
    let changed = app.wait_for_mails("jean@example.fr", 3).await;
    assert!(changed
        .iter()
        .any(|m| m.contains("Subject: Your password was changed")));
}

#[tokio::test]
pub async fn suspending_twice_is_idempotent_and_lifting_restores_the_password() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let first = app.suspend(&id).await;
    let second = app.suspend(&id).await;
    assert!(second.already_suspended);
    assert_eq!(
        first.suspension.unwrap().suspension_id,
        second.suspension.unwrap().suspension_id
    );

    let lifted = app
        .client()
        .await
        .lift_suspension(authed(
            &app.security_token,
            pb::LiftSuspensionRequest {
                account_id: id.clone(),
                note: "false alarm".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .suspension
        .unwrap();
    assert_eq!(lifted.lift_method(), pb::LiftMethod::SecurityTeam);
    app.login("jean", STRONG_PASSWORD).await.unwrap();

    // A service may suspend but not lift.
    let status = app
        .client()
        .await
        .lift_suspension(authed(
            &app.service_token,
            pb::LiftSuspensionRequest {
                account_id: id,
                note: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
pub async fn suspension_validates_its_fields() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let status = app
        .client()
        .await
        .suspend_password(authed(
            &app.security_token,
            pb::SuspendPasswordRequest {
                account_id: id,
                reason: 0,
                note: "x".repeat(2001),
                evidence_event_ids: vec!["not-a-uuid".into(), uuid::Uuid::now_v7().to_string()],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        ["reason", "note", "evidence_event_ids[0]"]
    );
}

#[tokio::test]
pub async fn reset_and_login_recovery_answer_the_same_for_unknown_accounts() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let known = app.request_reset("jean@example.fr").await;
    let unknown = app.request_reset("nobody@example.fr").await;
    assert_eq!(known.get_ref(), unknown.get_ref());
    assert_eq!(known.metadata().len(), unknown.metadata().len());

    let recover = |email: &str| {
        let request = pb::RecoverLoginRequest {
            email: email.into(),
        };
        let app = &app;
        async move {
            app.client()
                .await
                .recover_login(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(
        recover("jean@example.fr").await,
        recover("ghost@example.fr").await
    );

    let mails = app.wait_for_mails("jean@example.fr", 2).await;
    assert!(mails.iter().any(|m| m.contains("token=gdr_")));
    assert!(mails.iter().any(|m| m.contains("  - jean")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app.mails_to("nobody@example.fr").is_empty());
    assert!(app.mails_to("ghost@example.fr").is_empty());
}

#[tokio::test]
pub async fn of_twenty_concurrent_uses_of_one_token_exactly_one_wins() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    let client = app.client().await;
    let uses: Vec<_> = (0..20)
        .map(|i| {
            let mut client = client.clone();
            let token = token.clone();
            tokio::spawn(async move {
                client
                    .complete_password_reset(pb::CompletePasswordResetRequest {
                        reset_token: token,
                        new_password: format!("{NEW_PASSWORD} {i}"),
                        second_factor: None,
                    })
                    .await
                    .map(|_| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for used in uses {
        match used.await.unwrap() {
            Ok(i) => winners.push(i),
            Err(status) => assert_eq!(reason(&status), "TOKEN_INVALID", "{status:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    app.login("jean", &format!("{NEW_PASSWORD} {}", winners[0]))
        .await
        .unwrap();
}

#[tokio::test]
pub async fn a_reset_token_expires_after_thirty_minutes() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    app.clock.advance(Duration::from_secs(31 * 60));
    let status = app
        .complete_reset(&token, NEW_PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "TOKEN_EXPIRED");
    app.login("jean", STRONG_PASSWORD).await.unwrap();
}

#[tokio::test]
pub async fn a_reset_token_works_once() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    app.complete_reset(&token, NEW_PASSWORD, None)
        .await
        .unwrap();
    let status = app
        .complete_reset(&token, "yet another long passphrase here", None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_INVALID");
    app.login("jean", NEW_PASSWORD).await.unwrap();
}

#[tokio::test]
pub async fn only_the_newest_reset_link_is_valid() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("jean").await;
    let older = app.reset_token_from_mail("jean@example.fr", 1).await;
    app.request_reset("jean").await;
    let newer = app.reset_token_from_mail("jean@example.fr", 2).await;
    assert_ne!(older, newer);
    assert_eq!(
        reason(
            &app.complete_reset(&older, NEW_PASSWORD, None)
                .await
                .unwrap_err()
        ),
        "TOKEN_INVALID"
    );
    app.complete_reset(&newer, NEW_PASSWORD, None)
        .await
        .unwrap();
}

#[tokio::test]
pub async fn a_suspension_invalidates_outstanding_reset_links() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    app.suspend(&id).await;
    assert_eq!(
        reason(
            &app.complete_reset(&token, NEW_PASSWORD, None)
                .await
                .unwrap_err()
        ),
        "TOKEN_INVALID"
    );
}

#[tokio::test]
pub async fn reset_requests_per_account_are_limited() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let limit = app.ctx.config.reset.max_requests_per_hour as usize;
    for _ in 0..limit + 3 {
        app.request_reset("jean").await;
    }
    app.wait_for_mails("jean@example.fr", limit).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.mails_to("jean@example.fr").len(), limit);
}

#[tokio::test]
pub async fn the_new_password_must_pass_the_policy() {
    let app = spawn_app().await;
    app.create_account("jean.martin", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("jean.martin").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    for weak in [
        "too short pw",
        "passwordpassword",
        "jean.martin-2026!",
        "12345678901234567890",
    ] {
        let status = app.complete_reset(&token, weak, None).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{weak}");
        assert_eq!(reason(&status), "PASSWORD_TOO_WEAK", "{weak}");
        assert_eq!(bad_fields(&status), ["new_password"], "{weak}");
    }
    // A refused password does not use up the link; a 128-character one works.
    let long: String = "Vingt mille lieues sous les mers, "
        .repeat(4)
        .chars()
        .take(128)
        .collect();
    assert_eq!(long.chars().count(), 128);
    app.complete_reset(&token, &long, None).await.unwrap();
    app.login("jean.martin", &long).await.unwrap();
}

#[tokio::test]
pub async fn a_french_account_gets_french_e_mail() {
    let app = spawn_app().await;
    app.create_account_in("marie", "marie@example.fr", STRONG_PASSWORD, pb::Locale::Fr)
        .await;
    app.request_reset("marie").await;
    let mails = app.wait_for_mails("marie@example.fr", 1).await;
    assert!(mails[0].contains("Bonjour"));
    assert!(mails[0].contains("Subject: =?utf-8?") || mails[0].contains("Subject: R"));
}

#[tokio::test]
async fn no_password_or_token_reaches_the_logs() {
    let app = spawn_app().await;
    let marker_password = "zebra mosaic lantern 9137 quietly";
    let new_password = "orchid cathedral 5521 nimbly wander";
    let id = app
        .create_account("logcheck", "logcheck@example.fr", marker_password)
        .await;
    let session = app.login("logcheck", marker_password).await.unwrap();
    app.login("logcheck", "wrong secret-ish 4471 attempt")
        .await
        .unwrap_err();
    app.suspend(&id).await;
    app.request_reset("logcheck").await;
    let token = app.reset_token_from_mail("logcheck@example.fr", 2).await;
    app.complete_reset(&token, new_password, None)
        .await
        .unwrap();
    let session2 = app.login("logcheck", new_password).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = captured_logs();
    assert!(logs.contains("login succeeded"), "logs were not captured");
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
    }
    for secret in [
        marker_password,
        new_password,
        "wrong secret-ish 4471 attempt",
        token.as_str(),
        &token[4..],
        session.session_token.as_str(),
        session2.session_token.as_str(),
        app.service_token.as_str(),
        app.security_token.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test]
pub async fn an_account_without_a_password_cannot_be_suspended() {
    let app = spawn_app().await;
    let id = app.create_account("jean", "jean@example.fr", "").await;
    let status = app
        .client()
        .await
        .suspend_password(authed(
            &app.security_token,
            pb::SuspendPasswordRequest {
                account_id: id,
                reason: pb::SuspensionReason::FraudAlert.into(),
                note: String::new(),
                evidence_event_ids: vec![],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVALID_STATE_TRANSITION");
}

/// A password known to be compromised never comes back; a refused password
/// names the rule it broke; errors carry a message in the customer's
/// language.
mod known_compromised_passwords {
    use gardien::proto::accountsecurity::v1 as pb;
    use tonic::{metadata::MetadataValue, Code, Request};
    use tonic_types::StatusExt;

    use crate::helpers::*;

    const THIRD_PASSWORD: &str = "vingt lanternes rouges sur le quai 7";

    async fn change(
        app: &TestApp,
        session: &pb::SessionGrant,
        current: &str,
        new: &str,
    ) -> Result<(), tonic::Status> {
        app.client()
            .await
            .change_password(authed(
                &session.session_token,
                pb::ChangePasswordRequest {
                    current_password: current.into(),
                    new_password: new.into(),
                },
            ))
            .await
            .map(|_| ())
    }

    /// The `ErrorInfo.metadata` of a status.
    fn metadata(status: &tonic::Status) -> std::collections::HashMap<String, String> {
        status
            .get_details_error_info()
            .map(|info| info.metadata)
            .unwrap_or_default()
    }

    fn assert_refused_with_rule(status: &tonic::Status, rule: &str) {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(reason(status), "PASSWORD_TOO_WEAK");
        assert_eq!(
            metadata(status).get("rule").map(String::as_str),
            Some(rule),
            "{status:?}"
        );
        assert_eq!(bad_fields(status), ["new_password"]);
    }

    /// (locale, message) of the status's `LocalizedMessage`.
    fn localized(status: &tonic::Status) -> (String, String) {
        let message = status
            .get_details_localized_message()
            .unwrap_or_else(|| panic!("no LocalizedMessage in {status:?}"));
        (message.locale, message.message)
    }

    /// Requests a reset link and returns the token of the new link's e-mail.
    async fn reset_link(app: &TestApp, login: &str, email: &str) -> String {
        let links = |app: &TestApp| -> Vec<String> {
            app.mails_to(email)
                .into_iter()
                .filter(|m| m.contains("token=gdr_"))
                .collect()
        };
        let before = links(app).len();
        app.request_reset(login).await;
        for _ in 0..300 {
            if let Some(mail) = links(app).get(before) {
                return token_in(mail);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no reset e-mail to {email}");
    }

    #[tokio::test]
    async fn a_suspended_password_is_refused_by_reset_and_by_change() {
        let app = spawn_app().await;
        let id = app
            .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
            .await;
        app.suspend(&id).await;

        let token = reset_link(&app, "jean", "jean@example.fr").await;
        let refused = app
            .complete_reset(&token, STRONG_PASSWORD, None)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "known_compromised");
        // Still suspended; the link was not used up by the refusal.
        assert_eq!(
            reason(&app.login("jean", STRONG_PASSWORD).await.unwrap_err()),
            "PASSWORD_SUSPENDED"
        );
        app.complete_reset(&token, NEW_PASSWORD, None)
            .await
            .unwrap();

        let session = app.login("jean", NEW_PASSWORD).await.unwrap();
        let refused = change(&app, &session, NEW_PASSWORD, STRONG_PASSWORD)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "known_compromised");
        // Normalisation does not get it through either (NFKC folds fullwidth letters).
        let fullwidth: String = STRONG_PASSWORD
            .chars()
            .map(|c| match c {
                'a'..='z' => char::from_u32(c as u32 - 'a' as u32 + 0xff41).unwrap(),
                other => other,
            })
            .collect();
        let refused = change(&app, &session, NEW_PASSWORD, &fullwidth)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "known_compromised");
        change(&app, &session, NEW_PASSWORD, THIRD_PASSWORD)
            .await
            .unwrap();
        app.login("jean", THIRD_PASSWORD).await.unwrap();
    }

    #[tokio::test]
    async fn a_password_in_use_when_an_event_was_disputed_is_refused() {
        // Without suspension on dispute, the dispute alone marks the password.
        let app = spawn_app_with(|c| c.information_centre.suspend_on_dispute.clear()).await;
        let id = app
            .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
            .await;
        let event = app
            .client()
            .await
            .record_activity(authed(
                &app.service_token,
                pb::RecordActivityRequest {
                    account_id: id.clone(),
                    service_event_id: "billing-1".into(),
                    kind: pb::ActivityKind::OrderPlaced.into(),
                    reference: "ORD-1".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap();
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        let disputed = app
            .client()
            .await
            .dispute_security_event(authed(
                &session.session_token,
                pb::DisputeSecurityEventRequest {
                    event_id: event.event_id,
                    comment: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!disputed.password_suspended);

        change(&app, &session, STRONG_PASSWORD, NEW_PASSWORD)
            .await
            .unwrap();
        let refused = change(&app, &session, NEW_PASSWORD, STRONG_PASSWORD)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "known_compromised");
        let token = reset_link(&app, "jean", "jean@example.fr").await;
        let refused = app
            .complete_reset(&token, STRONG_PASSWORD, None)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "known_compromised");
    }

    #[tokio::test]
    async fn a_password_reported_from_a_notice_link_is_refused() {
        let app = spawn_app().await;
        app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
            .await;
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        // "Someone" changes the password; the customer reports it from the notice.
        change(&app, &session, STRONG_PASSWORD, NEW_PASSWORD)
            .await
            .unwrap();
        let mails = app.wait_for_mails("jean@example.fr", 1).await;
        let notice = mails
            .iter()
            .find(|m| m.contains("Your password was changed"))
            .unwrap();
        let start = notice.find("token=gdx_").unwrap() + "token=".len();
        let report_token: String = notice[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        app.client()
            .await
            .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
                report_token,
                comment: String::new(),
            })
            .await
            .unwrap();

        let token = reset_link(&app, "jean", "jean@example.fr").await;
        let refused = app
            .complete_reset(&token, NEW_PASSWORD, None)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "known_compromised");
        app.complete_reset(&token, THIRD_PASSWORD, None)
            .await
            .unwrap();
        app.login("jean", THIRD_PASSWORD).await.unwrap();
    }

    #[tokio::test]
    async fn changing_the_password_to_the_current_one_is_refused() {
        let app = spawn_app().await;
        app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
            .await;
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        let refused = change(&app, &session, STRONG_PASSWORD, STRONG_PASSWORD)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "same_as_current");
        app.login("jean", STRONG_PASSWORD).await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_password_names_its_rule_and_the_minimum_length() {
        let app = spawn_app().await;
        app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
            .await;
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        let refused = change(&app, &session, STRONG_PASSWORD, "short")
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "too_short");
        assert_eq!(
            metadata(&refused).get("min_length").map(String::as_str),
            Some("15")
        );
        for (password, rule) in [
            ("passwordstandard", "too_common"),
            ("jean@example.fr and more", "contains_login"),
            ("aaaaaaaaaaaaaaaaaaaa", "too_guessable"),
        ] {
            let refused = change(&app, &session, STRONG_PASSWORD, password)
                .await
                .unwrap_err();
            assert_refused_with_rule(&refused, rule);
            assert!(!metadata(&refused).contains_key("min_length"));
        }
        let long = "Orchid-lantern 47 drifts past quartz harbours; ".repeat(7);
        let refused = change(&app, &session, STRONG_PASSWORD, &long)
            .await
            .unwrap_err();
        assert_refused_with_rule(&refused, "too_long");
    }

    #[tokio::test]
    async fn errors_are_told_in_the_language_of_a_french_account() {
        let app = spawn_app().await;
        let id = app
            .create_account_in("jean", "jean@example.fr", STRONG_PASSWORD, pb::Locale::Fr)
            .await;
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        // An English-speaking browser does not change the account's language.
        let mut request = authed(
            &session.session_token,
            pb::ChangePasswordRequest {
                current_password: STRONG_PASSWORD.into(),
                new_password: "short".into(),
            },
        );
        request
            .metadata_mut()
            .insert("accept-language", MetadataValue::from_static("en-GB,en"));
        let refused = app
            .client()
            .await
            .change_password(request)
            .await
            .unwrap_err();
        let (locale, message) = localized(&refused);
        assert_eq!(locale, "fr");
        assert!(message.contains("15 caractères"), "{message}");
        // The developer message stays in English.
        assert!(refused.message().contains("at least 15"), "{refused:?}");

        app.suspend(&id).await;
        let suspended = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
        assert_eq!(reason(&suspended), "PASSWORD_SUSPENDED");
        let (locale, message) = localized(&suspended);
        assert_eq!(locale, "fr");
        assert!(message.contains("suspendu"), "{message}");
    }

    /// Issue 21 item 8: a call made with a customer's session is told in
    /// the account's language, not the browser's: the errors of the
    /// session's own calls and the SESSION_REVOKED of a revoked session.
    #[tokio::test]
    async fn session_calls_are_told_in_the_account_language_not_the_browser_one() {
        let app = spawn_app().await;
        let jean = app
            .create_account_in("jean", "jean@example.fr", STRONG_PASSWORD, pb::Locale::Fr)
            .await;
        app.create_account_in("john", "john@example.com", STRONG_PASSWORD, pb::Locale::En)
            .await;
        let in_browser = |token: &str, language: &'static str| {
            let token = token.to_string();
            move |request: pb::RevokeSessionRequest| {
                let mut request = authed(&token, request);
                request
                    .metadata_mut()
                    .insert("accept-language", MetadataValue::from_static(language));
                request
            }
        };
        let unknown_session = || pb::RevokeSessionRequest {
            session_id: uuid::Uuid::now_v7().to_string(),
        };
        let malformed = || pb::RevokeSessionRequest {
            session_id: "not-a-uuid".into(),
        };

        let mut told = Vec::new();
        for (login, account_language, browser) in
            [("jean", "fr", "en-GB,en"), ("john", "en", "fr-FR,fr")]
        {
            let session = app.login(login, STRONG_PASSWORD).await.unwrap();
            let request = in_browser(&session.session_token, browser);
            let mut client = app.client().await;
            for refused in [
                client
                    .revoke_session(request(malformed()))
                    .await
                    .unwrap_err(),
                client
                    .revoke_session(request(unknown_session()))
                    .await
                    .unwrap_err(),
            ] {
                let (locale, message) = localized(&refused);
                assert_eq!(locale, account_language, "{login}: {refused:?}");
                told.push((login, refused.code(), message));
            }
        }
        // A staff method called with jean's session is refused in French.
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        let mut request = authed(
            &session.session_token,
            pb::GetAccountStatusRequest {
                account_id: jean.clone(),
                ..Default::default()
            },
        );
        request
            .metadata_mut()
            .insert("accept-language", MetadataValue::from_static("en-GB,en"));
        let denied = app
            .client()
            .await
            .get_account_status(request)
            .await
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(localized(&denied).0, "fr", "{denied:?}");

        // The same errors, worded apart in each language.
        assert_eq!(told.len(), 4);
        for i in 0..2 {
            assert_eq!(told[i].1, told[i + 2].1);
            assert_ne!(told[i].2, told[i + 2].2, "{told:?}");
        }

        // A session ended by a suspension says so in French to jean.
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        app.suspend(&jean).await;
        let mut request = authed(&session.session_token, pb::ListSessionsRequest::default());
        request
            .metadata_mut()
            .insert("accept-language", MetadataValue::from_static("en-GB,en"));
        let revoked = app.client().await.list_sessions(request).await.unwrap_err();
        assert_eq!(reason(&revoked), "SESSION_REVOKED");
        assert_eq!(localized(&revoked).0, "fr", "{revoked:?}");
    }

    #[tokio::test]
    async fn anonymous_errors_follow_accept_language_and_default_to_english() {
        let app = spawn_app().await;
        let reset = |language: Option<&'static str>| {
            let app = &app;
            async move {
                let mut request = Request::new(pb::CompletePasswordResetRequest {
                    reset_token: "gdr_not-a-real-token".into(),
                    new_password: NEW_PASSWORD.into(),
                    second_factor: None,
                });
                if let Some(language) = language {
                    request
                        .metadata_mut()
                        .insert("accept-language", MetadataValue::from_static(language));
                }
                app.client()
                    .await
                    .complete_password_reset(request)
                    .await
                    .unwrap_err()
            }
        };
        let french = reset(Some("fr-FR,fr;q=0.9")).await;
        assert_eq!(reason(&french), "TOKEN_INVALID");
        let (locale, message) = localized(&french);
        assert_eq!(locale, "fr");
        assert!(message.contains("lien"), "{message}");

        let english = reset(None).await;
        assert_eq!(localized(&english).0, "en");
        assert!(localized(&english).1.contains("link"));
        assert_eq!(french.message(), english.message());
        for header in ["de-DE,de;q=0.9", "en-US,fr;q=0.5", "*"] {
            assert_eq!(localized(&reset(Some(header)).await).0, "en", "{header}");
        }
        assert_eq!(
            localized(&reset(Some("de;q=1, fr;q=0.8, en;q=0.2")).await).0,
            "fr"
        );

        // An unknown login is told in the request's language, as a wrong password is.
        let mut request = Request::new(pb::LoginRequest {
            login: "nobody".into(),
            password: "whatever it may be".into(),
        });
        request
            .metadata_mut()
            .insert("accept-language", MetadataValue::from_static("fr"));
        let unknown = app.client().await.login(request).await.unwrap_err();
        assert_eq!(reason(&unknown), "INVALID_CREDENTIALS");
        assert_eq!(localized(&unknown).0, "fr");
    }

    /// A request asking for French, as a French browser does.
    fn in_french<T>(mut request: Request<T>) -> Request<T> {
        request.metadata_mut().insert(
            "accept-language",
            MetadataValue::from_static("fr-FR,fr;q=0.9"),
        );
        request
    }

    #[tokio::test]
    async fn every_error_a_customer_meets_carries_a_message_in_their_language() {
        let app = spawn_app().await;
        app.create_account_in("jean", "jean@example.fr", STRONG_PASSWORD, pb::Locale::Fr)
            .await;
        let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
        let token = session.session_token.as_str();
        let mut client = app.client().await;
        let mut refused: Vec<tonic::Status> = Vec::new();
        refused.push(
            client
                .list_sessions(in_french(Request::new(Default::default())))
                .await
                .unwrap_err(),
        );
        refused.push(
            client
                .get_account_status(in_french(authed(
                    token,
                    pb::GetAccountStatusRequest {
                        login: "jean".into(),
                        ..Default::default()
                    },
                )))
                .await
                .unwrap_err(),
        );
        refused.push(
            client
                .login(in_french(Request::new(pb::LoginRequest {
                    login: "jean".into(),
                    password: "not the password at all".into(),
                })))
                .await
                .unwrap_err(),
        );
        refused.push(
            client
                .complete_password_reset(in_french(Request::new(
                    pb::CompletePasswordResetRequest {
                        reset_token: "gdr_unknown".into(),
                        new_password: NEW_PASSWORD.into(),
                        second_factor: None,
                    },
                )))
                .await
                .unwrap_err(),
        );
        for session_id in ["not-a-uuid".to_string(), uuid::Uuid::now_v7().to_string()] {
            refused.push(
                client
                    .revoke_session(in_french(authed(
                        token,
                        pb::RevokeSessionRequest { session_id },
                    )))
                    .await
                    .unwrap_err(),
            );
        }
        refused.push(
            client
                .disable_totp(in_french(authed(
                    token,
                    pb::DisableTotpRequest {
                        current_password: STRONG_PASSWORD.into(),
                        code: Some(pb::disable_totp_request::Code::TotpCode("123456".into())),
                    },
                )))
                .await
                .unwrap_err(),
        );
        refused.push(
            client
                .change_password(in_french(authed(
                    token,
                    pb::ChangePasswordRequest {
                        current_password: STRONG_PASSWORD.into(),
                        new_password: "passwordstandard".into(),
                    },
                )))
                .await
                .unwrap_err(),
        );
        let reasons: Vec<String> = refused.iter().map(reason).collect();
        assert_eq!(
            reasons,
            [
                "UNAUTHENTICATED",
                "PERMISSION_DENIED",
                "INVALID_CREDENTIALS",
                "TOKEN_INVALID",
                "INVALID_ARGUMENT",
                "NOT_FOUND",
                "TOTP_NOT_ENABLED",
                "PASSWORD_TOO_WEAK",
            ]
        );
        let mut seen = std::collections::HashSet::new();
        for status in &refused {
            let (locale, message) = localized(status);
            assert_eq!(locale, "fr", "{}: {status:?}", reason(status));
            assert!(!message.is_empty() && message != status.message());
            assert!(seen.insert(message), "one wording for two reasons");
        }
    }
}

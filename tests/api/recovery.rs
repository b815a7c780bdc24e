//! The seed's procedure: suspension, reset through the e-mailed link,
//! login recovery, and the rules on reset tokens.

use std::time::Duration;

use gardien::proto::accountsecurity::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

async fn request_reset(
    app: &TestApp,
    typed: &str,
) -> tonic::Response<pb::RequestPasswordResetResponse> {
    app.client()
        .await
        .request_password_reset(pb::RequestPasswordResetRequest {
            login_or_email: typed.into(),
        })
        .await
        .unwrap()
}

async fn complete(app: &TestApp, token: &str, password: &str) -> Result<(), tonic::Status> {
    app.client()
        .await
        .complete_password_reset(pb::CompletePasswordResetRequest {
            reset_token: token.into(),
            new_password: password.into(),
            second_factor: None,
        })
        .await
        .map(|_| ())
}

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

    request_reset(&app, "jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 2).await;
    complete(&app, &token, NEW_PASSWORD).await.unwrap();

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
    let known = request_reset(&app, "jean@example.fr").await;
    let unknown = request_reset(&app, "nobody@example.fr").await;
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
    request_reset(&app, "jean").await;
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
    request_reset(&app, "jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    app.clock.advance(Duration::from_secs(31 * 60));
    let status = complete(&app, &token, NEW_PASSWORD).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "TOKEN_EXPIRED");
    app.login("jean", STRONG_PASSWORD).await.unwrap();
}

#[tokio::test]
pub async fn a_reset_token_works_once() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    request_reset(&app, "jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    complete(&app, &token, NEW_PASSWORD).await.unwrap();
    let status = complete(&app, &token, "yet another long passphrase here")
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
    request_reset(&app, "jean").await;
    let older = app.reset_token_from_mail("jean@example.fr", 1).await;
    request_reset(&app, "jean").await;
    let newer = app.reset_token_from_mail("jean@example.fr", 2).await;
    assert_ne!(older, newer);
    assert_eq!(
        reason(&complete(&app, &older, NEW_PASSWORD).await.unwrap_err()),
        "TOKEN_INVALID"
    );
    complete(&app, &newer, NEW_PASSWORD).await.unwrap();
}

#[tokio::test]
pub async fn a_suspension_invalidates_outstanding_reset_links() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    request_reset(&app, "jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    app.suspend(&id).await;
    assert_eq!(
        reason(&complete(&app, &token, NEW_PASSWORD).await.unwrap_err()),
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
        request_reset(&app, "jean").await;
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
    request_reset(&app, "jean.martin").await;
    let token = app.reset_token_from_mail("jean@example.fr", 1).await;
    for weak in [
        "too short pw",
        "passwordpassword",
        "jean.martin-2026!",
        "12345678901234567890",
    ] {
        let status = complete(&app, &token, weak).await.unwrap_err();
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
    complete(&app, &token, &long).await.unwrap();
    app.login("jean.martin", &long).await.unwrap();
}

#[tokio::test]
pub async fn a_french_account_gets_french_e_mail() {
    let app = spawn_app().await;
    app.create_account_in("marie", "marie@example.fr", STRONG_PASSWORD, pb::Locale::Fr)
        .await;
    request_reset(&app, "marie").await;
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
    request_reset(&app, "logcheck").await;
    let token = app.reset_token_from_mail("logcheck@example.fr", 2).await;
    complete(&app, &token, new_password).await.unwrap();
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

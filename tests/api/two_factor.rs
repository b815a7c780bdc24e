//! Two-factor authentication: enrolment, the 2FA-aware login, replay,
//! recovery codes, disabling, and resets that never bypass 2FA.

use std::time::Duration;

use gardien::proto::accountsecurity::v1::{
    self as pb, verify_login_challenge_request::Code as Factor,
};
use sea_orm::EntityTrait;
use tonic::Code;

use crate::helpers::*;

const STEP: Duration = Duration::from_secs(30);

#[tokio::test]
pub async fn enrol_confirm_then_log_in_with_a_code_once_and_a_recovery_code_once() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let EnabledTotp {
        secret,
        recovery_codes: codes,
        session,
        confirm_code,
    } = app.enable_totp_noting_code("jean", STRONG_PASSWORD).await;
    assert_eq!(codes.len(), 10);
    assert_eq!(secret.len(), 32, "a 160-bit secret is 32 base32 characters");
    app.client()
        .await
        .logout(authed(&session.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();

    // The code used to confirm cannot log in.
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(
        app.verify_totp(&challenge, &confirm_code)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // A wrong code answers exactly like a wrong password.
    app.clock.advance(STEP);
    let wrong_code = app.verify_totp(&challenge, "000000").await.unwrap_err();
    let wrong_password = app
        .login("jean", "not the password at all")
        .await
        .unwrap_err();
    assert_eq!(wrong_code.code(), wrong_password.code());
    assert_eq!(wrong_code.message(), wrong_password.message());
    assert_eq!(wrong_code.details(), wrong_password.details());

    let code = totp_code(&secret, app.clock_now());
    let grant = app.verify_totp(&challenge, &code).await.unwrap();
    let introspection = app
        .client()
        .await
        .introspect_session(authed(
            &app.service_token,
            pb::IntrospectSessionRequest {
                session_token: grant.session_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(introspection.active && introspection.second_factor_used);

    // The same code again, on a new challenge, is refused.
    let again = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(
        reason(&app.verify_totp(&again, &code).await.unwrap_err()),
        "INVALID_CREDENTIALS"
    );

    // A recovery code works once, never twice.
    app.verify_challenge(&again, Factor::RecoveryCode(codes[0].to_uppercase()))
        .await
        .unwrap();
    let third = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(
        reason(
            &app.verify_challenge(&third, Factor::RecoveryCode(codes[0].clone()))
                .await
                .unwrap_err()
        ),
        "INVALID_CREDENTIALS"
    );
    let events = app.events_of(&id).await;
    for kind in ["totp_enabled", "login_challenged", "recovery_code_used"] {
        assert!(events.iter().any(|e| e == kind), "{kind} missing");
    }
    let mails = app.wait_for_mails("jean@example.fr", 2).await;
    assert!(mails
        .iter()
        .any(|m| m.contains("Subject: Two-factor authentication is on")));
}

#[tokio::test]
pub async fn a_code_two_steps_old_is_refused_and_one_step_old_accepted() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP * 4);
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let two_old = totp_code(&secret, app.clock_now() - 60_000);
    assert_eq!(
        app.verify_totp(&challenge, &two_old)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let one_old = totp_code(&secret, app.clock_now() - 30_000);
    app.verify_totp(&challenge, &one_old).await.unwrap();
}

#[tokio::test]
pub async fn a_challenge_dies_after_five_wrong_codes() {
    let app = spawn_app_with(|c| c.login.free_failures = 50).await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP);
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    for wrong in ["000000", "111111", "222222", "333333", "444444"] {
        assert_eq!(
            reason(&app.verify_totp(&challenge, wrong).await.unwrap_err()),
            "INVALID_CREDENTIALS"
        );
    }
    let code = totp_code(&secret, app.clock_now());
    assert_eq!(
        reason(&app.verify_totp(&challenge, &code).await.unwrap_err()),
        "TOKEN_INVALID"
    );
}

#[tokio::test]
pub async fn a_reset_on_a_2fa_account_needs_a_code() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.request_reset("jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 2).await;
    let reset = |factor| app.complete_reset(&token, NEW_PASSWORD, factor);
    let status = reset(None).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "SECOND_FACTOR_REQUIRED");
    assert_eq!(bad_fields(&status), ["totp_code"]);
    let wrong = reset(Some(
        pb::complete_password_reset_request::SecondFactor::TotpCode("123456".into()),
    ))
    .await;
    assert!(wrong.is_err());
    // The password is unchanged and the link still usable.
    app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    app.clock.advance(STEP);
    let code = totp_code(&secret, app.clock_now());
    reset(Some(
        pb::complete_password_reset_request::SecondFactor::TotpCode(code),
    ))
    .await
    .unwrap();
    assert_eq!(
        app.login("jean", STRONG_PASSWORD).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    app.login_challenge("jean", NEW_PASSWORD).await.unwrap();
}

#[tokio::test]
pub async fn the_database_holds_no_plaintext_secret_or_recovery_code() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, codes, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    let account = gardien::entity::account::Entity::find_by_id(uuid::Uuid::parse_str(&id).unwrap())
        .one(&app.ctx.db)
        .await
        .unwrap()
        .unwrap();
    let stored = account.totp_secret.unwrap();
    assert!(!stored.contains(&secret) && !stored.to_uppercase().contains(&secret));
    let rows = gardien::entity::recovery_code::Entity::find()
        .all(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        for code in &codes {
            assert!(!row.code_hash.contains(code.as_str()));
            assert!(!row.code_hash.contains(&code.replace('-', "")));
        }
    }
}

#[tokio::test]
pub async fn enrolment_needs_a_recent_authentication() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.clock.advance(Duration::from_secs(11 * 60));
    let begin = |password: &str| {
        let request = authed(
            &session.session_token,
            pb::BeginTotpEnrollmentRequest {
                current_password: password.into(),
            },
        );
        let app = &app;
        async move { app.client().await.begin_totp_enrollment(request).await }
    };
    let status = begin("").await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "RECENT_AUTHENTICATION_REQUIRED");
    let enrollment = begin(STRONG_PASSWORD).await.unwrap().into_inner();
    assert!(enrollment.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(enrollment.qr_code_png.starts_with(b"\x89PNG"));
}

#[tokio::test]
pub async fn disabling_needs_the_password_and_a_code_and_ends_other_sessions() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, codes, here) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP);
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = app
        .verify_totp(&challenge, &totp_code(&secret, app.clock_now()))
        .await
        .unwrap();
    let disable = |password: &str, code: Option<pb::disable_totp_request::Code>| {
        let request = authed(
            &here.session_token,
            pb::DisableTotpRequest {
                current_password: password.into(),
                code,
            },
        );
        let app = &app;
        async move { app.client().await.disable_totp(request).await }
    };
    let no_code = disable(STRONG_PASSWORD, None).await.unwrap_err();
    assert_eq!(bad_fields(&no_code), ["totp_code"]);
    let wrong_password = disable(
        "not my password at all",
        Some(pb::disable_totp_request::Code::RecoveryCode(
            codes[1].clone(),
        )),
    )
    .await
    .unwrap_err();
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    let done = disable(
        STRONG_PASSWORD,
        Some(pb::disable_totp_request::Code::RecoveryCode(
            codes[1].clone(),
        )),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(done.sessions_revoked, 1);
    let refused = app
        .client()
        .await
        .list_sessions(authed(
            &elsewhere.session_token,
            pb::ListSessionsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    assert!(app
        .events_of(&id)
        .await
        .contains(&"totp_disabled".to_string()));
}

#[tokio::test]
pub async fn regenerated_recovery_codes_replace_the_old_ones() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, old_codes, session) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP);
    let new_codes = app
        .client()
        .await
        .regenerate_recovery_codes(authed(
            &session.session_token,
            pb::RegenerateRecoveryCodesRequest {
                current_password: String::new(),
                totp_code: totp_code(&secret, app.clock_now()),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .recovery_codes;
    assert_eq!(new_codes.len(), 10);
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    assert!(app
        .verify_challenge(&challenge, Factor::RecoveryCode(old_codes[2].clone()))
        .await
        .is_err());
    app.verify_challenge(&challenge, Factor::RecoveryCode(new_codes[2].clone()))
        .await
        .unwrap();
}

#[tokio::test]
pub async fn a_suspension_kills_pending_challenges() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP);
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    app.suspend(&id).await;
    let status = app
        .verify_totp(&challenge, &totp_code(&secret, app.clock_now()))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TOKEN_INVALID");
}

#[tokio::test]
pub async fn the_security_overview_counts_recovery_codes_and_recommends_2fa_until_enabled() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let overview = |token: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .get_security_overview(authed(&token, pb::GetSecurityOverviewRequest {}))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let before = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let seen = overview(before.session_token).await;
    assert!(!seen.totp_enabled);
    let kinds: Vec<_> = seen.recommended_actions.iter().map(|a| a.kind()).collect();
    assert!(kinds.contains(&pb::RecommendedActionKind::EnableTotp));
    assert!(seen
        .recommended_actions
        .iter()
        .all(|a| !a.explanation.is_empty()));

    let (_, codes, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let session = app
        .verify_challenge(&challenge, Factor::RecoveryCode(codes[0].clone()))
        .await
        .unwrap();
    let seen = overview(session.session_token).await;
    assert!(seen.totp_enabled);
    assert_eq!(seen.recovery_codes_remaining, 9);
    assert!(!seen
        .recommended_actions
        .iter()
        .any(|a| a.kind() == pb::RecommendedActionKind::EnableTotp));
    assert_eq!(seen.password_state(), pb::PasswordState::Active);
}

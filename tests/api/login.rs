//! Login, enumeration resistance, back-off, password policy and rehashing.

use std::time::Duration;

use gardien::proto::accountsecurity::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

#[tokio::test]
pub async fn a_correct_password_gives_a_session_that_authenticates() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(grant.account_id, id);
    assert!(grant.session_token.starts_with("gds_"));
    let sessions = app
        .client()
        .await
        .list_sessions(authed(
            &grant.session_token,
            pb::ListSessionsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sessions.sessions.len(), 1);
    assert!(sessions.sessions[0].current);
    assert_eq!(sessions.sessions[0].client_address, "127.0.0.1");
    assert!(app
        .events_of(&id)
        .await
        .contains(&"login_succeeded".to_string()));
}

#[tokio::test]
pub async fn unknown_login_and_wrong_password_answer_byte_for_byte_the_same() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let wrong = app
        .login("jean", "not the right password at all")
        .await
        .unwrap_err();
    let unknown = app
        .login("nobody-here", "not the right password at all")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");
    assert_eq!(wrong.code(), unknown.code());
    assert_eq!(wrong.message(), unknown.message());
    assert_eq!(wrong.details(), unknown.details());
}

#[tokio::test]
pub async fn back_off_grows_then_expires_and_a_success_clears_it() {
    let app = spawn_app().await;
    // Time moves only when the test says: the first delay is 1 s.
    app.clock.freeze();
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let free = app.ctx.config.login.free_failures;
    for _ in 0..=free {
        assert_eq!(
            app.login("jean", "a wrong password here")
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
    }
    // Even the right password waits out the back-off.
    let throttled = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted);
    app.clock.advance(Duration::from_secs(2));
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(
        app.login("jean", "a wrong password here")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}

/// The delay earned by each failure past the free ones doubles (1 s, 2 s,
/// 4 s, …), is said in the refusal's RetryInfo, and refuses every attempt,
/// right password included, until it has passed.
#[tokio::test]
pub async fn each_failure_past_the_free_ones_doubles_the_delay_the_refusal_states() {
    let app = spawn_app_with(|c| {
        c.login.free_failures = 2;
        c.login.max_failures = 10;
    })
    .await;
    // Time moves only when the test says, so each delay is stated exactly.
    app.clock.freeze();
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    for _ in 0..2 {
        let status = app
            .login("jean", "a wrong password here")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    for step in 0..4u32 {
        let status = app
            .login("jean", "a wrong password here")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "step {step}");
        let expected = Duration::from_secs(1 << step);
        let refused = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "step {step}");
        assert_eq!(reason(&refused), "LOGIN_BACKOFF");
        let delay = refused
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
            .expect("RetryInfo with a delay");
        assert_eq!(delay, expected, "step {step}");
        app.clock.advance(delay / 2);
        let still = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
        assert_eq!(still.code(), Code::ResourceExhausted, "step {step}");
        app.clock
            .advance(delay - delay / 2 + Duration::from_millis(1));
    }
    app.login("jean", STRONG_PASSWORD).await.unwrap();
}

#[tokio::test]
pub async fn unknown_logins_are_backed_off_like_known_ones() {
    let app = spawn_app().await;
    // The delay is 1 s: time moves only when the test says.
    app.clock.freeze();
    let free = app.ctx.config.login.free_failures;
    for _ in 0..=free {
        app.login("ghost", "a wrong password here")
            .await
            .unwrap_err();
    }
    let status = app
        .login("ghost", "a wrong password here")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status), "LOGIN_BACKOFF");
}

#[tokio::test]
pub async fn after_the_failure_ceiling_only_a_reset_reopens_login() {
    let app = spawn_app_with(|c| {
        c.login.free_failures = 1;
        c.login.max_failures = 3;
    })
    .await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    for _ in 0..3 {
        app.login("jean", "a wrong password here")
            .await
            .unwrap_err();
        app.clock.advance(Duration::from_secs(3600));
    }
    let status = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // A reset stays possible and clears the counter.
    app.reset_password_by_email("jean", "jean@example.fr", NEW_PASSWORD)
        .await;
    app.login("jean", NEW_PASSWORD).await.unwrap();
}

#[tokio::test]
pub async fn nfc_and_nfd_forms_of_a_password_both_log_in() {
    let app = spawn_app().await;
    let nfc = "crème brûlée au café du matin";
    let nfd: String = unicode_normalization::UnicodeNormalization::nfd(nfc).collect();
    assert_ne!(nfc, nfd);
    app.create_account("jean", "jean@example.fr", nfc).await;
    app.login("jean", &nfd).await.unwrap();
    app.login("jean", nfc).await.unwrap();
}

#[tokio::test]
async fn a_weaker_stored_hash_is_rehashed_at_the_next_login() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    let app = spawn_app().await;
    let id =
        uuid::Uuid::parse_str(&app.create_account("jean", "jean@example.fr", "").await).unwrap();
    let weak = gardien::crypto::password::HashingPool::new(
        gardien::crypto::password::Argon2Params {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        1,
        4,
    )
    .unwrap()
    .hash(secrecy::SecretString::from(STRONG_PASSWORD.to_string()))
    .await
    .unwrap();
    assert!(weak.contains("m=8192"));
    let account = gardien::entity::account::ActiveModel {
        id: Set(id),
        password_hash: Set(Some(weak)),
        password_state: Set("active".into()),
        ..Default::default()
    };
    account.update(&app.ctx.db).await.unwrap();
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let stored = gardien::entity::account::Entity::find_by_id(id)
        .one(&app.ctx.db)
        .await
        .unwrap()
        .unwrap();
    let hash = stored.password_hash.unwrap();
    assert!(
        hash.starts_with("$argon2id$") && hash.contains("m=19456,t=2,p=1"),
        "{hash}"
    );
}

#[tokio::test]
pub async fn empty_login_fields_are_invalid_argument_naming_the_field() {
    let app = spawn_app().await;
    let status = app.login("", "something").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["login"]);
    let status = app.login("jean", "").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["password"]);
}

/// Found by the black-box probe: what a caller typed as the login (which
/// may be their password, typed in the wrong field) was written in clear in
/// the refusal's log line. The logs carry a pseudonym: the same for the
/// same text, so lines still correlate.
#[tokio::test]
async fn a_login_as_typed_never_reaches_the_logs() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let start = log_position();
    let typed = "Typed-Password-In-Login-9131";
    for _ in 0..2 {
        app.login(typed, STRONG_PASSWORD).await.unwrap_err();
    }
    app.login("jean", "not the password at all 55")
        .await
        .unwrap_err();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let logs = captured_logs()[start..].to_string();
    assert!(logs.contains("login refused"), "logs were not captured");
    for text in [typed, "Typed-Password", "typed-password"] {
        assert!(!logs.contains(text), "the typed login is in the logs");
    }
    let pseudonym = gardien::telemetry::pseudonym(typed);
    assert!(
        logs.matches(pseudonym.as_str()).count() >= 2,
        "the two refusals correlate"
    );
    assert!(!logs.contains("login=jean") && !logs.contains("\"login\":\"jean\""));

    // Nor the address a mail goes to (found by the second probe: the
    // outbox logged each delivery's recipient).
    let start = log_position();
    let address = "typed-mail-4417@example.org";
    app.create_account("mailcheck", address, STRONG_PASSWORD)
        .await;
    app.request_reset(address).await;
    app.reset_token_from_mail(address, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let logs = captured_logs()[start..].to_string();
    assert!(logs.contains("e-mail delivered"), "logs were not captured");
    assert!(
        !logs.contains("typed-mail-4417"),
        "an e-mail address is in the logs"
    );
}

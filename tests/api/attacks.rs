//! The security regression suite: one test per known attack on comparable
//! account-security systems, named after the attack. Each was seen to fail
//! with the protection it checks removed.
//!
//! Secret hygiene is checked for the whole suite, not here: every secret a
//! test sends or receives is registered and no log line may hold one (see
//! the end of `helpers.rs`).

use std::time::{Duration, Instant};

use gardien::proto::{
    accountsecurity::v1::{self as pb, verify_login_challenge_request::Code as Factor},
    support::v1 as spb,
};
use secrecy::ExposeSecret;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

const STEP: Duration = Duration::from_secs(30);
const THIRD_PASSWORD: &str = "le vent se lève il faut tenter de vivre";

/// Whether a session token still opens anything, asked both ways a stolen
/// token is used: as the customer (`ListSessions`) and through another
/// service (`IntrospectSession`). Both must agree.
async fn session_is_live(app: &TestApp, token: &str) -> bool {
    let introspected = app
        .client()
        .await
        .introspect_session(authed(
            &app.service_token,
            pb::IntrospectSessionRequest {
                session_token: token.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .active;
    let listed = app
        .client()
        .await
        .list_sessions(authed(token, pb::ListSessionsRequest::default()))
        .await;
    if let Err(status) = &listed {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    assert_eq!(listed.is_ok(), introspected, "the two paths disagree");
    introspected
}

/// Two answers are the same to the byte: nothing tells "exists but not
/// yours" from "does not exist".
fn assert_same_answer(theirs: &tonic::Status, missing: &tonic::Status) {
    assert_eq!(theirs.code(), Code::NotFound, "{theirs:?}");
    assert_eq!(theirs.code(), missing.code());
    assert_eq!(theirs.message(), missing.message());
    assert_eq!(theirs.details(), missing.details());
}

fn unknown_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A six-digit code valid in none of the steps around `now`.
fn wrong_code(secret: &str, now: i64) -> String {
    let valid: Vec<String> = [-30_000, 0, 30_000]
        .iter()
        .map(|offset| totp_code(secret, now + offset))
        .collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|code| !valid.contains(code))
        .unwrap()
}

/// A 2FA account with the owner's session, a session an attacker opened
/// with the stolen password and a code, and a pending challenge the
/// attacker holds. Returns (account id, TOTP secret, recovery codes, owner's
/// session, attacker's session, attacker's pending challenge); the clock is
/// left on a step no code was used in.
async fn account_with_a_stolen_session(
    app: &TestApp,
) -> (String, String, Vec<String>, String, String, String) {
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, codes, owner) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP);
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let stolen = app
        .verify_totp(&challenge, &totp_code(&secret, app.clock_now()))
        .await
        .unwrap();
    let pending = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    app.clock.advance(STEP);
    assert!(session_is_live(app, &owner.session_token).await);
    assert!(session_is_live(app, &stolen.session_token).await);
    (
        id,
        secret,
        codes,
        owner.session_token,
        stolen.session_token,
        pending,
    )
}

/// The attacker's pending challenge, completed with a fresh valid code, is
/// refused as dead.
async fn assert_challenge_dead(app: &TestApp, challenge: &str, secret: &str) {
    let status = app
        .verify_totp(challenge, &totp_code(secret, app.clock_now()))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TOKEN_INVALID", "{status:?}");
}

/// Online password guessing in parallel (the race behind many brute-force
/// limit bypasses, e.g. Instagram's 2019 reset-code race): 200 guesses sent
/// at once, hoping each reads the failure counter before any other writes
/// it. Only as many verifications as the back-off allows may run.
#[tokio::test]
pub async fn parallel_password_guessing_beyond_the_back_off_limit() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let client = app.client().await;
    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .login(pb::LoginRequest {
                        login: "jean".into(),
                        password: format!("wrong password number {i}"),
                    })
                    .await
                    .unwrap_err()
            })
        })
        .collect();
    let mut invalid = 0;
    let mut throttled = 0;
    for attempt in attempts {
        let status = attempt.await.unwrap();
        match status.code() {
            Code::Unauthenticated => invalid += 1,
            Code::ResourceExhausted => {
                assert_eq!(reason(&status), "LOGIN_BACKOFF");
                assert!(status
                    .get_details_retry_info()
                    .and_then(|r| r.retry_delay)
                    .is_some());
                throttled += 1;
            }
            other => panic!("unexpected {other:?}: {status:?}"),
        }
    }
    let free = app.ctx.config.login.free_failures as usize;
    assert!(
        invalid >= 1 && invalid <= free + 1,
        "{invalid} verifications ran"
    );
    assert_eq!(invalid + throttled, 200);
    // Every verification is accounted for; the counter never under-counts.
    let status = gardien::domain::accounts::status(
        &app.ctx,
        &gardien::domain::accounts::AccountSelector::Id(uuid::Uuid::parse_str(&id).unwrap()),
        app.ctx.now(),
    )
    .await
    .unwrap();
    assert_eq!(status.consecutive_failed_logins as usize, invalid);
    assert!(status.login_backoff_until.is_some());
}

/// User enumeration by timing (OpenSSH CVE-2016-6210 and many web logins):
/// an unknown login answered without hashing comes back in a fraction of the
/// time of a wrong password. Interleaved calls, medians after a warm-up,
/// and a generous bound keep this robust to a busy machine.
#[tokio::test]
pub async fn login_timing_reveals_which_logins_exist() {
    const WARM_UP: usize = 5;
    const SAMPLES: usize = 40;
    // Far from the back-off, which would otherwise dominate the timings.
    let app = spawn_app_with(|c| {
        c.login.free_failures = 99;
        c.login.max_failures = 100;
    })
    .await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let mut client = app.client().await;
    let mut ratios = Vec::new();
    // A second round only if the first was thrown off by noise.
    for round in 0..2 {
        let mut unknown = Vec::new();
        let mut wrong = Vec::new();
        for i in 0..WARM_UP + SAMPLES {
            for known in [i % 2 == 0, i % 2 != 0] {
                let login = if known {
                    "jean".to_string()
                } else {
                    format!("nobody-{round}-{i}")
                };
                let started = Instant::now();
                let status = client
                    .login(pb::LoginRequest {
                        login,
                        password: "not the right password at all".into(),
                    })
                    .await
                    .unwrap_err();
                let elapsed = started.elapsed().as_secs_f64();
                assert_eq!(reason(&status), "INVALID_CREDENTIALS", "{status:?}");
                if i >= WARM_UP {
                    if known { &mut wrong } else { &mut unknown }.push(elapsed);
                }
            }
        }
        let ratio = median(&mut unknown) / median(&mut wrong);
        if (0.5..=2.0).contains(&ratio) {
            return;
        }
        ratios.push(ratio);
    }
    panic!("unknown/wrong-password median time ratios {ratios:?} are outside 0.5..2.0");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Guessing the second factor with a phished password (the attack behind
/// the 2FA bypasses that simply ask for a new challenge after each wrong
/// code): wrong codes count against the same back-off as wrong passwords,
/// a new challenge does not reset the count, and once backed off even the
/// right code is refused until the delay has passed.
#[tokio::test]
pub async fn totp_guessing_across_fresh_challenges() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP);
    let wrong = wrong_code(&secret, app.clock_now());
    for _ in 0..2 {
        let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
        let status = app.verify_totp(&challenge, &wrong).await.unwrap_err();
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    }
    let status = app
        .client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: id,
                login: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // Two logins and two wrong codes: a new challenge did not reset the count.
    assert_eq!(status.consecutive_failed_logins, 4);

    // Guessing goes on into the back-off (the sixth failure starts it).
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    app.verify_totp(&challenge, &wrong).await.unwrap_err();
    let right = totp_code(&secret, app.clock_now());
    let throttled = app.verify_totp(&challenge, &right).await.unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted);
    assert_eq!(reason(&throttled), "LOGIN_BACKOFF");
    assert!(throttled.get_details_retry_info().is_some());
    let fresh = app
        .login_challenge("jean", STRONG_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(reason(&fresh), "LOGIN_BACKOFF");

    // It was the back-off that refused the right code: once it has passed,
    // the same code on the same challenge goes through.
    app.clock.advance(Duration::from_secs(2));
    app.verify_totp(&challenge, &right).await.unwrap();
}

/// TOTP replay (a code shoulder-surfed, phished in real time or read from a
/// proxy log, then used again within its validity window): a code opens at
/// most one login, whether replayed later or raced through many challenges
/// at once.
#[tokio::test]
pub async fn totp_code_replay() {
    let app = spawn_app_with(|c| {
        c.login.free_failures = 60;
        c.login.max_failures = 100;
    })
    .await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP * 2);

    let code = totp_code(&secret, app.clock_now());
    let first = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    app.verify_totp(&first, &code).await.unwrap();
    let replay = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let refused = app.verify_totp(&replay, &code).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");
    // A step later the code is still inside the ±1 step window, and still used.
    app.clock.advance(STEP);
    let refused = app.verify_totp(&replay, &code).await.unwrap_err();
    assert_eq!(reason(&refused), "INVALID_CREDENTIALS");

    // Raced: one fresh code through twenty challenges at once.
    app.clock.advance(STEP);
    let mut challenges = Vec::new();
    for _ in 0..20 {
        challenges.push(app.login_challenge("jean", STRONG_PASSWORD).await.unwrap());
    }
    let code = totp_code(&secret, app.clock_now());
    let client = app.client().await;
    let attempts: Vec<_> = challenges
        .into_iter()
        .map(|challenge| {
            let mut client = client.clone();
            let code = code.clone();
            tokio::spawn(async move {
                client
                    .verify_login_challenge(pb::VerifyLoginChallengeRequest {
                        challenge_token: challenge,
                        code: Some(Factor::TotpCode(code)),
                    })
                    .await
            })
        })
        .collect();
    let mut sessions = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => sessions += 1,
            Err(status) => assert_eq!(reason(&status), "INVALID_CREDENTIALS", "{status:?}"),
        }
    }
    assert_eq!(sessions, 1);
}

/// The next reset token (`gdr_…`) e-mailed to `recipient` that is not in `seen`.
async fn next_reset_token(app: &TestApp, recipient: &str, seen: &[String]) -> String {
    for _ in 0..300 {
        for mail in app.mails_to(recipient) {
            if mail.contains("token=gdr_") {
                let token = token_in(&mail);
                if !seen.contains(&token) {
                    return token;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no new reset e-mail to {recipient}");
}

async fn request_reset(app: &TestApp, login: &str) {
    app.client()
        .await
        .request_password_reset(pb::RequestPasswordResetRequest {
            login_or_email: login.into(),
        })
        .await
        .unwrap();
}

async fn complete_reset(
    app: &TestApp,
    token: &str,
    password: &str,
    second_factor: Option<pb::complete_password_reset_request::SecondFactor>,
) -> Result<(), tonic::Status> {
    app.client()
        .await
        .complete_password_reset(pb::CompletePasswordResetRequest {
            reset_token: token.into(),
            new_password: password.into(),
            second_factor,
        })
        .await
        .map(|_| ())
}

/// A stale reset link (an older e-mail in a compromised mailbox, or a link
/// the attacker requested before the customer secured the account) that
/// still works after a newer one was used or after the password changed.
#[tokio::test]
pub async fn reset_link_reuse_after_another_was_used_or_the_password_changed() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let mut seen = Vec::new();
    request_reset(&app, "jean").await;
    let older = next_reset_token(&app, "jean@example.fr", &seen).await;
    seen.push(older.clone());
    request_reset(&app, "jean").await;
    let newer = next_reset_token(&app, "jean@example.fr", &seen).await;
    seen.push(newer.clone());

    let status = complete_reset(&app, &older, THIRD_PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(
        reason(&status),
        "TOKEN_INVALID",
        "only the newest link is valid"
    );
    complete_reset(&app, &newer, NEW_PASSWORD, None)
        .await
        .unwrap();
    for used_or_older in [&older, &newer] {
        let status = complete_reset(&app, used_or_older, THIRD_PASSWORD, None)
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "TOKEN_INVALID");
    }

    // A link requested before a password change dies with the old password.
    request_reset(&app, "jean").await;
    let before_change = next_reset_token(&app, "jean@example.fr", &seen).await;
    let session = app.login("jean", NEW_PASSWORD).await.unwrap();
    app.client()
        .await
        .change_password(authed(
            &session.session_token,
            pb::ChangePasswordRequest {
                current_password: NEW_PASSWORD.into(),
                new_password: THIRD_PASSWORD.into(),
            },
        ))
        .await
        .unwrap();
    let status = complete_reset(&app, &before_change, STRONG_PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TOKEN_INVALID");
    app.login("jean", THIRD_PASSWORD).await.unwrap();
}

/// A stolen session that outlives the password change meant to lock the
/// attacker out (OWASP session management: change the password, end every
/// other session). The session making the change stays (ChangePasswordResponse).
#[tokio::test]
pub async fn stolen_session_used_after_a_password_change() {
    let app = spawn_app().await;
    let (_, secret, _, owner, stolen, pending) = account_with_a_stolen_session(&app).await;
    let changed = app
        .client()
        .await
        .change_password(authed(
            &owner,
            pb::ChangePasswordRequest {
                current_password: STRONG_PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!session_is_live(&app, &stolen).await);
    assert!(session_is_live(&app, &owner).await);
    assert_eq!(changed.sessions_revoked, 1);
    assert_challenge_dead(&app, &pending, &secret).await;
}

/// A stolen session that outlives the password reset of the seed's
/// procedure: after a reset no session survives, not even one the customer
/// had (no automatic login either).
#[tokio::test]
pub async fn stolen_session_used_after_a_password_reset() {
    let app = spawn_app().await;
    let (_, secret, _, owner, stolen, pending) = account_with_a_stolen_session(&app).await;
    request_reset(&app, "jean").await;
    let token = next_reset_token(&app, "jean@example.fr", &[]).await;
    let code = totp_code(&secret, app.clock_now());
    complete_reset(
        &app,
        &token,
        NEW_PASSWORD,
        Some(pb::complete_password_reset_request::SecondFactor::TotpCode(
            code,
        )),
    )
    .await
    .unwrap();
    assert!(!session_is_live(&app, &stolen).await);
    assert!(!session_is_live(&app, &owner).await);
    app.clock.advance(STEP);
    assert_challenge_dead(&app, &pending, &secret).await;
}

/// A stolen session that outlives the suspension the security team put on
/// a compromised password: the suspension must lock the attacker out at once.
#[tokio::test]
pub async fn stolen_session_used_after_a_suspension() {
    let app = spawn_app().await;
    let (id, secret, _, owner, stolen, pending) = account_with_a_stolen_session(&app).await;
    let suspended = app.suspend(&id).await;
    assert!(!session_is_live(&app, &stolen).await);
    assert!(!session_is_live(&app, &owner).await);
    assert_eq!(suspended.sessions_revoked, 2);
    assert_challenge_dead(&app, &pending, &secret).await;
}

/// A login whose password was still being checked when the security team
/// suspended it: whichever commits first, the suspension wins, and no
/// session is left that the suspension did not revoke.
#[tokio::test]
pub async fn login_racing_a_suspension() {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let app = spawn_app().await;
    let (mut refused, mut revoked) = (0, 0);
    for round in 0..12u64 {
        let login = format!("race{round}");
        let id = app
            .create_account(&login, &format!("{login}@example.fr"), STRONG_PASSWORD)
            .await;
        // From before the password is read to after it is verified.
        let delay = Duration::from_millis(round * 3);
        let (logged_in, _) = tokio::join!(app.login(&login, STRONG_PASSWORD), async {
            tokio::time::sleep(delay).await;
            app.suspend(&id).await
        });
        let granted = logged_in.is_ok();
        match logged_in {
            Ok(grant) => {
                revoked += 1;
                assert!(
                    !session_is_live(&app, &grant.session_token).await,
                    "round {round}: the session outlived the suspension"
                );
            }
            Err(status) => {
                refused += 1;
                assert_eq!(reason(&status), "PASSWORD_SUSPENDED", "round {round}");
            }
        }
        let account_id: uuid::Uuid = id.parse().unwrap();
        let live = gardien::entity::session::Entity::find()
            .filter(gardien::entity::session::Column::AccountId.eq(account_id))
            .filter(gardien::entity::session::Column::RevokedAt.is_null())
            .count(&app.ctx.db)
            .await
            .unwrap();
        assert_eq!(live, 0, "round {round}: a session row was left unrevoked");
        let written = gardien::entity::session::Entity::find()
            .filter(gardien::entity::session::Column::AccountId.eq(account_id))
            .count(&app.ctx.db)
            .await
            .unwrap();
        assert_eq!(
            written,
            u64::from(granted),
            "round {round}: a session is written exactly when one is granted"
        );
    }
    assert_eq!(refused + revoked, 12);
}

/// A stolen session that outlives turning 2FA off (which the customer does
/// from their own session, e.g. after losing the phone): the other sessions
/// and pending challenges end; the caller's session stays (DisableTotpResponse).
#[tokio::test]
pub async fn stolen_session_used_after_disabling_2fa() {
    let app = spawn_app().await;
    let (_, secret, codes, owner, stolen, pending) = account_with_a_stolen_session(&app).await;
    let disabled = app
        .client()
        .await
        .disable_totp(authed(
            &owner,
            pb::DisableTotpRequest {
                current_password: STRONG_PASSWORD.into(),
                code: Some(pb::disable_totp_request::Code::RecoveryCode(
                    codes[0].clone(),
                )),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!session_is_live(&app, &stolen).await);
    assert!(session_is_live(&app, &owner).await);
    assert_eq!(disabled.sessions_revoked, 1);
    assert_challenge_dead(&app, &pending, &secret).await;
}

/// Creates a customer with a session; returns (account id, session token).
async fn customer(app: &TestApp, login: &str) -> (String, String) {
    let id = app
        .create_account(login, &format!("{login}@example.fr"), STRONG_PASSWORD)
        .await;
    let session = app.login(login, STRONG_PASSWORD).await.unwrap();
    (id, session.session_token)
}

/// Insecure direct object reference on sessions: listing or revoking
/// another customer's session by its id.
#[tokio::test]
pub async fn reading_or_revoking_another_customers_sessions() {
    let app = spawn_app().await;
    let (_, jean) = customer(&app, "jean").await;
    app.create_account("marie", "marie@example.fr", STRONG_PASSWORD)
        .await;
    let marie = app.login("marie", STRONG_PASSWORD).await.unwrap();
    let listed = app
        .client()
        .await
        .list_sessions(authed(&jean, pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1);
    assert!(listed.iter().all(|s| s.session_id != marie.session_id));

    let revoke = |session_id: String| {
        let request = authed(&jean, pb::RevokeSessionRequest { session_id });
        let app = &app;
        async move {
            app.client()
                .await
                .revoke_session(request)
                .await
                .unwrap_err()
        }
    };
    let theirs = revoke(marie.session_id.clone()).await;
    let missing = revoke(unknown_id()).await;
    assert_same_answer(&theirs, &missing);
    assert!(session_is_live(&app, &marie.session_token).await);
}

/// Insecure direct object reference on the security journal: reading,
/// acknowledging (hiding) or disputing (which suspends and revokes)
/// another customer's events by id, or paging into their journal with a
/// cursor made from one of their event ids.
#[tokio::test]
pub async fn reading_acknowledging_or_disputing_another_customers_events() {
    let app = spawn_app().await;
    let (_, jean) = customer(&app, "jean").await;
    let (marie_id, marie) = customer(&app, "marie").await;
    let order = app
        .client()
        .await
        .record_activity(authed(
            &app.service_token,
            pb::RecordActivityRequest {
                account_id: marie_id,
                service_event_id: "billing-1".into(),
                kind: pb::ActivityKind::OrderPlaced.into(),
                reference: "ORD-1".into(),
                amount_minor: 100,
                currency: "EUR".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let journal = |token: &str, page_token: String, only_unacknowledged: bool| {
        let request = authed(
            token,
            pb::ListSecurityEventsRequest {
                page_size: 200,
                page_token,
                only_unacknowledged,
                ..Default::default()
            },
        );
        let app = &app;
        async move {
            app.client()
                .await
                .list_security_events(request)
                .await
                .unwrap()
                .into_inner()
                .events
                .into_iter()
                .map(|e| e.event_id)
                .collect::<Vec<_>>()
        }
    };
    let hers = journal(&marie, String::new(), false).await;
    assert!(hers.contains(&order.event_id));
    let his = journal(&jean, String::new(), false).await;
    assert!(!his.is_empty());
    assert!(his.iter().all(|id| !hers.contains(id)), "{his:?} {hers:?}");
    // A cursor pointing into her journal pages through his only.
    let newest_of_hers = {
        use base64::Engine;
        let id = uuid::Uuid::parse_str(&hers[0]).unwrap();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
    };
    let paged = journal(&jean, newest_of_hers, false).await;
    assert!(paged.iter().all(|id| !hers.contains(id)), "{paged:?}");

    let acknowledge = |event_id: String| {
        let request = authed(
            &jean,
            pb::AcknowledgeSecurityEventsRequest {
                event_ids: vec![event_id],
            },
        );
        let app = &app;
        async move {
            app.client()
                .await
                .acknowledge_security_events(request)
                .await
                .unwrap_err()
        }
    };
    let theirs = acknowledge(order.event_id.clone()).await;
    let missing = acknowledge(unknown_id()).await;
    assert_same_answer(&theirs, &missing);
    assert!(journal(&marie, String::new(), true)
        .await
        .contains(&order.event_id));

    let dispute = |event_id: String| {
        let request = authed(
            &jean,
            pb::DisputeSecurityEventRequest {
                event_id,
                comment: "not me".into(),
            },
        );
        let app = &app;
        async move {
            app.client()
                .await
                .dispute_security_event(request)
                .await
                .unwrap_err()
        }
    };
    let theirs = dispute(order.event_id.clone()).await;
    let missing = dispute(unknown_id()).await;
    assert_same_answer(&theirs, &missing);
    // Her account is untouched: not suspended, her session alive.
    assert!(session_is_live(&app, &marie).await);
    app.login("marie", STRONG_PASSWORD).await.unwrap();
}

fn ticket_request(request_id: &str, linked: Vec<String>) -> spb::CreateTicketRequest {
    spb::CreateTicketRequest {
        client_request_id: request_id.into(),
        category: spb::TicketCategory::SecurityVerification.into(),
        subject: "A login I do not recognise".into(),
        body: "There is a login from an address I do not know.".into(),
        linked_event_ids: linked,
    }
}

/// A customer's `GetTicket`, `AddTicketMessage` and `CloseTicket` on a
/// ticket id, each expected to fail.
async fn ticket_calls(app: &TestApp, token: &str, ticket_id: &str) -> [tonic::Status; 3] {
    let get = app
        .support()
        .await
        .get_ticket(authed(
            token,
            spb::GetTicketRequest {
                ticket_id: ticket_id.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    let message = app
        .support()
        .await
        .add_ticket_message(authed(
            token,
            spb::AddTicketMessageRequest {
                ticket_id: ticket_id.into(),
                body: "hi".into(),
                internal_note: false,
            },
        ))
        .await
        .unwrap_err();
    let close = app
        .support()
        .await
        .close_ticket(authed(
            token,
            spb::CloseTicketRequest {
                ticket_id: ticket_id.into(),
            },
        ))
        .await
        .unwrap_err();
    [get, message, close]
}

/// Insecure direct object reference on support tickets, and a customer
/// reaching for agent methods: another customer's ticket is NOT_FOUND
/// exactly as a missing one, whatever the call, and agent calls are denied.
#[tokio::test]
pub async fn reading_or_writing_another_customers_tickets() {
    let app = spawn_app().await;
    let (_, jean) = customer(&app, "jean").await;
    let (_, marie) = customer(&app, "marie").await;
    let ticket = app
        .support()
        .await
        .create_ticket(authed(&marie, ticket_request("", vec![])))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let theirs = ticket_calls(&app, &jean, &ticket.ticket_id).await;
    let missing = ticket_calls(&app, &jean, &unknown_id()).await;
    for (theirs, missing) in theirs.iter().zip(&missing) {
        assert_same_answer(theirs, missing);
    }
    let listed = app
        .support()
        .await
        .list_tickets(authed(&jean, spb::ListTicketsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tickets.is_empty());
    // Her ticket is untouched: still open, without his message.
    let hers = app
        .support()
        .await
        .get_ticket(authed(
            &marie,
            spb::GetTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hers.ticket.unwrap().status(), ticket.status());
    assert_eq!(hers.messages.len(), 1);

    // Agent methods are not for customers.
    let queue = app
        .support()
        .await
        .list_ticket_queue(authed(&jean, spb::ListTicketQueueRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(queue.code(), Code::PermissionDenied);
    let review = app
        .support()
        .await
        .get_account_review(authed(&jean, spb::GetAccountReviewRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(review.code(), Code::PermissionDenied);
    let note = app
        .support()
        .await
        .add_ticket_message(authed(
            &marie,
            spb::AddTicketMessageRequest {
                ticket_id: ticket.ticket_id,
                body: "x".into(),
                internal_note: true,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(note.code(), Code::PermissionDenied);
}

/// Reading another customer's contact history (old and new e-mail
/// addresses and phone numbers: the data an account takeover needs).
#[tokio::test]
pub async fn reading_another_customers_contact_history() {
    let app = spawn_app().await;
    let (_, jean) = customer(&app, "jean").await;
    let (_, marie) = customer(&app, "marie").await;
    app.client()
        .await
        .update_contact_details(authed(
            &marie,
            pb::UpdateContactDetailsRequest {
                phone: "+33611223344".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["phone".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let changes = |token: &str| {
        let request = authed(token, pb::ListContactChangesRequest::default());
        let app = &app;
        async move {
            app.client()
                .await
                .list_contact_changes(request)
                .await
                .unwrap()
                .into_inner()
                .changes
        }
    };
    assert_eq!(changes(&marie).await.len(), 1);
    assert!(changes(&jean).await.is_empty());
    let details = app
        .client()
        .await
        .get_contact_details(authed(&jean, pb::GetContactDetailsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .contact_details
        .unwrap();
    assert_eq!(details.email, "jean@example.fr");
    assert!(details.phone.is_empty());
}

/// A leaked service, agent or security-team credential used after the
/// operator revoked it with `gardien credential revoke`: refused on the very
/// next call, while the others keep working.
#[tokio::test]
async fn revoked_credential_reuse() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let status_of_jean = |token: &str| {
        let request = authed(
            token,
            pb::GetAccountStatusRequest {
                account_id: String::new(),
                login: "jean".into(),
            },
        );
        let app = &app;
        async move { app.client().await.get_account_status(request).await }
    };
    let credentials = [
        ("billing", app.service_token.clone()),
        ("secops", app.security_token.clone()),
        ("agent-alice", app.agent_token.clone()),
    ];
    for (name, token) in &credentials {
        status_of_jean(token).await.unwrap();
        let revoked = std::process::Command::new(env!("CARGO_BIN_EXE_gardien"))
            .args(["credential", "revoke", "--name", name])
            .env_clear()
            .env("GARDIEN_DATA_DIR", &app.ctx.config.data_dir)
            .env(
                "GARDIEN_DATABASE_URL",
                app.ctx.config.effective_database_url().expose_secret(),
            )
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&revoked.stderr);
        assert!(revoked.status.success(), "{said}");
        assert!(said.contains("revoked"), "{said}");
        if let Some(leak) = find_secret_in(&[revoked.stdout, revoked.stderr].concat()) {
            panic!("{leak}");
        }
        let refused = status_of_jean(token).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{name}: {refused:?}");
    }
}

/// The log check itself finds a registered secret anywhere in a line, and a
/// six-digit code as a word but not inside the timestamp or a longer number.
#[tokio::test]
async fn the_log_check_finds_a_registered_secret() {
    let password = "quartz umbrella 8841 sideways";
    register_secret(password);
    let line = format!("{{\"level\":\"INFO\",\"message\":\"x\",\"note\":\"{password}\"}}\n");
    let leak = find_secret_in(line.as_bytes()).expect("the password was not found");
    assert!(!leak.to_string().contains(password), "the report shows it");
    let nfd: String =
        unicode_normalization::UnicodeNormalization::nfd("crème brûlée du soir 77").collect();
    register_secret(&nfd);
    assert!(find_secret_in("crème brûlée du soir 77".as_bytes()).is_some());

    register_secret("938271");
    assert!(find_secret_in(b"{\"message\":\"code 938271 refused\"}").is_some());
    assert!(find_secret_in(
        b"{\"timestamp\":\"2026-01-01T00:00:00.938271Z\",\"latency_ms\":\"1938271.00\"}"
    )
    .is_none());
}

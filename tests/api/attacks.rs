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
    // The first delay is 1 s: on a slow machine the 200 calls outlast it,
    // and more verifications are then rightly allowed. Time stands still.
    app.clock.freeze();
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

/// A stale reset link (an older e-mail in a compromised mailbox, or a link
/// the attacker requested before the customer secured the account) that
/// still works after a newer one was used or after the password changed.
#[tokio::test]
pub async fn reset_link_reuse_after_another_was_used_or_the_password_changed() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let mut seen = Vec::new();
    app.request_reset("jean").await;
    let older = app.next_reset_token("jean@example.fr", &seen).await;
    seen.push(older.clone());
    app.request_reset("jean").await;
    let newer = app.next_reset_token("jean@example.fr", &seen).await;
    seen.push(newer.clone());

    let status = app
        .complete_reset(&older, THIRD_PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(
        reason(&status),
        "TOKEN_INVALID",
        "only the newest link is valid"
    );
    app.complete_reset(&newer, NEW_PASSWORD, None)
        .await
        .unwrap();
    for used_or_older in [&older, &newer] {
        let status = app
            .complete_reset(used_or_older, THIRD_PASSWORD, None)
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "TOKEN_INVALID");
    }

    // A link requested before a password change dies with the old password.
    app.request_reset("jean").await;
    let before_change = app.next_reset_token("jean@example.fr", &seen).await;
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
    let status = app
        .complete_reset(&before_change, STRONG_PASSWORD, None)
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
    app.request_reset("jean").await;
    let token = app.next_reset_token("jean@example.fr", &[]).await;
    let code = totp_code(&secret, app.clock_now());
    app.complete_reset(
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

/// Issue #20 (4): an anonymous caller opens a recovery ticket for someone
/// else's login, and an agent who acts on it removes the victim's 2FA. A
/// support reset needs an identity verification recorded on the ticket.
#[tokio::test]
pub async fn an_anonymous_recovery_ticket_cannot_remove_2fa() {
    let app = spawn_app().await;
    let id = app
        .create_account("victim", "victim@example.fr", STRONG_PASSWORD)
        .await;
    app.enable_totp("victim", STRONG_PASSWORD).await;
    app.support()
        .await
        .create_recovery_ticket(spb::CreateRecoveryTicketRequest {
            login_or_email: "victim".into(),
            reachable_contact: "attacker@example.net".into(),
            description: "I lost my phone, please remove my 2FA.".into(),
        })
        .await
        .unwrap();
    let queue = app
        .support()
        .await
        .list_ticket_queue(authed(
            &app.agent_token,
            spb::ListTicketQueueRequest {
                unverified_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let ticket = queue.iter().find(|t| t.account_id == id).unwrap();

    let refused = app
        .reset_totp(&id, &ticket.ticket_id, "caller says they lost their phone")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "IDENTITY_NOT_VERIFIED");
    assert!(app.totp_enabled(&id).await);
    // Even once any delay would be over, the factor is still there.
    app.clock.advance(Duration::from_secs(48 * 3600));
    gardien::domain::factor_reset::complete_due(&app.ctx, app.clock_now())
        .await
        .unwrap();
    assert!(app.totp_enabled(&id).await, "2FA was removed");
    app.login_challenge("victim", STRONG_PASSWORD)
        .await
        .unwrap();
    assert!(!app
        .events_of(&id)
        .await
        .iter()
        .any(|kind| kind == "totp_disabled" || kind == "factor_reset_requested"));
}

/// The holder of a mailbox the customer left keeps a way in: a reset link
/// (or a "this wasn't me" link, or a login reminder still queued) mailed
/// to the old address before the contact e-mail changed still works after
/// the change was confirmed (issue 20, item 3).
#[tokio::test]
pub async fn reset_link_mailed_to_the_old_address_outlives_the_e_mail_change() {
    use gardien::{
        domain::types::Locale,
        entity::outbox,
        mail::{outbox as queue, Mail},
    };
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("jean").await;
    let old_link = app.next_reset_token("jean@example.fr", &[]).await;
    // A login reminder still waiting in the outbox (a relay outage's
    // back-off) when the change is confirmed.
    let in_an_hour = app.clock_now() + 3_600_000;
    let reminder = queue::enqueue(
        &app.ctx.db,
        &app.ctx.config.mail,
        &app.ctx.sealer,
        in_an_hour,
        Some(uuid::Uuid::parse_str(&id).unwrap()),
        "jean@example.fr",
        Locale::En,
        &Mail::LoginRecovery {
            logins: vec!["jean".into()],
        },
    )
    .await
    .unwrap();

    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .update_contact_details(authed(
            &session.session_token,
            pb::UpdateContactDetailsRequest {
                email: "jean.new@example.org".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let confirmation = app.wait_for_mails("jean.new@example.org", 1).await;
    let old_mails = app.wait_for_mails("jean@example.fr", 2).await;
    let old_report_link = old_mails
        .iter()
        .find(|m| m.contains("token=gdx_"))
        .map(|m| {
            let start = m.find("token=gdx_").unwrap() + "token=".len();
            m[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect::<String>()
        })
        .unwrap();
    let start = confirmation[0].find("token=gde_").unwrap() + "token=".len();
    let confirmation_token: String = confirmation[0][start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    app.client()
        .await
        .confirm_email_change(pb::ConfirmEmailChangeRequest { confirmation_token })
        .await
        .unwrap();

    let status = app
        .complete_reset(&old_link, NEW_PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TOKEN_INVALID");
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let status = app
        .client()
        .await
        .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
            report_token: old_report_link,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TOKEN_INVALID");
    let row = outbox::Entity::find()
        .filter(outbox::Column::Id.eq(reminder))
        .one(&app.ctx.db)
        .await
        .unwrap();
    assert!(
        !matches!(row, Some(row) if row.status == queue::PENDING),
        "the reminder would still go out"
    );

    // A link requested now goes to the new address and works.
    app.reset_password_by_email("jean", "jean.new@example.org", NEW_PASSWORD)
        .await;
}

/// `message` as sent by a trusted proxy on behalf of `address`.
fn forwarded_for<T>(address: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "x-forwarded-for",
        tonic::metadata::MetadataValue::try_from(address).unwrap(),
    );
    request
}

/// How many reset links and how many other e-mails (login reminders) each
/// of `recipients` has on disk, in one pass.
fn mail_counts(app: &TestApp, recipients: &[String]) -> Vec<(usize, usize)> {
    let mut counts = vec![(0, 0); recipients.len()];
    let Ok(entries) = std::fs::read_dir(&app.mail_dir) else {
        return counts;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Some(to) = text.lines().find(|l| l.starts_with("To:")) else {
            continue;
        };
        let to = to.to_string();
        if let Some(i) = recipients.iter().position(|r| to.contains(r.as_str())) {
            if text.contains("token=gdr_") {
                counts[i].0 += 1;
            } else {
                counts[i].1 += 1;
            }
        }
    }
    counts
}

/// A `Login` (from a new forwarded address each time) and a
/// `GetAccountStatus`, each timed.
async fn probe(app: &TestApp, n: usize, probe_id: &str) -> (Duration, Duration) {
    let started = Instant::now();
    app.client()
        .await
        .login(forwarded_for(
            &format!("192.0.2.{}", n % 250),
            pb::LoginRequest {
                login: "prober".into(),
                password: STRONG_PASSWORD.into(),
            },
        ))
        .await
        .unwrap_or_else(|status| panic!("Login failed: {status:?}"));
    let login_took = started.elapsed();
    let started = Instant::now();
    app.client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: probe_id.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|status| panic!("GetAccountStatus failed: {status:?}"));
    (login_took, started.elapsed())
}

/// Issue 20 item 2: 80 anonymous `RequestPasswordReset` / `RecoverLogin`
/// calls for 40 known accounts, back to back from 10 addresses each within
/// its limit, once held the whole connection pool (a transaction waiting
/// for a second connection, unbounded tasks): a concurrent `Login` and
/// `GetAccountStatus` waited 5 s and e-mails were lost.
#[tokio::test]
async fn anonymous_reset_burst_starving_the_pool() {
    const ACCOUNTS: usize = 40;
    const ADDRESSES: usize = 10;
    const ROUNDS: usize = 3;
    let app = spawn_app_with(|config| {
        config.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
        // The production limit on credential endpoints: 8 calls per address
        // and round stay within its burst of 10.
        config.rate_limit.credential.per_address = gardien::config::Limit::new(30, 10);
    })
    .await;
    let mut logins = Vec::new();
    let mut emails = Vec::new();
    for i in 0..ACCOUNTS {
        let (login, email) = (format!("burst{i:02}"), format!("burst{i:02}@example.fr"));
        app.create_account(&login, &email, STRONG_PASSWORD).await;
        logins.push(login);
        emails.push(email);
    }
    let probe_id = app
        .create_account("prober", "prober@example.fr", STRONG_PASSWORD)
        .await;
    let clients: Vec<AsClient> =
        futures::future::join_all((0..ADDRESSES).map(|_| app.client())).await;

    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    // The same calls with no burst running, for comparison.
    let quiet = probe(&app, 250, &probe_id).await;
    for round in 1..=ROUNDS {
        // A fresh hour: per-address and per-account limits start over.
        app.clock.advance(Duration::from_secs(3600));
        let calls = (0..ACCOUNTS).flat_map(|i| {
            let address = format!("198.51.100.{}", 10 * round + i % ADDRESSES);
            let mut reset_client = clients[i % ADDRESSES].clone();
            let mut recover_client = reset_client.clone();
            let (login, email, reset_from) =
                (logins[i].clone(), emails[i].clone(), address.clone());
            let reset = async move {
                reset_client
                    .request_password_reset(forwarded_for(
                        &reset_from,
                        pb::RequestPasswordResetRequest {
                            login_or_email: login,
                        },
                    ))
                    .await
                    .map(|_| ())
            };
            let recover = async move {
                recover_client
                    .recover_login(forwarded_for(&address, pb::RecoverLoginRequest { email }))
                    .await
                    .map(|_| ())
            };
            [
                Box::pin(reset) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
                Box::pin(recover),
            ]
        });
        for answer in futures::future::join_all(calls).await {
            answer
                .unwrap_or_else(|status| panic!("round {round}: a burst call failed: {status:?}"));
        }

        // While the burst is worked off, other calls answer promptly.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Links and reminders counted apart: a reminder sent twice
            // cannot hide a link that was lost.
            let counts = mail_counts(&app, &emails);
            if counts
                .iter()
                .all(|&(links, others)| links >= round && others >= round)
            {
                assert!(
                    counts.iter().all(|&c| c == (round, round)),
                    "round {round}: one link and one reminder per account: {counts:?}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: e-mails missing after 30 s (links, reminders): {counts:?}"
            );
            probes += 1;
            let (login_took, status_took) = probe(&app, probes, &probe_id).await;
            slowest = slowest.max(login_took.max(status_took));
            // The defect stalled calls for 5 s (the pool's acquire timeout)
            // and then failed them. This bound catches that on a test
            // machine shared with the rest of the suite; the 500 ms target
            // itself is measured by the benchmark (`gardien-bench
            // reset-burst`), as timings are on these shared machines.
            let bound = |quiet: Duration| Duration::from_millis(2_000) + 2 * quiet;
            assert!(
                login_took < bound(quiet.0) && status_took < bound(quiet.1),
                "round {round}: Login took {login_took:?}, GetAccountStatus {status_took:?} \
                 during the burst (before it: {quiet:?})"
            );
        }
    }
    assert!(
        probes >= ROUNDS,
        "the probes ran while the burst was worked off"
    );
    eprintln!("{probes} probes during the bursts, slowest {slowest:?}; with no burst {quiet:?}");
    // Every link and reminder went out: the texts say so.
    for email in &emails {
        let mails = app.mails_to(email);
        assert_eq!(
            mails.iter().filter(|m| m.contains("token=gdr_")).count(),
            ROUNDS
        );
    }
}

/// Issue 20 item 2: a reset or reminder request answered OK lived only in
/// memory until a worker took it, so a crash (SIGKILL, OOM kill) lost it.
/// Now it is recorded before the answer: killed with requests still
/// waiting, the restarted real binary sends every link and reminder, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn requests_answered_ok_survive_a_sigkill() {
    use gardien::entity::pending_request;
    use sea_orm::{EntityTrait, PaginatorTrait};

    use crate::faults::process::Deployment;

    const ACCOUNTS: usize = 120;
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = Deployment::new(dir.path(), fresh_postgres_url().await);
    // One worker and a small queue, so that a burst outruns them and the
    // kill finds work left: requests handed to the worker, and requests
    // the full queue left to the sweeper.
    deployment.set("GARDIEN_BACKGROUND__WORKERS", 1);
    deployment.set("GARDIEN_BACKGROUND__QUEUE_CAPACITY", 8);
    deployment.set("GARDIEN_BACKGROUND__RESCAN_MS", 200);
    let service = deployment.credential("service", "billing").await;
    let mut server = deployment.start().await;
    let client =
        pb::account_security_service_client::AccountSecurityServiceClient::new(server.channel());

    // Rounds of fresh accounts until a kill lands with requests waiting.
    let mut requested: Vec<(String, String)> = Vec::new();
    let mut left_at_kill = 0;
    for round in 0..3 {
        let accounts: Vec<(String, String)> = (0..ACCOUNTS)
            .map(|i| {
                (
                    format!("crash{round}x{i:03}"),
                    format!("crash{round}x{i:03}@example.fr"),
                )
            })
            .collect();
        for (login, email) in &accounts {
            client
                .clone()
                .create_account(authed(
                    &service,
                    pb::CreateAccountRequest {
                        login: login.clone(),
                        email: email.clone(),
                        locale: pb::Locale::En.into(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap();
        }
        // Half ask for a reset link, half for their login.
        let calls = accounts.iter().enumerate().map(|(i, (login, email))| {
            let mut client = client.clone();
            let (login, email) = (login.clone(), email.clone());
            async move {
                if i % 2 == 0 {
                    client
                        .request_password_reset(pb::RequestPasswordResetRequest {
                            login_or_email: login,
                        })
                        .await
                        .map(|_| ())
                } else {
                    client
                        .recover_login(pb::RecoverLoginRequest { email })
                        .await
                        .map(|_| ())
                }
            }
        });
        for answer in futures::future::join_all(calls).await {
            answer.unwrap_or_else(|status| panic!("a request was refused: {status:?}"));
        }
        // Every caller was told OK: kill at once.
        server.kill().await;
        requested.extend(accounts);
        let db = deployment.connect_db().await;
        left_at_kill = pending_request::Entity::find().count(&db).await.unwrap();
        if left_at_kill > 0 {
            break;
        }
        server = deployment.start().await;
    }
    assert!(
        left_at_kill > 0,
        "every request was done before the kill, three times"
    );

    let server = deployment.start().await;
    let db = deployment.connect_db().await;
    // A request is done when its e-mail is in the outbox (committed with the
    // request's deletion); the outbox's own crash safety is tested in
    // `faults::crash` (a message leased by the killed process is sent once
    // its lease ends).
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let queued: Vec<String> = gardien::entity::outbox::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.recipient)
            .collect();
        let counts: Vec<usize> = requested
            .iter()
            .map(|(_, email)| queued.iter().filter(|to| *to == email).count())
            .collect();
        let waiting = pending_request::Entity::find().count(&db).await.unwrap();
        if waiting == 0 && counts.iter().all(|&n| n >= 1) {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "60 s after the restart {waiting} requests wait and {} of {} e-mails are queued:\n{}",
            counts.iter().filter(|&&n| n >= 1).count(),
            requested.len(),
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        counts.iter().all(|&n| n == 1),
        "each request is done once: {counts:?}"
    );
    // And they go out.
    let sent = requested
        .iter()
        .filter(|(_, email)| mails_in_dir(&deployment.mail_dir, email).len() == 1)
        .count();
    eprintln!(
        "killed with {left_at_kill} of {} requests waiting; all done once after the restart, \
         {sent} e-mails already sent",
        requested.len()
    );
    assert!(sent > 0, "the restarted outbox sends");
}

/// Requests the full queue left in the database are worked off at the
/// workers' pace, not one sweep (`background.rescan_ms`, 2 s) at a time,
/// and each is done once although the sweeper hands them over repeatedly.
#[tokio::test]
async fn a_backlog_beyond_the_queue_is_worked_off_promptly_and_once() {
    const ACCOUNTS: usize = 40;
    let app = spawn_app_with(|config| {
        config.background.workers = 1;
        config.background.queue_capacity = 2;
    })
    .await;
    let emails: Vec<String> = (0..ACCOUNTS)
        .map(|i| format!("backlog{i:02}@example.fr"))
        .collect();
    for (i, email) in emails.iter().enumerate() {
        app.create_account(&format!("backlog{i:02}"), email, STRONG_PASSWORD)
            .await;
    }
    let client = app.client().await;
    let calls = emails.iter().map(|email| {
        let mut client = client.clone();
        let email = email.clone();
        async move {
            client
                .recover_login(pb::RecoverLoginRequest { email })
                .await
                .map(|_| ())
        }
    });
    for answer in futures::future::join_all(calls).await {
        answer.unwrap();
    }
    // What the queue could not take is handed over once its hand-off time
    // has passed.
    app.clock.advance(Duration::from_secs(6));
    let started = Instant::now();
    loop {
        let sent: Vec<usize> = emails.iter().map(|e| app.mails_to(e).len()).collect();
        if sent.iter().all(|&n| n >= 1) {
            assert!(sent.iter().all(|&n| n == 1), "{sent:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} of {ACCOUNTS} reminders sent after 15 s",
            sent.iter().filter(|&&n| n >= 1).count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "backlog of {ACCOUNTS} worked off in {:?}",
        started.elapsed()
    );
}

/// Issue 20 item 5: behind a trusted proxy, sessions, security events and
/// the new-address notice recorded the proxy's address, so the notice never
/// fired. An untrusted peer's `x-forwarded-for` stays ignored everywhere.
#[tokio::test]
async fn forwarded_client_address_behind_a_trusted_proxy() {
    async fn login_from(app: &TestApp, address: &str) -> String {
        let answer = app
            .client()
            .await
            .login(forwarded_for(
                address,
                pb::LoginRequest {
                    login: "jean".into(),
                    password: STRONG_PASSWORD.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        match answer.result {
            Some(pb::login_response::Result::Session(grant)) => grant.session_token,
            other => panic!("expected a session, got {other:?}"),
        }
    }
    async fn addresses_seen(app: &TestApp, token: &str) -> (Vec<String>, Vec<String>) {
        let mut client = app.client().await;
        let sessions = client
            .list_sessions(authed(token, pb::ListSessionsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .sessions
            .into_iter()
            .map(|s| s.client_address)
            .collect();
        let events = client
            .list_security_events(authed(
                token,
                pb::ListSecurityEventsRequest {
                    page_size: 100,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .events
            .into_iter()
            .filter(|e| e.kind() == pb::SecurityEventKind::LoginSucceeded)
            .map(|e| e.client_address)
            .collect();
        (sessions, events)
    }

    // Behind a trusted proxy: the forwarded address, everywhere.
    let app = spawn_app_with(|config| {
        config.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let token = login_from(&app, "203.0.113.7").await;
    let (sessions, events) = addresses_seen(&app, &token).await;
    assert_eq!(sessions, ["203.0.113.7"]);
    assert_eq!(events, ["203.0.113.7"]);

    let token = login_from(&app, "198.51.100.23").await;
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("198.51.100.23") && m.contains("token=gdx_")),
        "the new-address notice names the client"
    );
    assert!(
        mails.iter().all(|m| !m.contains("127.0.0.1")),
        "no notice names the proxy"
    );
    let (sessions, events) = addresses_seen(&app, &token).await;
    assert_eq!(sessions, ["198.51.100.23", "203.0.113.7"]);
    assert_eq!(events.len(), 2);
    assert!(events.contains(&"198.51.100.23".to_string()));

    // No trusted proxy: the header is ignored, the peer is recorded, and a
    // "new" forwarded address is no new address.
    let direct = spawn_app().await;
    direct
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    login_from(&direct, "203.0.113.7").await;
    let token = login_from(&direct, "198.51.100.23").await;
    let (sessions, events) = addresses_seen(&direct, &token).await;
    assert_eq!(sessions, ["127.0.0.1", "127.0.0.1"]);
    assert_eq!(events, ["127.0.0.1", "127.0.0.1"]);
    // A notice would have been queued with the login, before this reminder.
    direct
        .client()
        .await
        .recover_login(pb::RecoverLoginRequest {
            email: "jean@example.fr".into(),
        })
        .await
        .unwrap();
    let mails = direct.wait_for_mails("jean@example.fr", 1).await;
    assert_eq!(mails.len(), 1, "only the reminder: no new-address notice");
    assert!(!mails[0].contains("token=gdx_"));
}

/// Someone holding a session moves the contact e-mail to their own mailbox;
/// the customer reports it with the link the old address received. The
/// report must give the contact e-mail back to the reporter, so the
/// suspension notice and the next reset link reach the customer, not the
/// mailbox of the one who took the account.
#[tokio::test]
pub async fn a_reported_e_mail_change_gives_the_address_back_to_the_reporter() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let stolen = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .update_contact_details(authed(
            &stolen.session_token,
            pb::UpdateContactDetailsRequest {
                email: "thief@example.net".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let confirmation = app.wait_for_mails("thief@example.net", 1).await;
    app.client()
        .await
        .confirm_email_change(pb::ConfirmEmailChangeRequest {
            confirmation_token: crate::centre::link_token(&confirmation[0], "gde_"),
        })
        .await
        .unwrap();
    let old = app.wait_for_mails("jean@example.fr", 2).await;
    let report_token = crate::centre::link_token(&old[1], "gdx_");
    app.client()
        .await
        .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
            report_token,
            comment: "I did not change my e-mail".into(),
        })
        .await
        .unwrap();

    // The reporter's address is the contact e-mail again: the notices of
    // the report and the reset link go there, none to the thief.
    let thief_before = app.mails_to("thief@example.net").len();
    app.request_reset("jean").await;
    let link = app.next_reset_token("jean@example.fr", &[]).await;
    assert!(link.starts_with("gdr_"));
    assert_eq!(
        app.mails_to("thief@example.net").len(),
        thief_before,
        "a mail went to the address the report disowned"
    );
    assert!(
        app.mails_to("thief@example.net")
            .iter()
            .all(|m| !m.contains("token=gdr_")),
        "a reset link reached the thief"
    );
    app.complete_reset(&link, NEW_PASSWORD, None).await.unwrap();
    let back = app.login("jean", NEW_PASSWORD).await.unwrap();
    let contact = app
        .client()
        .await
        .get_contact_details(authed(&back.session_token, pb::GetContactDetailsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contact.contact_details.unwrap().email, "jean@example.fr");
}

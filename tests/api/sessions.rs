//! Session lifetimes and revocation, and password changes.

use std::time::Duration;

use gardien::proto::accountsecurity::v1 as pb;
use tonic::Code;

use crate::helpers::*;

async fn list(app: &TestApp, token: &str) -> Result<pb::ListSessionsResponse, tonic::Status> {
    app.client()
        .await
        .list_sessions(authed(token, pb::ListSessionsRequest::default()))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
pub async fn an_idle_session_expires_after_the_idle_timeout() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.clock.advance(Duration::from_secs(59 * 60));
    list(&app, &grant.session_token).await.unwrap();
    app.clock.advance(Duration::from_secs(61 * 60));
    assert_eq!(
        list(&app, &grant.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
pub async fn an_active_session_still_ends_at_its_absolute_lifetime() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    for _ in 0..23 {
        app.clock.advance(Duration::from_secs(30 * 60));
        list(&app, &grant.session_token).await.unwrap();
    }
    app.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        list(&app, &grant.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
pub async fn logout_and_revocation_take_effect_on_the_very_next_call() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let first = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let second = app.login("jean", STRONG_PASSWORD).await.unwrap();
    assert_eq!(
        list(&app, &first.session_token)
            .await
            .unwrap()
            .sessions
            .len(),
        2
    );

    app.client()
        .await
        .revoke_session(authed(
            &first.session_token,
            pb::RevokeSessionRequest {
                session_id: second.session_id.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        list(&app, &second.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    app.client()
        .await
        .logout(authed(&first.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();
    assert_eq!(
        list(&app, &first.session_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
pub async fn introspection_follows_revocation_immediately() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let introspect = |token: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .introspect_session(authed(
                    &app.service_token,
                    pb::IntrospectSessionRequest {
                        session_token: token,
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let answer = introspect(grant.session_token.clone()).await;
    assert!(answer.active);
    assert_eq!(answer.account_id, id);
    assert!(!answer.second_factor_used);
    app.client()
        .await
        .logout(authed(&grant.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();
    assert!(!introspect(grant.session_token.clone()).await.active);
    assert!(!introspect("gds_garbage".into()).await.active);
    // A customer may not introspect.
    let other = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let status = app
        .client()
        .await
        .introspect_session(authed(
            &other.session_token,
            pb::IntrospectSessionRequest {
                session_token: other.session_token.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
pub async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let here = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let change = |current: &str, new: &str| {
        let request = authed(
            &here.session_token,
            pb::ChangePasswordRequest {
                current_password: current.into(),
                new_password: new.into(),
            },
        );
        let app = &app;
        async move { app.client().await.change_password(request).await }
    };
    let wrong = change("not my password at all", NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let weak = change(STRONG_PASSWORD, "jean-jean-jean-jean")
        .await
        .unwrap_err();
    assert_eq!(weak.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&weak), ["new_password"]);

    let done = change(STRONG_PASSWORD, NEW_PASSWORD)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.sessions_revoked, 1);
    assert_eq!(
        list(&app, &elsewhere.session_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    list(&app, &here.session_token).await.unwrap();
    assert!(app.login("jean", STRONG_PASSWORD).await.is_err());
    app.login("jean", NEW_PASSWORD).await.unwrap();
    assert!(app
        .events_of(&id)
        .await
        .contains(&"password_changed".to_string()));
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert!(mails[0].contains("Subject: Your password was changed"));
}

// Revoked sessions say why (SESSION_REVOKED and its cause), and sessions
// ended as a side effect leave a SESSION_REVOKED event naming them.

/// The old token's next call: UNAUTHENTICATED / SESSION_REVOKED with `cause`.
async fn assert_revoked(app: &TestApp, token: &str, cause: &str) -> tonic::Status {
    use tonic_types::StatusExt;
    let status = list(app, token).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "SESSION_REVOKED", "{status:?}");
    assert_eq!(info.domain, "gardien");
    assert_eq!(
        info.metadata.get("cause").map(String::as_str),
        Some(cause),
        "{status:?}"
    );
    status
}

/// The caller's SESSION_REVOKED events, newest first.
async fn revoked_events(app: &TestApp, token: &str) -> Vec<pb::SecurityEvent> {
    app.client()
        .await
        .list_security_events(authed(
            token,
            pb::ListSecurityEventsRequest {
                kinds: vec![pb::SecurityEventKind::SessionRevoked.into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events
}

/// The one SESSION_REVOKED event with `cause` names exactly `ended`.
fn assert_event_names(
    events: &[pb::SecurityEvent],
    cause: &str,
    ended: &[&str],
    actor: pb::ActorKind,
) {
    let found: Vec<_> = events
        .iter()
        .filter(|e| e.details.get("cause").map(String::as_str) == Some(cause))
        .collect();
    assert_eq!(found.len(), 1, "one {cause} event in {events:?}");
    let event = found[0];
    assert_eq!(event.actor.as_ref().unwrap().kind(), actor);
    assert_eq!(event.details["sessions_revoked"], ended.len().to_string());
    let mut listed: Vec<&str> = event.details["session_ids"].split(',').collect();
    listed.sort_unstable();
    let mut expected = ended.to_vec();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}

async fn introspect_cause(app: &TestApp, token: &str) -> pb::IntrospectSessionResponse {
    app.client()
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
}

#[tokio::test]
pub async fn a_session_ended_by_a_suspension_says_so_until_its_lifetime_is_over() {
    use tonic_types::StatusExt;
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let grant = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.suspend(&id).await;

    let status = assert_revoked(&app, &grant.session_token, "SUSPENSION").await;
    // The front end can send the customer to the reset procedure.
    let help = status.get_details_help().unwrap();
    assert_eq!(help.links[0].url, app.ctx.config.mail.help_url);
    let introspected = introspect_cause(&app, &grant.session_token).await;
    assert!(!introspected.active);
    assert_eq!(
        introspected.revocation_cause(),
        pb::SessionRevocationCause::Suspension
    );
    assert!(introspected.account_id.is_empty());

    // Past the idle timeout it still says why; past the absolute lifetime
    // it is expired like any other token.
    app.clock.advance(Duration::from_secs(2 * 3600));
    assert_revoked(&app, &grant.session_token, "SUSPENSION").await;
    app.clock.advance(Duration::from_secs(11 * 3600));
    let expired = list(&app, &grant.session_token).await.unwrap_err();
    assert_eq!(expired.code(), Code::Unauthenticated);
    assert_eq!(reason(&expired), "UNAUTHENTICATED");
    assert_eq!(
        introspect_cause(&app, &grant.session_token)
            .await
            .revocation_cause(),
        pb::SessionRevocationCause::Unspecified
    );

    // The journal names the session the suspension ended (the reset that
    // follows ends none, so records none).
    app.reset_password_by_email("jean@example.fr", "jean@example.fr", NEW_PASSWORD)
        .await;
    let back = app.login("jean", NEW_PASSWORD).await.unwrap();
    let events = revoked_events(&app, &back.session_token).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_event_names(
        &events,
        "SUSPENSION",
        &[&grant.session_id],
        pb::ActorKind::SecurityTeam,
    );
}

#[tokio::test]
pub async fn a_password_reset_tells_every_old_session_and_records_them() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let first = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let second = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.reset_password_by_email("jean@example.fr", "jean@example.fr", NEW_PASSWORD)
        .await;

    assert_revoked(&app, &first.session_token, "PASSWORD_RESET").await;
    assert_revoked(&app, &second.session_token, "PASSWORD_RESET").await;
    let back = app.login("jean", NEW_PASSWORD).await.unwrap();
    assert_event_names(
        &revoked_events(&app, &back.session_token).await,
        "PASSWORD_RESET",
        &[&first.session_id, &second.session_id],
        pb::ActorKind::Customer,
    );
}

#[tokio::test]
pub async fn a_password_change_tells_the_other_sessions_and_records_them() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let here = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .change_password(authed(
            &here.session_token,
            pb::ChangePasswordRequest {
                current_password: STRONG_PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
            },
        ))
        .await
        .unwrap();

    assert_event_names(
        &revoked_events(&app, &here.session_token).await,
        "PASSWORD_CHANGE",
        &[&elsewhere.session_id],
        pb::ActorKind::Customer,
    );
    assert_revoked(&app, &elsewhere.session_token, "PASSWORD_CHANGE").await;
}

#[tokio::test]
pub async fn turning_2fa_off_tells_the_other_sessions_and_records_them() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (_, codes, here) = app.enable_totp("jean", STRONG_PASSWORD).await;
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = app
        .verify_challenge(
            &challenge,
            pb::verify_login_challenge_request::Code::RecoveryCode(codes[0].clone()),
        )
        .await
        .unwrap();
    app.client()
        .await
        .disable_totp(authed(
            &here.session_token,
            pb::DisableTotpRequest {
                current_password: STRONG_PASSWORD.into(),
                code: Some(pb::disable_totp_request::Code::RecoveryCode(
                    codes[1].clone(),
                )),
            },
        ))
        .await
        .unwrap();

    assert_event_names(
        &revoked_events(&app, &here.session_token).await,
        "TOTP_DISABLED",
        &[&elsewhere.session_id],
        pb::ActorKind::Customer,
    );
    assert_revoked(&app, &elsewhere.session_token, "TOTP_DISABLED").await;
}

#[tokio::test]
pub async fn a_dispute_tells_the_sessions_it_ended_and_records_them() {
    // A dispute that does not suspend: the disputing session stays.
    let app = spawn_app_with(|config| config.information_centre.suspend_on_dispute = vec![]).await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let order = app
        .client()
        .await
        .record_activity(authed(
            &app.service_token,
            pb::RecordActivityRequest {
                account_id: id.clone(),
                service_event_id: "billing-1".into(),
                kind: pb::ActivityKind::OrderPlaced.into(),
                reference: "ORD-1".into(),
                amount_minor: 1_000,
                currency: "eur".into(),
                items_summary: "1 × domain".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let here = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let disputed = app
        .client()
        .await
        .dispute_security_event(authed(
            &here.session_token,
            pb::DisputeSecurityEventRequest {
                event_id: order.event_id,
                comment: "not me".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!disputed.password_suspended);

    assert_event_names(
        &revoked_events(&app, &here.session_token).await,
        "DISPUTE",
        &[&elsewhere.session_id],
        pb::ActorKind::Customer,
    );
    assert_revoked(&app, &elsewhere.session_token, "DISPUTE").await;
}

#[tokio::test]
pub async fn a_dispute_that_suspends_ends_every_session_as_a_suspension() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let here = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let event_id = app
        .client()
        .await
        .list_security_events(authed(
            &here.session_token,
            pb::ListSecurityEventsRequest {
                kinds: vec![pb::SecurityEventKind::LoginSucceeded.into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events[0]
        .event_id
        .clone();
    app.client()
        .await
        .dispute_security_event(authed(
            &here.session_token,
            pb::DisputeSecurityEventRequest {
                event_id,
                comment: "not me".into(),
            },
        ))
        .await
        .unwrap();

    // The front end sends the customer to the reset procedure.
    assert_revoked(&app, &here.session_token, "SUSPENSION").await;
    app.reset_password_by_email("jean@example.fr", "jean@example.fr", NEW_PASSWORD)
        .await;
    let back = app.login("jean", NEW_PASSWORD).await.unwrap();
    let events = revoked_events(&app, &back.session_token).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_event_names(
        &events,
        "SUSPENSION",
        &[&here.session_id],
        pb::ActorKind::Customer,
    );
    assert!(app
        .events_of(&id)
        .await
        .contains(&"event_disputed".to_string()));
}

#[tokio::test]
pub async fn a_support_2fa_reset_tells_the_sessions_and_records_them() {
    use gardien::proto::support::v1 as spb;
    let app = spawn_app_with(|config| {
        config.support.factor_reset_poll_ms = 20;
        config.session.absolute_ttl_secs = 72 * 3600;
        config.session.idle_ttl_secs = 72 * 3600;
    })
    .await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (_, _, session) = app.enable_totp("jean", STRONG_PASSWORD).await;
    let ticket = app
        .support()
        .await
        .create_ticket(authed(
            &session.session_token,
            spb::CreateTicketRequest {
                client_request_id: "lost-phone".into(),
                category: spb::TicketCategory::SecurityVerification.into(),
                subject: "I lost my phone".into(),
                body: "My authenticator app is gone with it.".into(),
                linked_event_ids: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    app.verify_ticket_identity(&ticket.ticket_id).await;
    app.reset_totp(&id, &ticket.ticket_id, "identity checked by video call")
        .await
        .unwrap();
    // The removal waits for its delay; the session lives until then.
    app.clock
        .advance(std::time::Duration::from_secs(24 * 3600 + 1));
    app.wait_until_totp_off(&id).await;

    assert_revoked(&app, &session.session_token, "SUPPORT_FACTOR_RESET").await;
    let back = app.login("jean", STRONG_PASSWORD).await.unwrap();
    assert_event_names(
        &revoked_events(&app, &back.session_token).await,
        "SUPPORT_FACTOR_RESET",
        &[&session.session_id],
        pb::ActorKind::SupportAgent,
    );
}

#[tokio::test]
pub async fn revoke_session_and_logout_say_so_and_a_stale_token_stays_anonymous_where_allowed() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let first = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let second = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .revoke_session(authed(
            &first.session_token,
            pb::RevokeSessionRequest {
                session_id: second.session_id.clone(),
            },
        ))
        .await
        .unwrap();
    assert_revoked(&app, &second.session_token, "CUSTOMER").await;
    app.client()
        .await
        .logout(authed(&first.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();
    let again = app
        .client()
        .await
        .logout(authed(&first.session_token, pb::LogoutRequest {}))
        .await
        .unwrap_err();
    assert_eq!(reason(&again), "SESSION_REVOKED");
    assert_revoked(&app, &first.session_token, "LOGOUT").await;
    assert_eq!(
        introspect_cause(&app, &first.session_token)
            .await
            .revocation_cause(),
        pb::SessionRevocationCause::Logout
    );

    // A front end that still sends the old token to an anonymous RPC is
    // served as anonymous.
    let request = authed(
        &first.session_token,
        pb::LoginRequest {
            login: "jean".into(),
            password: STRONG_PASSWORD.into(),
        },
    );
    app.client().await.login(request).await.unwrap();
}

#[tokio::test]
pub async fn unknown_and_expired_tokens_keep_the_same_generic_answer() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let idle = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let token = &idle.session_token;
    let unknown = format!("{}{}", &token[..4], "A".repeat(token.len() - 4));
    let bytes = |status: &tonic::Status| {
        (
            status.code(),
            status.message().to_string(),
            status.details().to_vec(),
        )
    };
    let before = list(&app, &unknown).await.unwrap_err();
    assert_eq!(reason(&before), "UNAUTHENTICATED");
    app.clock.advance(Duration::from_secs(61 * 60));
    let expired = list(&app, token).await.unwrap_err();
    assert_eq!(bytes(&expired), bytes(&before));
    // A session revoked after it had expired is told as expired too.
    assert_eq!(app.suspend(&id).await.sessions_revoked, 1);
    assert_eq!(bytes(&list(&app, token).await.unwrap_err()), bytes(&before));
    assert_eq!(
        bytes(&list(&app, &unknown).await.unwrap_err()),
        bytes(&before)
    );
}

//! The information centre: activity from other services, "this wasn't me"
//! (from the journal and from a notice's link), contact details, paging and
//! the security overview.

use std::time::Duration;

use gardien::{
    domain::{overview, principal::CustomerSession},
    proto::{accountsecurity::v1 as pb, support::v1 as spb},
};
use sea_orm::EntityTrait;
use tonic::Code;

use crate::helpers::*;

fn order(account_id: &str, service_event_id: &str) -> pb::RecordActivityRequest {
    pb::RecordActivityRequest {
        account_id: account_id.into(),
        service_event_id: service_event_id.into(),
        kind: pb::ActivityKind::OrderPlaced.into(),
        occurred_at: None,
        reference: "ORD-2026-0042".into(),
        amount_minor: 12_999,
        currency: "eur".into(),
        items_summary: "1 × dedicated server".into(),
        client_address: "198.51.100.23".into(),
        user_agent: "Mozilla/5.0".into(),
    }
}

async fn journal(app: &TestApp, token: &str) -> Vec<pb::SecurityEvent> {
    app.client()
        .await
        .list_security_events(authed(
            token,
            pb::ListSecurityEventsRequest {
                page_size: 200,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events
}

#[tokio::test]
pub async fn an_order_from_billing_shows_in_the_journal_once() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let first = app
        .client()
        .await
        .record_activity(authed(&app.service_token, order(&id, "billing-42")))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    let again = app
        .client()
        .await
        .record_activity(authed(&app.service_token, order(&id, "billing-42")))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(
        again.event.unwrap().event_id,
        first.event.as_ref().unwrap().event_id
    );

    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let orders: Vec<_> = journal(&app, &session.session_token)
        .await
        .into_iter()
        .filter(|e| e.kind() == pb::SecurityEventKind::OrderPlaced)
        .collect();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].details["amount_minor"], "12999");
    assert_eq!(orders[0].details["currency"], "EUR");
    assert_eq!(orders[0].client_address, "198.51.100.23");
    assert_eq!(orders[0].actor.as_ref().unwrap().name, "billing");

    let unknown = app
        .client()
        .await
        .record_activity(authed(
            &app.service_token,
            order(&uuid::Uuid::now_v7().to_string(), "billing-43"),
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let mut bad = order(&id, "");
    bad.kind = 0;
    bad.currency = "euros".into();
    bad.client_address = "not-an-ip".into();
    let invalid = app
        .client()
        .await
        .record_activity(authed(&app.service_token, bad))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&invalid),
        ["service_event_id", "kind", "currency", "client_address"]
    );
}

#[tokio::test]
pub async fn disputing_an_order_opens_a_ticket_revokes_sessions_and_suspends() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let order_event = app
        .client()
        .await
        .record_activity(authed(&app.service_token, order(&id, "billing-7")))
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
                event_id: order_event.event_id.clone(),
                comment: "I never ordered this server".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(disputed.password_suspended);
    assert_eq!(disputed.sessions_revoked, 2);

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
    assert_eq!(
        reason(&app.login("jean", STRONG_PASSWORD).await.unwrap_err()),
        "PASSWORD_SUSPENDED"
    );

    let queue = app
        .support()
        .await
        .list_ticket_queue(authed(
            &app.agent_token,
            spb::ListTicketQueueRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let ticket = queue
        .iter()
        .find(|t| t.ticket_id == disputed.ticket_id)
        .unwrap();
    assert_eq!(ticket.priority(), spb::TicketPriority::High);
    assert_eq!(
        ticket.linked_event_ids,
        std::slice::from_ref(&order_event.event_id)
    );

    let events = app.events_of(&id).await;
    assert!(events.contains(&"event_disputed".to_string()));
    assert!(events.contains(&"password_suspended".to_string()));
    let mails = app.wait_for_mails("jean@example.fr", 2).await;
    assert!(mails
        .iter()
        .any(|m| m.contains("We are securing your account")));
}

#[tokio::test]
pub async fn disputing_twice_or_another_customers_event_is_refused() {
    let app = spawn_app_with(|c| c.information_centre.suspend_on_dispute.clear()).await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.create_account("marie", "marie@example.fr", STRONG_PASSWORD)
        .await;
    let order_event = app
        .client()
        .await
        .record_activity(authed(&app.service_token, order(&id, "b-1")))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let marie = app.login("marie", STRONG_PASSWORD).await.unwrap();
    let other = app
        .client()
        .await
        .dispute_security_event(authed(
            &marie.session_token,
            pb::DisputeSecurityEventRequest {
                event_id: order_event.event_id.clone(),
                comment: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);

    let jean = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let request = || {
        authed(
            &jean.session_token,
            pb::DisputeSecurityEventRequest {
                event_id: order_event.event_id.clone(),
                comment: String::new(),
            },
        )
    };
    let first = app
        .client()
        .await
        .dispute_security_event(request())
        .await
        .unwrap()
        .into_inner();
    // Not a kind configured to suspend: the caller's session stays.
    assert!(!first.password_suspended);
    let twice = app
        .client()
        .await
        .dispute_security_event(request())
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);
}

#[tokio::test]
pub async fn the_wasnt_me_link_of_a_password_notice_suspends_once_and_expires() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .change_password(authed(
            &session.session_token,
            pb::ChangePasswordRequest {
                current_password: STRONG_PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
            },
        ))
        .await
        .unwrap();
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    let notice = mails
        .iter()
        .find(|m| m.contains("Your password was changed"))
        .unwrap();
    let token = link_token(notice, "gdx_");

    let report = |token: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
                    report_token: token,
                    comment: String::new(),
                })
                .await
        }
    };
    let reference = report(token.clone())
        .await
        .unwrap()
        .into_inner()
        .ticket_reference;
    assert!(reference.starts_with("T-"));
    assert_eq!(
        reason(&app.login("jean", NEW_PASSWORD).await.unwrap_err()),
        "PASSWORD_SUSPENDED"
    );
    assert_eq!(reason(&report(token).await.unwrap_err()), "TOKEN_INVALID");

    // A second notice's link expires after 7 days.
    let other = app
        .create_account("marie", "marie@example.fr", STRONG_PASSWORD)
        .await;
    let marie = app.login("marie", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .change_password(authed(
            &marie.session_token,
            pb::ChangePasswordRequest {
                current_password: STRONG_PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
            },
        ))
        .await
        .unwrap();
    let mails = app.wait_for_mails("marie@example.fr", 1).await;
    let token = link_token(&mails[0], "gdx_");
    app.clock.advance(Duration::from_secs(7 * 24 * 3600 + 60));
    assert_eq!(reason(&report(token).await.unwrap_err()), "TOKEN_EXPIRED");
    assert!(!app
        .events_of(&other)
        .await
        .contains(&"password_suspended".to_string()));
}

fn link_token(mail: &str, prefix: &str) -> String {
    let start = mail
        .find(&format!("token={prefix}"))
        .expect("no link in the e-mail")
        + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[tokio::test]
pub async fn an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let update = |password: &str| {
        let request = authed(
            &session.session_token,
            pb::UpdateContactDetailsRequest {
                email: "jean.new@example.org".into(),
                phone: "+33699887766".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into(), "phone".into()],
                }),
                current_password: password.into(),
                ..Default::default()
            },
        );
        let app = &app;
        async move { app.client().await.update_contact_details(request).await }
    };
    // Without recent authentication: refused with a clear reason.
    app.clock.advance(Duration::from_secs(11 * 60));
    let stale = update("").await.unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert_eq!(reason(&stale), "RECENT_AUTHENTICATION_REQUIRED");

    let done = update(STRONG_PASSWORD).await.unwrap().into_inner();
    assert!(done.email_change_pending);
    let details = done.contact_details.unwrap();
    assert_eq!(details.email, "jean@example.fr");
    assert_eq!(details.pending_email, "jean.new@example.org");
    assert_eq!(details.phone, "+33699887766");

    let old = app.wait_for_mails("jean@example.fr", 1).await;
    let notice = old
        .iter()
        .find(|m| m.contains("Your contact e-mail is being changed"))
        .unwrap();
    assert!(notice.contains("token=gdx_"));
    let new = app.wait_for_mails("jean.new@example.org", 1).await;
    let token = link_token(&new[0], "gde_");
    app.client()
        .await
        .confirm_email_change(pb::ConfirmEmailChangeRequest {
            confirmation_token: token.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        reason(
            &app.client()
                .await
                .confirm_email_change(pb::ConfirmEmailChangeRequest {
                    confirmation_token: token
                })
                .await
                .unwrap_err()
        ),
        "TOKEN_INVALID"
    );

    let changes = app
        .client()
        .await
        .list_contact_changes(authed(
            &session.session_token,
            pb::ListContactChangesRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .changes;
    let email = changes
        .iter()
        .find(|c| c.field() == pb::ContactField::Email)
        .unwrap();
    assert_eq!(
        (email.old_value.as_str(), email.new_value.as_str()),
        ("jean@example.fr", "jean.new@example.org")
    );
    assert_eq!(email.client_address, "127.0.0.1");
    assert!(changes
        .iter()
        .any(|c| c.field() == pb::ContactField::Phone && c.new_value == "+33699887766"));
    let now = app
        .client()
        .await
        .get_contact_details(authed(
            &session.session_token,
            pb::GetContactDetailsRequest {},
        ))
        .await
        .unwrap()
        .into_inner()
        .contact_details
        .unwrap();
    assert_eq!(now.email, "jean.new@example.org");
    assert!(now.email_last_changed_at.is_some());
    assert_eq!(
        now.email_last_changed_by.unwrap().kind(),
        pb::ActorKind::Customer
    );

    let bad = app
        .client()
        .await
        .update_contact_details(authed(
            &session.session_token,
            pb::UpdateContactDetailsRequest {
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["login".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&bad), ["update_mask.paths[0]"]);
}

#[tokio::test]
pub async fn paging_returns_every_event_exactly_once_under_concurrent_inserts() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    for i in 0..40 {
        app.client()
            .await
            .record_activity(authed(&app.service_token, order(&id, &format!("seed-{i}"))))
            .await
            .unwrap();
    }
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let writer = {
        let client = app.client().await;
        let token = app.service_token.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut client = client;
            for i in 0..30 {
                client
                    .record_activity(authed(&token, order(&id, &format!("late-{i}"))))
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = std::collections::HashSet::new();
    let mut first_page_ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client()
            .await
            .list_security_events(authed(
                &session.session_token,
                pb::ListSecurityEventsRequest {
                    page_size: 7,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        for event in &page.events {
            assert!(
                seen.insert(event.event_id.clone()),
                "event {} returned twice",
                event.event_id
            );
        }
        if first_page_ids.is_empty() {
            first_page_ids = page.events.iter().map(|e| e.event_id.clone()).collect();
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    writer.await.unwrap();
    // Everything that existed when paging began was returned.
    let all = app.events_of(&id).await;
    let newest_first_seen = first_page_ids[0].clone();
    let expected: Vec<_> = gardien::entity::security_event::Entity::find()
        .all(&app.ctx.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.account_id.to_string() == id && e.id.to_string() <= newest_first_seen)
        .map(|e| e.id.to_string())
        .collect();
    assert!(all.len() >= 70);
    for event_id in expected {
        assert!(seen.contains(&event_id), "event {event_id} was skipped");
    }
}

#[tokio::test]
pub async fn the_overview_guides_the_seed_scenario_from_reset_to_2fa() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.suspend(&id).await;
    // While suspended no session exists, so the overview is computed as the
    // front end would show it right after the customer's next login.
    let caller = CustomerSession {
        account_id: uuid::Uuid::parse_str(&id).unwrap(),
        session_id: uuid::Uuid::now_v7(),
        authenticated_at: app.clock_now(),
        second_factor_used: false,
    };
    let suspended = overview::overview(&app.ctx, &caller).await.unwrap();
    let actions: Vec<_> = suspended.actions.iter().map(|(a, _)| *a).collect();
    assert!(actions.contains(&overview::Action::ResetPassword));
    assert!(actions.contains(&overview::Action::ReviewEvents));
    assert!(suspended.active_suspension.is_some());

    app.client()
        .await
        .request_password_reset(pb::RequestPasswordResetRequest {
            login_or_email: "jean".into(),
        })
        .await
        .unwrap();
    let token = app.reset_token_from_mail("jean@example.fr", 2).await;
    app.client()
        .await
        .complete_password_reset(pb::CompletePasswordResetRequest {
            reset_token: token,
            new_password: NEW_PASSWORD.into(),
            second_factor: None,
        })
        .await
        .unwrap();
    let session = app.login("jean", NEW_PASSWORD).await.unwrap();
    let ids: Vec<_> = journal(&app, &session.session_token)
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    app.client()
        .await
        .acknowledge_security_events(authed(
            &session.session_token,
            pb::AcknowledgeSecurityEventsRequest { event_ids: ids },
        ))
        .await
        .unwrap();
    let seen = app
        .client()
        .await
        .get_security_overview(authed(
            &session.session_token,
            pb::GetSecurityOverviewRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> = seen.recommended_actions.iter().map(|a| a.kind()).collect();
    assert_eq!(kinds, [pb::RecommendedActionKind::EnableTotp]);
    assert_eq!(seen.unacknowledged_events, 0);
    assert_eq!(seen.password_state(), pb::PasswordState::Active);
}

#[tokio::test]
pub async fn a_login_from_a_new_address_is_notified_with_a_wasnt_me_link() {
    use gardien::domain::{login, principal::ClientInfo};
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = ClientInfo {
        address: Some("203.0.113.9".into()),
        user_agent: None,
    };
    let password = secrecy::SecretString::from(STRONG_PASSWORD.to_string());
    login::login(&app.ctx, "jean", password, &elsewhere)
        .await
        .ok()
        .unwrap();
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert_eq!(mails.len(), 1, "only the new address is notified");
    assert!(mails[0].contains("203.0.113.9") && mails[0].contains("token=gdx_"));
}

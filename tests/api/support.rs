//! SupportService: customer tickets, recovery tickets without login, the
//! agent queue, account review and the agent's 2FA reset.

use gardien::proto::{accountsecurity::v1 as pb, support::v1 as spb};
use tonic::Code;

use crate::helpers::*;

async fn customer(app: &TestApp, login: &str) -> (String, String) {
    let id = app
        .create_account(login, &format!("{login}@example.fr"), STRONG_PASSWORD)
        .await;
    let session = app.login(login, STRONG_PASSWORD).await.unwrap();
    (id, session.session_token)
}

async fn events(app: &TestApp, token: &str) -> Vec<pb::SecurityEvent> {
    app.client()
        .await
        .list_security_events(authed(token, pb::ListSecurityEventsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .events
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

#[tokio::test]
pub async fn a_ticket_links_own_events_and_a_retry_returns_the_same_ticket() {
    let app = spawn_app().await;
    let (_, jean) = customer(&app, "jean").await;
    let (_, marie) = customer(&app, "marie").await;
    let login_event = events(&app, &jean)
        .await
        .into_iter()
        .find(|e| e.kind() == pb::SecurityEventKind::LoginSucceeded)
        .unwrap();
    let marie_event = events(&app, &marie).await[0].event_id.clone();

    let first = app
        .support()
        .await
        .create_ticket(authed(
            &jean,
            ticket_request("req-1", vec![login_event.event_id.clone()]),
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(first.priority(), spb::TicketPriority::High);
    assert_eq!(
        first.linked_event_ids,
        std::slice::from_ref(&login_event.event_id)
    );
    let retry = app
        .support()
        .await
        .create_ticket(authed(
            &jean,
            ticket_request("req-1", vec![login_event.event_id.clone()]),
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(retry.ticket_id, first.ticket_id);
    let listed = app
        .support()
        .await
        .list_tickets(authed(&jean, spb::ListTicketsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(listed.len(), 1);

    let status = app
        .support()
        .await
        .create_ticket(authed(&jean, ticket_request("req-2", vec![marie_event])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["linked_event_ids[0]"]);
}

#[tokio::test]
pub async fn an_agent_works_the_ticket_with_notes_replies_and_status() {
    let app = spawn_app().await;
    let (id, jean) = customer(&app, "jean").await;
    let ticket = app
        .support()
        .await
        .create_ticket(authed(&jean, ticket_request("", vec![])))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let agent = &app.agent_token;
    let queue = app
        .support()
        .await
        .list_ticket_queue(authed(
            agent,
            spb::ListTicketQueueRequest {
                unassigned_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert!(queue.iter().any(|t| t.ticket_id == ticket.ticket_id));

    let assigned = app
        .support()
        .await
        .assign_ticket(authed(
            agent,
            spb::AssignTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
                assignee: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(assigned.assignee, "agent-alice");
    let unknown_agent = app
        .support()
        .await
        .assign_ticket(authed(
            agent,
            spb::AssignTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
                assignee: "nobody".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&unknown_agent), ["assignee"]);

    let message = |body: &str, internal_note: bool| spb::AddTicketMessageRequest {
        ticket_id: ticket.ticket_id.clone(),
        body: body.into(),
        internal_note,
    };
    app.support()
        .await
        .add_ticket_message(authed(
            agent,
            message("Customer sounds legitimate; check the IP.", true),
        ))
        .await
        .unwrap();
    app.support()
        .await
        .add_ticket_message(authed(
            agent,
            message("We are checking the login, stay tuned.", false),
        ))
        .await
        .unwrap();

    let seen = app
        .support()
        .await
        .get_ticket(authed(
            &jean,
            spb::GetTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let bodies: Vec<_> = seen.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(!bodies.iter().any(|b| b.contains("legitimate")));
    assert!(bodies.iter().any(|b| b.contains("stay tuned")));
    assert_eq!(seen.ticket.unwrap().message_count, 2);
    let as_agent = app
        .support()
        .await
        .get_ticket(authed(
            agent,
            spb::GetTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(as_agent.messages.len(), 3);

    let set = |status: spb::TicketStatus| {
        let request = authed(
            agent,
            spb::SetTicketStatusRequest {
                ticket_id: ticket.ticket_id.clone(),
                status: status.into(),
            },
        );
        let app = &app;
        async move { app.support().await.set_ticket_status(request).await }
    };
    set(spb::TicketStatus::PendingCustomer).await.unwrap();
    let reopen = set(spb::TicketStatus::Open).await.unwrap_err();
    assert_eq!(reopen.code(), Code::FailedPrecondition);
    assert_eq!(reason(&reopen), "INVALID_STATE_TRANSITION");
    set(spb::TicketStatus::Resolved).await.unwrap();

    let mails = app.wait_for_mails("jean@example.fr", 2).await;
    assert!(mails
        .iter()
        .any(|m| m.contains("A support agent answered your ticket")));
    assert!(mails.iter().any(|m| m.contains("Your ticket is resolved")));
    assert!(!mails.iter().any(|m| m.contains("legitimate")));

    // A customer reply reopens it for the agent; closing is final.
    app.support()
        .await
        .add_ticket_message(authed(&jean, message("Still worried.", false)))
        .await
        .unwrap();
    let closed = app
        .support()
        .await
        .close_ticket(authed(
            &jean,
            spb::CloseTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(closed.status(), spb::TicketStatus::Closed);
    assert_eq!(
        reason(&set(spb::TicketStatus::PendingAgent).await.unwrap_err()),
        "INVALID_STATE_TRANSITION"
    );
    let late = app
        .support()
        .await
        .add_ticket_message(authed(&jean, message("One more thing", false)))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);

    let kinds: Vec<_> = events(&app, &jean).await.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&pb::SecurityEventKind::SupportAction));
    assert!(kinds.contains(&pb::SecurityEventKind::TicketCreated));
    assert!(
        app.events_of(&id)
            .await
            .iter()
            .filter(|k| *k == "support_action")
            .count()
            >= 3
    );
}

#[tokio::test]
pub async fn a_recovery_ticket_answers_the_same_for_known_and_unknown_logins() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let open = |login: &str| {
        let request = spb::CreateRecoveryTicketRequest {
            login_or_email: login.into(),
            reachable_contact: "+33612345678".into(),
            description: "My e-mail box was hacked, I cannot receive the reset link.".into(),
        };
        let app = &app;
        async move {
            app.support()
                .await
                .create_recovery_ticket(request)
                .await
                .unwrap()
        }
    };
    let known = open("jean").await;
    let unknown = open("nobody-at-all").await;
    assert_eq!(known.metadata().len(), unknown.metadata().len());
    let (known, unknown) = (known.into_inner(), unknown.into_inner());
    assert!(known.ticket_reference.starts_with("T-") && unknown.ticket_reference.starts_with("T-"));
    assert_eq!(known.ticket_reference.len(), unknown.ticket_reference.len());

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
    assert_eq!(queue.len(), 2);
    assert!(queue
        .iter()
        .all(|t| t.unverified && t.recovery_reachable_contact == "+33612345678"));
    let matched = queue
        .iter()
        .find(|t| t.reference == known.ticket_reference)
        .unwrap();
    assert_eq!(matched.account_id, id);

    // The account's customer does not see it among their tickets.
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let mine = app
        .support()
        .await
        .list_tickets(authed(
            &session.session_token,
            spb::ListTicketsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(mine.tickets.is_empty());
}

#[tokio::test]
pub async fn the_account_review_shows_the_seed_scenario_and_is_journaled() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.suspend(&id).await;
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

    let review = app
        .support()
        .await
        .get_account_review(authed(
            &app.agent_token,
            spb::GetAccountReviewRequest {
                account_id: id.clone(),
                ticket_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(review.account.unwrap().login, "jean");
    assert_eq!(review.suspensions.len(), 1);
    assert_eq!(
        review.suspensions[0].lift_method(),
        pb::LiftMethod::PasswordReset
    );
    let kinds: Vec<_> = review.recent_events.iter().map(|e| e.kind()).collect();
    for kind in [
        pb::SecurityEventKind::PasswordSuspended,
        pb::SecurityEventKind::PasswordResetCompleted,
        pb::SecurityEventKind::LoginSucceeded,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing");
    }
    assert!(review
        .recent_events
        .iter()
        .any(|e| e.client_address == "127.0.0.1"));

    let session = app.login("jean", NEW_PASSWORD).await.unwrap();
    let journal = events(&app, &session.session_token).await;
    let reviewed = journal
        .iter()
        .find(|e| e.kind() == pb::SecurityEventKind::SupportAccountReviewed)
        .unwrap();
    assert_eq!(
        reviewed.actor.as_ref().unwrap().kind(),
        pb::ActorKind::SupportAgent
    );
    assert_eq!(reviewed.summary, "A support agent reviewed your account");
}

#[tokio::test]
pub async fn an_agent_resets_2fa_under_a_ticket() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (_, _, session) = app.enable_totp("jean", STRONG_PASSWORD).await;
    let ticket = app
        .support()
        .await
        .create_ticket(authed(
            &session.session_token,
            ticket_request("lost-phone", vec![]),
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let reset = |ticket_id: String, reason: &str| {
        let request = authed(
            &app.agent_token,
            spb::ResetTotpRequest {
                account_id: id.clone(),
                ticket_id,
                reason: reason.into(),
            },
        );
        let app = &app;
        async move { app.support().await.reset_totp(request).await }
    };
    let no_reason = reset(ticket.ticket_id.clone(), "").await.unwrap_err();
    assert_eq!(bad_fields(&no_reason), ["reason"]);
    let done = reset(ticket.ticket_id.clone(), "identity checked by video call")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.sessions_revoked, 1);
    // 2FA is off: the password alone logs in again.
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let again = reset(ticket.ticket_id, "twice").await.unwrap_err();
    assert_eq!(reason(&again), "TOTP_NOT_ENABLED");
    assert!(app
        .events_of(&id)
        .await
        .contains(&"totp_disabled".to_string()));
}

#[tokio::test]
pub async fn ticket_fields_are_bounded_and_named() {
    let app = spawn_app().await;
    let (_, jean) = customer(&app, "jean").await;
    let status = app
        .support()
        .await
        .create_ticket(authed(
            &jean,
            spb::CreateTicketRequest {
                client_request_id: String::new(),
                category: 0,
                subject: "s".repeat(201),
                body: "b".repeat(10_001),
                linked_event_ids: (0..21).map(|_| uuid::Uuid::now_v7().to_string()).collect(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields = bad_fields(&status);
    for field in ["category", "subject", "body", "linked_event_ids"] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not named in {fields:?}"
        );
    }
}

#[tokio::test]
pub async fn recovery_tickets_are_strictly_rate_limited_per_client_address() {
    let app = spawn_app_with(|c| {
        c.rate_limit.credential.per_address.per_minute = 3;
        c.rate_limit.credential.per_address.burst = 3;
    })
    .await;
    let request = || spb::CreateRecoveryTicketRequest {
        login_or_email: "someone".into(),
        reachable_contact: "someone@example.org".into(),
        description: "I cannot log in.".into(),
    };
    for _ in 0..3 {
        app.support()
            .await
            .create_recovery_ticket(request())
            .await
            .unwrap();
    }
    let limited = app
        .support()
        .await
        .create_recovery_ticket(request())
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited), "RATE_LIMITED");
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
        .into_inner();
    assert_eq!(queue.tickets.len(), 3, "the refused call opened no ticket");
}

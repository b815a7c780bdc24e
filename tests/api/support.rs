//! SupportService: customer tickets, recovery tickets without login, the
//! agent queue, account review and the agent's 2FA reset.

use gardien::proto::{accountsecurity::v1 as pb, support::v1 as spb};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
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
    app.reset_password_by_email("jean", "jean@example.fr", NEW_PASSWORD)
        .await;

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
pub async fn an_agent_resets_2fa_under_a_verified_ticket() {
    let app = spawn_factor_reset_app().await;
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
    let no_reason = app
        .reset_totp(&id, &ticket.ticket_id, "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&no_reason), ["reason"]);
    let unverified = app
        .reset_totp(&id, &ticket.ticket_id, "identity checked by video call")
        .await
        .unwrap_err();
    assert_eq!(reason(&unverified), "IDENTITY_NOT_VERIFIED");
    app.verify_ticket_identity(&ticket.ticket_id).await;
    let other = app
        .create_account("paul", "paul@example.fr", STRONG_PASSWORD)
        .await;
    let not_theirs = app
        .reset_totp(&other, &ticket.ticket_id, "wrong account")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&not_theirs), ["ticket_id"]);
    let scheduled = app
        .reset_totp(&id, &ticket.ticket_id, "identity checked by video call")
        .await
        .unwrap();
    assert_eq!(scheduled.sessions_revoked, 0);
    let twice = app
        .reset_totp(&id, &ticket.ticket_id, "twice")
        .await
        .unwrap_err();
    assert_eq!(reason(&twice), "FACTOR_RESET_PENDING");

    app.clock
        .advance(std::time::Duration::from_secs(24 * 3600 + 1));
    app.wait_until_totp_off(&id).await;
    // 2FA is off: the password alone logs in again.
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let again = app
        .reset_totp(&id, &ticket.ticket_id, "again")
        .await
        .unwrap_err();
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

// ---------------------------------------------------------------------------
// Support 2FA resets: verified identity, delay, notice, cancellation
// (issue #20 item 4) and what the ticket tells the customer (issue #21 item 7).
// ---------------------------------------------------------------------------

const AUDIT_REASON: &str = "AUDIT-ONLY passport 12AB34567 matched, caller sounded nervous";
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Due resets are looked for every 20 ms, and sessions outlive the delay so
/// that their revocation is what ends them.
async fn spawn_factor_reset_app() -> TestApp {
    spawn_app_with(|config| {
        config.support.factor_reset_poll_ms = 20;
        config.session.absolute_ttl_secs = 72 * 3600;
        config.session.idle_ttl_secs = 72 * 3600;
    })
    .await
}

/// A 2FA account whose customer opened a ticket, verified by the agent, with
/// a reset scheduled under it.
struct PendingReset {
    id: String,
    email: String,
    secret: String,
    session: String,
    ticket_id: String,
    scheduled: spb::ResetTotpResponse,
}

async fn pending_reset(app: &TestApp, login: &str, locale: pb::Locale) -> PendingReset {
    let email = format!("{login}@example.fr");
    let id = app
        .create_account_in(login, &email, STRONG_PASSWORD, locale)
        .await;
    let (secret, _, session) = app.enable_totp(login, STRONG_PASSWORD).await;
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
    app.verify_ticket_identity(&ticket.ticket_id).await;
    let scheduled = app
        .reset_totp(&id, &ticket.ticket_id, AUDIT_REASON)
        .await
        .unwrap();
    PendingReset {
        id,
        email,
        secret,
        session: session.session_token,
        ticket_id: ticket.ticket_id,
        scheduled,
    }
}

async fn cancel_link_token(app: &TestApp, email: &str) -> String {
    for _ in 0..300 {
        if let Some(mail) = app
            .mails_to(email)
            .iter()
            .find(|m| m.contains("token=gdf_"))
        {
            return cancel_token_in(mail);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no factor-reset e-mail to {email}");
}

async fn cancel_factor_reset(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    app.support()
        .await
        .cancel_factor_reset(spb::CancelFactorResetRequest {
            cancel_token: token.into(),
        })
        .await
        .map(|_| ())
}

async fn review(app: &TestApp, id: &str) -> spb::GetAccountReviewResponse {
    app.support()
        .await
        .get_account_review(authed(
            &app.agent_token,
            spb::GetAccountReviewRequest {
                account_id: id.into(),
                ticket_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

fn agent_of(event: &pb::SecurityEvent) -> (pb::ActorKind, String) {
    let actor = event.actor.clone().unwrap();
    (actor.kind(), actor.name)
}

#[tokio::test]
pub async fn verify_ticket_identity_names_its_bad_fields_and_needs_an_open_ticket_of_an_account() {
    let app = spawn_factor_reset_app().await;
    let (_, jean) = customer(&app, "jean").await;
    let ticket = app
        .support()
        .await
        .create_ticket(authed(&jean, ticket_request("r1", vec![])))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let verify = |method: spb::IdentityVerificationMethod, evidence: &str, ticket_id: &str| {
        let request = authed(
            &app.agent_token,
            spb::VerifyTicketIdentityRequest {
                ticket_id: ticket_id.into(),
                method: method.into(),
                evidence_reference: evidence.into(),
            },
        );
        let app = &app;
        async move { app.support().await.verify_ticket_identity(request).await }
    };
    let bad = verify(spb::IdentityVerificationMethod::Unspecified, "", "x")
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&bad),
        ["ticket_id", "method", "evidence_reference"]
    );
    let customer_call = app
        .support()
        .await
        .verify_ticket_identity(authed(
            &jean,
            spb::VerifyTicketIdentityRequest {
                ticket_id: ticket.ticket_id.clone(),
                method: spb::IdentityVerificationMethod::IdDocument.into(),
                evidence_reference: "DOC-1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(customer_call.code(), Code::PermissionDenied);
    let recorded = verify(
        spb::IdentityVerificationMethod::IdDocument,
        "DOC-1",
        &ticket.ticket_id,
    )
    .await
    .unwrap()
    .into_inner()
    .verification
    .unwrap();
    assert_eq!(recorded.agent, "agent-alice");
    assert_eq!(recorded.evidence_reference, "DOC-1");
    assert_eq!(
        recorded.method(),
        spb::IdentityVerificationMethod::IdDocument
    );
    // The customer sees that it happened, not the evidence reference.
    let journal = events(&app, &jean).await;
    let verified = journal
        .iter()
        .find(|e| e.kind() == pb::SecurityEventKind::SupportIdentityVerified)
        .unwrap();
    assert_eq!(
        agent_of(verified),
        (pb::ActorKind::SupportAgent, "agent-alice".to_string())
    );
    assert_eq!(verified.details["method"], "id_document");
    assert!(!verified.details.values().any(|v| v.contains("DOC-1")));

    // An unmatched recovery ticket is about no account.
    app.support()
        .await
        .create_recovery_ticket(spb::CreateRecoveryTicketRequest {
            login_or_email: "nobody-at-all".into(),
            reachable_contact: "+33612345678".into(),
            description: "Locked out.".into(),
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
    let unmatched = verify(
        spb::IdentityVerificationMethod::VideoCall,
        "V-1",
        &queue[0].ticket_id,
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&unmatched), "INVALID_STATE_TRANSITION");

    // A recovery ticket that matched the account can be verified (that is
    // what it is for).
    app.support()
        .await
        .create_recovery_ticket(spb::CreateRecoveryTicketRequest {
            login_or_email: "jean".into(),
            reachable_contact: "+33612345678".into(),
            description: "Lost my phone.".into(),
        })
        .await
        .unwrap();
    let recovery = app
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
        .tickets
        .into_iter()
        .find(|t| !t.account_id.is_empty())
        .unwrap();
    verify(
        spb::IdentityVerificationMethod::PhoneCallback,
        "CALL-2",
        &recovery.ticket_id,
    )
    .await
    .unwrap();

    // Unknown and closed tickets.
    let unknown = verify(
        spb::IdentityVerificationMethod::VideoCall,
        "V-1",
        &uuid::Uuid::now_v7().to_string(),
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&unknown), "NOT_FOUND");
    app.support()
        .await
        .close_ticket(authed(
            &jean,
            spb::CloseTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
            },
        ))
        .await
        .unwrap();
    let closed = verify(
        spb::IdentityVerificationMethod::VideoCall,
        "V-1",
        &ticket.ticket_id,
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&closed), "INVALID_STATE_TRANSITION");
}

#[tokio::test]
pub async fn a_verified_reset_is_scheduled_announced_at_once_and_2fa_keeps_working() {
    let app = spawn_factor_reset_app().await;
    let before = app.clock_now() / 1000;
    let pending = pending_reset(&app, "jean", pb::Locale::En).await;
    let reset = pending.scheduled.factor_reset.clone().unwrap();
    let effective = pending.scheduled.effective_at.unwrap().seconds;
    assert!((before + 86_400..=before + 86_400 + 60).contains(&effective));
    assert_eq!(reset.effective_at.unwrap().seconds, effective);
    assert_eq!(reset.status(), spb::FactorResetStatus::Pending);
    assert_eq!(reset.requested_by, "agent-alice");
    assert_eq!(pending.scheduled.sessions_revoked, 0);

    // The customer is e-mailed at once, with the cancel link and no audit reason.
    let token = cancel_link_token(&app, &pending.email).await;
    let mail = app
        .mails_to(&pending.email)
        .into_iter()
        .find(|m| m.contains("token=gdf_"))
        .unwrap();
    assert!(mail.contains(&format!(
        "http://localhost:8080/security/cancel-factor-reset?token={token}"
    )));
    assert!(!mail.contains("AUDIT-ONLY") && !mail.contains("KYC-CASE"));

    // ...and sees it in the information centre, with the agent named.
    let journal = events(&app, &pending.session).await;
    let requested = journal
        .iter()
        .find(|e| e.kind() == pb::SecurityEventKind::FactorResetRequested)
        .expect("no FACTOR_RESET_REQUESTED event");
    assert_eq!(
        agent_of(requested),
        (pb::ActorKind::SupportAgent, "agent-alice".to_string())
    );
    assert!(!requested.details.values().any(|v| v.contains("AUDIT-ONLY")));
    assert!(requested.details["effective_at"].ends_with('Z'));

    // The agent's review shows it, with the verification it relies on.
    let shown = review(&app, &pending.id)
        .await
        .pending_factor_reset
        .unwrap();
    assert_eq!(shown.factor_reset_id, reset.factor_reset_id);
    assert_eq!(shown.reason, AUDIT_REASON);
    let verification = shown.verification.unwrap();
    assert_eq!(
        verification.method(),
        spb::IdentityVerificationMethod::VideoCall
    );
    assert_eq!(verification.evidence_reference, "KYC-CASE-7731");

    // During the delay the factor is still there and the session still works.
    app.clock.advance(DAY - std::time::Duration::from_secs(60));
    gardien::domain::factor_reset::complete_due(&app.ctx, app.clock_now())
        .await
        .unwrap();
    assert!(app.totp_enabled(&pending.id).await);
    app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .list_sessions(authed(&pending.session, pb::ListSessionsRequest::default()))
        .await
        .unwrap();
}

#[tokio::test]
pub async fn the_cancel_link_stops_the_reset_and_works_once() {
    let app = spawn_factor_reset_app().await;
    let pending = pending_reset(&app, "jean", pb::Locale::En).await;
    let token = cancel_link_token(&app, &pending.email).await;
    cancel_factor_reset(&app, &token).await.unwrap();
    let again = cancel_factor_reset(&app, &token).await.unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated);
    assert_eq!(reason(&again), "TOKEN_INVALID");
    assert!(review(&app, &pending.id)
        .await
        .pending_factor_reset
        .is_none());

    app.clock.advance(DAY * 2);
    gardien::domain::factor_reset::complete_due(&app.ctx, app.clock_now())
        .await
        .unwrap();
    assert!(app.totp_enabled(&pending.id).await, "2FA was removed");
    let kinds = app.events_of(&pending.id).await;
    assert!(kinds.contains(&"factor_reset_cancelled".to_string()));
    assert!(!kinds.contains(&"totp_disabled".to_string()));
    assert!(!kinds.contains(&"factor_reset_completed".to_string()));

    // The journal says who cancelled it and how.
    let code = totp_code(&pending.secret, app.clock_now());
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let session = app.verify_totp(&challenge, &code).await.unwrap();
    let journal = events(&app, &session.session_token).await;
    let cancelled = journal
        .iter()
        .find(|e| e.kind() == pb::SecurityEventKind::FactorResetCancelled)
        .unwrap();
    assert_eq!(
        cancelled.actor.clone().unwrap().kind(),
        pb::ActorKind::Customer
    );
    assert_eq!(cancelled.details["via"], "cancel_link");

    // A malformed token is refused the same way.
    let junk = cancel_factor_reset(&app, "gdf_nope").await.unwrap_err();
    assert_eq!(reason(&junk), "TOKEN_INVALID");
}

/// "This was not me" on the FACTOR_RESET_REQUESTED event in the
/// information centre stops the reset, as the e-mailed link does: the
/// customer still holds a session, so they were not the one asking.
#[tokio::test]
pub async fn disputing_the_scheduled_reset_in_the_information_centre_stops_it() {
    let app = spawn_factor_reset_app().await;
    let pending = pending_reset(&app, "jean", pb::Locale::En).await;
    let requested = events(&app, &pending.session)
        .await
        .into_iter()
        .find(|e| e.kind() == pb::SecurityEventKind::FactorResetRequested)
        .expect("the scheduled reset is in the journal");
    app.client()
        .await
        .dispute_security_event(authed(
            &pending.session,
            pb::DisputeSecurityEventRequest {
                event_id: requested.event_id.clone(),
                comment: "I never called support".into(),
            },
        ))
        .await
        .unwrap();
    assert!(
        review(&app, &pending.id)
            .await
            .pending_factor_reset
            .is_none(),
        "the reset is no longer pending"
    );
    app.clock.advance(DAY * 2);
    gardien::domain::factor_reset::complete_due(&app.ctx, app.clock_now())
        .await
        .unwrap();
    assert!(app.totp_enabled(&pending.id).await, "2FA was removed");
    let kinds = app.events_of(&pending.id).await;
    assert!(
        kinds.contains(&"factor_reset_cancelled".to_string()),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"factor_reset_completed".to_string()));
    // The e-mailed link no longer works either.
    let token = cancel_link_token(&app, &pending.email).await;
    let refused = cancel_factor_reset(&app, &token).await.unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_INVALID");
    // The cancellation says how.
    let journal = gardien::entity::security_event::Entity::find()
        .filter(gardien::entity::security_event::Column::Kind.eq("factor_reset_cancelled"))
        .all(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(journal.len(), 1);
    assert!(
        journal[0].details.contains("\"via\":\"dispute\""),
        "{}",
        journal[0].details
    );
}

#[tokio::test]
pub async fn a_login_with_the_second_factor_during_the_delay_stops_the_reset() {
    let app = spawn_factor_reset_app().await;
    let pending = pending_reset(&app, "jean", pb::Locale::En).await;
    let token = cancel_link_token(&app, &pending.email).await;
    app.clock.advance(std::time::Duration::from_secs(3600));
    let code = totp_code(&pending.secret, app.clock_now());
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    let session = app.verify_totp(&challenge, &code).await.unwrap();
    assert!(review(&app, &pending.id)
        .await
        .pending_factor_reset
        .is_none());

    app.clock.advance(DAY * 2);
    gardien::domain::factor_reset::complete_due(&app.ctx, app.clock_now())
        .await
        .unwrap();
    assert!(app.totp_enabled(&pending.id).await, "2FA was removed");
    let journal = events(&app, &session.session_token).await;
    let cancelled = journal
        .iter()
        .find(|e| e.kind() == pb::SecurityEventKind::FactorResetCancelled)
        .expect("no FACTOR_RESET_CANCELLED event");
    assert_eq!(
        cancelled.actor.clone().unwrap().kind(),
        pb::ActorKind::Customer
    );
    assert_eq!(cancelled.details["via"], "second_factor_login");
    // The link of the cancelled reset is spent.
    let late = cancel_factor_reset(&app, &token).await.unwrap_err();
    assert_eq!(reason(&late), "TOKEN_INVALID");
}

#[tokio::test]
pub async fn after_the_delay_the_factor_is_gone_and_the_journal_names_the_agent() {
    let app = spawn_factor_reset_app().await;
    let pending = pending_reset(&app, "jean", pb::Locale::En).await;
    let token = cancel_link_token(&app, &pending.email).await;

    app.clock.advance(DAY + std::time::Duration::from_secs(1));
    app.wait_until_totp_off(&pending.id).await;

    // Every session ended; the password alone logs in now.
    let ended = app
        .client()
        .await
        .list_sessions(authed(&pending.session, pb::ListSessionsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unauthenticated);
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();

    // The e-mail of the existing flow: 2FA is off, with the "not me" link.
    let mut notified = false;
    for _ in 0..300 {
        notified = app
            .mails_to(&pending.email)
            .iter()
            .any(|m| m.contains("Two-factor authentication is off") && m.contains("token=gdx_"));
        if notified {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(notified, "no e-mail says 2FA is off");

    // Request, verification and completion, each with the agent.
    let kinds = app.events_of(&pending.id).await;
    let position = |kind: &str| kinds.iter().position(|k| k == kind).unwrap();
    assert!(position("support_identity_verified") < position("factor_reset_requested"));
    assert!(position("factor_reset_requested") < position("totp_disabled"));
    assert!(position("totp_disabled") <= position("factor_reset_completed"));
    let journal = events(&app, &session.session_token).await;
    for kind in [
        pb::SecurityEventKind::SupportIdentityVerified,
        pb::SecurityEventKind::FactorResetRequested,
        pb::SecurityEventKind::TotpDisabled,
        pb::SecurityEventKind::FactorResetCompleted,
    ] {
        let event = journal
            .iter()
            .find(|e| e.kind() == kind)
            .unwrap_or_else(|| panic!("{kind:?} missing"));
        assert_eq!(
            agent_of(event),
            (pb::ActorKind::SupportAgent, "agent-alice".to_string()),
            "{kind:?}"
        );
    }
    assert!(review(&app, &pending.id)
        .await
        .pending_factor_reset
        .is_none());

    // Once it took effect, the cancel link is over.
    let late = cancel_factor_reset(&app, &token).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(reason(&late), "TOKEN_EXPIRED");
}

/// Issue #21 (7): the ticket messages of a support 2FA reset are in the
/// account's language and never quote the agent's audit reason or evidence.
#[tokio::test]
pub async fn factor_reset_ticket_messages_speak_the_account_language_without_the_audit_reason() {
    let app = spawn_factor_reset_app().await;
    for (login, locale, own, other) in [
        (
            "jeanne",
            pb::Locale::Fr,
            "double authentification",
            "two-factor",
        ),
        (
            "john",
            pb::Locale::En,
            "two-factor authentication",
            "double authentification",
        ),
    ] {
        let pending = pending_reset(&app, login, locale).await;
        app.clock.advance(DAY + std::time::Duration::from_secs(1));
        app.wait_until_totp_off(&pending.id).await;
        let session = app.login(login, STRONG_PASSWORD).await.unwrap();
        let messages = app
            .support()
            .await
            .get_ticket(authed(
                &session.session_token,
                spb::GetTicketRequest {
                    ticket_id: pending.ticket_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .messages;
        let system: Vec<_> = messages
            .iter()
            .filter(|m| m.author_kind() == spb::MessageAuthorKind::System)
            .collect();
        assert_eq!(system.len(), 2, "{login}: scheduled, then done");
        for message in system {
            let body = message.body.to_lowercase();
            assert!(body.contains(own), "{login}: {}", message.body);
            assert!(!body.contains(other), "{login}: {}", message.body);
            for staff_only in [
                "audit-only",
                "12ab34567",
                "nervous",
                "kyc-case",
                "agent-alice",
            ] {
                assert!(!body.contains(staff_only), "{login}: {}", message.body);
            }
        }
        for mail in app.mails_to(&pending.email) {
            assert!(!mail.contains("AUDIT-ONLY") && !mail.contains("KYC-CASE"));
        }
    }
}

#[tokio::test]
async fn a_reset_whose_factor_was_turned_off_meanwhile_never_takes_effect() {
    let app = spawn_factor_reset_app().await;
    let pending = pending_reset(&app, "jean", pb::Locale::En).await;
    // The customer turns 2FA off and on again with a new secret meanwhile.
    app.clock.advance(std::time::Duration::from_secs(60));
    let code = totp_code(&pending.secret, app.clock_now());
    app.client()
        .await
        .disable_totp(authed(
            &pending.session,
            pb::DisableTotpRequest {
                current_password: STRONG_PASSWORD.into(),
                code: Some(pb::disable_totp_request::Code::TotpCode(code)),
            },
        ))
        .await
        .unwrap();
    app.clock.advance(std::time::Duration::from_secs(60));
    let (fresh, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    assert_ne!(fresh, pending.secret);

    app.clock.advance(DAY * 2);
    app.wait_for_due_factor_resets().await;
    assert!(
        app.totp_enabled(&pending.id).await,
        "the new enrolment was removed"
    );
    let kinds = app.events_of(&pending.id).await;
    assert!(kinds.contains(&"factor_reset_cancelled".to_string()));
    assert!(!kinds.contains(&"factor_reset_completed".to_string()));
    let shown = review(&app, &pending.id).await;
    assert!(shown.pending_factor_reset.is_none());
    let cancelled = shown
        .recent_events
        .iter()
        .find(|e| e.kind() == pb::SecurityEventKind::FactorResetCancelled)
        .unwrap();
    assert_eq!(cancelled.details["via"], "factor_changed");
    assert_eq!(
        cancelled.actor.clone().unwrap().kind(),
        pb::ActorKind::System
    );
}

/// Issue 21: nothing a customer receives (every e-mail, ticket system
/// message, information-centre item and error, in both languages) carries a
/// staff note, an audit reason, an identity-verification reference, an
/// internal ticket note, or a secret. Every staff-written text is given here
/// with a marker, through each path that takes one; then everything the
/// customer can read is searched for the markers.
#[tokio::test]
pub async fn customers_never_read_a_staff_note_an_audit_reason_or_a_secret() {
    const MARKERS: [&str; 6] = [
        "AUDIT-ONLY",
        "KYC-CASE",
        "STAFF-SUSPENSION-NOTE",
        "STAFF-LIFT-NOTE",
        "STAFF-INTERNAL-NOTE",
        "STAFF-SECOND-NOTE",
    ];
    let app = spawn_factor_reset_app().await;
    for (login, locale, own_word) in [
        ("jeanne", pb::Locale::Fr, "Bonjour"),
        ("john", pb::Locale::En, "Hello"),
    ] {
        // A scheduled support reset of the factor under the customer's own
        // ticket (evidence "KYC-CASE-…", audit reason "AUDIT-ONLY …").
        let pending = pending_reset(&app, login, locale).await;
        let mut support = app.support().await;
        for (body, internal_note) in [
            (
                "STAFF-INTERNAL-NOTE caller seemed to read from a script",
                true,
            ),
            ("We are looking into it.", false),
        ] {
            support
                .add_ticket_message(authed(
                    &app.agent_token,
                    spb::AddTicketMessageRequest {
                        ticket_id: pending.ticket_id.clone(),
                        body: body.into(),
                        internal_note,
                    },
                ))
                .await
                .unwrap();
        }
        // The reset takes effect.
        app.clock.advance(DAY + std::time::Duration::from_secs(1));
        app.wait_until_totp_off(&pending.id).await;
        // Suspended with a staff note, lifted with one, suspended again.
        let mut client = app.client().await;
        for (reason, note) in [
            (
                pb::SuspensionReason::SuspectedCompromise,
                "STAFF-SUSPENSION-NOTE seen in a paste",
            ),
            (
                pb::SuspensionReason::FraudAlert,
                "STAFF-SECOND-NOTE chargeback ring",
            ),
        ] {
            client
                .suspend_password(authed(
                    &app.security_token,
                    pb::SuspendPasswordRequest {
                        account_id: pending.id.clone(),
                        reason: reason.into(),
                        note: note.into(),
                        evidence_event_ids: vec![],
                    },
                ))
                .await
                .unwrap();
            if reason == pb::SuspensionReason::SuspectedCompromise {
                client
                    .lift_suspension(authed(
                        &app.security_token,
                        pb::LiftSuspensionRequest {
                            account_id: pending.id.clone(),
                            note: "STAFF-LIFT-NOTE customer called".into(),
                        },
                    ))
                    .await
                    .unwrap();
            }
        }
        support
            .set_ticket_status(authed(
                &app.agent_token,
                spb::SetTicketStatusRequest {
                    ticket_id: pending.ticket_id.clone(),
                    status: spb::TicketStatus::Resolved.into(),
                },
            ))
            .await
            .unwrap();

        // What the customer can read: the login refusal…
        let mut readable: Vec<(String, String)> = Vec::new();
        let refused = app.login(login, STRONG_PASSWORD).await.unwrap_err();
        assert_eq!(reason(&refused), "PASSWORD_SUSPENDED");
        readable.push((
            "Login error".into(),
            format!("{refused:?} {:?}", refused.details()),
        ));
        // …their session's reads (a session made directly: none opens while
        // suspended)…
        let grant = gardien::domain::sessions::create(
            &app.ctx.db,
            &app.ctx,
            uuid::Uuid::parse_str(&pending.id).unwrap(),
            &Default::default(),
            false,
            app.ctx.now(),
        )
        .await
        .unwrap();
        let token = secrecy::ExposeSecret::expose_secret(&grant.token).to_string();
        register_secret(&token);
        let overview = client
            .get_security_overview(authed(&token, pb::GetSecurityOverviewRequest {}))
            .await
            .unwrap()
            .into_inner();
        readable.push(("GetSecurityOverview".into(), format!("{overview:?}")));
        let events = client
            .list_security_events(authed(
                &token,
                pb::ListSecurityEventsRequest {
                    page_size: 100,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(events.events.len() >= 8, "{login}: {events:?}");
        // Where staff (or the calling service) worked from is not shown to
        // the customer, only to staff.
        let by_staff = |e: &pb::SecurityEvent| {
            matches!(
                e.actor.as_ref().map(|a| a.kind()),
                Some(
                    pb::ActorKind::SupportAgent
                        | pb::ActorKind::SecurityTeam
                        | pb::ActorKind::Service
                )
            )
        };
        assert!(
            events
                .events
                .iter()
                .any(|e| e.kind() == pb::SecurityEventKind::AccountCreated && by_staff(e)),
            "{login}: the account was created by a service"
        );
        for event in events.events.iter().filter(|e| by_staff(e)) {
            assert_eq!(
                (event.client_address.as_str(), event.user_agent.as_str()),
                ("", ""),
                "{login}: {event:?}"
            );
        }
        let reviewed = review(&app, &pending.id).await.recent_events;
        assert!(
            reviewed
                .iter()
                .any(|e| by_staff(e) && !e.client_address.is_empty() && !e.user_agent.is_empty()),
            "{login}: staff see where staff worked from"
        );
        readable.push(("ListSecurityEvents".into(), format!("{events:?}")));
        let changes = client
            .list_contact_changes(authed(&token, pb::ListContactChangesRequest::default()))
            .await
            .unwrap()
            .into_inner();
        readable.push(("ListContactChanges".into(), format!("{changes:?}")));
        let tickets = support
            .list_tickets(authed(&token, spb::ListTicketsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        readable.push(("ListTickets".into(), format!("{tickets:?}")));
        let ticket = support
            .get_ticket(authed(
                &token,
                spb::GetTicketRequest {
                    ticket_id: pending.ticket_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let system = ticket
            .messages
            .iter()
            .filter(|m| m.author_kind() == spb::MessageAuthorKind::System)
            .count();
        assert_eq!(
            system, 2,
            "{login}: the reset's scheduled and done messages"
        );
        readable.push(("GetTicket".into(), format!("{ticket:?}")));
        // …and every e-mail, in the account's language.
        let mails = app.mails_to(&pending.email);
        assert!(mails.len() >= 5, "{login}: {} e-mails", mails.len());
        assert!(
            mails.iter().all(|mail| mail.contains(own_word)),
            "{login}: an e-mail not in the account's language"
        );
        readable.extend(mails.into_iter().map(|mail| ("e-mail".into(), mail)));

        for (what, text) in &readable {
            for marker in MARKERS {
                assert!(
                    !text.to_uppercase().contains(marker),
                    "{login}: {what} carries {marker}:\n{text}"
                );
            }
            for secret in [STRONG_PASSWORD, pending.secret.as_str()] {
                assert!(!text.contains(secret), "{login}: {what} carries a secret");
            }
        }
    }
}

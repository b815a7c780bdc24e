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

/// The token of the first link with `prefix` (e.g. "gdx_") in a mail.
pub fn link_token(mail: &str, prefix: &str) -> String {
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

    // The phone notice and the e-mail change notice.
    let old = app.wait_for_mails("jean@example.fr", 2).await;
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
    let suspended = overview::overview(&app.ctx, app.clock_now(), &caller)
        .await
        .unwrap();
    let actions: Vec<_> = suspended.actions.iter().map(|(a, _)| *a).collect();
    assert!(actions.contains(&overview::Action::ResetPassword));
    assert!(actions.contains(&overview::Action::ReviewEvents));
    assert!(suspended.active_suspension.is_some());

    app.reset_password_by_email("jean", "jean@example.fr", NEW_PASSWORD)
        .await;
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
    // After the suspension, a passkey too: a phished password cannot replace it.
    assert_eq!(
        kinds,
        [
            pb::RecommendedActionKind::EnableTotp,
            pb::RecommendedActionKind::AddPasskey
        ]
    );
    assert_eq!(seen.unacknowledged_events, 0);
    assert_eq!(seen.password_state(), pb::PasswordState::Active);
}

#[tokio::test]
pub async fn a_login_from_a_new_address_is_notified_with_a_wasnt_me_link() {
    use gardien::domain::{login, principal::ClientInfo};
    // The outbox looks by itself only once an hour here: the notice must
    // wake it when the login commits, not wait for its next look.
    let app = spawn_app_with(|c| c.mail.poll_interval_ms = 3_600_000).await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = ClientInfo {
        address: Some("203.0.113.9".into()),
        user_agent: None,
    };
    let password = secrecy::SecretString::from(STRONG_PASSWORD.to_string());
    login::login(&app.ctx, app.clock_now(), "jean", password, &elsewhere)
        .await
        .ok()
        .unwrap();
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert_eq!(mails.len(), 1, "only the new address is notified");
    assert!(mails[0].contains("203.0.113.9") && mails[0].contains("token=gdx_"));
}

/// What the suspension e-mail says for each reason, in English and French:
/// a phrase that only that reason's wording holds.
const SUSPENSION_WORDING: &[(pb::SuspensionReason, &str, &str)] = &[
    (
        pb::SuspensionReason::SuspectedCompromise,
        "because a compromise is suspected",
        "suite à une suspicion de compromission",
    ),
    (
        pb::SuspensionReason::CredentialLeak,
        "this password appeared in a list of leaked credentials",
        "ce mot de passe figure dans une liste d'identifiants divulgués",
    ),
    (
        pb::SuspensionReason::FraudAlert,
        "our fraud detection raised an alert on your account",
        "une alerte de notre détection des fraudes",
    ),
    (
        pb::SuspensionReason::CustomerRequest,
        "As you asked, we have suspended the password",
        "Comme vous l'avez demandé, nous avons suspendu le mot de passe",
    ),
    (
        pb::SuspensionReason::CustomerReported,
        "you asked us to secure your account",
        "vous nous avez demandé de sécuriser votre compte",
    ),
    (
        pb::SuspensionReason::Other,
        "as a precaution, to protect your account",
        "par précaution, pour protéger votre compte",
    ),
];

const STAFF_NOTE: &str = "staff only: matched paste 4471 from the fraud feed";

async fn suspend_for(app: &TestApp, account_id: &str, reason: pb::SuspensionReason) {
    app.client()
        .await
        .suspend_password(authed(
            &app.security_token,
            pb::SuspendPasswordRequest {
                account_id: account_id.into(),
                reason: reason.into(),
                note: STAFF_NOTE.into(),
                evidence_event_ids: vec![],
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
pub async fn each_suspension_reason_has_its_own_wording_in_both_languages() {
    let app = spawn_app().await;
    for (index, (reason, english, french)) in SUSPENSION_WORDING.iter().enumerate() {
        for (locale, expected) in [(pb::Locale::En, english), (pb::Locale::Fr, french)] {
            let login = format!("client{index}{}", locale.as_str_name().to_lowercase());
            let email = format!("{login}@example.fr");
            let id = app
                .create_account_in(&login, &email, STRONG_PASSWORD, locale)
                .await;
            suspend_for(&app, &id, *reason).await;
            let mails = app.wait_for_mails(&email, 1).await;
            let notice = &mails[0];
            assert!(
                notice.contains(expected),
                "{reason:?} in {locale:?} lacks {expected:?}:\n{notice}"
            );
            for (other, other_english, other_french) in SUSPENSION_WORDING {
                if other != reason {
                    assert!(
                        !notice.contains(other_english) && !notice.contains(other_french),
                        "{reason:?} in {locale:?} uses the wording of {other:?}"
                    );
                }
            }
            assert!(
                !notice.contains(STAFF_NOTE),
                "the staff note reached the customer"
            );
        }
    }
}

#[tokio::test]
pub async fn a_customer_report_is_not_told_as_a_suspected_compromise() {
    let app = spawn_app().await;
    for (login, locale) in [("jean", pb::Locale::En), ("marie", pb::Locale::Fr)] {
        let email = format!("{login}@example.fr");
        app.create_account_in(login, &email, STRONG_PASSWORD, locale)
            .await;
        let session = app.login(login, STRONG_PASSWORD).await.unwrap();
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
        let mails = app.wait_for_mails(&email, 1).await;
        let token = link_token(&mails[0], "gdx_");
        app.client()
            .await
            .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
                report_token: token,
                comment: "not me".into(),
            })
            .await
            .unwrap();
        // The password notice, the suspension notice, the dispute receipt.
        let mails = app.wait_for_mails(&email, 3).await;
        let (_, english, french) = SUSPENSION_WORDING
            .iter()
            .find(|(reason, ..)| *reason == pb::SuspensionReason::CustomerReported)
            .unwrap();
        let expected = if locale == pb::Locale::Fr {
            french
        } else {
            english
        };
        assert!(
            mails.iter().any(|m| m.contains(expected)),
            "no customer-reported wording in {mails:#?}"
        );
        for mail in &mails {
            assert!(!mail.contains("compromise is suspected"));
            assert!(!mail.contains("suspicion de compromission"));
            // The suspension's note is for the staff ("customer reported event …").
            assert!(!mail.contains("customer reported event"), "{mail}");
        }
    }
}

#[tokio::test]
pub async fn a_suspended_login_names_the_reason_and_never_the_note() {
    use tonic_types::StatusExt;
    let app = spawn_app().await;
    for (index, (reason, ..)) in SUSPENSION_WORDING.iter().enumerate() {
        let login = format!("client{index}");
        let id = app
            .create_account(&login, &format!("{login}@example.fr"), STRONG_PASSWORD)
            .await;
        suspend_for(&app, &id, *reason).await;

        let status = app.login(&login, STRONG_PASSWORD).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "PASSWORD_SUSPENDED");
        assert_eq!(
            info.metadata.get("suspension_reason").map(String::as_str),
            Some(reason.as_str_name())
        );
        assert!(!String::from_utf8_lossy(status.details()).contains("paste 4471"));
        assert!(!status.message().contains("paste 4471"));

        // A wrong password learns nothing of the suspension.
        let wrong = app.login(&login, NEW_PASSWORD).await.unwrap_err();
        let info = wrong.get_details_error_info().unwrap();
        assert_eq!(info.reason, "INVALID_CREDENTIALS");
        assert!(info.metadata.is_empty());
    }
}

async fn update_contact(
    app: &TestApp,
    token: &str,
    request: pb::UpdateContactDetailsRequest,
) -> pb::UpdateContactDetailsResponse {
    app.client()
        .await
        .update_contact_details(authed(token, request))
        .await
        .unwrap()
        .into_inner()
}

/// Reports the change from the notice's link; the link works once.
async fn report_from(app: &TestApp, notice: &str) -> String {
    let token = link_token(notice, "gdx_");
    let report = || async {
        app.client()
            .await
            .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
                report_token: token.clone(),
                comment: String::new(),
            })
            .await
    };
    let reference = report().await.unwrap().into_inner().ticket_reference;
    assert_eq!(reason(&report().await.unwrap_err()), "TOKEN_INVALID");
    reference
}

#[tokio::test]
pub async fn a_phone_change_is_told_to_the_contact_e_mail() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    update_contact(
        &app,
        &session.session_token,
        pb::UpdateContactDetailsRequest {
            phone: "+33699887766".into(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["phone".into()],
            }),
            ..Default::default()
        },
    )
    .await;
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert_eq!(mails.len(), 1);
    let notice = &mails[0];
    assert!(
        notice.contains("Subject: Your contact phone number was changed"),
        "{notice}"
    );
    assert!(notice.contains("token=gdx_"), "{notice}");
    assert!(report_from(&app, notice).await.starts_with("T-"));
    assert!(app
        .events_of(&id)
        .await
        .contains(&"unauthorized_change_reported".to_string()));
}

#[tokio::test]
pub async fn a_postal_address_change_is_told_to_the_contact_e_mail() {
    let app = spawn_app().await;
    app.create_account_in("jean", "jean@example.fr", STRONG_PASSWORD, pb::Locale::Fr)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    update_contact(
        &app,
        &session.session_token,
        pb::UpdateContactDetailsRequest {
            postal_address: Some(pb::PostalAddress {
                line1: "2 rue Kellermann".into(),
                postal_code: "59100".into(),
                city: "Roubaix".into(),
                country_code: "FR".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["postal_address".into()],
            }),
            ..Default::default()
        },
    )
    .await;
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert_eq!(mails.len(), 1);
    let notice = &mails[0];
    assert!(
        notice.contains("L'adresse postale de votre compte jean a été modifiée"),
        "{notice}"
    );
    assert!(report_from(&app, notice).await.starts_with("T-"));
}

#[tokio::test]
pub async fn a_confirmed_e_mail_change_tells_the_old_address_with_a_working_report_link() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    update_contact(
        &app,
        &session.session_token,
        pb::UpdateContactDetailsRequest {
            email: "jean.new@example.org".into(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["email".into()],
            }),
            ..Default::default()
        },
    )
    .await;
    let requested = app.wait_for_mails("jean@example.fr", 1).await;
    let confirmation = app.wait_for_mails("jean.new@example.org", 1).await;
    app.client()
        .await
        .confirm_email_change(pb::ConfirmEmailChangeRequest {
            confirmation_token: link_token(&confirmation[0], "gde_"),
        })
        .await
        .unwrap();

    let old = app.wait_for_mails("jean@example.fr", 2).await;
    let notice = &old[1];
    assert!(
        notice.contains("Subject: Your contact e-mail was changed"),
        "{notice}"
    );
    assert!(notice.contains("jean.new@example.org"));
    // The link of the request notice went to the old address: it died with
    // the change, and the notice of the change brings a fresh one.
    let stale = link_token(&requested[0], "gdx_");
    let refused = app
        .client()
        .await
        .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
            report_token: stale,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_INVALID");
    assert!(report_from(&app, notice).await.starts_with("T-"));
    assert_eq!(
        reason(&app.login("jean", STRONG_PASSWORD).await.unwrap_err()),
        "PASSWORD_SUSPENDED"
    );
    assert!(app
        .events_of(&id)
        .await
        .contains(&"unauthorized_change_reported".to_string()));
}

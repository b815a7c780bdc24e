//! Conversions between proto messages and domain values.

use crate::{
    clock::to_timestamp,
    domain::{
        accounts::{STATE_ACTIVE, STATE_SUSPENDED},
        principal::{Actor, ActorKind},
        suspension::Reason,
        types::Locale,
    },
    entity::{account, session, suspension},
    proto::accountsecurity::v1 as pb,
};

pub fn locale_from_proto(value: i32) -> Option<Locale> {
    match pb::Locale::try_from(value).ok()? {
        pb::Locale::Unspecified | pb::Locale::En => Some(Locale::En),
        pb::Locale::Fr => Some(Locale::Fr),
    }
}

fn locale_to_proto(value: &str) -> pb::Locale {
    match Locale::parse(value) {
        Locale::En => pb::Locale::En,
        Locale::Fr => pb::Locale::Fr,
    }
}

fn password_state(value: &str) -> pb::PasswordState {
    match value {
        STATE_ACTIVE => pb::PasswordState::Active,
        STATE_SUSPENDED => pb::PasswordState::Suspended,
        _ => pb::PasswordState::Unset,
    }
}

pub fn account(model: &account::Model) -> pb::Account {
    let has_address = model.address_line1.is_some()
        || model.address_line2.is_some()
        || model.postal_code.is_some()
        || model.city.is_some()
        || model.country_code.is_some();
    pb::Account {
        account_id: model.id.to_string(),
        login: model.login.clone(),
        email: model.email.clone(),
        phone: model.phone.clone().unwrap_or_default(),
        postal_address: has_address.then(|| pb::PostalAddress {
            line1: model.address_line1.clone().unwrap_or_default(),
            line2: model.address_line2.clone().unwrap_or_default(),
            postal_code: model.postal_code.clone().unwrap_or_default(),
            city: model.city.clone().unwrap_or_default(),
            country_code: model.country_code.clone().unwrap_or_default(),
        }),
        locale: locale_to_proto(&model.locale).into(),
        password_state: password_state(&model.password_state).into(),
        totp_enabled: model.totp_secret.is_some(),
        created_at: Some(to_timestamp(model.created_at)),
        updated_at: Some(to_timestamp(model.updated_at)),
    }
}

pub fn actor(actor: &Actor) -> pb::Actor {
    pb::Actor {
        kind: match actor.kind {
            ActorKind::Customer => pb::ActorKind::Customer,
            ActorKind::SupportAgent => pb::ActorKind::SupportAgent,
            ActorKind::SecurityTeam => pb::ActorKind::SecurityTeam,
            ActorKind::Service => pb::ActorKind::Service,
            ActorKind::System => pb::ActorKind::System,
        }
        .into(),
        name: actor.name.clone().unwrap_or_default(),
    }
}

fn stored_actor(kind: &str, name: &Option<String>) -> pb::Actor {
    actor(&Actor {
        kind: ActorKind::parse(kind),
        name: name.clone(),
    })
}

pub fn reason_from_proto(value: i32) -> Option<Reason> {
    Some(match pb::SuspensionReason::try_from(value).ok()? {
        pb::SuspensionReason::Unspecified => return None,
        pb::SuspensionReason::SuspectedCompromise => Reason::SuspectedCompromise,
        pb::SuspensionReason::CredentialLeak => Reason::CredentialLeak,
        pb::SuspensionReason::FraudAlert => Reason::FraudAlert,
        pb::SuspensionReason::CustomerRequest => Reason::CustomerRequest,
        pb::SuspensionReason::CustomerReported => Reason::CustomerReported,
        pb::SuspensionReason::Other => Reason::Other,
    })
}

pub fn reason_to_proto(value: &str) -> pb::SuspensionReason {
    match Reason::parse(value) {
        Some(Reason::SuspectedCompromise) => pb::SuspensionReason::SuspectedCompromise,
        Some(Reason::CredentialLeak) => pb::SuspensionReason::CredentialLeak,
        Some(Reason::FraudAlert) => pb::SuspensionReason::FraudAlert,
        Some(Reason::CustomerRequest) => pb::SuspensionReason::CustomerRequest,
        Some(Reason::CustomerReported) => pb::SuspensionReason::CustomerReported,
        Some(Reason::Other) => pb::SuspensionReason::Other,
        None => pb::SuspensionReason::Unspecified,
    }
}

/// A suspension as the customer sees it: without the staff note.
pub fn customer_suspension(model: &suspension::Model) -> pb::Suspension {
    pb::Suspension {
        note: String::new(),
        ..suspension(model)
    }
}

pub fn suspension(model: &suspension::Model) -> pb::Suspension {
    pb::Suspension {
        suspension_id: model.id.to_string(),
        reason: reason_to_proto(&model.reason).into(),
        note: model.note.clone(),
        evidence_event_ids: serde_json::from_str(&model.evidence_event_ids).unwrap_or_default(),
        suspended_at: Some(to_timestamp(model.suspended_at)),
        suspended_by: Some(stored_actor(
            &model.suspended_by_kind,
            &model.suspended_by_name,
        )),
        lifted_at: model.lifted_at.map(to_timestamp),
        lifted_by: model
            .lifted_by_kind
            .as_ref()
            .map(|kind| stored_actor(kind, &model.lifted_by_name)),
        lift_method: match model.lift_method.as_deref() {
            Some("security_team") => pb::LiftMethod::SecurityTeam,
            Some("password_reset") => pb::LiftMethod::PasswordReset,
            _ => pb::LiftMethod::Unspecified,
        }
        .into(),
    }
}

pub fn session(model: &session::Model, idle_expires_at: i64, current: bool) -> pb::Session {
    pb::Session {
        session_id: model.id.to_string(),
        created_at: Some(to_timestamp(model.created_at)),
        last_seen_at: Some(to_timestamp(model.last_seen_at)),
        expires_at: Some(to_timestamp(model.expires_at)),
        idle_expires_at: Some(to_timestamp(idle_expires_at)),
        client_address: model.client_address.clone().unwrap_or_default(),
        user_agent: model.user_agent.clone().unwrap_or_default(),
        current,
        second_factor_used: model.second_factor_used,
    }
}

pub fn recommended_action(action: crate::domain::overview::Action) -> pb::RecommendedActionKind {
    use crate::domain::overview::Action;
    match action {
        Action::ResetPassword => pb::RecommendedActionKind::ResetPassword,
        Action::EnableTotp => pb::RecommendedActionKind::EnableTotp,
        Action::ReviewEvents => pb::RecommendedActionKind::ReviewEvents,
        Action::VerifyContactDetails => pb::RecommendedActionKind::VerifyContactDetails,
        Action::OpenTicket => pb::RecommendedActionKind::OpenTicket,
        Action::RegenerateRecoveryCodes => pb::RecommendedActionKind::RegenerateRecoveryCodes,
    }
}

/// Page size: 0 means the default (50); anything above 200 is 200.
pub fn page_size(requested: u32) -> u64 {
    match requested {
        0 => 50,
        n => u64::from(n.min(200)),
    }
}

/// Page tokens are the last id of the previous page, opaque to clients.
pub fn page_token(field: &str, token: &str) -> Result<Option<uuid::Uuid>, crate::domain::Error> {
    if token.is_empty() {
        return Ok(None);
    }
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| uuid::Uuid::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            crate::domain::Error::invalid(field, "is not a page token returned by gardien")
        })
}

pub fn next_page_token(last: Option<uuid::Uuid>) -> String {
    use base64::Engine;
    last.map(|id| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes()))
        .unwrap_or_default()
}

/// The proto value of a revocation cause (its name, prefixed).
pub fn revocation_cause(
    cause: crate::domain::revocation::RevocationCause,
) -> pb::SessionRevocationCause {
    pb::SessionRevocationCause::from_str_name(&format!("SESSION_REVOCATION_CAUSE_{}", cause.name()))
        .unwrap_or(pb::SessionRevocationCause::Other)
}

/// A journal entry as the customer sees it: without the details kept for
/// staff only (a security team's note).
pub fn security_event(
    model: &crate::entity::security_event::Model,
    locale: Locale,
) -> pb::SecurityEvent {
    journal_entry(model, locale, false)
}

/// A journal entry as an agent sees it (GetAccountReview): every detail.
pub fn security_event_for_staff(
    model: &crate::entity::security_event::Model,
    locale: Locale,
) -> pb::SecurityEvent {
    journal_entry(model, locale, true)
}

fn journal_entry(
    model: &crate::entity::security_event::Model,
    locale: Locale,
    for_staff: bool,
) -> pb::SecurityEvent {
    use crate::domain::events::{self, EventKind, STAFF_ONLY_DETAILS};
    let kind = EventKind::parse(&model.kind);
    // Where staff or a calling service worked from (a workstation's or a
    // server's address and user agent) is not the customer's business; the
    // end client's address a service reports with an activity
    // (RecordActivity) is.
    let reported_activity = matches!(
        kind,
        Some(
            EventKind::OrderPlaced
                | EventKind::ServiceOrdered
                | EventKind::ServiceCancelled
                | EventKind::DomainTransfer
                | EventKind::ApiKeyCreated
        )
    );
    let by_staff = match ActorKind::parse(&model.actor_kind) {
        ActorKind::SupportAgent | ActorKind::SecurityTeam => true,
        ActorKind::Service => !reported_activity,
        _ => false,
    };
    let shown = |value: &Option<String>| {
        if by_staff && !for_staff {
            String::new()
        } else {
            value.clone().unwrap_or_default()
        }
    };
    let details =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&model.details)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .filter(|(key, _)| for_staff || !STAFF_ONLY_DETAILS.contains(&key.as_str()))
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                (key, text)
            })
            .collect();
    pb::SecurityEvent {
        event_id: model.id.to_string(),
        kind: pb::SecurityEventKind::from_str_name(&format!(
            "SECURITY_EVENT_KIND_{}",
            model.kind.to_ascii_uppercase()
        ))
        .unwrap_or(pb::SecurityEventKind::Unspecified)
        .into(),
        occurred_at: Some(to_timestamp(model.occurred_at)),
        actor: Some(stored_actor(&model.actor_kind, &model.actor_name)),
        client_address: shown(&model.client_address),
        user_agent: shown(&model.user_agent),
        summary: events::summary(kind, locale).to_string(),
        details,
        acknowledged: model.acknowledged_at.is_some(),
        disputed: model.disputed_at.is_some(),
    }
}

pub mod support {
    //! Conversions of the support service's messages.

    use crate::{
        clock::to_timestamp,
        domain::{
            factor_reset::{self, Method},
            support::{Category, Status},
        },
        entity::{identity_verification, ticket, ticket_message},
        proto::support::v1 as spb,
    };

    pub fn category_from_proto(value: i32) -> Option<Category> {
        Some(match spb::TicketCategory::try_from(value).ok()? {
            spb::TicketCategory::Unspecified => return None,
            spb::TicketCategory::SecurityVerification => Category::SecurityVerification,
            spb::TicketCategory::Technical => Category::Technical,
            spb::TicketCategory::Billing => Category::Billing,
            spb::TicketCategory::Other => Category::Other,
        })
    }

    pub fn status_from_proto(value: i32) -> Option<Status> {
        Some(match spb::TicketStatus::try_from(value).ok()? {
            spb::TicketStatus::Unspecified => return None,
            spb::TicketStatus::Open => Status::Open,
            spb::TicketStatus::PendingAgent => Status::PendingAgent,
            spb::TicketStatus::PendingCustomer => Status::PendingCustomer,
            spb::TicketStatus::Resolved => Status::Resolved,
            spb::TicketStatus::Closed => Status::Closed,
        })
    }

    fn upper(prefix: &str, value: &str) -> String {
        format!("{prefix}{}", value.to_ascii_uppercase())
    }

    /// `for_agent` adds what only agents see (recovery details, internal notes count).
    pub fn ticket(model: &ticket::Model, for_agent: bool) -> spb::Ticket {
        spb::Ticket {
            ticket_id: model.id.to_string(),
            reference: model.reference.clone(),
            account_id: model
                .account_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            category: spb::TicketCategory::from_str_name(&upper(
                "TICKET_CATEGORY_",
                &model.category,
            ))
            .unwrap_or_default()
            .into(),
            status: spb::TicketStatus::from_str_name(&upper("TICKET_STATUS_", &model.status))
                .unwrap_or_default()
                .into(),
            priority: spb::TicketPriority::from_str_name(&upper(
                "TICKET_PRIORITY_",
                &model.priority,
            ))
            .unwrap_or_default()
            .into(),
            subject: model.subject.clone(),
            created_at: Some(to_timestamp(model.created_at)),
            updated_at: Some(to_timestamp(model.updated_at)),
            assignee: model.assignee.clone().unwrap_or_default(),
            linked_event_ids: serde_json::from_str(&model.linked_event_ids).unwrap_or_default(),
            unverified: model.unverified && for_agent,
            message_count: (if for_agent {
                model.message_count
            } else {
                model.public_message_count
            })
            .max(0) as u32,
            recovery_login_or_email: if for_agent {
                model.recovery_login_or_email.clone().unwrap_or_default()
            } else {
                String::new()
            },
            recovery_reachable_contact: if for_agent {
                model.recovery_reachable_contact.clone().unwrap_or_default()
            } else {
                String::new()
            },
        }
    }

    pub fn method_from_proto(value: i32) -> Option<Method> {
        Some(
            match spb::IdentityVerificationMethod::try_from(value).ok()? {
                spb::IdentityVerificationMethod::Unspecified => return None,
                spb::IdentityVerificationMethod::IdDocument => Method::IdDocument,
                spb::IdentityVerificationMethod::VideoCall => Method::VideoCall,
                spb::IdentityVerificationMethod::AccountKnowledge => Method::AccountKnowledge,
                spb::IdentityVerificationMethod::PhoneCallback => Method::PhoneCallback,
                spb::IdentityVerificationMethod::PostalMail => Method::PostalMail,
            },
        )
    }

    pub fn verification(model: &identity_verification::Model) -> spb::IdentityVerification {
        spb::IdentityVerification {
            verification_id: model.id.to_string(),
            ticket_id: model.ticket_id.to_string(),
            method: spb::IdentityVerificationMethod::from_str_name(&upper(
                "IDENTITY_VERIFICATION_METHOD_",
                &model.method,
            ))
            .unwrap_or_default()
            .into(),
            agent: model.agent.clone(),
            evidence_reference: model.evidence_reference.clone(),
            verified_at: Some(to_timestamp(model.verified_at)),
        }
    }

    /// A factor reset, for agents (it holds the audit reason).
    pub fn factor_reset(scheduled: &factor_reset::Scheduled) -> spb::FactorReset {
        let reset = &scheduled.reset;
        spb::FactorReset {
            factor_reset_id: reset.id.to_string(),
            account_id: reset.account_id.to_string(),
            ticket_id: reset.ticket_id.to_string(),
            status: spb::FactorResetStatus::from_str_name(&upper(
                "FACTOR_RESET_STATUS_",
                &reset.status,
            ))
            .unwrap_or_default()
            .into(),
            requested_by: reset.requested_by.clone(),
            requested_at: Some(to_timestamp(reset.requested_at)),
            effective_at: Some(to_timestamp(reset.due_at)),
            reason: reset.reason.clone(),
            verification: scheduled.verification.as_ref().map(verification),
            cancelled_at: reset.cancelled_at.map(to_timestamp),
            cancellation: reset
                .cancelled_via
                .as_deref()
                .and_then(|via| {
                    spb::FactorResetCancellation::from_str_name(&upper(
                        "FACTOR_RESET_CANCELLATION_",
                        via,
                    ))
                })
                .unwrap_or_default()
                .into(),
            completed_at: reset.completed_at.map(to_timestamp),
        }
    }

    pub fn message(model: &ticket_message::Model) -> spb::TicketMessage {
        let author_kind = match model.author_kind.as_str() {
            "customer" => spb::MessageAuthorKind::Customer,
            "support_agent" => spb::MessageAuthorKind::Agent,
            _ => spb::MessageAuthorKind::System,
        };
        spb::TicketMessage {
            message_id: model.id.to_string(),
            author_kind: author_kind.into(),
            author_name: model.author_name.clone().unwrap_or_default(),
            body: model.body.clone(),
            internal_note: model.internal_note,
            created_at: Some(to_timestamp(model.created_at)),
        }
    }
}

/// Contact details with when and by whom each last changed.
pub fn contact_details(view: &crate::domain::contacts::ContactView) -> pb::ContactDetails {
    use crate::domain::contacts::Field;
    let account = account(&view.account);
    let changed = |field| {
        view.last_change(field).map(|c| {
            (
                to_timestamp(c.changed_at),
                stored_actor(&c.actor_kind, &c.actor_name),
            )
        })
    };
    let (email_at, email_by) = changed(Field::Email).unzip();
    let (phone_at, phone_by) = changed(Field::Phone).unzip();
    let (address_at, address_by) = changed(Field::PostalAddress).unzip();
    pb::ContactDetails {
        email: account.email,
        email_last_changed_at: email_at,
        email_last_changed_by: email_by,
        phone: account.phone,
        phone_last_changed_at: phone_at,
        phone_last_changed_by: phone_by,
        postal_address: account.postal_address,
        postal_address_last_changed_at: address_at,
        postal_address_last_changed_by: address_by,
        pending_email: view
            .pending_email
            .as_ref()
            .map(|p| p.new_email.clone())
            .unwrap_or_default(),
        pending_email_expires_at: view
            .pending_email
            .as_ref()
            .map(|p| to_timestamp(p.expires_at)),
    }
}

pub fn contact_change(change: &crate::entity::contact_change::Model) -> pb::ContactChange {
    pb::ContactChange {
        change_id: change.id.to_string(),
        field: match change.field.as_str() {
            "email" => pb::ContactField::Email,
            "phone" => pb::ContactField::Phone,
            "postal_address" => pb::ContactField::PostalAddress,
            _ => pb::ContactField::Unspecified,
        }
        .into(),
        old_value: change.old_value.clone(),
        new_value: change.new_value.clone(),
        changed_at: Some(to_timestamp(change.changed_at)),
        changed_by: Some(stored_actor(&change.actor_kind, &change.actor_name)),
        client_address: change.client_address.clone().unwrap_or_default(),
        event_id: change.event_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn page_tokens_round_trip(bytes in any::<[u8; 16]>()) {
            let id = uuid::Uuid::from_bytes(bytes);
            let token = next_page_token(Some(id));
            prop_assert_eq!(page_token("page_token", &token).ok(), Some(Some(id)));
        }

        #[test]
        fn anything_else_is_refused_naming_the_field(
            token in prop_oneof![any::<String>(), "[A-Za-z0-9_+/=-]{0,40}"],
            field in "[a-z_]{1,20}",
        ) {
            match page_token(&field, &token) {
                Ok(None) => prop_assert!(token.is_empty()),
                Ok(Some(id)) => prop_assert_eq!(next_page_token(Some(id)), token),
                Err(crate::domain::Error::InvalidArgument(violations)) => {
                    prop_assert_eq!(violations.len(), 1);
                    prop_assert_eq!(&violations[0].field, &field);
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn page_sizes_are_bounded(requested in any::<u32>()) {
            let size = page_size(requested);
            prop_assert!((1..=200).contains(&size));
        }
    }
}

#[cfg(test)]
mod revocation_tests {
    use crate::domain::revocation::RevocationCause;

    use super::*;

    #[test]
    fn every_revocation_cause_is_named_as_in_the_proto() {
        for cause in RevocationCause::ALL {
            let value = revocation_cause(*cause);
            assert_eq!(
                value.as_str_name(),
                format!("SESSION_REVOCATION_CAUSE_{}", cause.name())
            );
        }
    }
}

//! Conversions between proto messages and domain values.

use crate::{
    clock::to_timestamp,
    domain::{
        principal::{Actor, ActorKind},
        records::{self, LiftMethod, PasswordState},
        suspension::Reason,
        types::Locale,
    },
    kinds::Field,
    proto::accountsecurity::v1 as pb,
};

pub fn locale_from_proto(value: i32) -> Option<Locale> {
    match pb::Locale::try_from(value).ok()? {
        pb::Locale::Unspecified | pb::Locale::En => Some(Locale::En),
        pb::Locale::Fr => Some(Locale::Fr),
    }
}

fn locale_to_proto(value: Locale) -> pb::Locale {
    match value {
        Locale::En => pb::Locale::En,
        Locale::Fr => pb::Locale::Fr,
    }
}

fn password_state(value: PasswordState) -> pb::PasswordState {
    match value {
        PasswordState::Active => pb::PasswordState::Active,
        PasswordState::Suspended => pb::PasswordState::Suspended,
        PasswordState::Unset => pb::PasswordState::Unset,
    }
}

pub fn account(account: &records::Account) -> pb::Account {
    pb::Account {
        account_id: account.id.to_string(),
        login: account.login.clone(),
        email: account.email.clone(),
        phone: account.phone.clone().unwrap_or_default(),
        postal_address: account
            .postal_address
            .as_ref()
            .map(|address| pb::PostalAddress {
                line1: address.line1.clone().unwrap_or_default(),
                line2: address.line2.clone().unwrap_or_default(),
                postal_code: address.postal_code.clone().unwrap_or_default(),
                city: address.city.clone().unwrap_or_default(),
                country_code: address.country_code.clone().unwrap_or_default(),
            }),
        locale: locale_to_proto(account.locale).into(),
        password_state: password_state(account.password_state).into(),
        totp_enabled: account.totp_enabled,
        created_at: Some(to_timestamp(account.created_at)),
        updated_at: Some(to_timestamp(account.updated_at)),
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

pub fn reason_to_proto(value: Option<Reason>) -> pb::SuspensionReason {
    match value {
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
pub fn customer_suspension(listed: &records::Suspension) -> pb::Suspension {
    pb::Suspension {
        note: String::new(),
        ..suspension(listed)
    }
}

pub fn suspension(suspension: &records::Suspension) -> pb::Suspension {
    pb::Suspension {
        suspension_id: suspension.id.to_string(),
        reason: reason_to_proto(suspension.reason).into(),
        note: suspension.note.clone(),
        evidence_event_ids: suspension.evidence_event_ids.clone(),
        suspended_at: Some(to_timestamp(suspension.suspended_at)),
        suspended_by: Some(actor(&suspension.suspended_by)),
        lifted_at: suspension.lifted_at.map(to_timestamp),
        lifted_by: suspension.lifted_by.as_ref().map(actor),
        lift_method: match suspension.lift_method {
            Some(LiftMethod::SecurityTeam) => pb::LiftMethod::SecurityTeam,
            Some(LiftMethod::PasswordReset) => pb::LiftMethod::PasswordReset,
            None => pb::LiftMethod::Unspecified,
        }
        .into(),
    }
}

pub fn session(model: &records::Session, current: bool) -> pb::Session {
    pb::Session {
        session_id: model.id.to_string(),
        created_at: Some(to_timestamp(model.created_at)),
        last_seen_at: Some(to_timestamp(model.last_seen_at)),
        expires_at: Some(to_timestamp(model.expires_at)),
        idle_expires_at: Some(to_timestamp(model.idle_expires_at)),
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
        Action::AddPasskey => pb::RecommendedActionKind::AddPasskey,
    }
}

pub fn passkey(view: &crate::domain::passkeys::PasskeyView) -> pb::Passkey {
    pb::Passkey {
        passkey_id: view.id.to_string(),
        name: view.name.clone(),
        created_at: Some(to_timestamp(view.created_at)),
        last_used_at: view.last_used_at.map(to_timestamp),
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
pub fn security_event(event: &records::Event, locale: Locale) -> pb::SecurityEvent {
    journal_entry(event, locale, false)
}

/// A journal entry as an agent sees it (GetAccountReview): every detail.
pub fn security_event_for_staff(event: &records::Event, locale: Locale) -> pb::SecurityEvent {
    journal_entry(event, locale, true)
}

fn journal_entry(event: &records::Event, locale: Locale, for_staff: bool) -> pb::SecurityEvent {
    use crate::domain::events::{self, EventKind, STAFF_ONLY_DETAILS};
    // Where staff or a calling service worked from (a workstation's or a
    // server's address and user agent) is not the customer's business; the
    // end client's address a service reports with an activity
    // (RecordActivity) is.
    let reported_activity = matches!(
        event.kind,
        Some(
            EventKind::OrderPlaced
                | EventKind::ServiceOrdered
                | EventKind::ServiceCancelled
                | EventKind::DomainTransfer
                | EventKind::ApiKeyCreated
        )
    );
    let by_staff = match event.actor.kind {
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
    let details = event
        .details
        .iter()
        .filter(|(key, _)| for_staff || !STAFF_ONLY_DETAILS.contains(&key.as_str()))
        .cloned()
        .collect();
    pb::SecurityEvent {
        event_id: event.id.to_string(),
        kind: event
            .kind
            .and_then(|kind| {
                pb::SecurityEventKind::from_str_name(&format!(
                    "SECURITY_EVENT_KIND_{}",
                    kind.as_str().to_ascii_uppercase()
                ))
            })
            .unwrap_or(pb::SecurityEventKind::Unspecified)
            .into(),
        occurred_at: Some(to_timestamp(event.occurred_at)),
        actor: Some(actor(&event.actor)),
        client_address: shown(&event.client_address),
        user_agent: shown(&event.user_agent),
        summary: events::summary(event.kind, locale).to_string(),
        details,
        acknowledged: event.acknowledged,
        disputed: event.disputed,
    }
}

pub mod support {
    //! Conversions of the support service's messages.

    use crate::{
        clock::to_timestamp,
        domain::{
            factor_reset::{Cancellation, Method},
            principal::ActorKind,
            records::{self, Priority, ResetStatus},
            support::{Category, Status},
        },
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

    fn category(value: Option<Category>) -> spb::TicketCategory {
        match value {
            None => spb::TicketCategory::Unspecified,
            Some(Category::SecurityVerification) => spb::TicketCategory::SecurityVerification,
            Some(Category::Technical) => spb::TicketCategory::Technical,
            Some(Category::Billing) => spb::TicketCategory::Billing,
            Some(Category::Other) => spb::TicketCategory::Other,
        }
    }

    fn status(value: Option<Status>) -> spb::TicketStatus {
        match value {
            None => spb::TicketStatus::Unspecified,
            Some(Status::Open) => spb::TicketStatus::Open,
            Some(Status::PendingAgent) => spb::TicketStatus::PendingAgent,
            Some(Status::PendingCustomer) => spb::TicketStatus::PendingCustomer,
            Some(Status::Resolved) => spb::TicketStatus::Resolved,
            Some(Status::Closed) => spb::TicketStatus::Closed,
        }
    }

    /// `for_agent` adds what only agents see (recovery details, internal notes count).
    pub fn ticket(ticket: &records::Ticket, for_agent: bool) -> spb::Ticket {
        let agents_only = |value: &Option<String>| {
            if for_agent {
                value.clone().unwrap_or_default()
            } else {
                String::new()
            }
        };
        spb::Ticket {
            ticket_id: ticket.id.to_string(),
            reference: ticket.reference.clone(),
            account_id: ticket
                .account_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            category: category(ticket.category).into(),
            status: status(ticket.status).into(),
            priority: match ticket.priority {
                Priority::Normal => spb::TicketPriority::Normal,
                Priority::High => spb::TicketPriority::High,
            }
            .into(),
            subject: ticket.subject.clone(),
            created_at: Some(to_timestamp(ticket.created_at)),
            updated_at: Some(to_timestamp(ticket.updated_at)),
            assignee: ticket.assignee.clone().unwrap_or_default(),
            linked_event_ids: ticket.linked_event_ids.clone(),
            unverified: ticket.unverified && for_agent,
            message_count: if for_agent {
                ticket.message_count
            } else {
                ticket.public_message_count
            },
            recovery_login_or_email: agents_only(&ticket.recovery_login_or_email),
            recovery_reachable_contact: agents_only(&ticket.recovery_reachable_contact),
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

    fn method(value: Option<Method>) -> spb::IdentityVerificationMethod {
        match value {
            None => spb::IdentityVerificationMethod::Unspecified,
            Some(Method::IdDocument) => spb::IdentityVerificationMethod::IdDocument,
            Some(Method::VideoCall) => spb::IdentityVerificationMethod::VideoCall,
            Some(Method::AccountKnowledge) => spb::IdentityVerificationMethod::AccountKnowledge,
            Some(Method::PhoneCallback) => spb::IdentityVerificationMethod::PhoneCallback,
            Some(Method::PostalMail) => spb::IdentityVerificationMethod::PostalMail,
        }
    }

    pub fn verification(verification: &records::Verification) -> spb::IdentityVerification {
        spb::IdentityVerification {
            verification_id: verification.id.to_string(),
            ticket_id: verification.ticket_id.to_string(),
            method: method(verification.method).into(),
            agent: verification.agent.clone(),
            evidence_reference: verification.evidence_reference.clone(),
            verified_at: Some(to_timestamp(verification.verified_at)),
        }
    }

    /// A factor reset, for agents (it holds the audit reason).
    pub fn factor_reset(reset: &records::FactorReset) -> spb::FactorReset {
        spb::FactorReset {
            factor_reset_id: reset.id.to_string(),
            account_id: reset.account_id.to_string(),
            ticket_id: reset.ticket_id.to_string(),
            status: match reset.status {
                None => spb::FactorResetStatus::Unspecified,
                Some(ResetStatus::Pending) => spb::FactorResetStatus::Pending,
                Some(ResetStatus::Cancelled) => spb::FactorResetStatus::Cancelled,
                Some(ResetStatus::Completed) => spb::FactorResetStatus::Completed,
            }
            .into(),
            requested_by: reset.requested_by.clone(),
            requested_at: Some(to_timestamp(reset.requested_at)),
            effective_at: Some(to_timestamp(reset.due_at)),
            reason: reset.reason.clone(),
            verification: reset.verification.as_ref().map(verification),
            cancelled_at: reset.cancelled_at.map(to_timestamp),
            cancellation: match reset.cancellation {
                None => spb::FactorResetCancellation::Unspecified,
                Some(Cancellation::CancelLink) => spb::FactorResetCancellation::CancelLink,
                Some(Cancellation::SecondFactorLogin) => {
                    spb::FactorResetCancellation::SecondFactorLogin
                }
                Some(Cancellation::FactorChanged) => spb::FactorResetCancellation::FactorChanged,
                Some(Cancellation::Dispute) => spb::FactorResetCancellation::Dispute,
            }
            .into(),
            completed_at: reset.completed_at.map(to_timestamp),
        }
    }

    pub fn message(message: &records::TicketMessage) -> spb::TicketMessage {
        let author_kind = match message.author.kind {
            ActorKind::Customer => spb::MessageAuthorKind::Customer,
            ActorKind::SupportAgent => spb::MessageAuthorKind::Agent,
            _ => spb::MessageAuthorKind::System,
        };
        spb::TicketMessage {
            message_id: message.id.to_string(),
            author_kind: author_kind.into(),
            author_name: message.author.name.clone().unwrap_or_default(),
            body: message.body.clone(),
            internal_note: message.internal_note,
            created_at: Some(to_timestamp(message.created_at)),
        }
    }
}

/// Contact details with when and by whom each last changed.
pub fn contact_details(view: &crate::domain::contacts::ContactView) -> pb::ContactDetails {
    use crate::domain::contacts::Field;
    let account = account(&view.account);
    let changed = |field| {
        view.last_change(field)
            .map(|c| (to_timestamp(c.changed_at), actor(&c.changed_by)))
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

pub fn contact_change(change: &records::ContactChange) -> pb::ContactChange {
    pb::ContactChange {
        change_id: change.id.to_string(),
        field: match change.field {
            Some(Field::Email) => pb::ContactField::Email,
            Some(Field::Phone) => pb::ContactField::Phone,
            Some(Field::PostalAddress) => pb::ContactField::PostalAddress,
            None => pb::ContactField::Unspecified,
        }
        .into(),
        old_value: change.old_value.clone(),
        new_value: change.new_value.clone(),
        changed_at: Some(to_timestamp(change.changed_at)),
        changed_by: Some(actor(&change.changed_by)),
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

#[cfg(test)]
mod support_value_tests {
    use super::support::*;
    use crate::{
        domain::records::{Cancellation, Category, Method, Status},
        proto::support::v1 as spb,
    };

    /// Each stored value has the proto value of the same name, so nothing
    /// reaches a client as UNSPECIFIED.
    #[test]
    fn every_support_value_has_its_proto_value() {
        let reset = |cancellation| crate::domain::records::FactorReset {
            id: uuid::Uuid::nil(),
            account_id: uuid::Uuid::nil(),
            ticket_id: uuid::Uuid::nil(),
            status: None,
            requested_by: String::new(),
            reason: String::new(),
            requested_at: 0,
            due_at: 0,
            cancelled_at: None,
            cancellation: Some(cancellation),
            completed_at: None,
            verification: None,
        };
        for via in [
            Cancellation::CancelLink,
            Cancellation::SecondFactorLogin,
            Cancellation::FactorChanged,
            Cancellation::Dispute,
        ] {
            let sent = factor_reset(&reset(via)).cancellation();
            assert_eq!(
                sent.as_str_name(),
                format!("FACTOR_RESET_CANCELLATION_{}", via.as_str().to_uppercase())
            );
        }
        for method in Method::ALL {
            let sent = method_from_proto(
                spb::IdentityVerificationMethod::from_str_name(&format!(
                    "IDENTITY_VERIFICATION_METHOD_{}",
                    method.as_str().to_uppercase()
                ))
                .expect("named in the proto") as i32,
            );
            assert_eq!(sent, Some(*method));
        }
        for category in Category::ALL {
            let named = spb::TicketCategory::from_str_name(&format!(
                "TICKET_CATEGORY_{}",
                category.as_str().to_uppercase()
            ))
            .expect("named in the proto");
            assert_eq!(category_from_proto(named as i32), Some(*category));
        }
        for status in Status::ALL {
            let named = spb::TicketStatus::from_str_name(&format!(
                "TICKET_STATUS_{}",
                status.as_str().to_uppercase()
            ))
            .expect("named in the proto");
            assert_eq!(status_from_proto(named as i32), Some(*status));
        }
    }
}

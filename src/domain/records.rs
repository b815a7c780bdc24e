//! What the domain hands its callers: typed records, read from the store's
//! rows once, so no caller sees a column's encoding (a state as a string,
//! ids as JSON text, an actor split over two columns).

use uuid::Uuid;

use super::{
    principal::{Actor, ActorKind},
    types::PostalAddress,
};
use crate::{
    clock::Millis,
    entity::{
        account, contact_change, factor_reset, identity_verification, security_event, session,
        suspension, ticket, ticket_message,
    },
    kinds::{EventKind, Field, Locale, Reason},
};

pub use crate::kinds::PasswordState;

/// What a support ticket is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    SecurityVerification,
    Technical,
    Billing,
    Other,
}

impl Category {
    pub const ALL: &'static [Category] = &[
        Category::SecurityVerification,
        Category::Technical,
        Category::Billing,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::SecurityVerification => "security_verification",
            Category::Technical => "technical",
            Category::Billing => "billing",
            Category::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<Category> {
        Self::ALL.iter().copied().find(|c| c.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    PendingAgent,
    PendingCustomer,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: &'static [Status] = &[
        Status::Open,
        Status::PendingAgent,
        Status::PendingCustomer,
        Status::Resolved,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::PendingAgent => "pending_agent",
            Status::PendingCustomer => "pending_customer",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    pub fn parse(value: &str) -> Option<Status> {
        Self::ALL.iter().copied().find(|s| s.as_str() == value)
    }
}

/// How an agent verified the customer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    IdDocument,
    VideoCall,
    AccountKnowledge,
    PhoneCallback,
    PostalMail,
}

impl Method {
    pub const ALL: &'static [Method] = &[
        Method::IdDocument,
        Method::VideoCall,
        Method::AccountKnowledge,
        Method::PhoneCallback,
        Method::PostalMail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::IdDocument => "id_document",
            Method::VideoCall => "video_call",
            Method::AccountKnowledge => "account_knowledge",
            Method::PhoneCallback => "phone_callback",
            Method::PostalMail => "postal_mail",
        }
    }

    pub fn parse(value: &str) -> Option<Method> {
        Self::ALL.iter().copied().find(|m| m.as_str() == value)
    }
}

/// How a pending reset was stopped; the string is kept in `cancelled_via`
/// and in the event's `details.via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    CancelLink,
    SecondFactorLogin,
    FactorChanged,
    /// The customer disputed the FACTOR_RESET_REQUESTED event ("this was
    /// not me") in the information centre.
    Dispute,
}

impl Cancellation {
    pub fn as_str(self) -> &'static str {
        match self {
            Cancellation::CancelLink => "cancel_link",
            Cancellation::SecondFactorLogin => "second_factor_login",
            Cancellation::FactorChanged => "factor_changed",
            Cancellation::Dispute => "dispute",
        }
    }

    pub fn parse(value: &str) -> Option<Cancellation> {
        [
            Cancellation::CancelLink,
            Cancellation::SecondFactorLogin,
            Cancellation::FactorChanged,
            Cancellation::Dispute,
        ]
        .into_iter()
        .find(|via| via.as_str() == value)
    }
}

/// An account as its callers see it: no hash, no second-factor secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub login: String,
    pub email: String,
    pub phone: Option<String>,
    /// `None` when no part of the address is set.
    pub postal_address: Option<PostalAddress>,
    pub locale: Locale,
    pub password_state: PasswordState,
    pub totp_enabled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl From<&account::Model> for Account {
    fn from(row: &account::Model) -> Self {
        let address = PostalAddress {
            line1: row.address_line1.clone(),
            line2: row.address_line2.clone(),
            postal_code: row.postal_code.clone(),
            city: row.city.clone(),
            country_code: row.country_code.clone(),
        };
        Account {
            id: row.id,
            login: row.login.clone(),
            email: row.email.clone(),
            phone: row.phone.clone(),
            postal_address: (address != PostalAddress::default()).then_some(address),
            locale: Locale::parse(&row.locale),
            password_state: PasswordState::parse(&row.password_state),
            totp_enabled: row.totp_secret.is_some(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

fn actor(kind: &str, name: &Option<String>) -> Actor {
    Actor {
        kind: ActorKind::parse(kind),
        name: name.clone(),
    }
}

/// A JSON list of ids kept in one column.
fn id_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// How a suspension ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiftMethod {
    SecurityTeam,
    PasswordReset,
}

impl LiftMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            LiftMethod::SecurityTeam => "security_team",
            LiftMethod::PasswordReset => "password_reset",
        }
    }

    fn parse(value: &str) -> Option<LiftMethod> {
        [LiftMethod::SecurityTeam, LiftMethod::PasswordReset]
            .into_iter()
            .find(|method| method.as_str() == value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub id: Uuid,
    pub account_id: Uuid,
    pub reason: Option<Reason>,
    /// The security team's note, for staff only.
    pub note: String,
    pub evidence_event_ids: Vec<String>,
    pub suspended_at: Millis,
    pub suspended_by: Actor,
    pub lifted_at: Option<Millis>,
    pub lifted_by: Option<Actor>,
    pub lift_method: Option<LiftMethod>,
}

impl From<&suspension::Model> for Suspension {
    fn from(row: &suspension::Model) -> Self {
        Suspension {
            id: row.id,
            account_id: row.account_id,
            reason: Reason::parse(&row.reason),
            note: row.note.clone(),
            evidence_event_ids: id_list(&row.evidence_event_ids),
            suspended_at: row.suspended_at,
            suspended_by: actor(&row.suspended_by_kind, &row.suspended_by_name),
            lifted_at: row.lifted_at,
            lifted_by: row
                .lifted_by_kind
                .as_deref()
                .map(|kind| actor(kind, &row.lifted_by_name)),
            lift_method: row.lift_method.as_deref().and_then(LiftMethod::parse),
        }
    }
}

/// A session as listed to its owner or to an agent: never its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
    /// When it ends unless used again before: `idle_ms` after it was last
    /// seen, never after `expires_at`.
    pub idle_expires_at: Millis,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    pub second_factor_used: bool,
}

impl Session {
    pub fn new(row: &session::Model, idle_ms: i64) -> Self {
        Session {
            id: row.id,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            expires_at: row.expires_at,
            idle_expires_at: row.last_seen_at.saturating_add(idle_ms).min(row.expires_at),
            client_address: row.client_address.clone(),
            user_agent: row.user_agent.clone(),
            second_factor_used: row.second_factor_used,
        }
    }
}

/// An entry of the security journal, with every detail; what a viewer may
/// see of it is decided where it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    /// `None` for a kind this build does not know (written by a newer one).
    pub kind: Option<EventKind>,
    pub occurred_at: Millis,
    pub actor: Actor,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// Key and text of each detail that has a value, in key order.
    pub details: Vec<(String, String)>,
    pub acknowledged: bool,
    pub disputed: bool,
}

impl From<&security_event::Model> for Event {
    fn from(row: &security_event::Model) -> Self {
        let details =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&row.details)
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| {
                    let text = match value {
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (key, text)
                })
                .collect();
        Event {
            id: row.id,
            kind: EventKind::parse(&row.kind),
            occurred_at: row.occurred_at,
            actor: actor(&row.actor_kind, &row.actor_name),
            client_address: row.client_address.clone(),
            user_agent: row.user_agent.clone(),
            details,
            acknowledged: row.acknowledged_at.is_some(),
            disputed: row.disputed_at.is_some(),
        }
    }
}

/// One change of a contact detail, kept for the customer and for agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChange {
    pub id: Uuid,
    pub field: Option<Field>,
    pub old_value: String,
    pub new_value: String,
    pub changed_at: Millis,
    pub changed_by: Actor,
    pub client_address: Option<String>,
    pub event_id: Option<Uuid>,
}

impl From<&contact_change::Model> for ContactChange {
    fn from(row: &contact_change::Model) -> Self {
        ContactChange {
            id: row.id,
            field: Field::parse(&row.field),
            old_value: row.old_value.clone(),
            new_value: row.new_value.clone(),
            changed_at: row.changed_at,
            changed_by: actor(&row.actor_kind, &row.actor_name),
            client_address: row.client_address.clone(),
            event_id: row.event_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Normal,
    High,
}

impl Priority {
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    fn parse(value: &str) -> Priority {
        if value == Priority::High.as_str() {
            Priority::High
        } else {
            Priority::Normal
        }
    }
}

/// A support ticket with everything kept on it; what the customer sees of
/// it is decided where it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: Uuid,
    pub reference: String,
    pub account_id: Option<Uuid>,
    pub category: Option<Category>,
    pub status: Option<Status>,
    pub priority: Priority,
    pub subject: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub assignee: Option<String>,
    pub linked_event_ids: Vec<String>,
    pub unverified: bool,
    /// Messages including internal notes.
    pub message_count: u32,
    /// Messages the customer sees.
    pub public_message_count: u32,
    pub recovery_login_or_email: Option<String>,
    pub recovery_reachable_contact: Option<String>,
}

impl From<&ticket::Model> for Ticket {
    fn from(row: &ticket::Model) -> Self {
        Ticket {
            id: row.id,
            reference: row.reference.clone(),
            account_id: row.account_id,
            category: Category::parse(&row.category),
            status: Status::parse(&row.status),
            priority: Priority::parse(&row.priority),
            subject: row.subject.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            assignee: row.assignee.clone(),
            linked_event_ids: id_list(&row.linked_event_ids),
            unverified: row.unverified,
            message_count: row.message_count.max(0) as u32,
            public_message_count: row.public_message_count.max(0) as u32,
            recovery_login_or_email: row.recovery_login_or_email.clone(),
            recovery_reachable_contact: row.recovery_reachable_contact.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketMessage {
    pub id: Uuid,
    pub author: Actor,
    pub body: String,
    pub internal_note: bool,
    pub created_at: Millis,
}

impl From<&ticket_message::Model> for TicketMessage {
    fn from(row: &ticket_message::Model) -> Self {
        TicketMessage {
            id: row.id,
            author: actor(&row.author_kind, &row.author_name),
            body: row.body.clone(),
            internal_note: row.internal_note,
            created_at: row.created_at,
        }
    }
}

/// An agent's record that they verified a customer's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub method: Option<Method>,
    pub agent: String,
    pub evidence_reference: String,
    pub verified_at: Millis,
}

impl From<&identity_verification::Model> for Verification {
    fn from(row: &identity_verification::Model) -> Self {
        Verification {
            id: row.id,
            ticket_id: row.ticket_id,
            method: Method::parse(&row.method),
            agent: row.agent.clone(),
            evidence_reference: row.evidence_reference.clone(),
            verified_at: row.verified_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetStatus {
    Pending,
    Cancelled,
    Completed,
}

impl ResetStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ResetStatus::Pending => "pending",
            ResetStatus::Cancelled => "cancelled",
            ResetStatus::Completed => "completed",
        }
    }

    fn parse(value: &str) -> Option<ResetStatus> {
        [
            ResetStatus::Pending,
            ResetStatus::Cancelled,
            ResetStatus::Completed,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}

/// A second-factor reset scheduled by an agent, with the verification it
/// rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorReset {
    pub id: Uuid,
    pub account_id: Uuid,
    pub ticket_id: Uuid,
    pub status: Option<ResetStatus>,
    pub requested_by: String,
    pub reason: String,
    pub requested_at: Millis,
    pub due_at: Millis,
    pub cancelled_at: Option<Millis>,
    pub cancellation: Option<Cancellation>,
    pub completed_at: Option<Millis>,
    pub verification: Option<Verification>,
}

impl FactorReset {
    pub fn new(
        row: &factor_reset::Model,
        verification: Option<&identity_verification::Model>,
    ) -> Self {
        FactorReset {
            id: row.id,
            account_id: row.account_id,
            ticket_id: row.ticket_id,
            status: ResetStatus::parse(&row.status),
            requested_by: row.requested_by.clone(),
            reason: row.reason.clone(),
            requested_at: row.requested_at,
            due_at: row.due_at,
            cancelled_at: row.cancelled_at,
            cancellation: row.cancelled_via.as_deref().and_then(Cancellation::parse),
            completed_at: row.completed_at,
            verification: verification.map(Verification::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lift_methods_and_reset_statuses_round_trip() {
        for method in [LiftMethod::SecurityTeam, LiftMethod::PasswordReset] {
            assert_eq!(LiftMethod::parse(method.as_str()), Some(method));
        }
        for status in [
            ResetStatus::Pending,
            ResetStatus::Cancelled,
            ResetStatus::Completed,
        ] {
            assert_eq!(ResetStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(Priority::parse(Priority::High.as_str()), Priority::High);
    }
}

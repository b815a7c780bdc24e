//! The support side's records: tickets and their messages, identity
//! verifications and second-factor resets, with the closed sets they use.

use uuid::Uuid;

use super::{actor, id_list};
use crate::{
    clock::Millis,
    domain::principal::Actor,
    entity::{factor_reset, identity_verification, ticket, ticket_message},
};

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
    fn reset_statuses_and_priorities_round_trip() {
        for status in [
            ResetStatus::Pending,
            ResetStatus::Cancelled,
            ResetStatus::Completed,
        ] {
            assert_eq!(ResetStatus::parse(status.as_str()), Some(status));
        }
        for priority in [Priority::Normal, Priority::High] {
            assert_eq!(Priority::parse(priority.as_str()), priority);
        }
    }
}

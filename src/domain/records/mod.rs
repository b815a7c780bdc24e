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
    entity::{account, contact_change, security_event, session, suspension},
    kinds::{EventKind, Field, Locale, Reason},
};

mod support;

pub use support::{
    Cancellation, Category, FactorReset, Method, Priority, ResetStatus, Status, Ticket,
    TicketMessage, Verification,
};

pub use crate::kinds::PasswordState;

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
    pub passkeys: u32,
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
            passkeys: u32::try_from(row.passkey_count).unwrap_or(0),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub(super) fn actor(kind: &str, name: &Option<String>) -> Actor {
    Actor {
        kind: ActorKind::parse(kind),
        name: name.clone(),
    }
}

/// A JSON list of ids kept in one column.
pub(super) fn id_list(json: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lift_methods_round_trip() {
        for method in [LiftMethod::SecurityTeam, LiftMethod::PasswordReset] {
            assert_eq!(LiftMethod::parse(method.as_str()), Some(method));
        }
    }
}

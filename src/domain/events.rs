//! The security-event journal: every security-relevant change writes one
//! event, in the same transaction as the change.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use uuid::Uuid;

use super::{
    error::Result,
    principal::{Actor, ClientInfo},
};
use crate::entity::security_event;

/// Kinds of events; the string is what the database keeps and the proto's
/// `SecurityEventKind` mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    AccountCreated,
    LoginSucceeded,
    LoginFailed,
    LoginChallenged,
    Logout,
    SessionRevoked,
    PasswordSuspended,
    SuspensionLifted,
    PasswordResetRequested,
    PasswordResetCompleted,
    LoginRecoveryRequested,
    PasswordChanged,
    TotpEnabled,
    TotpDisabled,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::AccountCreated,
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::LoginChallenged,
        EventKind::Logout,
        EventKind::SessionRevoked,
        EventKind::PasswordSuspended,
        EventKind::SuspensionLifted,
        EventKind::PasswordResetRequested,
        EventKind::PasswordResetCompleted,
        EventKind::LoginRecoveryRequested,
        EventKind::PasswordChanged,
        EventKind::TotpEnabled,
        EventKind::TotpDisabled,
        EventKind::RecoveryCodesRegenerated,
        EventKind::RecoveryCodeUsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AccountCreated => "account_created",
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::LoginChallenged => "login_challenged",
            EventKind::Logout => "logout",
            EventKind::SessionRevoked => "session_revoked",
            EventKind::PasswordSuspended => "password_suspended",
            EventKind::SuspensionLifted => "suspension_lifted",
            EventKind::PasswordResetRequested => "password_reset_requested",
            EventKind::PasswordResetCompleted => "password_reset_completed",
            EventKind::LoginRecoveryRequested => "login_recovery_requested",
            EventKind::PasswordChanged => "password_changed",
            EventKind::TotpEnabled => "totp_enabled",
            EventKind::TotpDisabled => "totp_disabled",
            EventKind::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            EventKind::RecoveryCodeUsed => "recovery_code_used",
        }
    }

    pub fn parse(value: &str) -> Option<EventKind> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == value)
    }
}

/// Appends one event to an account's journal. `details` holds no secret.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    kind: EventKind,
    actor: &Actor,
    client: &ClientInfo,
    details: serde_json::Value,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    security_event::Entity::insert(security_event::ActiveModel {
        id: Set(id),
        account_id: Set(account_id),
        kind: Set(kind.as_str().to_string()),
        occurred_at: Set(now),
        actor_kind: Set(actor.kind.as_str().to_string()),
        actor_name: Set(actor.name.clone()),
        client_address: Set(client.address.clone()),
        user_agent: Set(client.user_agent.clone()),
        details: Set(details.to_string()),
        acknowledged_at: Set(None),
        disputed_at: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(id)
}

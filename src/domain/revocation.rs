//! Why a customer session was revoked: kept on the session row
//! (`sessions.revoke_reason`), told to the token's next caller
//! (`SESSION_REVOKED` with the cause) and recorded in the journal.

use crate::entity::session;

/// The cause of a session revocation. The stored string is what the database
/// keeps (and kept before causes were named); the name is the proto's
/// `SessionRevocationCause` without its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationCause {
    Logout,
    Customer,
    Suspension,
    PasswordReset,
    PasswordChange,
    TotpDisabled,
    Dispute,
    SupportFactorReset,
    /// The security team ended every session (`gardien account
    /// revoke-sessions`).
    SecurityTeam,
    /// A stored reason this version does not know.
    Other,
}

impl RevocationCause {
    pub const ALL: &'static [RevocationCause] = &[
        RevocationCause::Logout,
        RevocationCause::Customer,
        RevocationCause::Suspension,
        RevocationCause::PasswordReset,
        RevocationCause::PasswordChange,
        RevocationCause::TotpDisabled,
        RevocationCause::Dispute,
        RevocationCause::SupportFactorReset,
        RevocationCause::SecurityTeam,
        RevocationCause::Other,
    ];

    /// What `sessions.revoke_reason` holds.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationCause::Logout => "logout",
            RevocationCause::Customer => "session_revoked",
            RevocationCause::Suspension => "password_suspended",
            RevocationCause::PasswordReset => "password_reset",
            RevocationCause::PasswordChange => "password_changed",
            RevocationCause::TotpDisabled => "totp_disabled",
            RevocationCause::Dispute => "event_disputed",
            RevocationCause::SupportFactorReset => "totp_reset_by_support",
            RevocationCause::SecurityTeam => "revoked_by_security_team",
            RevocationCause::Other => "other",
        }
    }

    /// The name clients see (`ErrorInfo.metadata["cause"]`, event details).
    pub fn name(self) -> &'static str {
        match self {
            RevocationCause::Logout => "LOGOUT",
            RevocationCause::Customer => "CUSTOMER",
            RevocationCause::Suspension => "SUSPENSION",
            RevocationCause::PasswordReset => "PASSWORD_RESET",
            RevocationCause::PasswordChange => "PASSWORD_CHANGE",
            RevocationCause::TotpDisabled => "TOTP_DISABLED",
            RevocationCause::Dispute => "DISPUTE",
            RevocationCause::SupportFactorReset => "SUPPORT_FACTOR_RESET",
            RevocationCause::SecurityTeam => "SECURITY_TEAM",
            RevocationCause::Other => "OTHER",
        }
    }

    /// The cause of a stored reason; an unknown one is `Other`.
    pub fn parse(stored: Option<&str>) -> RevocationCause {
        Self::ALL
            .iter()
            .copied()
            .find(|cause| Some(cause.as_str()) == stored)
            .unwrap_or(RevocationCause::Other)
    }
}

/// Why a presented session is refused, when that is worth telling: it was
/// revoked while live, and its absolute lifetime is not over. A session that
/// had expired before it was revoked, or whose lifetime has passed since,
/// is refused like any expired one (`None`), so the answer for it stays
/// the same as for an unknown token.
pub fn reported(row: &session::Model, idle_ms: i64, now: i64) -> Option<RevocationCause> {
    let revoked_at = row.revoked_at?;
    let live_when_revoked = revoked_at < row.expires_at && revoked_at < row.last_seen_at + idle_ms;
    (live_when_revoked && now < row.expires_at)
        .then(|| RevocationCause::parse(row.revoke_reason.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(revoked_at: Option<i64>, reason: Option<&str>) -> session::Model {
        session::Model {
            id: uuid::Uuid::nil(),
            account_id: uuid::Uuid::nil(),
            token_hash: String::new(),
            created_at: 0,
            last_seen_at: 1_000,
            expires_at: 10_000,
            revoked_at,
            revoke_reason: reason.map(str::to_string),
            client_address: None,
            user_agent: None,
            second_factor_used: false,
        }
    }

    #[test]
    fn every_cause_reads_back_from_what_is_stored() {
        for cause in RevocationCause::ALL {
            assert_eq!(RevocationCause::parse(Some(cause.as_str())), *cause);
        }
        assert_eq!(RevocationCause::parse(Some("?")), RevocationCause::Other);
        assert_eq!(RevocationCause::parse(None), RevocationCause::Other);
    }

    #[test]
    fn a_revocation_is_told_only_while_the_session_would_have_lived() {
        let idle = 2_000;
        let revoked = row(Some(2_000), Some("password_suspended"));
        assert_eq!(
            reported(&revoked, idle, 9_999),
            Some(RevocationCause::Suspension)
        );
        // Past its absolute lifetime it is just expired.
        assert_eq!(reported(&revoked, idle, 10_000), None);
        // Idle before it was revoked: it had expired already.
        assert_eq!(
            reported(&row(Some(3_000), Some("logout")), idle, 3_500),
            None
        );
        assert_eq!(reported(&row(None, None), idle, 2_000), None);
    }
}

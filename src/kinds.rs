//! Closed sets of values that the domain, the e-mail templates, the
//! configuration and the transport all name: an account's language, why a
//! password was suspended, which contact detail changed, the kinds of
//! security events. This module imports nothing, so any layer may use it
//! without an import cycle.

/// The language of an account's e-mails and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    Fr,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Fr => "fr",
        }
    }

    pub fn parse(value: &str) -> Locale {
        if value == "fr" {
            Locale::Fr
        } else {
            Locale::En
        }
    }
}

/// Why the security team suspended a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    SuspectedCompromise,
    CredentialLeak,
    FraudAlert,
    CustomerRequest,
    CustomerReported,
    Other,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::SuspectedCompromise,
        Reason::CredentialLeak,
        Reason::FraudAlert,
        Reason::CustomerRequest,
        Reason::CustomerReported,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SuspectedCompromise => "suspected_compromise",
            Reason::CredentialLeak => "credential_leak",
            Reason::FraudAlert => "fraud_alert",
            Reason::CustomerRequest => "customer_request",
            Reason::CustomerReported => "customer_reported",
            Reason::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<Reason> {
        Self::ALL.iter().copied().find(|r| r.as_str() == value)
    }
}

/// Whether an account's password lets it log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordState {
    Active,
    /// Suspended by the security team until a reset or a lift.
    Suspended,
    /// Never set: the customer sets one through a reset link.
    Unset,
}

impl PasswordState {
    pub const ALL: &'static [PasswordState] = &[
        PasswordState::Active,
        PasswordState::Suspended,
        PasswordState::Unset,
    ];

    /// The value stored in `accounts.password_state`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PasswordState::Active => "active",
            PasswordState::Suspended => "suspended",
            PasswordState::Unset => "unset",
        }
    }

    /// Reads a stored value; anything unknown is a password that cannot be
    /// used, the safe reading.
    pub fn parse(value: &str) -> PasswordState {
        Self::ALL
            .iter()
            .copied()
            .find(|state| state.as_str() == value)
            .unwrap_or(PasswordState::Unset)
    }
}

/// A contact detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Phone,
    PostalAddress,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Phone => "phone",
            Field::PostalAddress => "postal_address",
        }
    }

    pub fn parse(value: &str) -> Option<Field> {
        [Field::Email, Field::Phone, Field::PostalAddress]
            .into_iter()
            .find(|field| field.as_str() == value)
    }
}

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
    TicketCreated,
    SupportAccountReviewed,
    SupportAction,
    OrderPlaced,
    ServiceOrdered,
    ServiceCancelled,
    DomainTransfer,
    ApiKeyCreated,
    EventDisputed,
    UnauthorizedChangeReported,
    ContactDetailsChanged,
    ContactEmailChangeRequested,
    SupportIdentityVerified,
    FactorResetRequested,
    FactorResetCancelled,
    FactorResetCompleted,
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyCloneSuspected,
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
        EventKind::TicketCreated,
        EventKind::SupportAccountReviewed,
        EventKind::SupportAction,
        EventKind::OrderPlaced,
        EventKind::ServiceOrdered,
        EventKind::ServiceCancelled,
        EventKind::DomainTransfer,
        EventKind::ApiKeyCreated,
        EventKind::EventDisputed,
        EventKind::UnauthorizedChangeReported,
        EventKind::ContactDetailsChanged,
        EventKind::ContactEmailChangeRequested,
        EventKind::SupportIdentityVerified,
        EventKind::FactorResetRequested,
        EventKind::FactorResetCancelled,
        EventKind::FactorResetCompleted,
        EventKind::PasskeyAdded,
        EventKind::PasskeyRemoved,
        EventKind::PasskeyCloneSuspected,
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
            EventKind::TicketCreated => "ticket_created",
            EventKind::SupportAccountReviewed => "support_account_reviewed",
            EventKind::SupportAction => "support_action",
            EventKind::OrderPlaced => "order_placed",
            EventKind::ServiceOrdered => "service_ordered",
            EventKind::ServiceCancelled => "service_cancelled",
            EventKind::DomainTransfer => "domain_transfer",
            EventKind::ApiKeyCreated => "api_key_created",
            EventKind::EventDisputed => "event_disputed",
            EventKind::UnauthorizedChangeReported => "unauthorized_change_reported",
            EventKind::ContactDetailsChanged => "contact_details_changed",
            EventKind::ContactEmailChangeRequested => "contact_email_change_requested",
            EventKind::SupportIdentityVerified => "support_identity_verified",
            EventKind::FactorResetRequested => "factor_reset_requested",
            EventKind::FactorResetCancelled => "factor_reset_cancelled",
            EventKind::FactorResetCompleted => "factor_reset_completed",
            EventKind::PasskeyAdded => "passkey_added",
            EventKind::PasskeyRemoved => "passkey_removed",
            EventKind::PasskeyCloneSuspected => "passkey_clone_suspected",
        }
    }

    pub fn parse(value: &str) -> Option<EventKind> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_states_round_trip_and_unknown_is_unusable() {
        for state in PasswordState::ALL {
            assert_eq!(PasswordState::parse(state.as_str()), *state);
        }
        assert_eq!(PasswordState::parse("ACTIVE"), PasswordState::Unset);
        assert_eq!(PasswordState::parse(""), PasswordState::Unset);
    }
}

//! The messages gardien sends and what each template needs.

use crate::kinds::{Field, Reason};

/// One message to send, with what its template needs.
#[derive(Debug, Clone)]
pub enum Mail {
    /// The password was suspended: why, in words fit for `reason` (never
    /// the staff note), and the seed's steps (scan devices, secure the
    /// e-mail, reset, check, ticket).
    SuspensionNotice { login: String, reason: Reason },
    /// The reset link; `token` goes only into the link.
    ResetLink {
        login: String,
        token: String,
        valid_minutes: u64,
    },
    /// The login identifiers held by this contact e-mail.
    LoginRecovery { logins: Vec<String> },
    /// The password was changed or reset; `report_token` goes into the
    /// single-use "this wasn't me" link.
    PasswordChanged { login: String, report_token: String },
    /// Two-factor authentication was turned on.
    TotpEnabled { login: String, report_token: String },
    /// Two-factor authentication was turned off.
    TotpDisabled { login: String, report_token: String },
    /// A passkey was added; `name` is the customer's name for it.
    PasskeyAdded {
        login: String,
        name: String,
        report_token: String,
    },
    /// A passkey was removed.
    PasskeyRemoved {
        login: String,
        name: String,
        report_token: String,
    },
    /// A login from an address not seen before on this account.
    NewLogin {
        login: String,
        address: String,
        report_token: String,
    },
    /// To the OLD address: a change of the contact e-mail was requested.
    EmailChangeRequested {
        login: String,
        new_email: String,
        report_token: String,
    },
    /// To the NEW address: the link that confirms it.
    ConfirmEmail { login: String, token: String },
    /// To the OLD address: the change of the contact e-mail took effect.
    EmailChanged {
        login: String,
        new_email: String,
        report_token: String,
    },
    /// The phone or the postal address changed (or was removed); names the
    /// detail, never its value.
    ContactDetailsChanged {
        login: String,
        field: Field,
        removed: bool,
        report_token: String,
    },
    /// The customer reported "this wasn't me": what happens next.
    DisputeReceived { login: String, reference: String },
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated { login: String },
    /// A recovery code was used; `remaining` are left.
    RecoveryCodeUsed { login: String, remaining: u64 },
    /// An agent answered a ticket (the answer is read in the information centre).
    TicketReply { reference: String, subject: String },
    /// An agent resolved a ticket.
    TicketResolved { reference: String, subject: String },
    /// Support scheduled the removal of 2FA; `cancel_token` goes only into
    /// the single-use "cancel, this was not me" link.
    FactorResetScheduled {
        login: String,
        /// When it takes effect, Unix milliseconds (shown in UTC).
        effective_at: i64,
        cancel_token: String,
    },
}

impl Mail {
    /// The token of the "this wasn't me" link the message carries, if any.
    pub(super) fn report_token(&self) -> Option<&str> {
        match self {
            Mail::PasswordChanged { report_token, .. }
            | Mail::TotpEnabled { report_token, .. }
            | Mail::TotpDisabled { report_token, .. }
            | Mail::PasskeyAdded { report_token, .. }
            | Mail::PasskeyRemoved { report_token, .. }
            | Mail::NewLogin { report_token, .. }
            | Mail::EmailChangeRequested { report_token, .. }
            | Mail::EmailChanged { report_token, .. }
            | Mail::ContactDetailsChanged { report_token, .. } => Some(report_token),
            _ => None,
        }
    }

    /// A copy of this message with every secret it carries (link tokens,
    /// the login identifiers of a reminder) replaced by `replace(secret)`.
    /// The match is exhaustive on purpose: a new kind must say what in it is
    /// secret, or it would be stored in clear in the outbox.
    pub(super) fn map_secrets(&self, mut replace: impl FnMut(&str) -> String) -> Mail {
        let mut mail = self.clone();
        match &mut mail {
            Mail::ResetLink { token, .. } | Mail::ConfirmEmail { token, .. } => {
                *token = replace(token);
            }
            Mail::FactorResetScheduled { cancel_token, .. } => {
                *cancel_token = replace(cancel_token);
            }
            Mail::PasswordChanged { report_token, .. }
            | Mail::TotpEnabled { report_token, .. }
            | Mail::TotpDisabled { report_token, .. }
            | Mail::PasskeyAdded { report_token, .. }
            | Mail::PasskeyRemoved { report_token, .. }
            | Mail::NewLogin { report_token, .. }
            | Mail::EmailChangeRequested { report_token, .. }
            | Mail::EmailChanged { report_token, .. }
            | Mail::ContactDetailsChanged { report_token, .. } => {
                *report_token = replace(report_token);
            }
            Mail::LoginRecovery { logins } => {
                for login in logins.iter_mut() {
                    *login = replace(login);
                }
            }
            Mail::SuspensionNotice { .. }
            | Mail::DisputeReceived { .. }
            | Mail::RecoveryCodesRegenerated { .. }
            | Mail::RecoveryCodeUsed { .. }
            | Mail::TicketReply { .. }
            | Mail::TicketResolved { .. } => {}
        }
        mail
    }

    /// A stable name for logs and the outbox `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Mail::SuspensionNotice { .. } => "suspension_notice",
            Mail::ResetLink { .. } => "reset_link",
            Mail::LoginRecovery { .. } => "login_recovery",
            Mail::PasswordChanged { .. } => "password_changed",
            Mail::TotpEnabled { .. } => "totp_enabled",
            Mail::TotpDisabled { .. } => "totp_disabled",
            Mail::PasskeyAdded { .. } => "passkey_added",
            Mail::PasskeyRemoved { .. } => "passkey_removed",
            Mail::RecoveryCodesRegenerated { .. } => "recovery_codes_regenerated",
            Mail::RecoveryCodeUsed { .. } => "recovery_code_used",
            Mail::NewLogin { .. } => "new_login",
            Mail::EmailChangeRequested { .. } => "email_change_requested",
            Mail::ConfirmEmail { .. } => "confirm_email",
            Mail::EmailChanged { .. } => "email_changed",
            Mail::ContactDetailsChanged { .. } => "contact_details_changed",
            Mail::DisputeReceived { .. } => "dispute_received",
            Mail::TicketReply { .. } => "ticket_reply",
            Mail::TicketResolved { .. } => "ticket_resolved",
            Mail::FactorResetScheduled { .. } => "factor_reset_scheduled",
        }
    }
}

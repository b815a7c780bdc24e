//! The domain's error type. Every area's failures are variants of one enum
//! (the areas share most of them: not found, bad input, tokens, database),
//! and `grpc::status` maps it to `tonic::Status` in one place.

use std::time::Duration;

/// One invalid field of a request, named as in the proto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("the password is too weak: {rejection}")]
    PasswordTooWeak {
        field: String,
        rejection: super::password::PasswordRejection,
    },
    #[error("invalid login or password")]
    InvalidCredentials,
    #[error("the password of this account is suspended; reset it to get back in")]
    PasswordSuspended {
        help_url: String,
        /// Why, for the customer's front end; never the staff note.
        reason: Option<crate::kinds::Reason>,
    },
    #[error("too many failed attempts; try again later")]
    LoginBackoff { retry_after: Duration },
    #[error("the link or token is invalid or was already used")]
    TokenInvalid,
    /// A customer session revoked while live; `help_url` when the cause has
    /// a procedure for the customer to follow.
    #[error("this session was ended ({}): log in again", .cause.name())]
    SessionRevoked {
        cause: super::revocation::RevocationCause,
        help_url: Option<String>,
    },
    #[error("the link or token has expired")]
    TokenExpired,
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{what} already exists")]
    AlreadyExists { what: &'static str, field: String },
    #[error(
        "this action needs a recent authentication: log in again or give the current password"
    )]
    RecentAuthenticationRequired,
    #[error("a second-factor code is required")]
    SecondFactorRequired { field: String },
    #[error("{0}")]
    InvalidStateTransition(String),
    #[error("two-factor authentication is already enabled")]
    TotpAlreadyEnabled,
    #[error("two-factor authentication is not enabled")]
    TotpNotEnabled,
    #[error(
        "the ticket carries no identity verification: record one with VerifyTicketIdentity first"
    )]
    IdentityNotVerified,
    #[error("a reset of the second factor is already scheduled on this account")]
    FactorResetPending,
    #[error("the server is busy; try again shortly")]
    Overloaded { retry_after: Duration },
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// `error`, about an account the request has identified: its customer
    /// is told in the account's language (see [`Error::for_account`]).
    #[error("{error}")]
    ForAccount {
        locale: crate::kinds::Locale,
        error: Box<Error>,
    },
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Error::Internal(error.into())
    }

    /// Marks an error about a known account, so that the customer's message
    /// is in the account's language rather than the request's. Only where
    /// telling the account's language reveals nothing the caller may not
    /// know (never on an unknown-login or wrong-password answer).
    pub fn for_account(self, locale: crate::kinds::Locale) -> Self {
        match self {
            Error::ForAccount { error, .. } => Error::ForAccount { locale, error },
            error => Error::ForAccount {
                locale,
                error: Box::new(error),
            },
        }
    }

    /// The error itself, without the account's language.
    pub fn kind(&self) -> &Error {
        match self {
            Error::ForAccount { error, .. } => error.kind(),
            error => error,
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(error: sea_orm::DbErr) -> Self {
        if is_transient(&error) {
            Error::Unavailable(error.into())
        } else {
            Error::Internal(error.into())
        }
    }
}

impl From<crate::crypto::password::HashError> for Error {
    fn from(error: crate::crypto::password::HashError) -> Self {
        use crate::crypto::password::HashError;
        match error {
            HashError::Overloaded => Error::Overloaded {
                retry_after: Duration::from_secs(1),
            },
            HashError::Internal(message) => Error::Internal(anyhow::anyhow!(message)),
        }
    }
}

/// A database error worth retrying: the database is unreachable, restarting
/// or shutting down (a lost connection, PostgreSQL class 08 and 57P01-57P03,
/// too many connections), no pooled connection came in time, SQLite
/// busy/locked, PostgreSQL serialization failures and deadlocks. The
/// transaction was rolled back, so the caller may try again.
pub fn is_transient(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(cause)) | DbErr::Query(RuntimeErr::SqlxError(cause)) => {
            sqlx_transient(cause)
        }
        _ => {
            let text = error.to_string().to_ascii_lowercase();
            [
                "database is locked",
                "database is busy",
                "connection reset",
                "broken pipe",
            ]
            .iter()
            .any(|needle| text.contains(needle))
        }
    }
}

fn sqlx_transient(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match error {
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => true,
        E::Database(cause) => cause.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs (five characters) and SQLite result codes (numbers,
/// whose low byte is the primary code: 5 BUSY, 6 LOCKED) of transient failures.
fn transient_code(code: &str) -> bool {
    if code.len() == 5 {
        let code = code.to_ascii_uppercase();
        return code.starts_with("08")
            || ["57P01", "57P02", "57P03", "53300", "40001", "40P01"].contains(&code.as_str());
    }
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::transient_code;

    #[test]
    fn transient_codes_are_told_from_permanent_ones() {
        for code in [
            "08006", "08001", "57P01", "57P03", "40001", "40P01", "53300", "5", "6", "517", "262",
        ] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22001", "19", "1", "2067", "11"] {
            assert!(!transient_code(code), "{code}");
        }
    }
}

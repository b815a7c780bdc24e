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
    #[error("the password is too weak: {message}")]
    PasswordTooWeak { field: String, message: String },
    #[error("invalid login or password")]
    InvalidCredentials,
    #[error("the password of this account is suspended; reset it to get back in")]
    PasswordSuspended { help_url: String },
    #[error("too many failed attempts; try again later")]
    LoginBackoff { retry_after: Duration },
    #[error("the link or token is invalid or was already used")]
    TokenInvalid,
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
    #[error("the server is busy; try again shortly")]
    Overloaded { retry_after: Duration },
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
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
}

impl From<sea_orm::DbErr> for Error {
    fn from(error: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match &error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Error::Unavailable(error.into()),
            _ if is_transient(&error) => Error::Unavailable(error.into()),
            _ => Error::Internal(error.into()),
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

/// A database error worth retrying: SQLite busy/locked, PostgreSQL
/// serialization failures and deadlocks, lost connections.
pub fn is_transient(error: &sea_orm::DbErr) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    [
        "database is locked",
        "database is busy",
        "(code: 5)",
        "(code: 6)",
        "40001",
        "40p01",
        "could not serialize",
        "deadlock detected",
        "connection reset",
        "broken pipe",
        "pool timed out",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

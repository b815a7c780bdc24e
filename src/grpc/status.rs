//! The one mapping from domain errors to `tonic::Status`, with rich error
//! details: `ErrorInfo` (domain `gardien`, a stable reason from the proto's
//! `ErrorReason`), `BadRequest` field violations, `RetryInfo` and `Help`.
//! Internal causes go to the log; the client sees a generic message.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

pub const DOMAIN: &str = "gardien";

fn status(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    mut details: ErrorDetails,
) -> Status {
    // Metadata a variant put in its `ErrorInfo` stays.
    let metadata = details
        .error_info()
        .map(|info| info.metadata.clone())
        .unwrap_or_default();
    details.set_error_info(reason, DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

fn plain(code: Code, message: impl Into<String>, reason: &str) -> Status {
    status(code, message, reason, ErrorDetails::new())
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let message = error.to_string();
        match error {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                status(Code::InvalidArgument, message, "INVALID_ARGUMENT", details)
            }
            Error::PasswordTooWeak {
                field,
                message: feedback,
            } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field.clone(), feedback);
                status(
                    Code::InvalidArgument,
                    format!("{field}: {message}"),
                    "PASSWORD_TOO_WEAK",
                    details,
                )
            }
            Error::InvalidCredentials => {
                plain(Code::Unauthenticated, message, "INVALID_CREDENTIALS")
            }
            Error::PasswordSuspended { help_url, reason } => {
                let mut details = ErrorDetails::new();
                details.add_help_link(
                    "How to reset a suspended password and secure your account",
                    help_url,
                );
                if let Some(reason) = reason {
                    let name = crate::grpc::convert::reason_to_proto(reason.as_str());
                    let metadata = HashMap::from([(
                        "suspension_reason".to_string(),
                        name.as_str_name().to_string(),
                    )]);
                    details.set_error_info("PASSWORD_SUSPENDED", DOMAIN, metadata);
                }
                status(
                    Code::FailedPrecondition,
                    message,
                    "PASSWORD_SUSPENDED",
                    details,
                )
            }
            Error::LoginBackoff { retry_after } => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(retry_after));
                status(Code::ResourceExhausted, message, "LOGIN_BACKOFF", details)
            }
            Error::TokenInvalid => plain(Code::Unauthenticated, message, "TOKEN_INVALID"),
            Error::SessionRevoked { cause, help_url } => {
                let mut details = ErrorDetails::new();
                if let Some(help_url) = help_url {
                    details.add_help_link(
                        "How to reset a suspended password and secure your account",
                        help_url,
                    );
                }
                let metadata = HashMap::from([("cause".to_string(), cause.name().to_string())]);
                details.set_error_info("SESSION_REVOKED", DOMAIN, metadata);
                Status::with_error_details(Code::Unauthenticated, message, details)
            }
            Error::TokenExpired => plain(Code::FailedPrecondition, message, "TOKEN_EXPIRED"),
            Error::PermissionDenied(_) => {
                plain(Code::PermissionDenied, message, "PERMISSION_DENIED")
            }
            Error::NotFound(_) => plain(Code::NotFound, message, "NOT_FOUND"),
            Error::AlreadyExists { field, .. } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, "is already taken");
                status(Code::AlreadyExists, message, "ALREADY_EXISTS", details)
            }
            Error::RecentAuthenticationRequired => plain(
                Code::FailedPrecondition,
                message,
                "RECENT_AUTHENTICATION_REQUIRED",
            ),
            Error::SecondFactorRequired { field } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, "a TOTP or recovery code is required");
                status(
                    Code::FailedPrecondition,
                    message,
                    "SECOND_FACTOR_REQUIRED",
                    details,
                )
            }
            Error::InvalidStateTransition(_) => plain(
                Code::FailedPrecondition,
                message,
                "INVALID_STATE_TRANSITION",
            ),
            Error::TotpAlreadyEnabled => {
                plain(Code::FailedPrecondition, message, "TOTP_ALREADY_ENABLED")
            }
            Error::TotpNotEnabled => plain(Code::FailedPrecondition, message, "TOTP_NOT_ENABLED"),
            Error::IdentityNotVerified => {
                plain(Code::FailedPrecondition, message, "IDENTITY_NOT_VERIFIED")
            }
            Error::FactorResetPending => {
                plain(Code::FailedPrecondition, message, "FACTOR_RESET_PENDING")
            }
            Error::Overloaded { retry_after } => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(retry_after));
                status(Code::ResourceExhausted, message, "OVERLOADED", details)
            }
            Error::Unavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}").escape_debug(), "dependency unavailable");
                // A database or other dependency is down or busy: worth a retry.
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
                status(Code::Unavailable, message, "UNAVAILABLE", details)
            }
            Error::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}").escape_debug(), "internal error");
                plain(Code::Internal, message, "INTERNAL")
            }
        }
    }
}

/// No credential, or one that is unknown, expired or revoked.
pub fn unauthenticated() -> Status {
    plain(
        Code::Unauthenticated,
        "missing, invalid, expired or revoked credential: send `authorization: Bearer <token>`",
        "UNAUTHENTICATED",
    )
}

pub fn permission_denied(method: &str) -> Status {
    plain(
        Code::PermissionDenied,
        format!("the caller's role may not call {method}"),
        "PERMISSION_DENIED",
    )
}

/// Load shedding: the server is at its concurrency limit.
pub fn overloaded() -> Status {
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(std::time::Duration::from_millis(200)));
    status(
        Code::Unavailable,
        "the server is overloaded; retry shortly",
        "OVERLOADED",
        details,
    )
}

/// A request body that is not a protobuf message at all, so that no field
/// can be named.
pub fn malformed_request(cause: &str) -> Status {
    plain(
        Code::InvalidArgument,
        format!("the request is not a valid protobuf message: {cause}"),
        "INVALID_ARGUMENT",
    )
}

pub fn internal_panic() -> Status {
    plain(Code::Internal, "internal error", "INTERNAL")
}

/// Rate limiting: this caller or client address is over its limit.
pub fn rate_limited(retry_after: std::time::Duration) -> Status {
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(retry_after));
    status(
        Code::ResourceExhausted,
        "too many requests; retry after the delay in RetryInfo",
        "RATE_LIMITED",
        details,
    )
}

/// The shared rate-limit store is unreachable and this method class fails
/// closed.
pub fn rate_limiter_unavailable() -> Status {
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(std::time::Duration::from_secs(1)));
    status(
        Code::Unavailable,
        "the service is temporarily unavailable; retry shortly",
        "UNAVAILABLE",
        details,
    )
}

//! The one mapping from domain errors to `tonic::Status`, with rich error
//! details: `ErrorInfo` (domain `gardien`, a stable reason from the proto's
//! `ErrorReason`), `BadRequest` field violations, `RetryInfo` and `Help`.
//! Internal causes go to the log; the client sees a generic message.
//! Every status also carries a `LocalizedMessage` for the customer, in the
//! call's language (`middleware::locale`: the account's for an error about
//! a known account, else the request's `accept-language`).

mod messages;

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    domain::{password::PasswordRejection, Error},
    middleware::locale,
};

pub const DOMAIN: &str = "gardien";

fn status(code: Code, message: impl Into<String>, reason: &str, details: ErrorDetails) -> Status {
    status_with(code, message, reason, HashMap::new(), details)
}

/// Every status is built here: `ErrorInfo` with `metadata`, and the
/// customer's `LocalizedMessage` in the call's language.
fn status_with(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: HashMap<String, String>,
    mut details: ErrorDetails,
) -> Status {
    let locale = locale::current();
    details.set_localized_message(
        locale.as_str(),
        messages::customer_message(locale, reason, &metadata),
    );
    details.set_error_info(reason, DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// `PASSWORD_TOO_WEAK` metadata: the rule broken, and the bound for a
/// length rule.
fn password_rule(rejection: &PasswordRejection) -> HashMap<String, String> {
    let mut metadata = HashMap::from([("rule".to_string(), rejection.rule().to_string())]);
    match rejection {
        PasswordRejection::TooShort { min } => {
            metadata.insert("min_length".into(), min.to_string());
        }
        PasswordRejection::TooLong { max } => {
            metadata.insert("max_length".into(), max.to_string());
        }
        _ => {}
    }
    metadata
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
            Error::PasswordTooWeak { field, rejection } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field.clone(), rejection.to_string());
                status_with(
                    Code::InvalidArgument,
                    format!("{field}: {message}"),
                    "PASSWORD_TOO_WEAK",
                    password_rule(&rejection),
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
                let metadata = reason
                    .map(|reason| {
                        let name = crate::grpc::convert::reason_to_proto(Some(reason));
                        HashMap::from([(
                            "suspension_reason".to_string(),
                            name.as_str_name().to_string(),
                        )])
                    })
                    .unwrap_or_default();
                status_with(
                    Code::FailedPrecondition,
                    message,
                    "PASSWORD_SUSPENDED",
                    metadata,
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
                status_with(
                    Code::Unauthenticated,
                    message,
                    "SESSION_REVOKED",
                    metadata,
                    details,
                )
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
                let what = if field == "passkey_assertion_json" {
                    "a passkey assertion (GetResetPasskeyOptions) or a recovery code is required"
                } else {
                    "a TOTP or recovery code is required"
                };
                details.add_bad_request_violation(field, what);
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
                // The code of load shedding too: one code per reason.
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(retry_after));
                status(Code::Unavailable, message, "OVERLOADED", details)
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
            Error::ForAccount { locale, error } => {
                locale::in_language(locale, || Status::from(*error))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_has_one_code_whether_shed_or_refused_by_the_hashing_pool() {
        let shed = overloaded();
        let refused = Status::from(Error::Overloaded {
            retry_after: std::time::Duration::from_millis(100),
        });
        assert_eq!(shed.code(), Code::Unavailable);
        assert_eq!(refused.code(), shed.code());
        for status in [&shed, &refused] {
            assert_eq!(
                status.get_details_error_info().map(|info| info.reason),
                Some("OVERLOADED".to_string())
            );
        }
    }
}

//! The checks each RPC runs on its request before any I/O: one
//! [`Validate`] implementation per request message, turning it into domain
//! values or an INVALID_ARGUMENT that names the field. The handlers call
//! them first; [`check_encoded`] runs the same code on an encoded body, for
//! the fuzz target and the tests.

mod account_security;
mod passkeys;
mod support;

pub use account_security::*;
pub use support::*;

use prost::Message;
use secrecy::SecretString;
use tonic::Status;

use crate::{
    domain::{
        error::{Error, FieldViolation},
        two_factor::SecondFactor,
        types::parse_text,
    },
    grpc::{codec, convert},
    proto::{accountsecurity::v1 as pb, support::v1 as spb},
};

/// A request message checked and converted, without I/O.
pub trait Validate {
    type Valid;
    /// `now_ms` is the server clock, for times that must not be in the future.
    fn validate(self, now_ms: i64) -> Result<Self::Valid, Error>;
}

/// A page request: its size (default 50, at most 200) and cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: u64,
    pub after: Option<uuid::Uuid>,
}

pub(crate) fn page(page_size: u32, page_token: &str) -> Result<Page, Error> {
    Ok(Page {
        size: convert::page_size(page_size),
        after: convert::page_token("page_token", page_token)?,
    })
}

pub(crate) fn required(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        Err(Error::invalid(field, "is required"))
    } else {
        Ok(())
    }
}

/// Refuses secrets longer than any policy accepts before they reach a hash.
pub(crate) fn secret_field(field: &str, value: String) -> Result<SecretString, Error> {
    required(field, &value)?;
    if value.len() > 4096 {
        return Err(Error::invalid(field, "is too long"));
    }
    Ok(SecretString::from(value))
}

pub(crate) fn optional_password(value: String) -> Result<Option<SecretString>, Error> {
    if value.is_empty() {
        Ok(None)
    } else {
        secret_field("current_password", value).map(Some)
    }
}

/// A second-factor code, bounded in size before any use.
pub(crate) fn factor_field(
    field: &str,
    code: String,
    recovery: bool,
) -> Result<SecondFactor, Error> {
    required(field, code.trim())?;
    if code.len() > 64 {
        return Err(Error::invalid(field, "is too long"));
    }
    let code = SecretString::from(code.trim().to_string());
    Ok(if recovery {
        SecondFactor::RecoveryCode(code)
    } else {
        SecondFactor::Totp(code)
    })
}

/// Bounded free text; `required` refuses an empty value.
pub(crate) fn bounded(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<String, FieldViolation> {
    let text = parse_text(field, value, max)?;
    if required && text.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Ok(text)
}

/// A single violation as an error.
pub(crate) fn one<T>(result: Result<T, FieldViolation>) -> Result<T, Error> {
    result.map_err(|v| Error::InvalidArgument(vec![v]))
}

/// A filter is a set: repeated values count once, so that a huge list of
/// valid values cannot become a query with more parameters than the
/// database takes.
pub(crate) fn distinct<T: PartialEq>(values: Vec<T>) -> Vec<T> {
    let mut out = Vec::new();
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

/// Both values checked, or the violations of whichever failed.
pub(crate) fn missing() -> Error {
    Error::internal(anyhow::anyhow!("validation passed without values"))
}

fn check<T: Message + Default + Validate>(body: &[u8], now_ms: i64) -> Result<(), Status> {
    let request = T::decode(body).map_err(|error| codec::malformed(&error))?;
    request.validate(now_ms).map(drop).map_err(Status::from)
}

macro_rules! methods {
    ($($path:literal => $request:ty,)*) => {
        /// Every RPC of both services, as `/package.Service/Method`.
        pub const METHODS: &[&str] = &[$($path),*];

        /// Decodes `body` as the request of the RPC at `path` and runs the
        /// checks its handler runs before any I/O; `None` for an unknown path.
        pub fn check_encoded(path: &str, body: &[u8], now_ms: i64) -> Option<Result<(), Status>> {
            match path {
                $($path => Some(check::<$request>(body, now_ms)),)*
                _ => None,
            }
        }
    };
}

methods! {
    "/gardien.accountsecurity.v1.AccountSecurityService/CreateAccount" => pb::CreateAccountRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/GetAccountStatus" => pb::GetAccountStatusRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/Login" => pb::LoginRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge" => pb::VerifyLoginChallengeRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/Logout" => pb::LogoutRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ListSessions" => pb::ListSessionsRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/RevokeSession" => pb::RevokeSessionRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession" => pb::IntrospectSessionRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword" => pb::SuspendPasswordRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/LiftSuspension" => pb::LiftSuspensionRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset" => pb::RequestPasswordResetRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset" => pb::CompletePasswordResetRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/RecoverLogin" => pb::RecoverLoginRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ChangePassword" => pb::ChangePasswordRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment" => pb::BeginTotpEnrollmentRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ConfirmTotpEnrollment" => pb::ConfirmTotpEnrollmentRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/DisableTotp" => pb::DisableTotpRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/RegenerateRecoveryCodes" => pb::RegenerateRecoveryCodesRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/GetSecurityOverview" => pb::GetSecurityOverviewRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents" => pb::ListSecurityEventsRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/AcknowledgeSecurityEvents" => pb::AcknowledgeSecurityEventsRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent" => pb::DisputeSecurityEventRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ReportUnauthorizedChange" => pb::ReportUnauthorizedChangeRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/RecordActivity" => pb::RecordActivityRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/GetContactDetails" => pb::GetContactDetailsRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails" => pb::UpdateContactDetailsRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ConfirmEmailChange" => pb::ConfirmEmailChangeRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ListContactChanges" => pb::ListContactChangesRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/BeginPasskeyRegistration" => pb::BeginPasskeyRegistrationRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyRegistration" => pb::FinishPasskeyRegistrationRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/ListPasskeys" => pb::ListPasskeysRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/RenamePasskey" => pb::RenamePasskeyRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/RemovePasskey" => pb::RemovePasskeyRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/BeginPasskeyLogin" => pb::BeginPasskeyLoginRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin" => pb::FinishPasskeyLoginRequest,
    "/gardien.accountsecurity.v1.AccountSecurityService/GetResetPasskeyOptions" => pb::GetResetPasskeyOptionsRequest,
    "/gardien.support.v1.SupportService/CreateTicket" => spb::CreateTicketRequest,
    "/gardien.support.v1.SupportService/CreateRecoveryTicket" => spb::CreateRecoveryTicketRequest,
    "/gardien.support.v1.SupportService/GetTicket" => spb::GetTicketRequest,
    "/gardien.support.v1.SupportService/ListTickets" => spb::ListTicketsRequest,
    "/gardien.support.v1.SupportService/AddTicketMessage" => spb::AddTicketMessageRequest,
    "/gardien.support.v1.SupportService/CloseTicket" => spb::CloseTicketRequest,
    "/gardien.support.v1.SupportService/ListTicketQueue" => spb::ListTicketQueueRequest,
    "/gardien.support.v1.SupportService/AssignTicket" => spb::AssignTicketRequest,
    "/gardien.support.v1.SupportService/SetTicketStatus" => spb::SetTicketStatusRequest,
    "/gardien.support.v1.SupportService/GetAccountReview" => spb::GetAccountReviewRequest,
    "/gardien.support.v1.SupportService/VerifyTicketIdentity" => spb::VerifyTicketIdentityRequest,
    "/gardien.support.v1.SupportService/ResetTotp" => spb::ResetTotpRequest,
    "/gardien.support.v1.SupportService/CancelFactorReset" => spb::CancelFactorResetRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_in_the_descriptor_set_has_its_checks() {
        let set =
            prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut paths = Vec::new();
        for file in set
            .file
            .iter()
            .filter(|f| f.package().starts_with("gardien."))
        {
            for service in &file.service {
                for method in &service.method {
                    paths.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        for path in &paths {
            assert!(
                check_encoded(path, &[], 0).is_some(),
                "{path} has no checks"
            );
        }
        assert_eq!(paths.len(), METHODS.len());
    }

    #[test]
    fn an_empty_body_is_checked_like_an_empty_message() {
        let status = check_encoded(METHODS[2], &[], 0).unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(check_encoded("/gardien.x.v1.Nope/Nothing", &[], 0).is_none());
    }
}

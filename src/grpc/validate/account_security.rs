//! The checks of `AccountSecurityService` requests.

use secrecy::SecretString;
use uuid::Uuid;

use super::{
    bounded, factor_field, missing, one, optional_password, page, required, secret_field, Page,
    Validate,
};
use crate::{
    domain::{
        accounts::{AccountSelector, NewAccount},
        centre::{Activity, ActivityKind},
        contacts,
        error::{Error, FieldViolation},
        events::EventFilter,
        principal::ClientInfo,
        recovery::CompleteReset,
        suspension::SuspendRequest,
        two_factor::SecondFactor,
        types::{parse_id, parse_text, Email, Login, Phone, PostalAddress, Violations},
    },
    grpc::convert,
    proto::accountsecurity::v1 as pb,
};

/// The latest time a request may carry: 9999-12-31T23:59:59Z.
const MAX_SECONDS: i64 = 253_402_300_799;

/// A protobuf time as Unix milliseconds, between 1970 and 9999.
fn millis(field: &str, t: &prost_types::Timestamp) -> Result<i64, FieldViolation> {
    if !(0..=MAX_SECONDS).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(FieldViolation::new(
            field,
            "must be a time between 1970 and 9999",
        ));
    }
    Ok(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
}

impl Validate for pb::CreateAccountRequest {
    type Valid = NewAccount;
    fn validate(self, _now_ms: i64) -> Result<NewAccount, Error> {
        NewAccount::try_from(self)
    }
}

impl TryFrom<pb::CreateAccountRequest> for NewAccount {
    type Error = Error;

    fn try_from(request: pb::CreateAccountRequest) -> Result<Self, Error> {
        let mut v = Violations::default();
        let login = v.check(Login::parse("login", &request.login));
        let email = v.check(Email::parse("email", &request.email));
        let phone = v.check(Phone::parse_optional("phone", &request.phone));
        let address = request.postal_address.unwrap_or_default();
        let address = v.check_many(PostalAddress::parse(
            "postal_address",
            &address.line1,
            &address.line2,
            &address.postal_code,
            &address.city,
            &address.country_code,
        ));
        let locale = v.check(
            convert::locale_from_proto(request.locale)
                .ok_or_else(|| FieldViolation::new("locale", "is not a known Locale value")),
        );
        if request.password.len() > 4096 {
            v.push(FieldViolation::new("password", "is too long"));
        }
        v.finish()?;
        match (login, email, phone, address, locale) {
            (Some(login), Some(email), Some(phone), Some(address), Some(locale)) => {
                Ok(NewAccount {
                    login,
                    email,
                    phone,
                    address,
                    locale,
                    password: (!request.password.is_empty())
                        .then(|| SecretString::from(request.password)),
                })
            }
            _ => Err(missing()),
        }
    }
}

impl Validate for pb::GetAccountStatusRequest {
    type Valid = AccountSelector;
    fn validate(self, _now_ms: i64) -> Result<AccountSelector, Error> {
        match (self.account_id.is_empty(), self.login.is_empty()) {
            (false, true) => Ok(AccountSelector::Id(one(parse_id(
                "account_id",
                &self.account_id,
            ))?)),
            (true, false) => Ok(AccountSelector::Login(one(Login::parse(
                "login",
                &self.login,
            ))?)),
            _ => Err(Error::invalid(
                "account_id",
                "give exactly one of account_id and login",
            )),
        }
    }
}

/// `Login`: the login as typed (an unknown one answers like a wrong
/// password) and the password.
pub struct LoginAttempt {
    pub login: String,
    pub password: SecretString,
}

impl Validate for pb::LoginRequest {
    type Valid = LoginAttempt;
    fn validate(self, _now_ms: i64) -> Result<LoginAttempt, Error> {
        required("login", &self.login)?;
        if self.login.len() > 254 {
            return Err(Error::invalid("login", "is too long"));
        }
        let password = secret_field("password", self.password)?;
        Ok(LoginAttempt {
            login: self.login,
            password,
        })
    }
}

impl Validate for pb::VerifyLoginChallengeRequest {
    type Valid = (String, SecondFactor);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        use pb::verify_login_challenge_request::Code;
        required("challenge_token", &self.challenge_token)?;
        let factor = match self.code {
            Some(Code::TotpCode(code)) => factor_field("totp_code", code, false)?,
            Some(Code::RecoveryCode(code)) => factor_field("recovery_code", code, true)?,
            Some(Code::PasskeyAssertionJson(json)) => SecondFactor::Passkey(Box::new(
                super::passkeys::webauthn_json("passkey_assertion_json", &json)?,
            )),
            None => {
                return Err(Error::invalid(
                    "totp_code",
                    "give totp_code, recovery_code or passkey_assertion_json",
                ))
            }
        };
        Ok((self.challenge_token, factor))
    }
}

macro_rules! nothing_to_check {
    ($($request:ty),*) => {$(
        impl Validate for $request {
            type Valid = ();
            fn validate(self, _now_ms: i64) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}

nothing_to_check!(
    pb::LogoutRequest,
    pb::GetSecurityOverviewRequest,
    pb::GetContactDetailsRequest
);

impl Validate for pb::ListSessionsRequest {
    type Valid = Page;
    fn validate(self, _now_ms: i64) -> Result<Page, Error> {
        page(self.page_size, &self.page_token)
    }
}

impl Validate for pb::ListContactChangesRequest {
    type Valid = Page;
    fn validate(self, _now_ms: i64) -> Result<Page, Error> {
        page(self.page_size, &self.page_token)
    }
}

impl Validate for pb::RevokeSessionRequest {
    type Valid = Uuid;
    fn validate(self, _now_ms: i64) -> Result<Uuid, Error> {
        one(parse_id("session_id", &self.session_id))
    }
}

impl Validate for pb::IntrospectSessionRequest {
    type Valid = String;
    fn validate(self, _now_ms: i64) -> Result<String, Error> {
        required("session_token", &self.session_token)?;
        Ok(self.session_token)
    }
}

impl Validate for pb::SuspendPasswordRequest {
    type Valid = SuspendRequest;
    fn validate(self, _now_ms: i64) -> Result<SuspendRequest, Error> {
        let mut v = Violations::default();
        let account_id = v.check(parse_id("account_id", &self.account_id));
        let reason = v.check(convert::reason_from_proto(self.reason).ok_or_else(|| {
            FieldViolation::new(
                "reason",
                "must be a SuspensionReason other than UNSPECIFIED",
            )
        }));
        let note = v.check(parse_text("note", &self.note, 2000));
        if self.evidence_event_ids.len() > 20 {
            v.push(FieldViolation::new(
                "evidence_event_ids",
                "at most 20 event ids",
            ));
        }
        let evidence: Vec<_> = self
            .evidence_event_ids
            .iter()
            .take(20)
            .enumerate()
            .filter_map(|(i, id)| v.check(parse_id(&format!("evidence_event_ids[{i}]"), id)))
            .collect();
        v.finish()?;
        let (Some(account_id), Some(reason), Some(note)) = (account_id, reason, note) else {
            return Err(missing());
        };
        Ok(SuspendRequest {
            account_id,
            reason,
            note,
            evidence_event_ids: evidence,
        })
    }
}

/// An id and a free-text note or comment.
fn id_and_text(
    id_field: &str,
    id: &str,
    text_field: &str,
    text: &str,
) -> Result<(Uuid, String), Error> {
    let mut v = Violations::default();
    let id = v.check(parse_id(id_field, id));
    let text = v.check(parse_text(text_field, text, 2000));
    v.finish()?;
    id.zip(text).ok_or_else(missing)
}

impl Validate for pb::LiftSuspensionRequest {
    type Valid = (Uuid, String);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        id_and_text("account_id", &self.account_id, "note", &self.note)
    }
}

impl Validate for pb::DisputeSecurityEventRequest {
    type Valid = (Uuid, String);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        id_and_text("event_id", &self.event_id, "comment", &self.comment)
    }
}

impl Validate for pb::RequestPasswordResetRequest {
    type Valid = String;
    fn validate(self, _now_ms: i64) -> Result<String, Error> {
        let typed = self.login_or_email;
        required("login_or_email", typed.trim())?;
        if typed.len() > 254 {
            return Err(Error::invalid(
                "login_or_email",
                "must have at most 254 characters",
            ));
        }
        if typed.chars().any(char::is_control) {
            // No login or address has one; refused here, not in the background.
            return Err(Error::invalid(
                "login_or_email",
                "must not contain control characters",
            ));
        }
        Ok(typed)
    }
}

impl Validate for pb::CompletePasswordResetRequest {
    type Valid = CompleteReset;
    fn validate(self, _now_ms: i64) -> Result<CompleteReset, Error> {
        use pb::complete_password_reset_request::SecondFactor as Factor;
        required("reset_token", &self.reset_token)?;
        let new_password = secret_field("new_password", self.new_password)?;
        let second_factor = match self.second_factor {
            None => None,
            Some(Factor::TotpCode(code)) => Some(factor_field("totp_code", code, false)?),
            Some(Factor::RecoveryCode(code)) => Some(factor_field("recovery_code", code, true)?),
            Some(Factor::PasskeyAssertionJson(json)) => Some(SecondFactor::Passkey(Box::new(
                super::passkeys::webauthn_json("passkey_assertion_json", &json)?,
            ))),
        };
        Ok(CompleteReset {
            token: self.reset_token,
            new_password,
            second_factor,
        })
    }
}

impl Validate for pb::RecoverLoginRequest {
    /// The address as typed: matched case-insensitively in the background.
    type Valid = String;
    fn validate(self, _now_ms: i64) -> Result<String, Error> {
        one(Email::parse("email", &self.email))?;
        Ok(self.email)
    }
}

impl Validate for pb::ChangePasswordRequest {
    /// The current password and the new one.
    type Valid = (SecretString, SecretString);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let current = secret_field("current_password", self.current_password)?;
        let new_password = secret_field("new_password", self.new_password)?;
        Ok((current, new_password))
    }
}

impl Validate for pb::BeginTotpEnrollmentRequest {
    type Valid = Option<SecretString>;
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        optional_password(self.current_password)
    }
}

/// A TOTP code field.
fn totp_code(code: String) -> Result<SecretString, Error> {
    match factor_field("totp_code", code, false)? {
        SecondFactor::Totp(code) => Ok(code),
        SecondFactor::RecoveryCode(_) | SecondFactor::Passkey(_) => Err(missing()),
    }
}

impl Validate for pb::ConfirmTotpEnrollmentRequest {
    type Valid = SecretString;
    fn validate(self, _now_ms: i64) -> Result<SecretString, Error> {
        totp_code(self.totp_code)
    }
}

impl Validate for pb::DisableTotpRequest {
    type Valid = (SecretString, SecondFactor);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        use pb::disable_totp_request::Code;
        let password = secret_field("current_password", self.current_password)?;
        let factor = match self.code {
            Some(Code::TotpCode(code)) => factor_field("totp_code", code, false)?,
            Some(Code::RecoveryCode(code)) => factor_field("recovery_code", code, true)?,
            None => {
                return Err(Error::invalid(
                    "totp_code",
                    "give totp_code or recovery_code",
                ))
            }
        };
        Ok((password, factor))
    }
}

impl Validate for pb::RegenerateRecoveryCodesRequest {
    type Valid = (Option<SecretString>, SecretString);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let password = optional_password(self.current_password)?;
        Ok((password, totp_code(self.totp_code)?))
    }
}

impl Validate for pb::ListSecurityEventsRequest {
    type Valid = (EventFilter, Page);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let mut kinds = self
            .kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| match pb::SecurityEventKind::try_from(*kind) {
                Ok(kind) if kind != pb::SecurityEventKind::Unspecified => Ok(kind
                    .as_str_name()
                    .trim_start_matches("SECURITY_EVENT_KIND_")
                    .to_ascii_lowercase()),
                _ => Err(Error::invalid(
                    format!("kinds[{i}]"),
                    "is not a SecurityEventKind value",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A set: a huge list of valid kinds must not become a query with
        // more parameters than the database takes.
        kinds.sort_unstable();
        kinds.dedup();
        let time = |field: &str, value: Option<prost_types::Timestamp>| {
            value.map(|t| one(millis(field, &t))).transpose()
        };
        let filter = EventFilter {
            kinds,
            from_ms: time("start_time", self.start_time)?,
            until_ms: time("end_time", self.end_time)?,
            only_unacknowledged: self.only_unacknowledged,
        };
        Ok((filter, page(self.page_size, &self.page_token)?))
    }
}

impl Validate for pb::AcknowledgeSecurityEventsRequest {
    type Valid = Vec<Uuid>;
    fn validate(self, _now_ms: i64) -> Result<Vec<Uuid>, Error> {
        if self.event_ids.is_empty() || self.event_ids.len() > 200 {
            return Err(Error::invalid("event_ids", "give 1 to 200 event ids"));
        }
        let mut v = Violations::default();
        let ids: Vec<_> = self
            .event_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| v.check(parse_id(&format!("event_ids[{i}]"), id)))
            .collect();
        v.finish()?;
        Ok(ids)
    }
}

impl Validate for pb::ReportUnauthorizedChangeRequest {
    /// The report token and the comment.
    type Valid = (String, String);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        required("report_token", &self.report_token)?;
        let comment = one(parse_text("comment", &self.comment, 2000))?;
        Ok((self.report_token, comment))
    }
}

fn activity_kind(value: i32) -> Option<ActivityKind> {
    Some(match pb::ActivityKind::try_from(value).ok()? {
        pb::ActivityKind::Unspecified => return None,
        pb::ActivityKind::OrderPlaced => ActivityKind::OrderPlaced,
        pb::ActivityKind::ServiceOrdered => ActivityKind::ServiceOrdered,
        pb::ActivityKind::ServiceCancelled => ActivityKind::ServiceCancelled,
        pb::ActivityKind::DomainTransfer => ActivityKind::DomainTransfer,
        pb::ActivityKind::ApiKeyCreated => ActivityKind::ApiKeyCreated,
    })
}

impl Validate for pb::RecordActivityRequest {
    type Valid = Activity;
    fn validate(self, now_ms: i64) -> Result<Activity, Error> {
        let mut v = Violations::default();
        let account_id = v.check(parse_id("account_id", &self.account_id));
        let service_event_id = v.check(bounded(
            "service_event_id",
            &self.service_event_id,
            128,
            true,
        ));
        let kind = v.check(activity_kind(self.kind).ok_or_else(|| {
            FieldViolation::new("kind", "must be an ActivityKind other than UNSPECIFIED")
        }));
        let occurred_at = match &self.occurred_at {
            None => Some(now_ms),
            Some(t) => v.check(millis("occurred_at", t)),
        };
        if occurred_at.is_some_and(|ms| ms > now_ms.saturating_add(5 * 60 * 1000)) {
            v.push(FieldViolation::new(
                "occurred_at",
                "must not be more than 5 minutes in the future",
            ));
        }
        let reference = v.check(bounded("reference", &self.reference, 200, false));
        let currency = self.currency.trim().to_ascii_uppercase();
        if !currency.is_empty()
            && (currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()))
        {
            v.push(FieldViolation::new(
                "currency",
                "must be an ISO 4217 code such as EUR",
            ));
        }
        if currency.is_empty() && self.amount_minor != 0 {
            v.push(FieldViolation::new(
                "currency",
                "is required with an amount",
            ));
        }
        if self.amount_minor < 0 {
            v.push(FieldViolation::new("amount_minor", "must not be negative"));
        }
        let items = v.check(bounded("items_summary", &self.items_summary, 1000, false));
        let address = v.check(bounded("client_address", &self.client_address, 64, false));
        if let Some(address) = address.as_deref().filter(|a| !a.is_empty()) {
            if address.parse::<std::net::IpAddr>().is_err() {
                v.push(FieldViolation::new(
                    "client_address",
                    "must be an IPv4 or IPv6 address",
                ));
            }
        }
        let user_agent = v.check(bounded("user_agent", &self.user_agent, 256, false));
        v.finish()?;
        let (
            Some(account_id),
            Some(service_event_id),
            Some(kind),
            Some(occurred_at),
            Some(reference),
            Some(items),
            Some(address),
            Some(user_agent),
        ) = (
            account_id,
            service_event_id,
            kind,
            occurred_at,
            reference,
            items,
            address,
            user_agent,
        )
        else {
            return Err(missing());
        };
        Ok(Activity {
            account_id,
            service_event_id,
            kind,
            occurred_at,
            reference,
            amount_minor: self.amount_minor,
            currency,
            items_summary: items,
            client: ClientInfo {
                address: (!address.is_empty()).then_some(address),
                user_agent: (!user_agent.is_empty()).then_some(user_agent),
            },
        })
    }
}

impl Validate for pb::UpdateContactDetailsRequest {
    /// The changes and the current password, if given.
    type Valid = (contacts::Update, Option<SecretString>);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let paths = self.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() || paths.len() > 3 {
            return Err(Error::invalid(
                "update_mask",
                "name 1 to 3 fields to change: email, phone, postal_address",
            ));
        }
        let mut v = Violations::default();
        let mut update = contacts::Update::default();
        for (i, path) in paths.iter().enumerate() {
            match path.as_str() {
                "email" => update.email = v.check(Email::parse("email", &self.email)),
                "phone" => update.phone = v.check(Phone::parse_optional("phone", &self.phone)),
                "postal_address" => {
                    let a = self.postal_address.clone().unwrap_or_default();
                    update.address = v.check_many(PostalAddress::parse(
                        "postal_address",
                        &a.line1,
                        &a.line2,
                        &a.postal_code,
                        &a.city,
                        &a.country_code,
                    ));
                }
                _ => v.push(FieldViolation::new(
                    format!("update_mask.paths[{i}]"),
                    "must be email, phone or postal_address",
                )),
            }
        }
        v.finish()?;
        Ok((update, optional_password(self.current_password)?))
    }
}

impl Validate for pb::ConfirmEmailChangeRequest {
    type Valid = String;
    fn validate(self, _now_ms: i64) -> Result<String, Error> {
        required("confirmation_token", &self.confirmation_token)?;
        Ok(self.confirmation_token)
    }
}

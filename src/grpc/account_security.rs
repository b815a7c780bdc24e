//! `gardien.accountsecurity.v1.AccountSecurityService`: thin handlers over
//! the domain. RPCs of capabilities not built yet answer `UNIMPLEMENTED`
//! (the generated default).

use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Response, Status};

use super::{client_info, convert, customer, principal};
use crate::{
    clock::to_timestamp,
    domain::{
        self,
        accounts::{self, AccountSelector, NewAccount},
        centre, contacts,
        error::Error,
        events::{self, EventKind},
        login::{self, LoginOutcome},
        overview, recovery, sessions,
        suspension::{self, SuspendRequest},
        two_factor::{self, SecondFactor},
        types::{parse_id, parse_text, Email, Login, Phone, PostalAddress, Violations},
    },
    proto::accountsecurity::v1::{
        self as pb, account_security_service_server::AccountSecurityService,
    },
};

pub struct AccountSecurity {
    ctx: domain::Context,
}

impl AccountSecurity {
    pub fn new(ctx: domain::Context) -> Self {
        Self { ctx }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn count(value: u64) -> u32 {
    value.min(u64::from(u32::MAX)) as u32
}

fn required(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        Err(Error::invalid(field, "is required"))
    } else {
        Ok(())
    }
}

/// Refuses secrets longer than any policy accepts before they reach a hash.
fn secret_field(field: &str, value: String) -> Result<SecretString, Error> {
    required(field, &value)?;
    if value.len() > 4096 {
        return Err(Error::invalid(field, "is too long"));
    }
    Ok(SecretString::from(value))
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
        let locale = v.check(convert::locale_from_proto(request.locale).ok_or_else(|| {
            domain::error::FieldViolation::new("locale", "is not a known Locale value")
        }));
        if request.password.len() > 4096 {
            v.push(domain::error::FieldViolation::new(
                "password",
                "is too long",
            ));
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
            _ => Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            ))),
        }
    }
}

fn selector(request: &pb::GetAccountStatusRequest) -> Result<AccountSelector, Error> {
    match (request.account_id.is_empty(), request.login.is_empty()) {
        (false, true) => Ok(AccountSelector::Id(
            parse_id("account_id", &request.account_id)
                .map_err(|v| Error::InvalidArgument(vec![v]))?,
        )),
        (true, false) => Ok(AccountSelector::Login(
            Login::parse("login", &request.login).map_err(|v| Error::InvalidArgument(vec![v]))?,
        )),
        _ => Err(Error::invalid(
            "account_id",
            "give exactly one of account_id and login",
        )),
    }
}

/// A second-factor code from the request, bounded in size before any use.
fn factor_field(field: &str, code: String, recovery: bool) -> Result<SecondFactor, Error> {
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
fn bounded(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<String, domain::error::FieldViolation> {
    let text = parse_text(field, value, max)?;
    if required && text.is_empty() {
        return Err(domain::error::FieldViolation::new(field, "is required"));
    }
    Ok(text)
}

fn optional_password(value: String) -> Result<Option<SecretString>, Error> {
    if value.is_empty() {
        Ok(None)
    } else {
        secret_field("current_password", value).map(Some)
    }
}

fn session_grant(grant: sessions::SessionGrant) -> pb::SessionGrant {
    pb::SessionGrant {
        session_token: grant.token.expose_secret().to_string(),
        session_id: grant.session_id.to_string(),
        account_id: grant.account_id.to_string(),
        expires_at: Some(to_timestamp(grant.expires_at)),
        idle_expires_at: Some(to_timestamp(grant.idle_expires_at)),
    }
}

#[tonic::async_trait]
impl AccountSecurityService for AccountSecurity {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Reply<pb::CreateAccountResponse> {
        let actor = principal(&request)?.actor();
        let client = client_info(&request);
        let new = NewAccount::try_from(request.into_inner())?;
        let account = accounts::create(&self.ctx, &actor, &client, new).await?;
        Ok(Response::new(pb::CreateAccountResponse {
            account: Some(convert::account(&account)),
        }))
    }

    async fn get_account_status(
        &self,
        request: Request<pb::GetAccountStatusRequest>,
    ) -> Reply<pb::GetAccountStatusResponse> {
        let selector = selector(request.get_ref())?;
        let status = accounts::status(&self.ctx, &selector).await?;
        Ok(Response::new(pb::GetAccountStatusResponse {
            account: Some(convert::account(&status.account)),
            active_suspension: status.active_suspension.as_ref().map(convert::suspension),
            active_sessions: status.active_sessions.min(u64::from(u32::MAX)) as u32,
            last_login_at: status.account.last_login_at.map(to_timestamp),
            consecutive_failed_logins: status.consecutive_failed_logins,
            login_backoff_until: status.login_backoff_until.map(to_timestamp),
        }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let client = client_info(&request);
        let request = request.into_inner();
        required("login", &request.login)?;
        if request.login.len() > 254 {
            return Err(Error::invalid("login", "is too long").into());
        }
        let password = secret_field("password", request.password)?;
        let outcome = login::login(&self.ctx, &request.login, password, &client).await;
        crate::metrics::login_outcome(&outcome, |o| matches!(o, LoginOutcome::Challenge(_)));
        let outcome = outcome?;
        let result = match outcome {
            LoginOutcome::Session(grant) => {
                pb::login_response::Result::Session(session_grant(grant))
            }
            LoginOutcome::Challenge(challenge) => {
                pb::login_response::Result::Challenge(pb::LoginChallenge {
                    challenge_token: challenge.token.expose_secret().to_string(),
                    expires_at: Some(to_timestamp(challenge.expires_at)),
                    methods: vec![
                        pb::SecondFactorMethod::Totp.into(),
                        pb::SecondFactorMethod::RecoveryCode.into(),
                    ],
                })
            }
        };
        Ok(Response::new(pb::LoginResponse {
            result: Some(result),
        }))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        sessions::revoke(
            &self.ctx,
            &caller,
            caller.session_id,
            EventKind::Logout,
            &client,
        )
        .await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Reply<pb::ListSessionsResponse> {
        let caller = customer(&request)?;
        let request = request.into_inner();
        let after = convert::page_token("page_token", &request.page_token)?;
        let (rows, next) = sessions::list(
            &self.ctx,
            &caller,
            convert::page_size(request.page_size),
            after,
        )
        .await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: rows
                .iter()
                .map(|row| {
                    convert::session(
                        row,
                        sessions::idle_expiry(&self.ctx, row),
                        row.id == caller.session_id,
                    )
                })
                .collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Reply<pb::RevokeSessionResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        let id = parse_id("session_id", &request.get_ref().session_id)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        sessions::revoke(&self.ctx, &caller, id, EventKind::SessionRevoked, &client).await?;
        Ok(Response::new(pb::RevokeSessionResponse {}))
    }

    async fn introspect_session(
        &self,
        request: Request<pb::IntrospectSessionRequest>,
    ) -> Reply<pb::IntrospectSessionResponse> {
        let token = request.into_inner().session_token;
        required("session_token", &token)?;
        let found = sessions::introspect(&self.ctx, &token).await?;
        let response = match found.session {
            Some(session) => pb::IntrospectSessionResponse {
                active: true,
                account_id: session.account_id.to_string(),
                session_id: session.id.to_string(),
                expires_at: Some(to_timestamp(session.expires_at)),
                idle_expires_at: Some(to_timestamp(found.idle_expires_at)),
                second_factor_used: session.second_factor_used,
                authenticated_at: Some(to_timestamp(session.created_at)),
            },
            None => pb::IntrospectSessionResponse::default(),
        };
        Ok(Response::new(response))
    }

    async fn suspend_password(
        &self,
        request: Request<pb::SuspendPasswordRequest>,
    ) -> Reply<pb::SuspendPasswordResponse> {
        let actor = principal(&request)?.actor();
        let client = client_info(&request);
        let request = request.into_inner();
        let mut v = Violations::default();
        let account_id = v.check(parse_id("account_id", &request.account_id));
        let reason = v.check(convert::reason_from_proto(request.reason).ok_or_else(|| {
            domain::error::FieldViolation::new(
                "reason",
                "must be a SuspensionReason other than UNSPECIFIED",
            )
        }));
        let note = v.check(parse_text("note", &request.note, 2000));
        if request.evidence_event_ids.len() > 20 {
            v.push(domain::error::FieldViolation::new(
                "evidence_event_ids",
                "at most 20 event ids",
            ));
        }
        let evidence: Vec<_> = request
            .evidence_event_ids
            .iter()
            .take(20)
            .enumerate()
            .filter_map(|(i, id)| v.check(parse_id(&format!("evidence_event_ids[{i}]"), id)))
            .collect();
        v.finish()?;
        let (Some(account_id), Some(reason), Some(note)) = (account_id, reason, note) else {
            return Err(Status::internal("internal error"));
        };
        let done = suspension::suspend(
            &self.ctx,
            &actor,
            &client,
            SuspendRequest {
                account_id,
                reason,
                note,
                evidence_event_ids: evidence,
            },
        )
        .await?;
        Ok(Response::new(pb::SuspendPasswordResponse {
            suspension: Some(convert::suspension(&done.suspension)),
            already_suspended: done.already_suspended,
            sessions_revoked: done.sessions_revoked.min(u64::from(u32::MAX)) as u32,
        }))
    }

    async fn lift_suspension(
        &self,
        request: Request<pb::LiftSuspensionRequest>,
    ) -> Reply<pb::LiftSuspensionResponse> {
        let actor = principal(&request)?.actor();
        let client = client_info(&request);
        let request = request.into_inner();
        let mut v = Violations::default();
        let account_id = v.check(parse_id("account_id", &request.account_id));
        let note = v.check(parse_text("note", &request.note, 2000));
        v.finish()?;
        let (Some(account_id), Some(note)) = (account_id, note) else {
            return Err(Status::internal("internal error"));
        };
        let lifted = suspension::lift(&self.ctx, &actor, &client, account_id, &note).await?;
        Ok(Response::new(pb::LiftSuspensionResponse {
            suspension: Some(convert::suspension(&lifted)),
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Reply<pb::RequestPasswordResetResponse> {
        let client = client_info(&request);
        let typed = request.into_inner().login_or_email;
        required("login_or_email", typed.trim())?;
        if typed.len() > 254 {
            return Err(
                Error::invalid("login_or_email", "must have at most 254 characters").into(),
            );
        }
        if typed.chars().any(char::is_control) {
            // No login or address has one; refused here, not in the background.
            return Err(
                Error::invalid("login_or_email", "must not contain control characters").into(),
            );
        }
        recovery::request_reset(&self.ctx, typed, client);
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn complete_password_reset(
        &self,
        request: Request<pb::CompletePasswordResetRequest>,
    ) -> Reply<pb::CompletePasswordResetResponse> {
        let client = client_info(&request);
        let request = request.into_inner();
        required("reset_token", &request.reset_token)?;
        let new_password = secret_field("new_password", request.new_password)?;
        use pb::complete_password_reset_request::SecondFactor as Factor;
        let second_factor = match request.second_factor {
            None => None,
            Some(Factor::TotpCode(code)) => Some(factor_field("totp_code", code, false)?),
            Some(Factor::RecoveryCode(code)) => Some(factor_field("recovery_code", code, true)?),
        };
        recovery::complete_reset(
            &self.ctx,
            &client,
            recovery::CompleteReset {
                token: request.reset_token,
                new_password,
                second_factor,
            },
        )
        .await?;
        Ok(Response::new(pb::CompletePasswordResetResponse {}))
    }

    async fn recover_login(
        &self,
        request: Request<pb::RecoverLoginRequest>,
    ) -> Reply<pb::RecoverLoginResponse> {
        let client = client_info(&request);
        let email = request.into_inner().email;
        Email::parse("email", &email).map_err(|v| Error::InvalidArgument(vec![v]))?;
        recovery::recover_login(&self.ctx, email, client);
        Ok(Response::new(pb::RecoverLoginResponse {}))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Reply<pb::ChangePasswordResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let current = secret_field("current_password", request.current_password)?;
        let new_password = secret_field("new_password", request.new_password)?;
        let revoked =
            recovery::change_password(&self.ctx, &caller, &client, current, new_password).await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            sessions_revoked: revoked.min(u64::from(u32::MAX)) as u32,
        }))
    }

    async fn verify_login_challenge(
        &self,
        request: Request<pb::VerifyLoginChallengeRequest>,
    ) -> Reply<pb::VerifyLoginChallengeResponse> {
        let client = client_info(&request);
        let request = request.into_inner();
        required("challenge_token", &request.challenge_token)?;
        let factor = match request.code {
            Some(pb::verify_login_challenge_request::Code::TotpCode(code)) => {
                factor_field("totp_code", code, false)?
            }
            Some(pb::verify_login_challenge_request::Code::RecoveryCode(code)) => {
                factor_field("recovery_code", code, true)?
            }
            None => {
                return Err(Error::invalid("totp_code", "give totp_code or recovery_code").into())
            }
        };
        let grant =
            two_factor::verify_challenge(&self.ctx, &request.challenge_token, factor, &client)
                .await?;
        Ok(Response::new(pb::VerifyLoginChallengeResponse {
            session: Some(session_grant(grant)),
        }))
    }

    async fn begin_totp_enrollment(
        &self,
        request: Request<pb::BeginTotpEnrollmentRequest>,
    ) -> Reply<pb::BeginTotpEnrollmentResponse> {
        let caller = customer(&request)?;
        let password = optional_password(request.into_inner().current_password)?;
        let enrollment = two_factor::begin_enrollment(&self.ctx, &caller, password).await?;
        Ok(Response::new(pb::BeginTotpEnrollmentResponse {
            secret_base32: enrollment.secret_base32.expose_secret().to_string(),
            otpauth_uri: enrollment.otpauth_uri.expose_secret().to_string(),
            qr_code_png: enrollment.qr_png,
        }))
    }

    async fn confirm_totp_enrollment(
        &self,
        request: Request<pb::ConfirmTotpEnrollmentRequest>,
    ) -> Reply<pb::ConfirmTotpEnrollmentResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        let SecondFactor::Totp(code) =
            factor_field("totp_code", request.into_inner().totp_code, false)?
        else {
            return Err(Status::internal("internal error"));
        };
        let recovery_codes =
            two_factor::confirm_enrollment(&self.ctx, &caller, &client, code).await?;
        Ok(Response::new(pb::ConfirmTotpEnrollmentResponse {
            recovery_codes,
        }))
    }

    async fn disable_totp(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Reply<pb::DisableTotpResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let password = secret_field("current_password", request.current_password)?;
        let factor = match request.code {
            Some(pb::disable_totp_request::Code::TotpCode(code)) => {
                factor_field("totp_code", code, false)?
            }
            Some(pb::disable_totp_request::Code::RecoveryCode(code)) => {
                factor_field("recovery_code", code, true)?
            }
            None => {
                return Err(Error::invalid("totp_code", "give totp_code or recovery_code").into())
            }
        };
        let revoked = two_factor::disable(&self.ctx, &caller, &client, password, factor).await?;
        Ok(Response::new(pb::DisableTotpResponse {
            sessions_revoked: revoked.min(u64::from(u32::MAX)) as u32,
        }))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<pb::RegenerateRecoveryCodesRequest>,
    ) -> Reply<pb::RegenerateRecoveryCodesResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let password = optional_password(request.current_password)?;
        let SecondFactor::Totp(code) = factor_field("totp_code", request.totp_code, false)? else {
            return Err(Status::internal("internal error"));
        };
        let recovery_codes =
            two_factor::regenerate_recovery_codes(&self.ctx, &caller, &client, password, code)
                .await?;
        Ok(Response::new(pb::RegenerateRecoveryCodesResponse {
            recovery_codes,
        }))
    }

    async fn get_security_overview(
        &self,
        request: Request<pb::GetSecurityOverviewRequest>,
    ) -> Reply<pb::GetSecurityOverviewResponse> {
        let caller = customer(&request)?;
        let overview = overview::overview(&self.ctx, &caller).await?;
        let account = convert::account(&overview.account);
        Ok(Response::new(pb::GetSecurityOverviewResponse {
            password_state: account.password_state,
            active_suspension: overview.active_suspension.as_ref().map(convert::suspension),
            totp_enabled: account.totp_enabled,
            recovery_codes_remaining: count(overview.recovery_codes_remaining),
            contact_details: Some(convert::contact_details(&overview.contacts)),
            active_sessions: count(overview.active_sessions),
            unacknowledged_events: count(overview.unacknowledged_events),
            disputed_events: count(overview.disputed_events),
            open_tickets: count(overview.open_tickets),
            recommended_actions: overview
                .actions
                .into_iter()
                .map(|(action, explanation)| pb::RecommendedAction {
                    kind: convert::recommended_action(action).into(),
                    explanation: explanation.to_string(),
                })
                .collect(),
        }))
    }

    async fn list_security_events(
        &self,
        request: Request<pb::ListSecurityEventsRequest>,
    ) -> Reply<pb::ListSecurityEventsResponse> {
        let caller = customer(&request)?;
        let request = request.into_inner();
        let mut kinds = request
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
        let time =
            |field: &str, value: Option<prost_types::Timestamp>| -> Result<Option<i64>, Error> {
                value
                    .map(|t| {
                        if !(0..=253_402_300_799).contains(&t.seconds)
                            || !(0..1_000_000_000).contains(&t.nanos)
                        {
                            return Err(Error::invalid(
                                field,
                                "must be a time between 1970 and 9999",
                            ));
                        }
                        Ok(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
                    })
                    .transpose()
            };
        let filter = events::EventFilter {
            kinds,
            from_ms: time("start_time", request.start_time)?,
            until_ms: time("end_time", request.end_time)?,
            only_unacknowledged: request.only_unacknowledged,
        };
        let before = convert::page_token("page_token", &request.page_token)?;
        let account = accounts::find(&self.ctx, &AccountSelector::Id(caller.account_id)).await?;
        let (rows, next) = events::list(
            &self.ctx.db,
            caller.account_id,
            &filter,
            convert::page_size(request.page_size),
            before,
        )
        .await?;
        let locale = domain::types::Locale::parse(&account.locale);
        Ok(Response::new(pb::ListSecurityEventsResponse {
            events: rows
                .iter()
                .map(|e| convert::security_event(e, locale))
                .collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }

    async fn acknowledge_security_events(
        &self,
        request: Request<pb::AcknowledgeSecurityEventsRequest>,
    ) -> Reply<pb::AcknowledgeSecurityEventsResponse> {
        let caller = customer(&request)?;
        let request = request.into_inner();
        if request.event_ids.is_empty() || request.event_ids.len() > 200 {
            return Err(Error::invalid("event_ids", "give 1 to 200 event ids").into());
        }
        let mut v = Violations::default();
        let ids: Vec<_> = request
            .event_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| v.check(parse_id(&format!("event_ids[{i}]"), id)))
            .collect();
        v.finish()?;
        let marked = centre::acknowledge(&self.ctx, caller.account_id, &ids).await?;
        Ok(Response::new(pb::AcknowledgeSecurityEventsResponse {
            newly_acknowledged: count(marked),
        }))
    }

    async fn dispute_security_event(
        &self,
        request: Request<pb::DisputeSecurityEventRequest>,
    ) -> Reply<pb::DisputeSecurityEventResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let mut v = Violations::default();
        let event_id = v.check(parse_id("event_id", &request.event_id));
        let comment = v.check(parse_text("comment", &request.comment, 2000));
        v.finish()?;
        let (Some(event_id), Some(comment)) = (event_id, comment) else {
            return Err(Status::internal("internal error"));
        };
        let done = centre::dispute(
            &self.ctx,
            caller.account_id,
            event_id,
            &comment,
            &client,
            centre::Via::Session(caller.session_id),
        )
        .await?;
        Ok(Response::new(pb::DisputeSecurityEventResponse {
            ticket_id: done.ticket.id.to_string(),
            password_suspended: done.password_suspended,
            sessions_revoked: count(done.sessions_revoked),
        }))
    }

    async fn report_unauthorized_change(
        &self,
        request: Request<pb::ReportUnauthorizedChangeRequest>,
    ) -> Reply<pb::ReportUnauthorizedChangeResponse> {
        let client = client_info(&request);
        let request = request.into_inner();
        required("report_token", &request.report_token)?;
        let comment = parse_text("comment", &request.comment, 2000)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let reference =
            centre::report_unauthorized_change(&self.ctx, &request.report_token, &comment, &client)
                .await?;
        Ok(Response::new(pb::ReportUnauthorizedChangeResponse {
            ticket_reference: reference,
        }))
    }

    async fn record_activity(
        &self,
        request: Request<pb::RecordActivityRequest>,
    ) -> Reply<pb::RecordActivityResponse> {
        let service = principal(&request)?.actor();
        let request = request.into_inner();
        let now = self.ctx.now();
        let mut v = Violations::default();
        let account_id = v.check(parse_id("account_id", &request.account_id));
        let service_event_id = v.check(bounded(
            "service_event_id",
            &request.service_event_id,
            128,
            true,
        ));
        let kind = match pb::ActivityKind::try_from(request.kind) {
            Ok(pb::ActivityKind::OrderPlaced) => Some(centre::ActivityKind::OrderPlaced),
            Ok(pb::ActivityKind::ServiceOrdered) => Some(centre::ActivityKind::ServiceOrdered),
            Ok(pb::ActivityKind::ServiceCancelled) => Some(centre::ActivityKind::ServiceCancelled),
            Ok(pb::ActivityKind::DomainTransfer) => Some(centre::ActivityKind::DomainTransfer),
            Ok(pb::ActivityKind::ApiKeyCreated) => Some(centre::ActivityKind::ApiKeyCreated),
            _ => {
                v.push(domain::error::FieldViolation::new(
                    "kind",
                    "must be an ActivityKind other than UNSPECIFIED",
                ));
                None
            }
        };
        let occurred_at = match request.occurred_at {
            None => Some(now),
            Some(t)
                if (0..=253_402_300_799).contains(&t.seconds)
                    && (0..1_000_000_000).contains(&t.nanos) =>
            {
                let ms = t.seconds * 1000 + i64::from(t.nanos / 1_000_000);
                if ms > now + 5 * 60 * 1000 {
                    v.push(domain::error::FieldViolation::new(
                        "occurred_at",
                        "must not be more than 5 minutes in the future",
                    ));
                }
                Some(ms)
            }
            Some(_) => {
                v.push(domain::error::FieldViolation::new(
                    "occurred_at",
                    "must be a time between 1970 and 9999",
                ));
                None
            }
        };
        let reference = v.check(bounded("reference", &request.reference, 200, false));
        let currency = request.currency.trim().to_ascii_uppercase();
        if !currency.is_empty()
            && (currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()))
        {
            v.push(domain::error::FieldViolation::new(
                "currency",
                "must be an ISO 4217 code such as EUR",
            ));
        }
        if currency.is_empty() && request.amount_minor != 0 {
            v.push(domain::error::FieldViolation::new(
                "currency",
                "is required with an amount",
            ));
        }
        if request.amount_minor < 0 {
            v.push(domain::error::FieldViolation::new(
                "amount_minor",
                "must not be negative",
            ));
        }
        let items = v.check(bounded(
            "items_summary",
            &request.items_summary,
            1000,
            false,
        ));
        let address = v.check(bounded(
            "client_address",
            &request.client_address,
            64,
            false,
        ));
        if let Some(address) = address.as_deref().filter(|a| !a.is_empty()) {
            if address.parse::<std::net::IpAddr>().is_err() {
                v.push(domain::error::FieldViolation::new(
                    "client_address",
                    "must be an IPv4 or IPv6 address",
                ));
            }
        }
        let user_agent = v.check(bounded("user_agent", &request.user_agent, 256, false));
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
            return Err(Status::internal("internal error"));
        };
        let activity = centre::Activity {
            account_id,
            service_event_id,
            kind,
            occurred_at,
            reference,
            amount_minor: request.amount_minor,
            currency,
            items_summary: items,
            client: domain::principal::ClientInfo {
                address: (!address.is_empty()).then_some(address),
                user_agent: (!user_agent.is_empty()).then_some(user_agent),
            },
        };
        let (event, duplicate) = centre::record_activity(&self.ctx, &service, activity).await?;
        let account = accounts::find(&self.ctx, &AccountSelector::Id(account_id)).await?;
        Ok(Response::new(pb::RecordActivityResponse {
            event: Some(convert::security_event(
                &event,
                domain::types::Locale::parse(&account.locale),
            )),
            duplicate,
        }))
    }

    async fn get_contact_details(
        &self,
        request: Request<pb::GetContactDetailsRequest>,
    ) -> Reply<pb::GetContactDetailsResponse> {
        let caller = customer(&request)?;
        let view = contacts::get(&self.ctx, caller.account_id).await?;
        Ok(Response::new(pb::GetContactDetailsResponse {
            contact_details: Some(convert::contact_details(&view)),
        }))
    }

    async fn update_contact_details(
        &self,
        request: Request<pb::UpdateContactDetailsRequest>,
    ) -> Reply<pb::UpdateContactDetailsResponse> {
        let caller = customer(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::invalid(
                "update_mask",
                "name the fields to change: email, phone, postal_address",
            )
            .into());
        }
        let mut v = Violations::default();
        let mut update = contacts::Update::default();
        for (i, path) in paths.iter().enumerate() {
            match path.as_str() {
                "email" => update.email = v.check(Email::parse("email", &request.email)),
                "phone" => update.phone = v.check(Phone::parse_optional("phone", &request.phone)),
                "postal_address" => {
                    let a = request.postal_address.clone().unwrap_or_default();
                    update.address = v.check_many(PostalAddress::parse(
                        "postal_address",
                        &a.line1,
                        &a.line2,
                        &a.postal_code,
                        &a.city,
                        &a.country_code,
                    ));
                }
                _ => v.push(domain::error::FieldViolation::new(
                    format!("update_mask.paths[{i}]"),
                    "must be email, phone or postal_address",
                )),
            }
        }
        v.finish()?;
        let password = optional_password(request.current_password)?;
        let pending = contacts::update(&self.ctx, &caller, &client, password, update).await?;
        let view = contacts::get(&self.ctx, caller.account_id).await?;
        Ok(Response::new(pb::UpdateContactDetailsResponse {
            contact_details: Some(convert::contact_details(&view)),
            email_change_pending: pending,
        }))
    }

    async fn confirm_email_change(
        &self,
        request: Request<pb::ConfirmEmailChangeRequest>,
    ) -> Reply<pb::ConfirmEmailChangeResponse> {
        let client = client_info(&request);
        let token = request.into_inner().confirmation_token;
        required("confirmation_token", &token)?;
        contacts::confirm_email(&self.ctx, &token, &client).await?;
        Ok(Response::new(pb::ConfirmEmailChangeResponse {}))
    }

    async fn list_contact_changes(
        &self,
        request: Request<pb::ListContactChangesRequest>,
    ) -> Reply<pb::ListContactChangesResponse> {
        let caller = customer(&request)?;
        let request = request.into_inner();
        let before = convert::page_token("page_token", &request.page_token)?;
        let (rows, next) = contacts::changes(
            &self.ctx,
            caller.account_id,
            convert::page_size(request.page_size),
            before,
        )
        .await?;
        Ok(Response::new(pb::ListContactChangesResponse {
            changes: rows.iter().map(convert::contact_change).collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }
}

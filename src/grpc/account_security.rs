//! `gardien.accountsecurity.v1.AccountSecurityService`: thin handlers over
//! the domain. RPCs of capabilities not built yet answer `UNIMPLEMENTED`
//! (the generated default).

use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

use super::{client_info, convert, customer, principal, request_time, validate::Validate};
use crate::{
    clock::to_timestamp,
    domain::{
        self,
        accounts::{self, AccountSelector},
        centre, contacts, events,
        login::{self, LoginOutcome},
        overview, passkeys, recovery,
        revocation::RevocationCause,
        sessions, suspension, two_factor,
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
        let now = request_time(&request, &self.ctx);
        let actor = principal(&request)?.actor();
        let client = client_info(&request);
        let new = request.into_inner().validate(now)?;
        let account = accounts::create(&self.ctx, now, &actor, &client, new).await?;
        Ok(Response::new(pb::CreateAccountResponse {
            account: Some(convert::account(&account)),
        }))
    }

    async fn get_account_status(
        &self,
        request: Request<pb::GetAccountStatusRequest>,
    ) -> Reply<pb::GetAccountStatusResponse> {
        let now = request_time(&request, &self.ctx);
        let selector = request.into_inner().validate(now)?;
        let status = accounts::status(&self.ctx, &selector, now).await?;
        Ok(Response::new(pb::GetAccountStatusResponse {
            account: Some(convert::account(&status.account)),
            active_suspension: status.active_suspension.as_ref().map(convert::suspension),
            active_sessions: status.active_sessions.min(u64::from(u32::MAX)) as u32,
            last_login_at: status.last_login_at.map(to_timestamp),
            consecutive_failed_logins: status.consecutive_failed_logins,
            login_backoff_until: status.login_backoff_until.map(to_timestamp),
        }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let attempt = request.into_inner().validate(now)?;
        let outcome = login::login(&self.ctx, now, &attempt.login, attempt.password, &client).await;
        let outcome = outcome?;
        let result = match outcome {
            LoginOutcome::Session(grant) => {
                pb::login_response::Result::Session(session_grant(grant))
            }
            LoginOutcome::Challenge(challenge) => {
                let mut methods = Vec::new();
                if challenge.totp {
                    methods.push(pb::SecondFactorMethod::Totp.into());
                }
                if challenge.passkey_options.is_some() {
                    methods.push(pb::SecondFactorMethod::Passkey.into());
                }
                methods.push(pb::SecondFactorMethod::RecoveryCode.into());
                pb::login_response::Result::Challenge(pb::LoginChallenge {
                    challenge_token: challenge.token.expose_secret().to_string(),
                    expires_at: Some(to_timestamp(challenge.expires_at)),
                    methods,
                    passkey_options_json: challenge.passkey_options.unwrap_or_default(),
                })
            }
        };
        Ok(Response::new(pb::LoginResponse {
            result: Some(result),
        }))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        sessions::revoke(
            &self.ctx.db,
            now,
            &caller,
            caller.session_id,
            RevocationCause::Logout,
            &client,
        )
        .await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Reply<pb::ListSessionsResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let page = request.into_inner().validate(now)?;
        let (rows, next) = sessions::list(&self.ctx, now, &caller, page.size, page.after).await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: rows
                .iter()
                .map(|row| convert::session(row, row.id == caller.session_id))
                .collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Reply<pb::RevokeSessionResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let id = request.into_inner().validate(now)?;
        sessions::revoke(
            &self.ctx.db,
            now,
            &caller,
            id,
            RevocationCause::Customer,
            &client,
        )
        .await?;
        Ok(Response::new(pb::RevokeSessionResponse {}))
    }

    async fn introspect_session(
        &self,
        request: Request<pb::IntrospectSessionRequest>,
    ) -> Reply<pb::IntrospectSessionResponse> {
        let now = request_time(&request, &self.ctx);
        let token = request.into_inner().validate(now)?;
        let found = sessions::introspect(&self.ctx, now, &token).await?;
        let response = match found.session {
            Some(session) => pb::IntrospectSessionResponse {
                active: true,
                account_id: session.account_id.to_string(),
                session_id: session.id.to_string(),
                expires_at: Some(to_timestamp(session.expires_at)),
                idle_expires_at: Some(to_timestamp(found.idle_expires_at)),
                second_factor_used: session.second_factor_used,
                authenticated_at: Some(to_timestamp(session.created_at)),
                revocation_cause: pb::SessionRevocationCause::Unspecified.into(),
            },
            None => pb::IntrospectSessionResponse {
                revocation_cause: found
                    .revoked
                    .map_or(
                        pb::SessionRevocationCause::Unspecified,
                        convert::revocation_cause,
                    )
                    .into(),
                ..Default::default()
            },
        };
        Ok(Response::new(response))
    }

    async fn suspend_password(
        &self,
        request: Request<pb::SuspendPasswordRequest>,
    ) -> Reply<pb::SuspendPasswordResponse> {
        let now = request_time(&request, &self.ctx);
        let actor = principal(&request)?.actor();
        let client = client_info(&request);
        let suspend = request.into_inner().validate(now)?;
        let done = suspension::suspend(&self.ctx, now, &actor, &client, suspend).await?;
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
        let now = request_time(&request, &self.ctx);
        let actor = principal(&request)?.actor();
        let client = client_info(&request);
        let (account_id, note) = request.into_inner().validate(now)?;
        let lifted =
            suspension::lift(&self.ctx.db, now, &actor, &client, account_id, &note).await?;
        Ok(Response::new(pb::LiftSuspensionResponse {
            suspension: Some(convert::suspension(&lifted)),
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Reply<pb::RequestPasswordResetResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let typed = request.into_inner().validate(now)?;
        recovery::request_reset(&self.ctx, now, &typed, &client).await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn complete_password_reset(
        &self,
        request: Request<pb::CompletePasswordResetRequest>,
    ) -> Reply<pb::CompletePasswordResetResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let reset = request.into_inner().validate(now)?;
        recovery::complete_reset(&self.ctx, now, &client, reset).await?;
        Ok(Response::new(pb::CompletePasswordResetResponse {}))
    }

    async fn recover_login(
        &self,
        request: Request<pb::RecoverLoginRequest>,
    ) -> Reply<pb::RecoverLoginResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let email = request.into_inner().validate(now)?;
        recovery::recover_login(&self.ctx, now, &email, &client).await?;
        Ok(Response::new(pb::RecoverLoginResponse {}))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Reply<pb::ChangePasswordResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let (current, new_password) = request.into_inner().validate(now)?;
        let revoked =
            recovery::change_password(&self.ctx, now, &caller, &client, current, new_password)
                .await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            sessions_revoked: revoked.min(u64::from(u32::MAX)) as u32,
        }))
    }

    async fn verify_login_challenge(
        &self,
        request: Request<pb::VerifyLoginChallengeRequest>,
    ) -> Reply<pb::VerifyLoginChallengeResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let (challenge_token, factor) = request.into_inner().validate(now)?;
        let grant =
            two_factor::verify_challenge(&self.ctx, now, &challenge_token, factor, &client).await?;
        Ok(Response::new(pb::VerifyLoginChallengeResponse {
            session: Some(session_grant(grant)),
        }))
    }

    async fn begin_totp_enrollment(
        &self,
        request: Request<pb::BeginTotpEnrollmentRequest>,
    ) -> Reply<pb::BeginTotpEnrollmentResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let password = request.into_inner().validate(now)?;
        let enrollment = two_factor::begin_enrollment(&self.ctx, now, &caller, password).await?;
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
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let code = request.into_inner().validate(now)?;
        let recovery_codes =
            two_factor::confirm_enrollment(&self.ctx, now, &caller, &client, code).await?;
        Ok(Response::new(pb::ConfirmTotpEnrollmentResponse {
            recovery_codes,
        }))
    }

    async fn disable_totp(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Reply<pb::DisableTotpResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let (password, factor) = request.into_inner().validate(now)?;
        let revoked =
            two_factor::disable(&self.ctx, now, &caller, &client, password, factor).await?;
        Ok(Response::new(pb::DisableTotpResponse {
            sessions_revoked: revoked.min(u64::from(u32::MAX)) as u32,
        }))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<pb::RegenerateRecoveryCodesRequest>,
    ) -> Reply<pb::RegenerateRecoveryCodesResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let (password, code) = request.into_inner().validate(now)?;
        let recovery_codes =
            two_factor::regenerate_recovery_codes(&self.ctx, now, &caller, &client, password, code)
                .await?;
        Ok(Response::new(pb::RegenerateRecoveryCodesResponse {
            recovery_codes,
        }))
    }

    async fn get_security_overview(
        &self,
        request: Request<pb::GetSecurityOverviewRequest>,
    ) -> Reply<pb::GetSecurityOverviewResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let overview = overview::overview(&self.ctx, now, &caller).await?;
        let account = convert::account(&overview.account);
        Ok(Response::new(pb::GetSecurityOverviewResponse {
            password_state: account.password_state,
            active_suspension: overview
                .active_suspension
                .as_ref()
                .map(convert::customer_suspension),
            totp_enabled: account.totp_enabled,
            recovery_codes_remaining: count(overview.recovery_codes_remaining),
            contact_details: Some(convert::contact_details(&overview.contacts)),
            active_sessions: count(overview.active_sessions),
            unacknowledged_events: count(overview.unacknowledged_events),
            disputed_events: count(overview.disputed_events),
            open_tickets: count(overview.open_tickets),
            passkeys: overview.account.passkeys,
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
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let (filter, page) = request.into_inner().validate(now)?;
        let account = accounts::find(&self.ctx, &AccountSelector::Id(caller.account_id)).await?;
        let (rows, next) = events::list(
            &self.ctx.db,
            caller.account_id,
            &filter,
            page.size,
            page.after,
        )
        .await?;
        let locale = account.locale;
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
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let ids = request.into_inner().validate(now)?;
        let marked = centre::acknowledge(&self.ctx.db, now, caller.account_id, &ids).await?;
        Ok(Response::new(pb::AcknowledgeSecurityEventsResponse {
            newly_acknowledged: count(marked),
        }))
    }

    async fn dispute_security_event(
        &self,
        request: Request<pb::DisputeSecurityEventRequest>,
    ) -> Reply<pb::DisputeSecurityEventResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let (event_id, comment) = request.into_inner().validate(now)?;
        let done = centre::dispute(
            &self.ctx,
            now,
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
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let (token, comment) = request.into_inner().validate(now)?;
        let reference =
            centre::report_unauthorized_change(&self.ctx, now, &token, &comment, &client).await?;
        Ok(Response::new(pb::ReportUnauthorizedChangeResponse {
            ticket_reference: reference,
        }))
    }

    async fn record_activity(
        &self,
        request: Request<pb::RecordActivityRequest>,
    ) -> Reply<pb::RecordActivityResponse> {
        let now = request_time(&request, &self.ctx);
        let service = principal(&request)?.actor();
        let activity = request.into_inner().validate(now)?;
        let account_id = activity.account_id;
        let (event, duplicate) = centre::record_activity(&self.ctx, &service, activity).await?;
        let account = accounts::find(&self.ctx, &AccountSelector::Id(account_id)).await?;
        Ok(Response::new(pb::RecordActivityResponse {
            event: Some(convert::security_event(&event, account.locale)),
            duplicate,
        }))
    }

    async fn get_contact_details(
        &self,
        request: Request<pb::GetContactDetailsRequest>,
    ) -> Reply<pb::GetContactDetailsResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let view = contacts::get(&self.ctx.db, caller.account_id, now).await?;
        Ok(Response::new(pb::GetContactDetailsResponse {
            contact_details: Some(convert::contact_details(&view)),
        }))
    }

    async fn update_contact_details(
        &self,
        request: Request<pb::UpdateContactDetailsRequest>,
    ) -> Reply<pb::UpdateContactDetailsResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let (update, password) = request.into_inner().validate(now)?;
        let pending = contacts::update(&self.ctx, now, &caller, &client, password, update).await?;
        let view = contacts::get(&self.ctx.db, caller.account_id, now).await?;
        Ok(Response::new(pb::UpdateContactDetailsResponse {
            contact_details: Some(convert::contact_details(&view)),
            email_change_pending: pending,
        }))
    }

    async fn confirm_email_change(
        &self,
        request: Request<pb::ConfirmEmailChangeRequest>,
    ) -> Reply<pb::ConfirmEmailChangeResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let token = request.into_inner().validate(now)?;
        contacts::confirm_email(&self.ctx, now, &token, &client).await?;
        Ok(Response::new(pb::ConfirmEmailChangeResponse {}))
    }

    async fn list_contact_changes(
        &self,
        request: Request<pb::ListContactChangesRequest>,
    ) -> Reply<pb::ListContactChangesResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let page = request.into_inner().validate(now)?;
        let (rows, next) =
            contacts::changes(&self.ctx.db, caller.account_id, page.size, page.after).await?;
        Ok(Response::new(pb::ListContactChangesResponse {
            changes: rows.iter().map(convert::contact_change).collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }
    async fn begin_passkey_registration(
        &self,
        request: Request<pb::BeginPasskeyRegistrationRequest>,
    ) -> Reply<pb::BeginPasskeyRegistrationResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let password = request.into_inner().validate(now)?;
        let ceremony = passkeys::begin_registration(&self.ctx, now, &caller, password).await?;
        Ok(Response::new(pb::BeginPasskeyRegistrationResponse {
            ceremony_token: ceremony.token.expose_secret().to_string(),
            creation_options_json: ceremony.options_json,
            expires_at: Some(to_timestamp(ceremony.expires_at)),
        }))
    }

    async fn finish_passkey_registration(
        &self,
        request: Request<pb::FinishPasskeyRegistrationRequest>,
    ) -> Reply<pb::FinishPasskeyRegistrationResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let finish = request.into_inner().validate(now)?;
        let (passkey, recovery_codes) = passkeys::finish_registration(
            &self.ctx,
            now,
            &caller,
            &client,
            &finish.ceremony_token,
            &finish.credential,
            finish.name,
        )
        .await?;
        Ok(Response::new(pb::FinishPasskeyRegistrationResponse {
            passkey: Some(convert::passkey(&passkey)),
            recovery_codes,
        }))
    }

    async fn list_passkeys(
        &self,
        request: Request<pb::ListPasskeysRequest>,
    ) -> Reply<pb::ListPasskeysResponse> {
        let caller = customer(&request)?;
        let rows = passkeys::list(&self.ctx, &caller).await?;
        Ok(Response::new(pb::ListPasskeysResponse {
            passkeys: rows.iter().map(convert::passkey).collect(),
        }))
    }

    async fn rename_passkey(
        &self,
        request: Request<pb::RenamePasskeyRequest>,
    ) -> Reply<pb::RenamePasskeyResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let (id, name, password) = request.into_inner().validate(now)?;
        let passkey = passkeys::rename(&self.ctx, now, &caller, id, name, password).await?;
        Ok(Response::new(pb::RenamePasskeyResponse {
            passkey: Some(convert::passkey(&passkey)),
        }))
    }

    async fn remove_passkey(
        &self,
        request: Request<pb::RemovePasskeyRequest>,
    ) -> Reply<pb::RemovePasskeyResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let (id, password) = request.into_inner().validate(now)?;
        passkeys::remove(&self.ctx, now, &caller, &client, id, password).await?;
        Ok(Response::new(pb::RemovePasskeyResponse {}))
    }

    async fn begin_passkey_login(
        &self,
        request: Request<pb::BeginPasskeyLoginRequest>,
    ) -> Reply<pb::BeginPasskeyLoginResponse> {
        let now = request_time(&request, &self.ctx);
        let ceremony = passkeys::begin_login(&self.ctx, now).await?;
        Ok(Response::new(pb::BeginPasskeyLoginResponse {
            ceremony_token: ceremony.token.expose_secret().to_string(),
            request_options_json: ceremony.options_json,
            expires_at: Some(to_timestamp(ceremony.expires_at)),
        }))
    }

    async fn finish_passkey_login(
        &self,
        request: Request<pb::FinishPasskeyLoginRequest>,
    ) -> Reply<pb::FinishPasskeyLoginResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let (token, assertion) = request.into_inner().validate(now)?;
        let grant = passkeys::finish_login(&self.ctx, now, &client, &token, &assertion).await?;
        Ok(Response::new(pb::FinishPasskeyLoginResponse {
            session: Some(session_grant(grant)),
        }))
    }

    async fn get_reset_passkey_options(
        &self,
        request: Request<pb::GetResetPasskeyOptionsRequest>,
    ) -> Reply<pb::GetResetPasskeyOptionsResponse> {
        let now = request_time(&request, &self.ctx);
        let token = request.into_inner().validate(now)?;
        let request_options_json = passkeys::reset_options(&self.ctx, now, &token).await?;
        Ok(Response::new(pb::GetResetPasskeyOptionsResponse {
            request_options_json,
        }))
    }
}

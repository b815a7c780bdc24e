//! `gardien.support.v1.SupportService`: thin handlers over `domain::support`.

use tonic::{Request, Response, Status};

use super::{
    client_info, convert, convert::support as sconv, customer, principal, request_time,
    validate::Validate,
};
use crate::{
    domain::{
        self, factor_reset,
        principal::{Principal, Role},
        review,
        support::{self as tickets, Viewer},
    },
    proto::support::v1::{self as pb, support_service_server::SupportService},
};

pub struct Support {
    ctx: domain::Context,
}

impl Support {
    pub fn new(ctx: domain::Context) -> Self {
        Self { ctx }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn viewer<T>(request: &Request<T>) -> Result<Viewer, Status> {
    match principal(request)? {
        Principal::Customer(session) => Ok(Viewer::Customer(session.account_id)),
        Principal::Credential {
            name,
            role: Role::Agent,
            ..
        } => Ok(Viewer::Agent(name)),
        _ => Err(super::status::permission_denied("this method")),
    }
}

fn agent<T>(request: &Request<T>) -> Result<String, Status> {
    match viewer(request)? {
        Viewer::Agent(name) => Ok(name),
        Viewer::Customer(_) => Err(super::status::permission_denied("this method")),
    }
}

fn for_agent(viewer: &Viewer) -> bool {
    matches!(viewer, Viewer::Agent(_))
}

#[tonic::async_trait]
impl SupportService for Support {
    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Reply<pb::CreateTicketResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let client = client_info(&request);
        let new = request.into_inner().validate(now)?;
        let ticket =
            tickets::create_ticket(&self.ctx, now, caller.account_id, &client, new).await?;
        Ok(Response::new(pb::CreateTicketResponse {
            ticket: Some(sconv::ticket(&ticket, false)),
        }))
    }

    async fn create_recovery_ticket(
        &self,
        request: Request<pb::CreateRecoveryTicketRequest>,
    ) -> Reply<pb::CreateRecoveryTicketResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let valid = request.into_inner().validate(now)?;
        let reference = tickets::create_recovery_ticket(
            &self.ctx.db,
            now,
            &client,
            &valid.login_or_email,
            &valid.reachable_contact,
            &valid.description,
        )
        .await?;
        Ok(Response::new(pb::CreateRecoveryTicketResponse {
            ticket_reference: reference,
        }))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Reply<pb::GetTicketResponse> {
        let now = request_time(&request, &self.ctx);
        let viewer = viewer(&request)?;
        let (ticket_id, page) = request.into_inner().validate(now)?;
        let page =
            tickets::get_ticket(&self.ctx.db, &viewer, ticket_id, page.size, page.after).await?;
        Ok(Response::new(pb::GetTicketResponse {
            ticket: Some(sconv::ticket(&page.ticket, for_agent(&viewer))),
            messages: page.messages.iter().map(sconv::message).collect(),
            next_page_token: convert::next_page_token(page.next),
        }))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Reply<pb::ListTicketsResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let (statuses, page) = request.into_inner().validate(now)?;
        let (rows, next) = tickets::list_tickets(
            &self.ctx.db,
            caller.account_id,
            &statuses,
            page.size,
            page.after,
        )
        .await?;
        Ok(Response::new(pb::ListTicketsResponse {
            tickets: rows.iter().map(|t| sconv::ticket(t, false)).collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }

    async fn add_ticket_message(
        &self,
        request: Request<pb::AddTicketMessageRequest>,
    ) -> Reply<pb::AddTicketMessageResponse> {
        let now = request_time(&request, &self.ctx);
        let viewer = viewer(&request)?;
        let client = client_info(&request);
        let (ticket_id, body, internal_note) = request.into_inner().validate(now)?;
        let message = tickets::add_message(
            &self.ctx,
            now,
            &viewer,
            &client,
            ticket_id,
            &body,
            internal_note,
        )
        .await?;
        Ok(Response::new(pb::AddTicketMessageResponse {
            message: Some(sconv::message(&message)),
        }))
    }

    async fn close_ticket(
        &self,
        request: Request<pb::CloseTicketRequest>,
    ) -> Reply<pb::CloseTicketResponse> {
        let now = request_time(&request, &self.ctx);
        let caller = customer(&request)?;
        let ticket_id = request.into_inner().validate(now)?;
        let ticket = tickets::close_ticket(&self.ctx.db, now, caller.account_id, ticket_id).await?;
        Ok(Response::new(pb::CloseTicketResponse {
            ticket: Some(sconv::ticket(&ticket, false)),
        }))
    }

    async fn list_ticket_queue(
        &self,
        request: Request<pb::ListTicketQueueRequest>,
    ) -> Reply<pb::ListTicketQueueResponse> {
        let now = request_time(&request, &self.ctx);
        agent(&request)?;
        let (filter, page) = request.into_inner().validate(now)?;
        let (rows, next) = tickets::queue(&self.ctx.db, &filter, page.size, page.after).await?;
        Ok(Response::new(pb::ListTicketQueueResponse {
            tickets: rows.iter().map(|t| sconv::ticket(t, true)).collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Reply<pb::AssignTicketResponse> {
        let now = request_time(&request, &self.ctx);
        let agent = agent(&request)?;
        let client = client_info(&request);
        let (ticket_id, assignee) = request.into_inner().validate(now)?;
        let ticket = tickets::assign(&self.ctx, now, &agent, &client, ticket_id, assignee).await?;
        Ok(Response::new(pb::AssignTicketResponse {
            ticket: Some(sconv::ticket(&ticket, true)),
        }))
    }

    async fn set_ticket_status(
        &self,
        request: Request<pb::SetTicketStatusRequest>,
    ) -> Reply<pb::SetTicketStatusResponse> {
        let now = request_time(&request, &self.ctx);
        let agent = agent(&request)?;
        let client = client_info(&request);
        let (ticket_id, status) = request.into_inner().validate(now)?;
        let ticket =
            tickets::set_status(&self.ctx, now, &agent, &client, ticket_id, status).await?;
        Ok(Response::new(pb::SetTicketStatusResponse {
            ticket: Some(sconv::ticket(&ticket, true)),
        }))
    }

    async fn get_account_review(
        &self,
        request: Request<pb::GetAccountReviewRequest>,
    ) -> Reply<pb::GetAccountReviewResponse> {
        let now = request_time(&request, &self.ctx);
        let agent = agent(&request)?;
        let client = client_info(&request);
        let (account_id, ticket_id) = request.into_inner().validate(now)?;
        let review = review::review(&self.ctx, now, &agent, &client, account_id, ticket_id).await?;
        let account = &review.status.account;
        let locale = account.locale;
        let proto_account = convert::account(account);
        Ok(Response::new(pb::GetAccountReviewResponse {
            contact_details: Some(convert::contact_details(&review.contacts)),
            account: Some(proto_account),
            active_suspension: review
                .status
                .active_suspension
                .as_ref()
                .map(convert::suspension),
            suspensions: review.suspensions.iter().map(convert::suspension).collect(),
            recent_events: review
                .recent_events
                .iter()
                .map(|e| convert::security_event_for_staff(e, locale))
                .collect(),
            contact_changes: review
                .contact_changes
                .iter()
                .map(convert::contact_change)
                .collect(),
            sessions: review
                .sessions
                .iter()
                .map(|s| convert::session(s, false))
                .collect(),
            recovery_codes_remaining: review.recovery_codes_remaining.min(u64::from(u32::MAX))
                as u32,
            tickets: review
                .tickets
                .iter()
                .map(|t| sconv::ticket(t, true))
                .collect(),
            last_login_at: review.status.last_login_at.map(crate::clock::to_timestamp),
            consecutive_failed_logins: review.status.consecutive_failed_logins,
            login_backoff_until: review
                .status
                .login_backoff_until
                .map(crate::clock::to_timestamp),
            pending_factor_reset: review
                .pending_factor_reset
                .as_ref()
                .map(sconv::factor_reset),
        }))
    }

    async fn verify_ticket_identity(
        &self,
        request: Request<pb::VerifyTicketIdentityRequest>,
    ) -> Reply<pb::VerifyTicketIdentityResponse> {
        let now = request_time(&request, &self.ctx);
        let agent = agent(&request)?;
        let client = client_info(&request);
        let (ticket_id, method, evidence) = request.into_inner().validate(now)?;
        let verification = factor_reset::verify_identity(
            &self.ctx.db,
            now,
            &agent,
            &client,
            ticket_id,
            method,
            &evidence,
        )
        .await?;
        Ok(Response::new(pb::VerifyTicketIdentityResponse {
            verification: Some(sconv::verification(&verification)),
        }))
    }

    async fn reset_totp(
        &self,
        request: Request<pb::ResetTotpRequest>,
    ) -> Reply<pb::ResetTotpResponse> {
        let now = request_time(&request, &self.ctx);
        let agent = agent(&request)?;
        let client = client_info(&request);
        let (account_id, ticket_id, reason) = request.into_inner().validate(now)?;
        let scheduled = factor_reset::request(
            &self.ctx, now, &agent, &client, account_id, ticket_id, &reason,
        )
        .await?;
        Ok(Response::new(pb::ResetTotpResponse {
            sessions_revoked: 0,
            effective_at: Some(crate::clock::to_timestamp(scheduled.due_at)),
            factor_reset: Some(sconv::factor_reset(&scheduled)),
        }))
    }

    async fn cancel_factor_reset(
        &self,
        request: Request<pb::CancelFactorResetRequest>,
    ) -> Reply<pb::CancelFactorResetResponse> {
        let now = request_time(&request, &self.ctx);
        let client = client_info(&request);
        let token = request.into_inner().validate(now)?;
        factor_reset::cancel_by_link(&self.ctx.db, now, &token, &client).await?;
        Ok(Response::new(pb::CancelFactorResetResponse {}))
    }
}

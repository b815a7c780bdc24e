//! `gardien.support.v1.SupportService`: thin handlers over `domain::support`.

use tonic::{Request, Response, Status};

use super::{client_info, convert, convert::support as sconv, customer, principal};
use crate::{
    domain::{
        self,
        error::{Error, FieldViolation},
        principal::{Principal, Role},
        review,
        support::{self as tickets, NewTicket, QueueFilter, Viewer},
        types::{parse_id, parse_line, Locale, Violations},
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

/// Credential names have at most 64 characters; ticket references far fewer.
const MAX_NAME_CHARS: usize = 64;
const MAX_REFERENCE_CHARS: usize = 64;

fn line(field: &str, value: &str, max: usize) -> Result<String, Error> {
    parse_line(field, value, max).map_err(|v| Error::InvalidArgument(vec![v]))
}

fn id(field: &str, value: &str) -> Result<uuid::Uuid, Error> {
    parse_id(field, value).map_err(|v| Error::InvalidArgument(vec![v]))
}

/// A filter is a set: repeated values count once, so a huge list of valid
/// values cannot turn into a query with more parameters than the database
/// takes.
fn distinct<T: PartialEq>(values: Vec<T>) -> Vec<T> {
    let mut out = Vec::new();
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

fn statuses(values: &[i32]) -> Result<Vec<tickets::Status>, Error> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            sconv::status_from_proto(*v).ok_or_else(|| {
                Error::invalid(format!("statuses[{i}]"), "is not a TicketStatus value")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(distinct)
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
        let caller = customer(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let mut v = Violations::default();
        if request.client_request_id.len() > 128 {
            v.push(FieldViolation::new(
                "client_request_id",
                "must have at most 128 characters",
            ));
        } else if request.client_request_id.chars().any(char::is_control) {
            v.push(FieldViolation::new(
                "client_request_id",
                "must not contain control characters",
            ));
        }
        let category = v.check(sconv::category_from_proto(request.category).ok_or_else(|| {
            FieldViolation::new(
                "category",
                "must be a TicketCategory other than UNSPECIFIED",
            )
        }));
        let subject = v.check(tickets::check_text(
            "subject",
            &request.subject,
            tickets::MAX_SUBJECT_CHARS,
        ));
        let body = v.check(tickets::check_text(
            "body",
            &request.body,
            tickets::MAX_BODY_CHARS,
        ));
        if request.linked_event_ids.len() > tickets::MAX_LINKED_EVENTS {
            v.push(FieldViolation::new(
                "linked_event_ids",
                format!("at most {} events", tickets::MAX_LINKED_EVENTS),
            ));
        }
        let linked: Vec<_> = request
            .linked_event_ids
            .iter()
            .take(tickets::MAX_LINKED_EVENTS)
            .enumerate()
            .filter_map(|(i, raw)| v.check(parse_id(&format!("linked_event_ids[{i}]"), raw)))
            .collect();
        v.finish()?;
        let (Some(category), Some(subject), Some(body)) = (category, subject, body) else {
            return Err(Status::internal("internal error"));
        };
        let new = NewTicket {
            client_request_id: (!request.client_request_id.is_empty())
                .then_some(request.client_request_id),
            category,
            subject,
            body,
            linked_event_ids: linked,
        };
        let ticket = tickets::create_ticket(&self.ctx, caller.account_id, &client, new).await?;
        Ok(Response::new(pb::CreateTicketResponse {
            ticket: Some(sconv::ticket(&ticket, false)),
        }))
    }

    async fn create_recovery_ticket(
        &self,
        request: Request<pb::CreateRecoveryTicketRequest>,
    ) -> Reply<pb::CreateRecoveryTicketResponse> {
        let client = client_info(&request);
        let request = request.into_inner();
        let mut v = Violations::default();
        let typed = v.check(tickets::check_text(
            "login_or_email",
            &request.login_or_email,
            254,
        ));
        let contact = v.check(tickets::check_text(
            "reachable_contact",
            &request.reachable_contact,
            254,
        ));
        let description = v.check(tickets::check_text(
            "description",
            &request.description,
            tickets::MAX_BODY_CHARS,
        ));
        v.finish()?;
        let (Some(typed), Some(contact), Some(description)) = (typed, contact, description) else {
            return Err(Status::internal("internal error"));
        };
        let reference =
            tickets::create_recovery_ticket(&self.ctx, &client, &typed, &contact, &description)
                .await?;
        Ok(Response::new(pb::CreateRecoveryTicketResponse {
            ticket_reference: reference,
        }))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Reply<pb::GetTicketResponse> {
        let viewer = viewer(&request)?;
        let request = request.into_inner();
        let ticket_id = id("ticket_id", &request.ticket_id)?;
        let after = convert::page_token("page_token", &request.page_token)?;
        let page = tickets::get_ticket(
            &self.ctx,
            &viewer,
            ticket_id,
            convert::page_size(request.page_size),
            after,
        )
        .await?;
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
        let caller = customer(&request)?;
        let request = request.into_inner();
        let statuses = statuses(&request.statuses)?;
        let after = convert::page_token("page_token", &request.page_token)?;
        let (rows, next) = tickets::list_tickets(
            &self.ctx,
            caller.account_id,
            &statuses,
            convert::page_size(request.page_size),
            after,
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
        let viewer = viewer(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let mut v = Violations::default();
        let ticket_id = v.check(parse_id("ticket_id", &request.ticket_id));
        let body = v.check(tickets::check_text(
            "body",
            &request.body,
            tickets::MAX_BODY_CHARS,
        ));
        v.finish()?;
        let (Some(ticket_id), Some(body)) = (ticket_id, body) else {
            return Err(Status::internal("internal error"));
        };
        let message = tickets::add_message(
            &self.ctx,
            &viewer,
            &client,
            ticket_id,
            &body,
            request.internal_note,
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
        let caller = customer(&request)?;
        let ticket_id = id("ticket_id", &request.get_ref().ticket_id)?;
        let ticket = tickets::close_ticket(&self.ctx, caller.account_id, ticket_id).await?;
        Ok(Response::new(pb::CloseTicketResponse {
            ticket: Some(sconv::ticket(&ticket, false)),
        }))
    }

    async fn list_ticket_queue(
        &self,
        request: Request<pb::ListTicketQueueRequest>,
    ) -> Reply<pb::ListTicketQueueResponse> {
        agent(&request)?;
        let request = request.into_inner();
        let categories = request
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| {
                sconv::category_from_proto(*c).ok_or_else(|| {
                    Error::invalid(format!("categories[{i}]"), "is not a TicketCategory value")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(distinct)?;
        let assignee = line("assignee", &request.assignee, MAX_NAME_CHARS)?;
        let reference = line("reference", &request.reference, MAX_REFERENCE_CHARS)?;
        let filter = QueueFilter {
            statuses: statuses(&request.statuses)?,
            categories,
            assignee: (!assignee.is_empty()).then_some(assignee),
            unassigned_only: request.unassigned_only,
            unverified_only: request.unverified_only,
            reference: (!reference.is_empty()).then_some(reference),
        };
        let after = convert::page_token("page_token", &request.page_token)?;
        let (rows, next) = tickets::queue(
            &self.ctx,
            &filter,
            convert::page_size(request.page_size),
            after,
        )
        .await?;
        Ok(Response::new(pb::ListTicketQueueResponse {
            tickets: rows.iter().map(|t| sconv::ticket(t, true)).collect(),
            next_page_token: convert::next_page_token(next),
        }))
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Reply<pb::AssignTicketResponse> {
        let agent = agent(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let ticket_id = id("ticket_id", &request.ticket_id)?;
        let assignee = line("assignee", &request.assignee, MAX_NAME_CHARS)?;
        let assignee = (!assignee.is_empty()).then_some(assignee);
        let ticket = tickets::assign(&self.ctx, &agent, &client, ticket_id, assignee).await?;
        Ok(Response::new(pb::AssignTicketResponse {
            ticket: Some(sconv::ticket(&ticket, true)),
        }))
    }

    async fn set_ticket_status(
        &self,
        request: Request<pb::SetTicketStatusRequest>,
    ) -> Reply<pb::SetTicketStatusResponse> {
        let agent = agent(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let ticket_id = id("ticket_id", &request.ticket_id)?;
        let status = sconv::status_from_proto(request.status).ok_or_else(|| {
            Error::invalid("status", "must be a TicketStatus other than UNSPECIFIED")
        })?;
        let ticket = tickets::set_status(&self.ctx, &agent, &client, ticket_id, status).await?;
        Ok(Response::new(pb::SetTicketStatusResponse {
            ticket: Some(sconv::ticket(&ticket, true)),
        }))
    }

    async fn get_account_review(
        &self,
        request: Request<pb::GetAccountReviewRequest>,
    ) -> Reply<pb::GetAccountReviewResponse> {
        let agent = agent(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let account_id = id("account_id", &request.account_id)?;
        let ticket_id = if request.ticket_id.is_empty() {
            None
        } else {
            Some(id("ticket_id", &request.ticket_id)?)
        };
        let review = review::review(&self.ctx, &agent, &client, account_id, ticket_id).await?;
        let account = &review.status.account;
        let locale = Locale::parse(&account.locale);
        let proto_account = convert::account(account);
        let idle_ms = self.ctx.config.session.idle_ttl_secs as i64 * 1000;
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
                .map(|e| convert::security_event(e, locale))
                .collect(),
            contact_changes: review
                .contact_changes
                .iter()
                .map(convert::contact_change)
                .collect(),
            sessions: review
                .sessions
                .iter()
                .map(|s| convert::session(s, (s.last_seen_at + idle_ms).min(s.expires_at), false))
                .collect(),
            recovery_codes_remaining: review.recovery_codes_remaining.min(u64::from(u32::MAX))
                as u32,
            tickets: review
                .tickets
                .iter()
                .map(|t| sconv::ticket(t, true))
                .collect(),
            last_login_at: account.last_login_at.map(crate::clock::to_timestamp),
            consecutive_failed_logins: review.status.consecutive_failed_logins,
            login_backoff_until: review
                .status
                .login_backoff_until
                .map(crate::clock::to_timestamp),
        }))
    }

    async fn reset_totp(
        &self,
        request: Request<pb::ResetTotpRequest>,
    ) -> Reply<pb::ResetTotpResponse> {
        let agent = agent(&request)?;
        let client = client_info(&request);
        let request = request.into_inner();
        let mut v = Violations::default();
        let account_id = v.check(parse_id("account_id", &request.account_id));
        let ticket_id = v.check(parse_id("ticket_id", &request.ticket_id));
        let reason = v.check(tickets::check_text("reason", &request.reason, 2000));
        v.finish()?;
        let (Some(account_id), Some(ticket_id), Some(reason)) = (account_id, ticket_id, reason)
        else {
            return Err(Status::internal("internal error"));
        };
        let revoked =
            tickets::reset_totp(&self.ctx, &agent, &client, account_id, ticket_id, &reason).await?;
        Ok(Response::new(pb::ResetTotpResponse {
            sessions_revoked: revoked.min(u64::from(u32::MAX)) as u32,
        }))
    }
}

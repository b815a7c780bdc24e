//! The checks of `SupportService` requests.

use uuid::Uuid;

use super::{distinct, missing, one, page, required, Page, Validate};
use crate::{
    domain::{
        error::{Error, FieldViolation},
        factor_reset::{self, Method},
        support::{self as tickets, Category, NewTicket, QueueFilter, Status},
        types::{parse_id, parse_line, Violations},
    },
    grpc::convert::support as sconv,
    proto::support::v1 as spb,
};

/// Credential names have at most 64 characters; ticket references far fewer.
const MAX_NAME_CHARS: usize = 64;
const MAX_REFERENCE_CHARS: usize = 64;

fn id(field: &str, value: &str) -> Result<Uuid, Error> {
    one(parse_id(field, value))
}

/// A one-line filter or name; empty means none.
fn optional_line(field: &str, value: &str, max: usize) -> Result<Option<String>, Error> {
    let line = one(parse_line(field, value, max))?;
    Ok((!line.is_empty()).then_some(line))
}

fn statuses(values: &[i32]) -> Result<Vec<Status>, Error> {
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

fn categories(values: &[i32]) -> Result<Vec<Category>, Error> {
    values
        .iter()
        .enumerate()
        .map(|(i, c)| {
            sconv::category_from_proto(*c).ok_or_else(|| {
                Error::invalid(format!("categories[{i}]"), "is not a TicketCategory value")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(distinct)
}

impl Validate for spb::CreateTicketRequest {
    type Valid = NewTicket;
    fn validate(self, _now_ms: i64) -> Result<NewTicket, Error> {
        let mut v = Violations::default();
        if self.client_request_id.len() > 128 {
            v.push(FieldViolation::new(
                "client_request_id",
                "must have at most 128 characters",
            ));
        } else if self.client_request_id.chars().any(char::is_control) {
            v.push(FieldViolation::new(
                "client_request_id",
                "must not contain control characters",
            ));
        }
        let category = v.check(sconv::category_from_proto(self.category).ok_or_else(|| {
            FieldViolation::new(
                "category",
                "must be a TicketCategory other than UNSPECIFIED",
            )
        }));
        let subject = v.check(tickets::check_text(
            "subject",
            &self.subject,
            tickets::MAX_SUBJECT_CHARS,
        ));
        let body = v.check(tickets::check_text(
            "body",
            &self.body,
            tickets::MAX_BODY_CHARS,
        ));
        if self.linked_event_ids.len() > tickets::MAX_LINKED_EVENTS {
            v.push(FieldViolation::new(
                "linked_event_ids",
                format!("at most {} events", tickets::MAX_LINKED_EVENTS),
            ));
        }
        let linked: Vec<_> = self
            .linked_event_ids
            .iter()
            .take(tickets::MAX_LINKED_EVENTS)
            .enumerate()
            .filter_map(|(i, raw)| v.check(parse_id(&format!("linked_event_ids[{i}]"), raw)))
            .collect();
        v.finish()?;
        let (Some(category), Some(subject), Some(body)) = (category, subject, body) else {
            return Err(missing());
        };
        Ok(NewTicket {
            client_request_id: (!self.client_request_id.is_empty())
                .then_some(self.client_request_id),
            category,
            subject,
            body,
            linked_event_ids: linked,
        })
    }
}

/// `CreateRecoveryTicket`: who the customer says they are, how to reach
/// them, and what happened.
pub struct RecoveryRequest {
    pub login_or_email: String,
    pub reachable_contact: String,
    pub description: String,
}

impl Validate for spb::CreateRecoveryTicketRequest {
    type Valid = RecoveryRequest;
    fn validate(self, _now_ms: i64) -> Result<RecoveryRequest, Error> {
        let mut v = Violations::default();
        let typed = v.check(tickets::check_text(
            "login_or_email",
            &self.login_or_email,
            254,
        ));
        let contact = v.check(tickets::check_text(
            "reachable_contact",
            &self.reachable_contact,
            254,
        ));
        let description = v.check(tickets::check_text(
            "description",
            &self.description,
            tickets::MAX_BODY_CHARS,
        ));
        v.finish()?;
        let (Some(login_or_email), Some(reachable_contact), Some(description)) =
            (typed, contact, description)
        else {
            return Err(missing());
        };
        Ok(RecoveryRequest {
            login_or_email,
            reachable_contact,
            description,
        })
    }
}

impl Validate for spb::GetTicketRequest {
    type Valid = (Uuid, Page);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let ticket_id = id("ticket_id", &self.ticket_id)?;
        Ok((ticket_id, page(self.page_size, &self.page_token)?))
    }
}

impl Validate for spb::ListTicketsRequest {
    type Valid = (Vec<Status>, Page);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let statuses = statuses(&self.statuses)?;
        Ok((statuses, page(self.page_size, &self.page_token)?))
    }
}

impl Validate for spb::AddTicketMessageRequest {
    /// The ticket, the body, and whether it is an internal note.
    type Valid = (Uuid, String, bool);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let mut v = Violations::default();
        let ticket_id = v.check(parse_id("ticket_id", &self.ticket_id));
        let body = v.check(tickets::check_text(
            "body",
            &self.body,
            tickets::MAX_BODY_CHARS,
        ));
        v.finish()?;
        let (Some(ticket_id), Some(body)) = (ticket_id, body) else {
            return Err(missing());
        };
        Ok((ticket_id, body, self.internal_note))
    }
}

impl Validate for spb::CloseTicketRequest {
    type Valid = Uuid;
    fn validate(self, _now_ms: i64) -> Result<Uuid, Error> {
        id("ticket_id", &self.ticket_id)
    }
}

impl Validate for spb::ListTicketQueueRequest {
    type Valid = (QueueFilter, Page);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let categories = categories(&self.categories)?;
        if self.unassigned_only && !self.assignee.is_empty() {
            return Err(Error::invalid(
                "unassigned_only",
                "cannot be combined with assignee",
            ));
        }
        let filter = QueueFilter {
            statuses: statuses(&self.statuses)?,
            categories,
            assignee: optional_line("assignee", &self.assignee, MAX_NAME_CHARS)?,
            unassigned_only: self.unassigned_only,
            unverified_only: self.unverified_only,
            reference: optional_line("reference", &self.reference, MAX_REFERENCE_CHARS)?,
        };
        Ok((filter, page(self.page_size, &self.page_token)?))
    }
}

impl Validate for spb::AssignTicketRequest {
    /// The ticket and the agent to assign (the caller when empty).
    type Valid = (Uuid, Option<String>);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let ticket_id = id("ticket_id", &self.ticket_id)?;
        Ok((
            ticket_id,
            optional_line("assignee", &self.assignee, MAX_NAME_CHARS)?,
        ))
    }
}

impl Validate for spb::SetTicketStatusRequest {
    type Valid = (Uuid, Status);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let ticket_id = id("ticket_id", &self.ticket_id)?;
        let status = sconv::status_from_proto(self.status).ok_or_else(|| {
            Error::invalid("status", "must be a TicketStatus other than UNSPECIFIED")
        })?;
        Ok((ticket_id, status))
    }
}

impl Validate for spb::GetAccountReviewRequest {
    /// The account, and the ticket the review is for, if any.
    type Valid = (Uuid, Option<Uuid>);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let account_id = id("account_id", &self.account_id)?;
        let ticket_id = if self.ticket_id.is_empty() {
            None
        } else {
            Some(id("ticket_id", &self.ticket_id)?)
        };
        Ok((account_id, ticket_id))
    }
}

impl Validate for spb::ResetTotpRequest {
    /// The account, the ticket that verified the customer, and the reason.
    type Valid = (Uuid, Uuid, String);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let mut v = Violations::default();
        let account_id = v.check(parse_id("account_id", &self.account_id));
        let ticket_id = v.check(parse_id("ticket_id", &self.ticket_id));
        let reason = v.check(tickets::check_text("reason", &self.reason, 2000));
        v.finish()?;
        let (Some(account_id), Some(ticket_id), Some(reason)) = (account_id, ticket_id, reason)
        else {
            return Err(missing());
        };
        Ok((account_id, ticket_id, reason))
    }
}

impl Validate for spb::VerifyTicketIdentityRequest {
    /// The ticket, the method and the evidence reference.
    type Valid = (Uuid, Method, String);
    fn validate(self, _now_ms: i64) -> Result<Self::Valid, Error> {
        let mut v = Violations::default();
        let ticket_id = v.check(parse_id("ticket_id", &self.ticket_id));
        let method = v.check(sconv::method_from_proto(self.method).ok_or_else(|| {
            FieldViolation::new(
                "method",
                "must be an IdentityVerificationMethod other than UNSPECIFIED",
            )
        }));
        let evidence = v.check(
            parse_line(
                "evidence_reference",
                &self.evidence_reference,
                factor_reset::MAX_EVIDENCE_REFERENCE_CHARS,
            )
            .and_then(|line| {
                if line.is_empty() {
                    Err(FieldViolation::new("evidence_reference", "is required"))
                } else {
                    Ok(line)
                }
            }),
        );
        v.finish()?;
        let (Some(ticket_id), Some(method), Some(evidence)) = (ticket_id, method, evidence) else {
            return Err(missing());
        };
        Ok((ticket_id, method, evidence))
    }
}

impl Validate for spb::CancelFactorResetRequest {
    /// The cancel token.
    type Valid = String;
    fn validate(self, _now_ms: i64) -> Result<String, Error> {
        required("cancel_token", &self.cancel_token)?;
        Ok(self.cancel_token)
    }
}

//! Support tickets: customers open and follow them, anyone can open an
//! unverified recovery ticket without logging in, and agents work the queue
//! and review accounts (2FA resets after a verified identity live in
//! `factor_reset`). Every agent action on an account leaves a security event
//! its customer sees.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::{
    deps::{Db, Mailing},
    error::{Error, FieldViolation, Result},
    events::{self, EventKind},
    principal::{Actor, ActorKind, ClientInfo},
    records::{Ticket, TicketMessage},
    types::Locale,
};
mod queue;

use queue::agent_action;
pub(super) use queue::post_system_message;
pub use queue::{assign, close_ticket, queue, set_status, QueueFilter};

use crate::{
    clock::Millis,
    crypto::totp,
    entity::{ticket, ticket_message},
    mail::{outbox, Mail},
    store,
};

pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 10_000;
pub const MAX_LINKED_EVENTS: usize = 20;
pub const MAX_MESSAGES: i32 = 500;

pub use super::records::{Category, Status};

/// Who reads or writes a ticket.
#[derive(Debug, Clone)]
pub enum Viewer {
    Customer(Uuid),
    Agent(String),
}

impl Viewer {
    pub(super) fn actor(&self) -> Actor {
        match self {
            Viewer::Customer(_) => Actor::customer(),
            Viewer::Agent(name) => Actor {
                kind: ActorKind::SupportAgent,
                name: Some(name.clone()),
            },
        }
    }
}

pub struct NewTicket {
    pub client_request_id: Option<String>,
    pub category: Category,
    pub subject: String,
    pub body: String,
    pub linked_event_ids: Vec<Uuid>,
}

/// Checks subject and body lengths, naming the field.
pub fn check_text(
    field: &str,
    value: &str,
    max: usize,
) -> std::result::Result<String, FieldViolation> {
    let value = super::types::parse_text(field, value, max)?;
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Ok(value)
}

fn new_reference() -> String {
    use rand::{rngs::OsRng, RngCore};
    let mut bytes = [0u8; 5];
    OsRng.fill_bytes(&mut bytes);
    format!("T-{}", totp::to_base32(&bytes))
}

fn unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn create_ticket(
    ctx: &impl Db,
    now: Millis,
    account_id: Uuid,
    client: &ClientInfo,
    new: NewTicket,
) -> Result<Ticket> {
    Ok(Ticket::from(
        &open_ticket(ctx, now, account_id, client, new).await?,
    ))
}

async fn open_ticket(
    ctx: &impl Db,
    now: Millis,
    account_id: Uuid,
    client: &ClientInfo,
    new: NewTicket,
) -> Result<ticket::Model> {
    if let Some(existing) =
        find_by_request_id(ctx.db(), account_id, new.client_request_id.as_deref()).await?
    {
        return Ok(existing);
    }
    if !new.linked_event_ids.is_empty() {
        let own =
            store::events::of_account_among(ctx.db(), account_id, new.linked_event_ids.clone())
                .await?;
        if let Some((index, _)) = new
            .linked_event_ids
            .iter()
            .enumerate()
            .find(|(_, id)| !own.iter().any(|e| e.id == **id))
        {
            return Err(Error::invalid(
                format!("linked_event_ids[{index}]"),
                "is not one of your security events",
            ));
        }
    }
    let priority = if new.category == Category::SecurityVerification {
        "high"
    } else {
        "normal"
    };
    let model = ticket::Model {
        id: Uuid::now_v7(),
        reference: new_reference(),
        account_id: Some(account_id),
        category: new.category.as_str().into(),
        status: Status::Open.as_str().into(),
        priority: priority.into(),
        subject: new.subject,
        created_at: now,
        updated_at: now,
        assignee: None,
        linked_event_ids: serde_json::to_string(
            &new.linked_event_ids
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>(),
        )
        .map_err(Error::internal)?,
        unverified: false,
        client_request_id: new.client_request_id.clone(),
        recovery_login_or_email: None,
        recovery_reachable_contact: None,
        client_address: client.address.clone(),
        message_count: 1,
        public_message_count: 1,
    };
    let txn = ctx.begin_write().await?;
    if let Err(error) = store::tickets::insert(&txn, model.clone()).await {
        drop(txn);
        if unique_violation(&error) {
            // A concurrent retry with the same request id won.
            if let Some(existing) =
                find_by_request_id(ctx.db(), account_id, new.client_request_id.as_deref()).await?
            {
                return Ok(existing);
            }
        }
        return Err(error.into());
    }
    insert_message(&txn, model.id, &Actor::customer(), &new.body, false, now).await?;
    events::record(
        &txn,
        now,
        account_id,
        EventKind::TicketCreated,
        &Actor::customer(),
        client,
        serde_json::json!({ "ticket_id": model.id.to_string(), "reference": model.reference }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Opens a high-priority security-verification ticket about `event_id`, in
/// the caller's transaction (a "this wasn't me" report).
pub async fn open_dispute_ticket<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    event_id: Option<Uuid>,
    subject: &str,
    body: &str,
    client: &ClientInfo,
    now: i64,
) -> Result<ticket::Model> {
    let linked: Vec<String> = event_id.iter().map(Uuid::to_string).collect();
    let model = ticket::Model {
        id: Uuid::now_v7(),
        reference: new_reference(),
        account_id: Some(account_id),
        category: Category::SecurityVerification.as_str().into(),
        status: Status::Open.as_str().into(),
        priority: "high".into(),
        subject: subject.chars().take(MAX_SUBJECT_CHARS).collect(),
        created_at: now,
        updated_at: now,
        assignee: None,
        linked_event_ids: serde_json::to_string(&linked).map_err(Error::internal)?,
        unverified: false,
        client_request_id: None,
        recovery_login_or_email: None,
        recovery_reachable_contact: None,
        client_address: client.address.clone(),
        message_count: 1,
        public_message_count: 1,
    };
    store::tickets::insert(conn, model.clone()).await?;
    insert_message(conn, model.id, &Actor::customer(), body, false, now).await?;
    Ok(model)
}

async fn find_by_request_id(
    db: &DatabaseConnection,
    account_id: Uuid,
    request_id: Option<&str>,
) -> Result<Option<ticket::Model>> {
    let Some(request_id) = request_id else {
        return Ok(None);
    };
    Ok(store::tickets::by_request_id(db, account_id, request_id).await?)
}

/// A recovery ticket without login. The requester learns only a reference,
/// the same whether or not an account matched.
#[tracing::instrument(skip_all)]
pub async fn create_recovery_ticket(
    db: &DatabaseConnection,
    now: Millis,
    client: &ClientInfo,
    login_or_email: &str,
    reachable_contact: &str,
    description: &str,
) -> Result<String> {
    let typed = login_or_email.trim().to_lowercase();
    // A recovery ticket is linked only to a single match: a third is never needed.
    let matches = store::accounts::matching(db, &typed, typed.contains('@'), Some(2)).await?;
    // Linked only when exactly one account matches; the agent sees what was typed.
    let account_id = match matches.as_slice() {
        [only] => Some(only.id),
        _ => None,
    };
    let model = ticket::Model {
        id: Uuid::now_v7(),
        reference: new_reference(),
        account_id,
        category: Category::SecurityVerification.as_str().into(),
        status: Status::Open.as_str().into(),
        priority: "high".into(),
        subject: "Account recovery request".into(),
        created_at: now,
        updated_at: now,
        assignee: None,
        linked_event_ids: "[]".into(),
        unverified: true,
        client_request_id: None,
        recovery_login_or_email: Some(login_or_email.trim().to_string()),
        recovery_reachable_contact: Some(reachable_contact.trim().to_string()),
        client_address: client.address.clone(),
        message_count: 1,
        public_message_count: 1,
    };
    let txn = crate::store::db::begin_write(db).await?;
    store::tickets::insert(&txn, model.clone()).await?;
    insert_message(&txn, model.id, &Actor::system(), description, false, now).await?;
    txn.commit().await?;
    tracing::info!(ticket_id = %model.id, matched = account_id.is_some(), "recovery ticket opened");
    Ok(model.reference)
}

async fn insert_message<C: ConnectionTrait>(
    conn: &C,
    ticket_id: Uuid,
    author: &Actor,
    body: &str,
    internal: bool,
    now: i64,
) -> Result<ticket_message::Model> {
    let model = ticket_message::Model {
        id: Uuid::now_v7(),
        ticket_id,
        author_kind: author.kind.as_str().into(),
        author_name: author.name.clone(),
        body: body.to_string(),
        internal_note: internal,
        created_at: now,
    };
    store::tickets::insert_message(conn, model.clone()).await?;
    Ok(model)
}

/// The ticket if the viewer may see it; another customer's ticket (or an
/// unverified one) is `NotFound`, never revealed.
pub async fn visible_ticket<C: ConnectionTrait>(
    conn: &C,
    viewer: &Viewer,
    ticket_id: Uuid,
) -> Result<ticket::Model> {
    let found = store::tickets::by_id(conn, ticket_id)
        .await?
        .ok_or(Error::NotFound("ticket"))?;
    match viewer {
        Viewer::Agent(_) => Ok(found),
        Viewer::Customer(account_id)
            if found.account_id == Some(*account_id) && !found.unverified =>
        {
            Ok(found)
        }
        Viewer::Customer(_) => Err(Error::NotFound("ticket")),
    }
}

pub struct TicketPage {
    pub ticket: Ticket,
    pub messages: Vec<TicketMessage>,
    pub next: Option<Uuid>,
}

pub async fn get_ticket(
    db: &DatabaseConnection,
    viewer: &Viewer,
    ticket_id: Uuid,
    page_size: u64,
    after: Option<Uuid>,
) -> Result<TicketPage> {
    let ticket = visible_ticket(db, viewer, ticket_id).await?;
    let with_internal = !matches!(viewer, Viewer::Customer(_));
    let rows = store::tickets::messages(db, ticket.id, with_internal, after, page_size + 1).await?;
    let (messages, next) = super::page(rows, page_size, |m| m.id);
    Ok(TicketPage {
        ticket: Ticket::from(&ticket),
        messages: messages.iter().map(TicketMessage::from).collect(),
        next,
    })
}

/// The customer's own tickets, newest first.
pub async fn list_tickets(
    db: &DatabaseConnection,
    account_id: Uuid,
    statuses: &[Status],
    page_size: u64,
    after: Option<Uuid>,
) -> Result<(Vec<Ticket>, Option<Uuid>)> {
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let rows = store::tickets::of_account(db, account_id, &statuses, after, page_size + 1).await?;
    Ok(tickets_page(rows, page_size))
}

/// A page of tickets read from `page_size + 1` rows.
fn tickets_page(rows: Vec<ticket::Model>, page_size: u64) -> (Vec<Ticket>, Option<Uuid>) {
    let (rows, next) = super::page(rows, page_size, |t| t.id);
    (rows.iter().map(Ticket::from).collect(), next)
}

#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id))]
pub async fn add_message(
    ctx: &(impl Db + Mailing),
    now: Millis,
    viewer: &Viewer,
    client: &ClientInfo,
    ticket_id: Uuid,
    body: &str,
    internal_note: bool,
) -> Result<TicketMessage> {
    if internal_note && matches!(viewer, Viewer::Customer(_)) {
        return Err(Error::PermissionDenied(
            "only agents write internal notes".into(),
        ));
    }
    let txn = ctx.begin_write().await?;
    let found = visible_ticket(&txn, viewer, ticket_id).await?;
    if found.status == Status::Closed.as_str() {
        return Err(Error::InvalidStateTransition("the ticket is closed".into()));
    }
    let status = match (viewer, Status::parse(&found.status)) {
        (Viewer::Customer(_), Some(Status::PendingCustomer | Status::Resolved)) => {
            Status::PendingAgent.as_str()
        }
        _ => found.status.as_str(),
    };
    let counted =
        store::tickets::count_message(&txn, found.id, !internal_note, status, MAX_MESSAGES, now)
            .await?;
    if !counted {
        return Err(Error::invalid(
            "ticket_id",
            format!("the ticket has reached {MAX_MESSAGES} messages or was closed"),
        ));
    }
    let actor = viewer.actor();
    let message = insert_message(&txn, found.id, &actor, body, internal_note, now).await?;
    if let (Viewer::Agent(_), false) = (viewer, internal_note) {
        agent_action(
            &txn,
            ctx,
            &found,
            &actor,
            client,
            "replied",
            Some(Mail::TicketReply {
                reference: found.reference.clone(),
                subject: found.subject.clone(),
            }),
            now,
        )
        .await?;
    }
    super::notices::commit(txn, ctx).await?;
    Ok(TicketMessage::from(&message))
}

//! The agents' side of tickets: the queue, assignment, status changes and
//! closing, each leaving a system message and, on an account, a security
//! event its customer sees.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::*;
use crate::domain::deps::{Db, Mailing, Sealing, Settings};

pub struct QueueFilter {
    /// Empty means every status but `Resolved` and `Closed`.
    pub statuses: Vec<Status>,
    pub categories: Vec<Category>,
    pub assignee: Option<String>,
    pub unassigned_only: bool,
    pub unverified_only: bool,
    pub reference: Option<String>,
}

/// The agents' queue, oldest first.
pub async fn queue(
    db: &DatabaseConnection,
    filter: &QueueFilter,
    page_size: u64,
    after: Option<Uuid>,
) -> Result<(Vec<Ticket>, Option<Uuid>)> {
    let excluded_statuses = if filter.statuses.is_empty() {
        vec![Status::Resolved.as_str(), Status::Closed.as_str()]
    } else {
        Vec::new()
    };
    let query = store::tickets::Queue {
        statuses: filter.statuses.iter().map(|s| s.as_str()).collect(),
        excluded_statuses,
        categories: filter.categories.iter().map(|c| c.as_str()).collect(),
        assignee: filter.assignee.as_deref(),
        unassigned_only: filter.unassigned_only,
        unverified_only: filter.unverified_only,
        reference: filter.reference.as_deref(),
    };
    let rows = store::tickets::queue(db, &query, after, page_size + 1).await?;
    Ok(tickets_page(rows, page_size))
}

/// Records an agent's action on an account's ticket (event, and e-mail when given).
#[allow(clippy::too_many_arguments)]
pub(super) async fn agent_action<C: ConnectionTrait>(
    conn: &C,
    ctx: &(impl Settings + Sealing),
    found: &ticket::Model,
    actor: &Actor,
    client: &ClientInfo,
    action: &str,
    mail: Option<Mail>,
    now: i64,
) -> Result<()> {
    let (Some(account_id), false) = (found.account_id, found.unverified) else {
        return Ok(());
    };
    events::record(
        conn,
        now,
        account_id,
        EventKind::SupportAction,
        actor,
        client,
        serde_json::json!({ "ticket_id": found.id.to_string(), "reference": found.reference, "action": action }),
    )
    .await?;
    if let Some(mail) = mail {
        if let Some(account) = store::accounts::by_id(conn, account_id).await? {
            outbox::enqueue(
                conn,
                &ctx.config().mail,
                ctx.sealer(),
                now,
                Some(account.id),
                &account.email,
                Locale::parse(&account.locale),
                &mail,
            )
            .await?;
        }
    }
    Ok(())
}

/// The customer closes their ticket; closing a closed ticket succeeds.
pub async fn close_ticket(
    db: &DatabaseConnection,
    now: Millis,
    account_id: Uuid,
    ticket_id: Uuid,
) -> Result<Ticket> {
    let viewer = Viewer::Customer(account_id);
    let found = visible_ticket(db, &viewer, ticket_id).await?;
    // Closing a closed ticket changes nothing and succeeds.
    store::tickets::close(db, found.id, now).await?;
    Ok(Ticket::from(&visible_ticket(db, &viewer, ticket_id).await?))
}

#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id))]
pub async fn assign(
    ctx: &(impl Db + Settings + Sealing),
    now: Millis,
    agent: &str,
    client: &ClientInfo,
    ticket_id: Uuid,
    assignee: Option<String>,
) -> Result<Ticket> {
    let assignee = assignee.unwrap_or_else(|| agent.to_string());
    // Names are unique: the credential named so, if it is a live agent's.
    let known = store::credentials::by_name(ctx.db(), &assignee)
        .await?
        .filter(|c| c.role == "agent" && c.revoked_at.is_none());
    if known.is_none() {
        return Err(Error::invalid("assignee", "is not an active agent"));
    }
    let viewer = Viewer::Agent(agent.to_string());
    let txn = ctx.begin_write().await?;
    let changed = store::tickets::assign(&txn, ticket_id, &assignee, now).await?;
    let found = visible_ticket(&txn, &viewer, ticket_id).await?;
    if !changed {
        return Err(Error::InvalidStateTransition("the ticket is closed".into()));
    }
    agent_action(
        &txn,
        ctx,
        &found,
        &viewer.actor(),
        client,
        "assigned",
        None,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Ticket::from(&found))
}

#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, status = status.as_str()))]
pub async fn set_status(
    ctx: &(impl Db + Mailing),
    now: Millis,
    agent: &str,
    client: &ClientInfo,
    ticket_id: Uuid,
    status: Status,
) -> Result<Ticket> {
    let viewer = Viewer::Agent(agent.to_string());
    let found = visible_ticket(ctx.db(), &viewer, ticket_id).await?;
    if found.status == status.as_str() {
        return Ok(Ticket::from(&found));
    }
    if status == Status::Open || found.status == Status::Closed.as_str() {
        return Err(Error::InvalidStateTransition(format!(
            "a ticket cannot go from {} to {}",
            found.status,
            status.as_str()
        )));
    }
    let txn = ctx.begin_write().await?;
    if !store::tickets::set_status(&txn, found.id, &found.status, status.as_str(), now).await? {
        return Err(Error::InvalidStateTransition(
            "the ticket changed meanwhile; read it again".into(),
        ));
    }
    let mail = (status == Status::Resolved).then(|| Mail::TicketResolved {
        reference: found.reference.clone(),
        subject: found.subject.clone(),
    });
    agent_action(
        &txn,
        ctx,
        &found,
        &viewer.actor(),
        client,
        status.as_str(),
        mail,
        now,
    )
    .await?;
    crate::domain::notices::commit(txn, ctx).await?;
    Ok(Ticket::from(
        &visible_ticket(ctx.db(), &viewer, ticket_id).await?,
    ))
}

/// Adds a system message the customer sees to a ticket, in the caller's
/// transaction, and counts it.
pub(crate) async fn post_system_message<C: ConnectionTrait>(
    conn: &C,
    ticket_id: Uuid,
    body: &str,
    now: i64,
) -> Result<()> {
    insert_message(conn, ticket_id, &Actor::system(), body, false, now).await?;
    store::tickets::count_system_message(conn, ticket_id, now).await?;
    Ok(())
}

//! `GetAccountReview`: everything an agent needs to verify a customer, in
//! one answer. The review itself is recorded in the customer's journal.

use uuid::Uuid;

use super::{
    accounts::{self, AccountSelector, AccountStatus},
    deps::{Db, Settings},
    error::Result,
    events::{self, EventKind},
    principal::{Actor, ActorKind, ClientInfo},
    records::{ContactChange, Event, FactorReset, Session, Suspension, Ticket},
    two_factor,
};
use crate::{clock::Millis, store};

pub struct Review {
    pub status: AccountStatus,
    pub suspensions: Vec<Suspension>,
    pub recent_events: Vec<Event>,
    pub sessions: Vec<Session>,
    pub recovery_codes_remaining: u64,
    pub tickets: Vec<Ticket>,
    pub contacts: super::contacts::ContactView,
    pub contact_changes: Vec<ContactChange>,
    pub pending_factor_reset: Option<FactorReset>,
}

#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn review(
    ctx: &(impl Db + Settings),
    now: Millis,
    agent: &str,
    client: &ClientInfo,
    account_id: Uuid,
    ticket_id: Option<Uuid>,
) -> Result<Review> {
    let status = accounts::status(ctx, &AccountSelector::Id(account_id), now).await?;
    let actor = Actor {
        kind: ActorKind::SupportAgent,
        name: Some(agent.to_string()),
    };
    events::record(
        ctx.db(),
        now,
        account_id,
        EventKind::SupportAccountReviewed,
        &actor,
        client,
        serde_json::json!({ "ticket_id": ticket_id.map(|id| id.to_string()) }),
    )
    .await?;
    let idle_ms = ctx.config().session.idle_ttl_secs as i64 * 1000;
    let suspensions = store::suspensions::recent(ctx.db(), account_id, 50).await?;
    let recent_events =
        store::events::list(ctx.db(), account_id, &Default::default(), 100, None).await?;
    let sessions =
        store::sessions::live_of_account(ctx.db(), account_id, now, now - idle_ms, 50, None)
            .await?;
    let tickets = store::tickets::recent_of_account(ctx.db(), account_id, 50).await?;
    let recovery_codes_remaining = two_factor::recovery_codes_left(ctx.db(), account_id).await?;
    let contacts = super::contacts::get(ctx.db(), account_id, now).await?;
    let (contact_changes, _) = super::contacts::changes(ctx.db(), account_id, 100, None).await?;
    let pending_factor_reset = super::factor_reset::pending(ctx.db(), account_id).await?;
    Ok(Review {
        pending_factor_reset,
        contacts,
        contact_changes,
        status,
        suspensions: suspensions.iter().map(Suspension::from).collect(),
        recent_events: recent_events.iter().map(Event::from).collect(),
        sessions: sessions
            .iter()
            .map(|row| Session::new(row, idle_ms))
            .collect(),
        recovery_codes_remaining,
        tickets: tickets.iter().map(Ticket::from).collect(),
    })
}

//! `GetAccountReview`: everything an agent needs to verify a customer, in
//! one answer. The review itself is recorded in the customer's journal.

use uuid::Uuid;

use super::{
    accounts::{self, AccountSelector, AccountStatus},
    error::Result,
    events::{self, EventKind},
    principal::{Actor, ActorKind, ClientInfo},
    two_factor, Context,
};
use crate::{
    entity::{security_event, session, suspension, ticket},
    store,
};

pub struct Review {
    pub status: AccountStatus,
    pub suspensions: Vec<suspension::Model>,
    pub recent_events: Vec<security_event::Model>,
    pub sessions: Vec<session::Model>,
    pub recovery_codes_remaining: u64,
    pub tickets: Vec<ticket::Model>,
    pub contacts: super::contacts::ContactView,
    pub contact_changes: Vec<crate::entity::contact_change::Model>,
    pub pending_factor_reset: Option<super::factor_reset::Scheduled>,
}

#[tracing::instrument(skip_all, fields(account_id = %account_id))]
pub async fn review(
    ctx: &Context,
    agent: &str,
    client: &ClientInfo,
    account_id: Uuid,
    ticket_id: Option<Uuid>,
) -> Result<Review> {
    let now = ctx.now();
    let status = accounts::status(ctx, &AccountSelector::Id(account_id), now).await?;
    let actor = Actor {
        kind: ActorKind::SupportAgent,
        name: Some(agent.to_string()),
    };
    events::record(
        &ctx.db,
        now,
        account_id,
        EventKind::SupportAccountReviewed,
        &actor,
        client,
        serde_json::json!({ "ticket_id": ticket_id.map(|id| id.to_string()) }),
    )
    .await?;
    let idle_ms = ctx.config.session.idle_ttl_secs as i64 * 1000;
    let suspensions = store::suspensions::recent(&ctx.db, account_id, 50).await?;
    let recent_events =
        store::events::list(&ctx.db, account_id, &Default::default(), 100, None).await?;
    let sessions =
        store::sessions::live_of_account(&ctx.db, account_id, now, now - idle_ms, 50, None).await?;
    let tickets = store::tickets::recent_of_account(&ctx.db, account_id, 50).await?;
    let recovery_codes_remaining = two_factor::recovery_codes_left(&ctx.db, account_id).await?;
    let contacts = super::contacts::get(ctx, account_id, now).await?;
    let (contact_changes, _) = super::contacts::changes(ctx, account_id, 100, None).await?;
    let pending_factor_reset = super::factor_reset::pending(&ctx.db, account_id).await?;
    Ok(Review {
        pending_factor_reset,
        contacts,
        contact_changes,
        status,
        suspensions,
        recent_events,
        sessions,
        recovery_codes_remaining,
        tickets,
    })
}

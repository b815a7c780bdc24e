//! The `outbox` rows: their states and the queue as all instances see it.

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use crate::entity::outbox;

pub const PENDING: &str = "pending";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// The queue as the database sees it (all instances together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Messages waiting or being delivered.
    pub queued: u64,
    /// Messages given up on, waiting for `gardien outbox retry`.
    pub failed: u64,
    /// Age of the oldest waiting message, in milliseconds (0 when none).
    pub oldest_pending_age_ms: i64,
}

pub async fn depth<C: ConnectionTrait>(conn: &C, now: i64) -> Result<OutboxDepth, sea_orm::DbErr> {
    let waiting = || outbox::Column::Status.is_in([PENDING, SENDING]);
    let queued = outbox::Entity::find().filter(waiting()).count(conn).await?;
    let failed = outbox::Entity::find()
        .filter(outbox::Column::Status.eq(FAILED))
        .count(conn)
        .await?;
    let oldest: Option<Option<i64>> = outbox::Entity::find()
        .select_only()
        .column_as(Expr::col(outbox::Column::CreatedAt).min(), "oldest")
        .filter(waiting())
        .into_tuple()
        .one(conn)
        .await?;
    let oldest_pending_age_ms = oldest
        .flatten()
        .map_or(0, |created| std::cmp::max(now.saturating_sub(created), 0));
    Ok(OutboxDepth {
        queued,
        failed,
        oldest_pending_age_ms,
    })
}

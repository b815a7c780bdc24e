//! What the outbox tells the metrics endpoint: counters kept by the worker
//! and the queue's depth and age, read from the database.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::outbox::{FAILED, PENDING, SENDING};
use crate::entity::outbox;

/// Counters since start-up, shared by the worker and the metrics exporter.
#[derive(Debug, Default)]
pub struct OutboxMetrics {
    /// Delivery attempts, successful or not.
    pub attempts: AtomicU64,
    /// Messages accepted by the transport.
    pub delivered: AtomicU64,
    /// Failed attempts (each one, transient or permanent).
    pub failures: AtomicU64,
    /// Messages given up on (permanent rejection or attempts exhausted).
    pub abandoned: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounters {
    pub attempts: u64,
    pub delivered: u64,
    pub failures: u64,
    pub abandoned: u64,
}

impl OutboxMetrics {
    pub fn snapshot(&self) -> OutboxCounters {
        OutboxCounters {
            attempts: self.attempts.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

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

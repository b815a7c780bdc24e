//! The operator's view of the outbox (`gardien outbox list|retry`): which
//! messages wait or failed, and putting failed ones back in the queue.
//! Never shows a body: it may hold a reset link.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::outbox::{FAILED, PENDING, SENDING, SENT};
use crate::store;

pub const STATUSES: [&str; 4] = [PENDING, SENDING, SENT, FAILED];

/// One outbox row without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub last_error: Option<String>,
}

/// Messages with `status` (or every unsent one), oldest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    status: Option<&str>,
    limit: u64,
) -> Result<Vec<Entry>, sea_orm::DbErr> {
    let rows = store::outbox::list(conn, status, limit).await?;
    Ok(rows
        .into_iter()
        .map(|row| Entry {
            id: row.id,
            kind: row.kind,
            recipient: row.recipient,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            last_error: row.last_error,
        })
        .collect())
}

/// Puts failed messages back in the queue, due now, with a fresh budget of
/// attempts (`last_error` stays until the next attempt). `None` retries
/// every failed message. Returns how many were requeued.
pub async fn retry<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    id: Option<Uuid>,
) -> Result<u64, sea_orm::DbErr> {
    store::outbox::requeue_failed(conn, now, id).await
}

//! The `outbox` rows: their states, the workers' claims (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, a compare-and-set on SQLite), the operator's list
//! and retry, and the queue as all instances see it.

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

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

/// Writes a new message row, every column as given; in the caller's
/// transaction, so it commits with the state change it reports.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: outbox::Model) -> Result<(), DbErr> {
    outbox::Entity::insert(outbox::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Deletes the still-pending messages of `kinds` for `recipient` about
/// `account_id` (rows a worker has claimed are left alone); answers how many.
pub async fn delete_pending<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    recipient: &str,
    kinds: &[&str],
) -> Result<u64, DbErr> {
    Ok(outbox::Entity::delete_many()
        .filter(outbox::Column::AccountId.eq(account_id))
        .filter(outbox::Column::Recipient.eq(recipient))
        .filter(outbox::Column::Kind.is_in(kinds.iter().copied()))
        .filter(outbox::Column::Status.eq(PENDING))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Claims up to `limit` due rows (pending and due at `now`, or sending with
/// a lease run out), earliest due first: each becomes `sending`, leased until
/// `lease_until`, one attempt more. Answers the claimed rows as they now are;
/// a row is claimed by exactly one caller, whatever the number of instances.
pub async fn claim_due<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    lease_until: i64,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    match conn.get_database_backend() {
        DbBackend::Postgres => claim_skip_locked(conn, now, lease_until, limit).await,
        _ => claim_compare_and_set(conn, now, lease_until, limit).await,
    }
}

/// PostgreSQL: one statement locks, leases and returns a batch; rows
/// another worker holds locked are skipped instead of waited for, so
/// several instances drain the outbox side by side.
async fn claim_skip_locked<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    lease_until: i64,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    let sql = format!(
        "UPDATE outbox SET status = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM outbox \
             WHERE (status = $3 AND next_attempt_at <= $4) \
                OR (status = $1 AND lease_until < $4) \
             ORDER BY next_attempt_at LIMIT {limit} FOR UPDATE SKIP LOCKED) \
         RETURNING *"
    );
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [
            SENDING.into(),
            lease_until.into(),
            PENDING.into(),
            now.into(),
        ],
    );
    outbox::Entity::find()
        .from_raw_sql(statement)
        .all(conn)
        .await
}

/// SQLite (one writer at a time): read the due rows, then take each
/// with a compare-and-set (same status, same attempts) so that only one
/// worker wins it.
async fn claim_compare_and_set<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    lease_until: i64,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    let due = outbox::Entity::find()
        .filter(
            Condition::any()
                .add(
                    outbox::Column::Status
                        .eq(PENDING)
                        .and(outbox::Column::NextAttemptAt.lte(now)),
                )
                .add(
                    outbox::Column::Status
                        .eq(SENDING)
                        .and(outbox::Column::LeaseUntil.lt(now)),
                ),
        )
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(limit)
        .all(conn)
        .await?;
    let mut claimed = Vec::with_capacity(due.len());
    for row in due {
        let result = outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(SENDING))
            .col_expr(outbox::Column::LeaseUntil, Expr::value(lease_until))
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::Status.eq(row.status.clone()))
            .filter(outbox::Column::Attempts.eq(row.attempts))
            .exec(conn)
            .await?;
        if result.rows_affected == 1 {
            claimed.push(outbox::Model {
                status: SENDING.to_string(),
                lease_until: Some(lease_until),
                attempts: row.attempts + 1,
                ..row
            });
        }
    }
    Ok(claimed)
}

/// Marks row `id` sent at `sent_at` and drops its body and sealed secrets
/// (they may hold a reset link), only while the claim made at `attempts` is
/// still the row's (no one re-leased it); answers how many rows changed.
pub async fn mark_sent<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
    sent_at: i64,
) -> Result<u64, DbErr> {
    Ok(outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(SENT))
        .col_expr(outbox::Column::SentAt, Expr::value(sent_at))
        .col_expr(outbox::Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(outbox::Column::BodyText, Expr::value(""))
        .col_expr(
            outbox::Column::BodyHtml,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::SecretSealed,
            Expr::value(Option::<String>::None),
        )
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::Attempts.eq(attempts))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Releases row `id` after a failed delivery: back to pending, due at
/// `next_attempt_at`, or failed when `give_up`; `last_error` is kept to its
/// first 1000 characters. Only while the claim made at `attempts` is still
/// the row's (no one re-leased it); answers how many rows changed.
pub async fn release_failed_attempt<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
    give_up: bool,
    next_attempt_at: i64,
    last_error: &str,
) -> Result<u64, DbErr> {
    Ok(outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Status,
            Expr::value(if give_up { FAILED } else { PENDING }),
        )
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(outbox::Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(
            outbox::Column::LastError,
            Expr::value(last_error.chars().take(1000).collect::<String>()),
        )
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::Attempts.eq(attempts))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Up to `limit` rows with `status` (or every unsent one when `None`),
/// oldest first, for the operator's `gardien outbox list`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    status: Option<&str>,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    let query = match status {
        Some(status) => outbox::Entity::find().filter(outbox::Column::Status.eq(status)),
        None => outbox::Entity::find().filter(outbox::Column::Status.ne(SENT)),
    };
    query
        .order_by_asc(outbox::Column::CreatedAt)
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Puts failed rows (only row `id`, or all when `None`) back in the queue,
/// due at `now`, with no attempt counted and no lease; `last_error` stays.
/// Answers how many were requeued.
pub async fn requeue_failed<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    id: Option<Uuid>,
) -> Result<u64, DbErr> {
    let mut update = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(PENDING))
        .col_expr(outbox::Column::Attempts, Expr::value(0))
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(now))
        .col_expr(outbox::Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .filter(outbox::Column::Status.eq(FAILED));
    if let Some(id) = id {
        update = update.filter(outbox::Column::Id.eq(id));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

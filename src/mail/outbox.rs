//! The transactional outbox: `enqueue` writes the message in the caller's
//! transaction; the [`Worker`] claims due rows with a lease, delivers them
//! and marks them sent (dropping the body, which may hold a reset link).
//! A row whose worker died is claimed again once its lease has passed.
//! Several instances may run workers on one database: a row is claimed by
//! exactly one of them (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a
//! compare-and-set on SQLite).

use std::{sync::Arc, time::Duration};

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{templates, transport::Transport, Mail};
use crate::{clock::SharedClock, config::MailConfig, domain::types::Locale, entity::outbox};

pub const PENDING: &str = "pending";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// How long a claimed row belongs to its worker.
const LEASE_MS: i64 = 60_000;
const MAX_ATTEMPTS: i32 = 10;
const BATCH: u64 = 32;

/// Renders `mail` and queues it in the caller's transaction.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    config: &MailConfig,
    now: i64,
    account_id: Option<Uuid>,
    recipient: &str,
    locale: Locale,
    mail: &Mail,
) -> Result<Uuid, sea_orm::DbErr> {
    let rendered = templates::render(mail, locale, config);
    let id = Uuid::now_v7();
    outbox::Entity::insert(outbox::ActiveModel {
        id: Set(id),
        account_id: Set(account_id),
        kind: Set(mail.kind().to_string()),
        recipient: Set(recipient.to_string()),
        locale: Set(locale.as_str().to_string()),
        subject: Set(rendered.subject),
        body_text: Set(rendered.text),
        body_html: Set(None),
        status: Set(PENDING.to_string()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        lease_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(id)
}

/// Delivers queued e-mail in the background.
pub struct Worker {
    pub db: DatabaseConnection,
    pub clock: SharedClock,
    pub config: MailConfig,
    pub transport: Transport,
    pub signal: Arc<tokio::sync::Notify>,
}

impl Worker {
    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        let poll = Duration::from_millis(std::cmp::max(self.config.poll_interval_ms, 10));
        loop {
            match self.drain_once().await {
                Ok(0) | Err(_) => {}
                Ok(_) => continue,
            }
            tokio::select! {
                _ = self.signal.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Claims and delivers one batch of due rows; returns how many were sent.
    pub async fn drain_once(&self) -> Result<usize, sea_orm::DbErr> {
        let now = self.clock.now_ms();
        let claimed = match self.db.get_database_backend() {
            DbBackend::Postgres => self.claim_skip_locked(now).await,
            _ => self.claim_compare_and_set(now).await,
        }
        .inspect_err(|error| tracing::warn!(%error, "outbox: cannot claim due messages"))?;
        let mut sent = 0;
        for row in claimed {
            match self.transport.deliver(&self.config, &row).await {
                Ok(()) => {
                    self.mark_sent(&row).await?;
                    sent += 1;
                    tracing::info!(outbox_id = %row.id, kind = %row.kind, "e-mail delivered");
                }
                Err(error) => self.mark_failed_attempt(&row, &error.to_string()).await?,
            }
        }
        Ok(sent)
    }

    /// PostgreSQL: one statement locks, leases and returns a batch; rows
    /// another worker holds locked are skipped instead of waited for, so
    /// several instances drain the outbox side by side.
    async fn claim_skip_locked(&self, now: i64) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
        let sql = format!(
            "UPDATE outbox SET status = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE (status = $3 AND next_attempt_at <= $4) \
                    OR (status = $1 AND lease_until < $4) \
                 ORDER BY next_attempt_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED) \
             RETURNING *"
        );
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                SENDING.into(),
                (now + LEASE_MS).into(),
                PENDING.into(),
                now.into(),
            ],
        );
        outbox::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await
    }

    /// SQLite (one writer at a time): read the due rows, then take each
    /// with a compare-and-set so that only one worker wins it.
    async fn claim_compare_and_set(&self, now: i64) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
        let due = outbox::Entity::find()
            .filter(
                sea_orm::Condition::any()
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
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let result = outbox::Entity::update_many()
                .col_expr(outbox::Column::Status, Expr::value(SENDING))
                .col_expr(outbox::Column::LeaseUntil, Expr::value(now + LEASE_MS))
                .col_expr(
                    outbox::Column::Attempts,
                    Expr::col(outbox::Column::Attempts).add(1),
                )
                .filter(outbox::Column::Id.eq(row.id))
                .filter(outbox::Column::Status.eq(row.status.clone()))
                .filter(outbox::Column::Attempts.eq(row.attempts))
                .exec(&self.db)
                .await?;
            if result.rows_affected == 1 {
                claimed.push(outbox::Model {
                    status: SENDING.to_string(),
                    lease_until: Some(now + LEASE_MS),
                    attempts: row.attempts + 1,
                    ..row
                });
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, row: &outbox::Model) -> Result<(), sea_orm::DbErr> {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(SENT))
            .col_expr(outbox::Column::SentAt, Expr::value(self.clock.now_ms()))
            .col_expr(outbox::Column::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(outbox::Column::BodyText, Expr::value(""))
            .col_expr(
                outbox::Column::BodyHtml,
                Expr::value(Option::<String>::None),
            )
            .filter(outbox::Column::Id.eq(row.id))
            // Only while the claim is still ours (no one re-leased the row).
            .filter(outbox::Column::Attempts.eq(row.attempts))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn mark_failed_attempt(
        &self,
        row: &outbox::Model,
        error: &str,
    ) -> Result<(), sea_orm::DbErr> {
        let attempts = row.attempts;
        let give_up = attempts >= MAX_ATTEMPTS;
        let backoff_ms = 1000i64 << attempts.clamp(0, 12);
        tracing::warn!(outbox_id = %row.id, attempts, give_up, error = %error.escape_debug(), "e-mail delivery failed");
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Status,
                Expr::value(if give_up { FAILED } else { PENDING }),
            )
            .col_expr(
                outbox::Column::NextAttemptAt,
                Expr::value(self.clock.now_ms() + backoff_ms),
            )
            .col_expr(outbox::Column::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(error.chars().take(1000).collect::<String>()),
            )
            .filter(outbox::Column::Id.eq(row.id))
            // Only while the claim is still ours (no one re-leased the row).
            .filter(outbox::Column::Attempts.eq(row.attempts))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

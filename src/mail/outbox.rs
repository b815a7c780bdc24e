//! The transactional outbox: `enqueue` writes the message in the caller's
//! transaction; the [`Worker`] claims due rows with a lease, delivers them
//! and marks them sent (dropping the body, which may hold a reset link).
//! A row whose worker died is claimed again once its lease has passed.
//! Several instances may run workers on one database: a row is claimed by
//! exactly one of them (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a
//! compare-and-set on SQLite).
//!
//! A secret the message must carry (a link token, a reminder's logins) is
//! never written in clear: the stored body holds a placeholder for it and
//! the secret itself is sealed (AES-256-GCM, the at-rest key, the row id as
//! associated data) in `secret_sealed`. The worker opens it in memory only
//! to build the message, and clears it with the body once sent. Freed
//! pages, the WAL, dead tuples and backups thus hold no usable link.
//!
//! A transient failure (4xx, connection error, timeout) puts the row back
//! with an exponential, jittered back-off; a permanent one (5xx) or the
//! last of `mail.max_attempts` marks it failed. `last_error` keeps the most
//! recent failure, also once the message is sent, so a delivery that needed
//! retries still shows why.

use std::{sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::{ExposeSecret, SecretSlice};
use uuid::Uuid;

use super::{
    metrics::OutboxMetrics,
    templates::{self, Secrets},
    transport::{DeliveryError, Transport},
    Mail,
};
use crate::{
    clock::SharedClock,
    config::MailConfig,
    crypto::secretbox::{SealError, Sealer},
    entity::outbox,
    kinds::Locale,
    store,
};

pub use crate::store::outbox::{FAILED, PENDING, SENDING, SENT};

/// How long a claimed row belongs to its worker; longer than the SMTP
/// timeouts of one delivery, so a live worker never loses its claim.
pub const LEASE_MS: i64 = 5 * 60_000;
const BATCH: u64 = 32;
/// The first retry waits about this long; each further one twice as long.
const BACKOFF_BASE_MS: i64 = 2_000;
const BACKOFF_MAX_MS: i64 = 3_600_000;

/// Renders `mail` and queues it in the caller's transaction, its secrets
/// sealed with `sealer`.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    config: &MailConfig,
    sealer: &Sealer,
    now: i64,
    account_id: Option<Uuid>,
    recipient: &str,
    locale: Locale,
    mail: &Mail,
) -> Result<Uuid, sea_orm::DbErr> {
    // A template that cannot render rolls the caller's transaction back: a
    // state change is never committed without the message that reports it.
    let (rendered, secrets) = templates::render_masked(mail, locale, config)
        .map_err(|error| sea_orm::DbErr::Custom(error.to_string()))?;
    let id = Uuid::now_v7();
    let secret_sealed = secrets
        .map(|secrets| seal_secrets(sealer, id, &secrets))
        .transpose()
        .map_err(|error| sea_orm::DbErr::Custom(format!("outbox: {error}")))?;
    store::outbox::insert(
        conn,
        outbox::Model {
            id,
            account_id,
            kind: mail.kind().to_string(),
            recipient: recipient.to_string(),
            locale: locale.as_str().to_string(),
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: Some(rendered.html),
            secret_sealed,
            status: PENDING.to_string(),
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            last_error: None,
            created_at: now,
            sent_at: None,
        },
    )
    .await?;
    Ok(id)
}

/// Withdraws, in the caller's transaction, the messages of `kinds` queued
/// for `recipient` about `account_id` and not yet taken by a worker: the
/// address is no longer the customer's, and what they carry (a reset link,
/// login identifiers) must not reach it. Returns how many were withdrawn.
pub async fn withdraw<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    recipient: &str,
    kinds: &[&str],
) -> Result<u64, sea_orm::DbErr> {
    store::outbox::delete_pending(conn, account_id, recipient, kinds).await
}

/// The associated data binding a row's sealed secrets to that row.
pub fn aad(id: Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// Seals the secrets of row `id`, bound to that row.
fn seal_secrets(sealer: &Sealer, id: Uuid, secrets: &Secrets) -> Result<String, SealError> {
    let plain: SecretSlice<u8> = serde_json::to_vec(secrets)
        .map_err(|_| SealError::Seal)?
        .into();
    sealer.seal(plain.expose_secret(), &aad(id))
}

/// The message of `row` as it is sent: its sealed secrets opened (in
/// memory only) and put back in place of their placeholders.
fn reveal<'row>(
    sealer: &Sealer,
    row: &'row outbox::Model,
) -> Result<std::borrow::Cow<'row, outbox::Model>, DeliveryError> {
    let Some(sealed) = &row.secret_sealed else {
        return Ok(std::borrow::Cow::Borrowed(row));
    };
    let unreadable = |error: &dyn std::fmt::Display| {
        DeliveryError::Permanent(format!(
            "the sealed secrets do not open ({error}); was the sealing key replaced?"
        ))
    };
    let plain: SecretSlice<u8> = sealer
        .open(sealed, &aad(row.id))
        .map_err(|error| unreadable(&error))?
        .into();
    let secrets: Secrets = serde_json::from_slice(plain.expose_secret())
        .map_err(|_| unreadable(&"malformed content"))?;
    let mut message = row.clone();
    message.secret_sealed = None;
    secrets.reveal(
        &mut message.subject,
        &mut message.body_text,
        message.body_html.as_mut(),
    );
    Ok(std::borrow::Cow::Owned(message))
}

/// Delivers queued e-mail in the background.
pub struct Worker {
    pub db: DatabaseConnection,
    pub clock: SharedClock,
    pub config: MailConfig,
    /// Opens the secrets sealed in the rows (the at-rest key).
    pub sealer: Sealer,
    pub transport: Transport,
    pub signal: Arc<tokio::sync::Notify>,
    pub metrics: Arc<OutboxMetrics>,
}

/// The wait before attempt `attempts + 1`: exponential, capped, with
/// "equal jitter" (half fixed, half random) so that messages failed by one
/// relay outage do not all come back in the same instant.
pub fn backoff_ms(attempts: i32) -> i64 {
    use rand::Rng;
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let full = std::cmp::min(
        BACKOFF_BASE_MS.saturating_mul(1i64 << exponent),
        BACKOFF_MAX_MS,
    );
    full / 2 + rand::thread_rng().gen_range(0..=full / 2)
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
        // One claimant per row, whatever the number of instances: `FOR
        // UPDATE SKIP LOCKED` on PostgreSQL, a compare-and-set on SQLite.
        let claimed = store::outbox::claim_due(&self.db, now, now + LEASE_MS, BATCH)
            .await
            .inspect_err(|error| tracing::warn!(%error, "outbox: cannot claim due messages"))?;
        // A delivery may take several SMTP round trips, each up to the
        // timeout; a row whose lease could run out during its delivery is
        // left for the lease to expire (another worker may take it then), so
        // that a message is never sent twice within one attempt's lease.
        let worst_delivery_ms = i64::try_from(self.config.smtp.timeout_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(6_000);
        let mut sent = 0;
        for row in claimed {
            let lease_until = row.lease_until.unwrap_or(0);
            if self.clock.now_ms().saturating_add(worst_delivery_ms) >= lease_until {
                tracing::info!(outbox_id = %row.id, "outbox: lease too short to deliver, left to expire");
                continue;
            }
            OutboxMetrics::add(&self.metrics.attempts);
            tracing::debug!(
                outbox_id = %row.id,
                kind = %row.kind,
                attempt = row.attempts,
                recipient = %crate::telemetry::pseudonym(&row.recipient),
                "e-mail delivery attempt"
            );
            let delivered = match reveal(&self.sealer, &row) {
                Ok(message) => self.transport.deliver(&self.config, &message).await,
                Err(error) => Err(error),
            };
            match delivered {
                Ok(()) => {
                    self.mark_sent(&row).await?;
                    OutboxMetrics::add(&self.metrics.delivered);
                    sent += 1;
                    tracing::info!(
                        outbox_id = %row.id,
                        kind = %row.kind,
                        attempt = row.attempts,
                        recipient = %crate::telemetry::pseudonym(&row.recipient),
                        "e-mail delivered"
                    );
                }
                Err(error) => self.mark_failed_attempt(&row, &error).await?,
            }
        }
        Ok(sent)
    }

    /// Marks `row` sent and drops its body, while the claim is still ours.
    async fn mark_sent(&self, row: &outbox::Model) -> Result<(), sea_orm::DbErr> {
        store::outbox::mark_sent(&self.db, row.id, row.attempts, self.clock.now_ms()).await?;
        Ok(())
    }

    async fn mark_failed_attempt(
        &self,
        row: &outbox::Model,
        error: &DeliveryError,
    ) -> Result<(), sea_orm::DbErr> {
        let attempts = row.attempts;
        let max_attempts = i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX);
        let give_up = error.is_permanent() || attempts >= max_attempts;
        let backoff_ms = backoff_ms(attempts);
        OutboxMetrics::add(&self.metrics.failures);
        if give_up {
            OutboxMetrics::add(&self.metrics.abandoned);
        }
        let error = error.to_string();
        tracing::warn!(
            outbox_id = %row.id,
            kind = %row.kind,
            recipient = %crate::telemetry::pseudonym(&row.recipient),
            attempts,
            give_up,
            retry_in_ms = if give_up { 0 } else { backoff_ms },
            error = %error.escape_debug(),
            "e-mail delivery failed"
        );
        // Only while the claim is still ours (no one re-leased the row).
        store::outbox::release_failed_attempt(
            &self.db,
            row.id,
            row.attempts,
            give_up,
            self.clock.now_ms() + backoff_ms,
            &error,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_row_and_key() {
        let sealer = Sealer::from_key(&[3u8; 32]).unwrap();
        let config = MailConfig::default();
        let mail = Mail::ResetLink {
            login: "jean".into(),
            token: "gdr_SECRET".into(),
            valid_minutes: 30,
        };
        let (rendered, secrets) = templates::render_masked(&mail, Locale::En, &config).unwrap();
        let id = Uuid::now_v7();
        let sealed = seal_secrets(&sealer, id, &secrets.unwrap()).unwrap();
        let row = outbox::Model {
            id,
            account_id: None,
            kind: mail.kind().into(),
            recipient: "jean@example.fr".into(),
            locale: "en".into(),
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: Some(rendered.html),
            secret_sealed: Some(sealed),
            status: SENDING.into(),
            attempts: 1,
            next_attempt_at: 0,
            lease_until: None,
            last_error: None,
            created_at: 0,
            sent_at: None,
        };
        let stored = format!("{row:?}");
        assert!(!stored.contains("SECRET"), "{stored}");

        let message = reveal(&sealer, &row).unwrap();
        let link = format!("{}?token=gdr_SECRET", config.reset_url);
        assert!(message.body_text.contains(&link));
        assert!(message
            .body_html
            .as_deref()
            .is_some_and(|html| html.contains(&format!("<a href=\"{link}\">{link}</a>"))));
        assert!(message.secret_sealed.is_none());

        let moved = outbox::Model {
            id: Uuid::now_v7(),
            ..row.clone()
        };
        assert!(reveal(&sealer, &moved).unwrap_err().is_permanent());
        let other_key = Sealer::from_key(&[4u8; 32]).unwrap();
        assert!(reveal(&other_key, &row).unwrap_err().is_permanent());
    }

    #[test]
    fn back_off_doubles_with_jitter_and_is_capped() {
        for attempts in 1..=30 {
            let full = std::cmp::min(
                BACKOFF_BASE_MS << std::cmp::min(attempts - 1, 20),
                BACKOFF_MAX_MS,
            );
            for _ in 0..50 {
                let wait = backoff_ms(attempts);
                assert!(wait >= full / 2 && wait <= full, "{attempts}: {wait}");
            }
        }
        assert!(backoff_ms(1) >= 1_000, "a retry never comes back at once");
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff_ms(8)).collect();
        assert!(spread.len() > 1, "jitter spreads the retries");
    }
}

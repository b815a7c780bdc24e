//! Anonymous requests answered OK whose work is still to be done: a reset
//! link to send ([`Kind::PasswordReset`]) or a login reminder
//! ([`Kind::LoginRecovery`]).
//!
//! A request is recorded in `pending_requests` before the caller is told OK
//! (what they typed is sealed: it may be a password typed in the wrong
//! field), then handed to the bounded in-memory queue
//! ([`super::background`]). The row is deleted in the transaction that does
//! the work, so a request is done exactly once, and never lost:
//! - a full queue only delays it: the sweeper ([`run`]) hands over recorded
//!   requests nobody has taken, as the queue has room;
//! - a crash or a restart leaves the row, and the sweeper of any instance
//!   takes it up once its lease is over;
//! - a failed attempt is tried again with growing pauses, and after
//!   [`MAX_ATTEMPTS`] kept with `failed_at` set and logged as an error.
//!
//! Several instances may sweep one database: a worker claims a row with a
//! compare-and-set on its `attempts` count, and deletes it only while that
//! claim is still its own.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    deps::{Db, JobClock, Jobs, Sealing, Settings},
    error::{Error, Result},
    principal::ClientInfo,
};
use crate::{clock::Millis, entity::pending_request, store};

/// How long a claimed request belongs to the worker that claimed it; far
/// longer than its work takes.
pub const LEASE_MS: i64 = 15_000;
/// A request just recorded is left to the in-memory queue this long before
/// the sweeper hands it over again.
pub const HANDOFF_MS: i64 = 5_000;
/// Attempts before a request is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// Requests handed over per sweep at most.
const SWEEP_BATCH: u64 = 64;

/// Does a claimed request's work: the module that records a kind of
/// request gives the function that does it (this one imports none of them).
pub type Work<C> =
    fn(C, Kind, String, ClientInfo, Claim) -> futures::future::BoxFuture<'static, Result<()>>;

/// What a recorded request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `RequestPasswordReset`: the input is a login or a contact e-mail.
    PasswordReset,
    /// `RecoverLogin`: the input is a contact e-mail.
    LoginRecovery,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PasswordReset => "password_reset",
            Kind::LoginRecovery => "login_recovery",
        }
    }

    fn parse(kind: &str) -> Option<Self> {
        [Kind::PasswordReset, Kind::LoginRecovery]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

/// The associated data the input of row `id` is sealed with.
pub fn aad(id: Uuid) -> Vec<u8> {
    let mut aad = b"pending_requests:".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// Pause before attempt `attempts + 1` after a failure: 1 s, doubling, at
/// most 15 min.
fn retry_pause_ms(attempts: i32) -> i64 {
    let exponent = attempts.clamp(1, 11) - 1;
    (1_000_i64 << exponent).min(15 * 60_000)
}

/// Records the request (the caller may be told OK once this returns), then
/// hands it to a worker. Costs the same whether or not an account matches:
/// nothing is looked up here.
pub async fn record<C: Db + Sealing + Jobs + JobClock + Clone + 'static>(
    ctx: &C,
    now: Millis,
    kind: Kind,
    input: &str,
    client: &ClientInfo,
    perform: Work<C>,
) -> Result<()> {
    let id = Uuid::now_v7();
    let input_sealed = ctx
        .sealer()
        .seal(input.as_bytes(), &aad(id))
        .map_err(|error| Error::Internal(anyhow::anyhow!("pending request: {error}")))?;
    store::pending::insert(
        ctx.db(),
        pending_request::Model {
            id,
            kind: kind.as_str().to_string(),
            input_sealed,
            client_address: client.address.clone(),
            user_agent: client.user_agent.clone(),
            created_at: now,
            run_after: now + HANDOFF_MS,
            attempts: 0,
            failed_at: None,
            last_error: None,
        },
    )
    .await?;
    if hand_over(ctx, id, 0, perform).is_err() {
        // Recorded: the sweeper hands it over when the queue has room.
        tracing::info!(%id, "background queue full: request recorded, to be worked off later");
    }
    Ok(())
}

/// Queues the work of row `id`, to be claimed while its count of attempts
/// is still `attempts`.
fn hand_over<C: Db + Sealing + Jobs + JobClock + Clone + 'static>(
    ctx: &C,
    id: Uuid,
    attempts: i32,
    perform: Work<C>,
) -> Result<()> {
    let job_ctx = ctx.clone();
    ctx.background().submit_quietly("pending request", move || {
        let ctx = job_ctx.clone();
        async move {
            work(&ctx, ctx.now(), id, attempts, perform).await;
            Ok(())
        }
    })
}

/// Claims row `id` if its count of attempts is still `attempts`, and does
/// its work; a failure is recorded on the row for a later attempt.
async fn work<C: Db + Sealing + Clone>(
    ctx: &C,
    now: Millis,
    id: Uuid,
    attempts: i32,
    perform: Work<C>,
) {
    let claimed = match claim(ctx.db(), now, id, attempts).await {
        Ok(Some(row)) => row,
        // Done, or claimed by another worker meanwhile.
        Ok(None) => return,
        Err(error) => {
            // The lease was not taken: the sweeper tries again.
            tracing::warn!(%id, %error, "pending request: cannot claim");
            return;
        }
    };
    let result = open_and_perform(ctx, &claimed, perform).await;
    if let Err(error) = result {
        let attempt = claimed.attempts;
        let give_up = attempt >= MAX_ATTEMPTS;
        let message = format!("{error:#}");
        if give_up {
            tracing::error!(%id, kind = %claimed.kind, attempts = attempt, error = %message.escape_debug(), "pending request given up");
        } else {
            tracing::warn!(%id, kind = %claimed.kind, attempts = attempt, error = %message.escape_debug(), "pending request failed; to be retried");
        }
        let update = store::pending::record_failure(
            ctx.db(),
            id,
            attempt,
            now + retry_pause_ms(attempt),
            message,
            give_up.then_some(now),
        )
        .await;
        if let Err(error) = update {
            // The lease runs out and the sweeper tries again.
            tracing::warn!(%id, %error, "pending request: cannot record the failure");
        }
    }
}

/// Takes the lease of row `id` while its count is still `attempts`; the
/// row as claimed, or `None` when it is gone or someone else's.
async fn claim(
    db: &DatabaseConnection,
    now: Millis,
    id: Uuid,
    attempts: i32,
) -> Result<Option<pending_request::Model>> {
    if !store::pending::claim(db, id, attempts, now + LEASE_MS).await? {
        return Ok(None);
    }
    Ok(store::pending::by_id(db, id)
        .await?
        .filter(|row| row.attempts == attempts + 1))
}

/// A claimed request, done: the caller's transaction deletes the row with
/// [`Claim::finish`].
pub struct Claim {
    id: Uuid,
    attempts: i32,
}

impl Claim {
    /// Deletes the row in the caller's transaction, which must then roll
    /// back if the claim was lost (another worker took the row over).
    pub async fn finish<C: ConnectionTrait>(&self, conn: &C) -> Result<()> {
        if store::pending::delete_claimed(conn, self.id, self.attempts).await? {
            Ok(())
        } else {
            Err(Error::Internal(anyhow::anyhow!(
                "pending request {}: claim lost to another worker",
                self.id
            )))
        }
    }
}

async fn open_and_perform<C: Sealing + Clone>(
    ctx: &C,
    row: &pending_request::Model,
    perform: Work<C>,
) -> Result<()> {
    let opened = ctx
        .sealer()
        .open(&row.input_sealed, &aad(row.id))
        .map_err(|error| Error::Internal(anyhow::anyhow!("pending request: {error}")))?;
    let input = String::from_utf8(opened)
        .map_err(|_| Error::Internal(anyhow::anyhow!("pending request: input is not UTF-8")))?;
    let client = ClientInfo {
        address: row.client_address.clone(),
        user_agent: row.user_agent.clone(),
    };
    let claim = Claim {
        id: row.id,
        attempts: row.attempts,
    };
    let Some(kind) = Kind::parse(&row.kind) else {
        return Err(Error::Internal(anyhow::anyhow!(
            "pending request of unknown kind {:?}",
            row.kind
        )));
    };
    perform(ctx.clone(), kind, input, client, claim).await
}

/// How soon the sweeper looks again while a backlog is being worked off
/// (the last sweep filled the queue or a whole batch).
const BACKLOG_PAUSE: Duration = Duration::from_millis(50);

/// Hands over, as the queue has room, the recorded requests nobody works
/// on (left by a crash, a full queue or a failed attempt): every
/// `background.rescan_ms`, and again soon while a backlog lasts, until
/// `stop`.
pub async fn run<C: Db + Settings + Sealing + Jobs + JobClock + Clone + 'static>(
    ctx: C,
    stop: CancellationToken,
    perform: Work<C>,
) {
    let every = Duration::from_millis(ctx.config().background.rescan_ms.max(10));
    loop {
        let pause = match sweep(&ctx, ctx.now(), perform).await {
            Ok(true) => BACKLOG_PAUSE.min(every),
            Ok(false) => every,
            Err(error) => {
                tracing::warn!(%error, "pending requests: cannot look for due requests");
                every
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// One sweep; whether more may be due (the queue was full, or a whole
/// batch was due). A request handed over is not due again for [`LEASE_MS`], so
/// that the next sweeps do not queue it twice while it waits for a worker
/// (the worker that takes it still claims it; if none does, it is due again
/// then).
pub async fn sweep<C: Db + Sealing + Jobs + JobClock + Clone + 'static>(
    ctx: &C,
    now: Millis,
    perform: Work<C>,
) -> Result<bool> {
    let due = store::pending::due(ctx.db(), now, SWEEP_BATCH).await?;
    let whole_batch = due.len() as u64 == SWEEP_BATCH;
    let mut handed = 0;
    let mut full = false;
    for (id, attempts) in due {
        // Put off first: a worker may take it the moment it is queued.
        if !store::pending::put_off(ctx.db(), id, attempts, now, now + LEASE_MS).await? {
            // Taken meanwhile (another instance's sweeper, or a worker).
            continue;
        }
        if hand_over(ctx, id, attempts, perform).is_err() {
            // No room: due again at once, for the next sweep.
            store::pending::due_at(ctx.db(), id, attempts, now).await?;
            full = true;
            break;
        }
        handed += 1;
    }
    if handed > 0 {
        tracing::info!(
            handed,
            "pending requests handed over to the background workers"
        );
    }
    Ok(full || whole_batch)
}

/// Requests recorded and not done yet (waiting or running; not those
/// given up).
pub async fn waiting<C: ConnectionTrait>(conn: &C) -> Result<u64> {
    Ok(store::pending::waiting(conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_grow_and_are_capped() {
        assert_eq!(retry_pause_ms(1), 1_000);
        assert_eq!(retry_pause_ms(2), 2_000);
        assert_eq!(retry_pause_ms(5), 16_000);
        assert_eq!(retry_pause_ms(MAX_ATTEMPTS), 128_000);
        assert_eq!(retry_pause_ms(40), 15 * 60_000);
    }

    #[test]
    fn kinds_round_trip_and_aad_is_bound_to_the_table() {
        for kind in [Kind::PasswordReset, Kind::LoginRecovery] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("other"), None);
        let id = Uuid::now_v7();
        assert_ne!(aad(id), crate::mail::outbox::aad(id));
    }
}

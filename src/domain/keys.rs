//! Sealing-key rotation. Every column holding sealed values is listed once
//! in [`SEALED_COLUMNS`]; [`status`] counts its values per key and
//! [`rotate`] re-seals those not under the sealing key, in batches, while
//! the service runs.
//!
//! Each batch is one transaction of compare-and-set writes: a value is
//! replaced only if it is still the one that was read, so a concurrent
//! enrolment or disable is never overwritten. The old value stays valid
//! until its row is rewritten (its key is still configured), so a process
//! killed at any moment leaves every value readable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use secrecy::{ExposeSecret, SecretSlice};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    config::KeyRotationConfig,
    crypto::secretbox::{SealedBy, Sealer, FORMAT_PREFIX, PREFIX_LEN},
    store,
};

/// A text column of sealed values in a table keyed by a UUID.
pub struct SealedColumn {
    pub table: &'static str,
    pub id: &'static str,
    pub column: &'static str,
    /// The associated data a value is sealed with, from its row's id.
    pub aad: fn(Uuid) -> Vec<u8>,
}

impl SealedColumn {
    pub fn name(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

/// Every sealed column: a new one is one more line here.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "accounts",
        id: "id",
        column: "totp_secret",
        aad: super::two_factor::aad,
    },
    SealedColumn {
        table: "accounts",
        id: "id",
        column: "totp_pending_secret",
        aad: super::two_factor::aad,
    },
    SealedColumn {
        table: "outbox",
        id: "id",
        column: "secret_sealed",
        aad: crate::mail::outbox::aad,
    },
    SealedColumn {
        table: "pending_requests",
        id: "id",
        column: "input_sealed",
        aad: super::pending::aad,
    },
];

/// A pass gives up looking for values a concurrent write replaced after
/// this many passes (the background task comes back later).
const MAX_PASSES: usize = 5;
/// Progress is logged at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Values that do not open are logged one by one up to this many per pass.
const UNOPENABLE_LOGGED: u64 = 10;

/// How many values of one column each key seals; `None` counts values that
/// carry the format marker but no valid key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnStatus {
    pub column: String,
    pub values: BTreeMap<Option<SealedBy>, u64>,
}

/// Counts every column's values by the key that sealed them (read from the
/// prefix; nothing is decrypted).
pub async fn status<C: ConnectionTrait>(db: &C) -> Result<Vec<ColumnStatus>, DbErr> {
    let mut columns = Vec::new();
    for sealed in SEALED_COLUMNS {
        let mut values = BTreeMap::new();
        let counts = store::sealed::count_by_prefix(
            db,
            sealed.table,
            sealed.column,
            FORMAT_PREFIX,
            PREFIX_LEN,
        )
        .await?;
        for (prefix, n) in counts {
            *values.entry(SealedBy::of(&prefix)).or_insert(0) += n;
        }
        columns.push(ColumnStatus {
            column: sealed.name(),
            values,
        });
    }
    Ok(columns)
}

/// Batch size and the pause between batches.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub batch_size: u64,
    pub pause: Duration,
}

impl From<&KeyRotationConfig> for Pace {
    fn from(config: &KeyRotationConfig) -> Self {
        Self {
            batch_size: config.batch_size,
            pause: Duration::from_millis(config.pause_ms),
        }
    }
}

/// What a rotation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// Values rewritten under the sealing key.
    pub resealed: u64,
    /// Values another writer changed between the read and the write: left
    /// as that writer made them.
    pub changed_meanwhile: u64,
    /// Values no configured key opens (a key removed too early, or damage):
    /// left as they are.
    pub unopenable: u64,
}

impl Rotated {
    fn add(&mut self, other: Rotated) {
        self.resealed += other.resealed;
        self.changed_meanwhile += other.changed_meanwhile;
        self.unopenable += other.unopenable;
    }
}

/// Re-seals every value not under the sealing key, column by column, until
/// a pass meets no concurrent change (at most [`MAX_PASSES`]) or `stop`.
pub async fn rotate(
    db: &DatabaseConnection,
    sealer: &Sealer,
    pace: Pace,
    stop: &CancellationToken,
) -> Result<Rotated, DbErr> {
    let mut total = Rotated::default();
    for _ in 0..MAX_PASSES {
        let mut pass = Rotated::default();
        for column in SEALED_COLUMNS {
            pass.add(rotate_column(db, sealer, column, pace, stop).await?);
        }
        total.add(pass);
        if pass.changed_meanwhile == 0 || stop.is_cancelled() {
            break;
        }
    }
    Ok(total)
}

/// One pass over one column, in id order.
async fn rotate_column(
    db: &DatabaseConnection,
    sealer: &Sealer,
    sealed: &SealedColumn,
    pace: Pace,
    stop: &CancellationToken,
) -> Result<Rotated, DbErr> {
    let sealing_key = sealer.sealing_key();
    let mut done = Rotated::default();
    let mut after: Option<Uuid> = None;
    let mut last_log: Option<Instant> = None;
    while !stop.is_cancelled() {
        let batch = read_batch(db, sealed, &sealing_key.prefix(), after, pace.batch_size).await?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        after = Some(*last);
        let writes = reseal(sealer, sealed, batch, &mut done)?;
        let written = write_batch(db, sealed, writes).await?;
        done.resealed += written.resealed;
        done.changed_meanwhile += written.changed_meanwhile;
        if last_log.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
            last_log = Some(Instant::now());
            tracing::info!(column = %sealed.name(), %sealing_key, resealed = done.resealed,
                changed_meanwhile = done.changed_meanwhile, unopenable = done.unopenable,
                "key rotation: progress");
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(pace.pause) => {}
        }
    }
    if done != Rotated::default() {
        tracing::info!(column = %sealed.name(), %sealing_key, resealed = done.resealed,
            changed_meanwhile = done.changed_meanwhile, unopenable = done.unopenable,
            stopped = stop.is_cancelled(), "key rotation: column pass over");
    }
    Ok(done)
}

/// The batch's values sealed anew under the sealing key, as (id, old, new);
/// a value that does not open is counted in `done` and left out.
fn reseal(
    sealer: &Sealer,
    sealed: &SealedColumn,
    batch: Vec<(Uuid, String)>,
    done: &mut Rotated,
) -> Result<Vec<(Uuid, String, String)>, DbErr> {
    let mut writes = Vec::with_capacity(batch.len());
    for (id, old) in batch {
        let aad = (sealed.aad)(id);
        match sealer.open(&old, &aad) {
            Ok(plain) => {
                let plain = SecretSlice::from(plain);
                let new = sealer
                    .seal(plain.expose_secret(), &aad)
                    .map_err(|error| DbErr::Custom(error.to_string()))?;
                writes.push((id, old, new));
            }
            Err(error) => {
                done.unopenable += 1;
                if done.unopenable <= UNOPENABLE_LOGGED {
                    tracing::warn!(column = %sealed.name(), row_id = %id, %error,
                        "key rotation: a sealed value does not open; left as it is");
                }
            }
        }
    }
    Ok(writes)
}

/// The next rows (by id, after `after`) whose value is not under `prefix`.
async fn read_batch(
    db: &DatabaseConnection,
    sealed: &SealedColumn,
    prefix: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(Uuid, String)>, DbErr> {
    store::sealed::not_under(
        db,
        sealed.table,
        sealed.id,
        sealed.column,
        prefix,
        after,
        limit,
    )
    .await
}

/// One transaction: each value replaced only if it is still the one read.
async fn write_batch(
    db: &DatabaseConnection,
    sealed: &SealedColumn,
    writes: Vec<(Uuid, String, String)>,
) -> Result<Rotated, DbErr> {
    let (resealed, changed_meanwhile) =
        store::sealed::replace(db, sealed.table, sealed.id, sealed.column, writes).await?;
    Ok(Rotated {
        resealed,
        changed_meanwhile,
        ..Rotated::default()
    })
}

/// The background task of `serve`: rotates at start, then every
/// `rescan_secs`, until `stop`.
pub async fn run_online(
    db: DatabaseConnection,
    sealer: Sealer,
    config: KeyRotationConfig,
    stop: CancellationToken,
) {
    let rescan = Duration::from_secs(config.rescan_secs);
    loop {
        let wait = match rotate(&db, &sealer, Pace::from(&config), &stop).await {
            Ok(_) => rescan,
            Err(error) => {
                tracing::warn!(%error, "key rotation: interrupted, will try again");
                rescan.min(Duration::from_secs(30))
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{sea_query::Expr, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

    use super::*;
    use crate::{crypto::secretbox::KEY_LEN, entity::account};

    fn key(byte: u8) -> Sealer {
        Sealer::from_key(&[byte; KEY_LEN]).unwrap()
    }

    /// A migrated in-memory database with `count` accounts, in id order.
    async fn accounts(count: usize) -> (DatabaseConnection, Vec<Uuid>) {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        crate::store::db::migrate(&db).await.unwrap();
        let mut ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        ids.sort();
        for (i, id) in ids.iter().enumerate() {
            account::Entity::insert(account::ActiveModel {
                id: Set(*id),
                login: Set(format!("a{i}")),
                email: Set(format!("a{i}@example.com")),
                locale: Set("en".into()),
                password_state: Set("unset".into()),
                created_at: Set(0),
                updated_at: Set(0),
                ..Default::default()
            })
            .exec_without_returning(&db)
            .await
            .unwrap();
        }
        (db, ids)
    }

    async fn set_secret(db: &DatabaseConnection, id: Uuid, value: Option<String>) {
        account::Entity::update_many()
            .col_expr(account::Column::TotpSecret, Expr::value(value))
            .filter(account::Column::Id.eq(id))
            .exec(db)
            .await
            .unwrap();
    }

    async fn secret_of(db: &DatabaseConnection, id: Uuid) -> Option<String> {
        account::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap()
            .totp_secret
    }

    const TOTP: &SealedColumn = &SEALED_COLUMNS[0];

    #[tokio::test]
    async fn a_value_changed_between_read_and_write_is_left_as_the_writer_left_it() {
        let old = key(1);
        let (db, ids) = accounts(3).await;
        for &id in &ids {
            set_secret(&db, id, Some(old.seal(b"secret", &(TOTP.aad)(id)).unwrap())).await;
        }
        let rotated = Sealer::ring([key(2), key(1)]).unwrap();

        let batch = read_batch(&db, TOTP, &rotated.sealing_key().prefix(), None, 10)
            .await
            .unwrap();
        assert_eq!(batch.len(), 3);
        let mut done = Rotated::default();
        let writes = reseal(&rotated, TOTP, batch, &mut done).unwrap();
        // Meanwhile the service disables 2FA on one account and enrols
        // another anew.
        let reenrolled = rotated
            .seal(b"another secret", &(TOTP.aad)(ids[2]))
            .unwrap();
        set_secret(&db, ids[1], None).await;
        set_secret(&db, ids[2], Some(reenrolled.clone())).await;
        let written = write_batch(&db, TOTP, writes).await.unwrap();

        assert_eq!((written.resealed, written.changed_meanwhile), (1, 2));
        let first = secret_of(&db, ids[0]).await.unwrap();
        assert!(rotated.is_current(&first));
        assert_eq!(
            rotated.open(&first, &(TOTP.aad)(ids[0])).unwrap(),
            b"secret"
        );
        assert_eq!(secret_of(&db, ids[1]).await, None);
        assert_eq!(secret_of(&db, ids[2]).await, Some(reenrolled));
    }

    #[tokio::test]
    async fn rotation_reseals_every_value_it_can_open_and_status_counts_them_by_key() {
        let (old, new, gone) = (key(1), key(2), key(3));
        let rotated = Sealer::ring([key(2), key(1)]).unwrap();
        let (db, ids) = accounts(5).await;
        let values = [
            Some(old.seal(b"s0", &(TOTP.aad)(ids[0])).unwrap()),
            Some(new.seal(b"s1", &(TOTP.aad)(ids[1])).unwrap()),
            Some(gone.seal(b"s2", &(TOTP.aad)(ids[2])).unwrap()),
            None,
            Some(old.seal(b"s4", &(TOTP.aad)(ids[4])).unwrap()),
        ];
        for (&id, value) in ids.iter().zip(&values) {
            set_secret(&db, id, value.clone()).await;
        }
        let by_key = |status: &[ColumnStatus], key: &Sealer| {
            status[0]
                .values
                .get(&Some(SealedBy::Key(key.sealing_key())))
                .copied()
        };
        let before = status(&db).await.unwrap();
        assert_eq!(before[0].column, "accounts.totp_secret");
        assert_eq!(by_key(&before, &old), Some(2));
        assert_eq!(by_key(&before, &new), Some(1));
        assert_eq!(by_key(&before, &gone), Some(1));
        assert!(before[1].values.is_empty());

        let pace = Pace {
            batch_size: 1,
            pause: Duration::ZERO,
        };
        let done = rotate(&db, &rotated, pace, &CancellationToken::new())
            .await
            .unwrap();

        assert_eq!(
            done,
            Rotated {
                resealed: 2,
                changed_meanwhile: 0,
                unopenable: 1
            }
        );
        let after = status(&db).await.unwrap();
        assert_eq!(by_key(&after, &old), None);
        assert_eq!(by_key(&after, &new), Some(3));
        assert_eq!(by_key(&after, &gone), Some(1));
        for (i, id) in [(0, ids[0]), (4, ids[4])] {
            let value = secret_of(&db, id).await.unwrap();
            assert_eq!(
                new.open(&value, &(TOTP.aad)(id)).unwrap(),
                format!("s{i}").as_bytes()
            );
        }
        assert_eq!(values[2], secret_of(&db, ids[2]).await);
    }

    #[tokio::test]
    async fn a_stopped_rotation_writes_nothing() {
        let old = key(1);
        let (db, ids) = accounts(1).await;
        let value = old.seal(b"s", &(TOTP.aad)(ids[0])).unwrap();
        set_secret(&db, ids[0], Some(value.clone())).await;
        let stop = CancellationToken::new();
        stop.cancel();
        let pace = Pace {
            batch_size: 10,
            pause: Duration::ZERO,
        };
        let rotated = Sealer::ring([key(2), key(1)]).unwrap();
        assert_eq!(
            rotate(&db, &rotated, pace, &stop).await.unwrap(),
            Rotated::default()
        );
        assert_eq!(secret_of(&db, ids[0]).await, Some(value));
    }

    #[test]
    fn every_sealed_column_has_a_distinct_name() {
        let mut names: Vec<_> = SEALED_COLUMNS.iter().map(SealedColumn::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SEALED_COLUMNS.len());
    }

    #[test]
    fn the_status_prefix_covers_the_marker_and_the_key_id() {
        let sealer = Sealer::from_key(&[1u8; KEY_LEN]).unwrap();
        let sealed = sealer.seal(b"x", b"aad").unwrap();
        let prefix = &sealed[..PREFIX_LEN];
        assert_eq!(prefix, sealer.sealing_key().prefix());
        assert_eq!(
            SealedBy::of(prefix),
            Some(SealedBy::Key(sealer.sealing_key()))
        );
    }
}

//! Passwords known to be compromised (NIST SP 800-63B-4: refuse them). The
//! password in use when the account's password is suspended, or when the
//! customer disputes an event or reports an unauthorized change, is never
//! accepted again for that account. What is kept is its argon2id PHC hash
//! with its own salt (the account's hash at that moment), never the
//! password; a new password is verified against the newest few on the
//! hashing pool.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    error::{Error, Result},
    password::{NewPassword, PasswordRejection},
    Context,
};
use crate::{
    crypto::password::Verified,
    entity::{account, compromised_password},
};

/// How many compromised hashes are kept (and checked) per account: each
/// check costs one argon2 verify per hash.
pub const KEPT_PER_ACCOUNT: u64 = 10;

/// Why a password became known compromised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Suspended,
    Disputed,
    Reported,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Suspended => "suspended",
            Cause::Disputed => "disputed",
            Cause::Reported => "reported",
        }
    }
}

/// Records the account's current password as compromised, inside the
/// caller's transaction; nothing when the account has no password or this
/// hash is already recorded. Keeps the newest [`KEPT_PER_ACCOUNT`].
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    cause: Cause,
) -> Result<()> {
    // Read in the transaction: the hash in force now, not when the request began.
    let Some(hash) = account::Entity::find_by_id(account_id)
        .one(conn)
        .await?
        .and_then(|account| account.password_hash)
    else {
        return Ok(());
    };
    let known = compromised_password::Entity::find()
        .filter(compromised_password::Column::AccountId.eq(account_id))
        .filter(compromised_password::Column::PasswordHash.eq(hash.as_str()))
        .one(conn)
        .await?;
    if known.is_some() {
        return Ok(());
    }
    compromised_password::Entity::insert(compromised_password::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        password_hash: Set(hash),
        cause: Set(cause.as_str().to_string()),
        recorded_at: Set(now),
    })
    .exec_without_returning(conn)
    .await?;
    // At most one beyond the bound, since every insert prunes.
    let kept: Vec<Uuid> = compromised_password::Entity::find()
        .select_only()
        .column(compromised_password::Column::Id)
        .filter(compromised_password::Column::AccountId.eq(account_id))
        .order_by_desc(compromised_password::Column::RecordedAt)
        .order_by_desc(compromised_password::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    let beyond: Vec<Uuid> = kept.into_iter().skip(KEPT_PER_ACCOUNT as usize).collect();
    if !beyond.is_empty() {
        compromised_password::Entity::delete_many()
            .filter(compromised_password::Column::Id.is_in(beyond))
            .exec(conn)
            .await?;
    }
    tracing::info!(%account_id, cause = cause.as_str(), "password recorded as compromised");
    Ok(())
}

/// Refuses `new` (as `PASSWORD_TOO_WEAK`, rule `known_compromised`) when it
/// is one of the account's compromised passwords; `field` names the request
/// field.
pub async fn ensure_not_compromised(
    ctx: &Context,
    account_id: Uuid,
    new: &NewPassword,
    field: &str,
) -> Result<()> {
    let hashes: Vec<String> = compromised_password::Entity::find()
        .select_only()
        .column(compromised_password::Column::PasswordHash)
        .filter(compromised_password::Column::AccountId.eq(account_id))
        .order_by_desc(compromised_password::Column::RecordedAt)
        .limit(KEPT_PER_ACCOUNT)
        .into_tuple()
        .all(&ctx.db)
        .await?;
    let verified = futures::future::try_join_all(
        hashes
            .into_iter()
            .map(|hash| ctx.hasher.verify(new.secret(), Some(hash))),
    )
    .await?;
    if verified
        .iter()
        .any(|outcome| matches!(outcome, Verified::Valid { .. }))
    {
        return Err(Error::PasswordTooWeak {
            field: field.to_string(),
            rejection: PasswordRejection::KnownCompromised,
        });
    }
    Ok(())
}

//! Passwords known to be compromised (NIST SP 800-63B-4: refuse them). The
//! password in use when the account's password is suspended, or when the
//! customer disputes an event or reports an unauthorized change, is never
//! accepted again for that account. What is kept is its argon2id PHC hash
//! with its own salt (the account's hash at that moment), never the
//! password; a new password is verified against the newest few on the
//! hashing pool.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    deps::{Db, Hashing},
    error::{Error, Result},
    password::{NewPassword, PasswordRejection},
};
use crate::{crypto::password::Verified, store};

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
    let Some(hash) = store::accounts::by_id(conn, account_id)
        .await?
        .and_then(|account| account.password_hash)
    else {
        return Ok(());
    };
    if store::compromised::contains(conn, account_id, &hash).await? {
        return Ok(());
    }
    store::compromised::add(
        conn,
        account_id,
        hash,
        cause.as_str(),
        now,
        KEPT_PER_ACCOUNT,
    )
    .await?;
    tracing::info!(%account_id, cause = cause.as_str(), "password recorded as compromised");
    Ok(())
}

/// Refuses `new` (as `PASSWORD_TOO_WEAK`, rule `known_compromised`) when it
/// is one of the account's compromised passwords; `field` names the request
/// field.
pub async fn ensure_not_compromised(
    ctx: &(impl Db + Hashing),
    account_id: Uuid,
    new: &NewPassword,
    field: &str,
) -> Result<()> {
    let hashes = store::compromised::hashes(ctx.db(), account_id, KEPT_PER_ACCOUNT).await?;
    let verified = futures::future::try_join_all(
        hashes
            .into_iter()
            .map(|hash| ctx.hasher().verify(new.secret(), Some(hash))),
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

//! Redeeming a single-use link (reset, report, e-mail confirmation): the
//! same checks and the same compare-and-set for every kind.

use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::error::{Error, Result};
use crate::{
    clock::Millis,
    crypto::token::{self, TokenKind},
    entity::account,
    store::{
        self,
        tokens::{Presented, SingleUse},
    },
};

/// The row of a presented link and its account, when the link is well
/// formed, known, unused, not withdrawn and not expired: `TOKEN_EXPIRED`
/// for an expired one, `TOKEN_INVALID` for anything else.
pub async fn presented<T: SingleUse>(
    db: &DatabaseConnection,
    now: Millis,
    kind: TokenKind,
    presented: &str,
) -> Result<(T::Model, account::Model)> {
    if !token::well_formed(kind, presented) {
        return Err(Error::TokenInvalid);
    }
    let row = match store::tokens::find::<T, _>(db, &token::hash(presented), now).await? {
        Presented::Live(row) => row,
        Presented::Expired => return Err(Error::TokenExpired),
        Presented::Unknown | Presented::Spent => return Err(Error::TokenInvalid),
    };
    let account = store::accounts::by_id(db, T::account_id(&row))
        .await?
        .ok_or(Error::TokenInvalid)?;
    Ok((row, account))
}

/// Uses the link `row` at `now` in the caller's transaction. Of concurrent
/// uses exactly one passes; the others get `TOKEN_INVALID`.
pub async fn consume<T: SingleUse, C: ConnectionTrait>(
    txn: &C,
    row: &T::Model,
    now: i64,
) -> Result<()> {
    if store::tokens::consume::<T, _>(txn, T::id(row), now).await? {
        Ok(())
    } else {
        Err(Error::TokenInvalid)
    }
}

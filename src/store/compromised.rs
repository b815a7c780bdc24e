//! The `compromised_passwords` rows: hashes of passwords an account must
//! never take again.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::compromised_password;

/// Whether `hash` is already on the account's list.
pub async fn contains<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    hash: &str,
) -> Result<bool, DbErr> {
    Ok(compromised_password::Entity::find()
        .filter(compromised_password::Column::AccountId.eq(account_id))
        .filter(compromised_password::Column::PasswordHash.eq(hash))
        .one(conn)
        .await?
        .is_some())
}

/// Adds `hash` to the account's list, then keeps only the newest `keep`.
pub async fn add<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    hash: String,
    cause: &str,
    now: i64,
    keep: u64,
) -> Result<(), DbErr> {
    compromised_password::Entity::insert(compromised_password::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        password_hash: Set(hash),
        cause: Set(cause.to_string()),
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
    let beyond: Vec<Uuid> = kept
        .into_iter()
        .skip(usize::try_from(keep).unwrap_or(usize::MAX))
        .collect();
    if !beyond.is_empty() {
        compromised_password::Entity::delete_many()
            .filter(compromised_password::Column::Id.is_in(beyond))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// The newest `limit` hashes on the account's list.
pub async fn hashes<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    compromised_password::Entity::find()
        .select_only()
        .column(compromised_password::Column::PasswordHash)
        .filter(compromised_password::Column::AccountId.eq(account_id))
        .order_by_desc(compromised_password::Column::RecordedAt)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

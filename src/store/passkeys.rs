//! Passkeys and the WebAuthn ceremonies in progress.

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::entity::{account, passkey, passkey_ceremony};

/// The account's passkeys, oldest first.
pub async fn of_account<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<Vec<passkey::Model>, DbErr> {
    passkey::Entity::find()
        .filter(passkey::Column::AccountId.eq(account_id))
        .order_by_asc(passkey::Column::CreatedAt)
        .order_by_asc(passkey::Column::Id)
        .all(conn)
        .await
}

pub async fn by_credential_id<C: ConnectionTrait>(
    conn: &C,
    credential_id: &str,
) -> Result<Option<passkey::Model>, DbErr> {
    passkey::Entity::find()
        .filter(passkey::Column::CredentialId.eq(credential_id))
        .one(conn)
        .await
}

/// Passkey `id` if it is the account's.
pub async fn of_account_by_id<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<passkey::Model>, DbErr> {
    passkey::Entity::find_by_id(id)
        .filter(passkey::Column::AccountId.eq(account_id))
        .one(conn)
        .await
}

/// Inserts a passkey and counts it on the account; a credential registered
/// already is the database's unique violation, for the caller to tell.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    row: passkey::Model,
    now: i64,
) -> Result<(), DbErr> {
    let account_id = row.account_id;
    passkey::Entity::insert(passkey::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    account::Entity::update_many()
        .col_expr(
            account::Column::PasskeyCount,
            Expr::col(account::Column::PasskeyCount).add(1),
        )
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn rename<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<bool, DbErr> {
    Ok(passkey::Entity::update_many()
        .col_expr(passkey::Column::Name, Expr::value(name))
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Deletes passkey `id` of the account and uncounts it; `false` when there
/// was no such passkey.
pub async fn delete<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    id: Uuid,
    now: i64,
) -> Result<bool, DbErr> {
    let deleted = passkey::Entity::delete_many()
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?
        .rows_affected;
    if deleted == 1 {
        account::Entity::update_many()
            .col_expr(
                account::Column::PasskeyCount,
                Expr::col(account::Column::PasskeyCount).sub(1),
            )
            .col_expr(account::Column::UpdatedAt, Expr::value(now))
            .filter(account::Column::Id.eq(account_id))
            .exec(conn)
            .await?;
    }
    Ok(deleted == 1)
}

/// Deletes every passkey of the account (a support factor reset); answers
/// the rows deleted.
pub async fn delete_all<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
) -> Result<Vec<passkey::Model>, DbErr> {
    let rows = of_account(conn, account_id).await?;
    passkey::Entity::delete_many()
        .filter(passkey::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    account::Entity::update_many()
        .col_expr(account::Column::PasskeyCount, Expr::value(0))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id))
        .exec(conn)
        .await?;
    Ok(rows)
}

/// Records a use of passkey `id`: its new credential state and counter,
/// only while the counter is still `seen_count` (of two concurrent uses
/// with one counter, one wins); `false` when it was not.
pub async fn record_use<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    seen_count: i64,
    new_count: i64,
    credential: Option<String>,
    now: i64,
) -> Result<bool, DbErr> {
    let mut update = passkey::Entity::update_many()
        .col_expr(passkey::Column::SignCount, Expr::value(new_count))
        .col_expr(passkey::Column::LastUsedAt, Expr::value(now))
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::SignCount.eq(seen_count));
    if let Some(credential) = credential {
        update = update.col_expr(passkey::Column::Credential, Expr::value(credential));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Stores a ceremony; one bound to a challenge or reset link replaces the
/// one bound to it before.
pub async fn insert_ceremony<C: ConnectionTrait>(
    conn: &C,
    row: passkey_ceremony::Model,
) -> Result<(), DbErr> {
    if let Some(bound_to) = row.bound_to {
        passkey_ceremony::Entity::delete_many()
            .filter(passkey_ceremony::Column::BoundTo.eq(bound_to))
            .exec(conn)
            .await?;
    }
    passkey_ceremony::Entity::insert(passkey_ceremony::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn ceremony_by_token_hash<C: ConnectionTrait>(
    conn: &C,
    token_hash: &str,
) -> Result<Option<passkey_ceremony::Model>, DbErr> {
    passkey_ceremony::Entity::find()
        .filter(passkey_ceremony::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

pub async fn ceremony_bound_to<C: ConnectionTrait>(
    conn: &C,
    bound_to: Uuid,
) -> Result<Option<passkey_ceremony::Model>, DbErr> {
    passkey_ceremony::Entity::find()
        .filter(passkey_ceremony::Column::BoundTo.eq(bound_to))
        .one(conn)
        .await
}

/// Whether a ceremony (or the tombstone of a used one) has id `id`.
pub async fn ceremony_exists<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<bool, DbErr> {
    Ok(passkey_ceremony::Entity::find_by_id(id)
        .one(conn)
        .await?
        .is_some())
}

/// Keeps the id of a used ceremony that lives in its token until it ends;
/// `false` when it was used already (the id is taken). Of concurrent uses
/// exactly one gets `true`.
pub async fn insert_tombstone<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    expires_at: i64,
) -> Result<bool, DbErr> {
    let row = passkey_ceremony::Model {
        id,
        token_hash: None,
        bound_to: None,
        purpose: "used".into(),
        account_id: None,
        state: String::new(),
        created_at: expires_at,
        expires_at,
    };
    match passkey_ceremony::Entity::insert(passkey_ceremony::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => Ok(true),
        Err(error)
            if matches!(
                error.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Uses ceremony `id` up: of concurrent uses exactly one gets `true`.
pub async fn take_ceremony<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<bool, DbErr> {
    Ok(passkey_ceremony::Entity::delete_many()
        .filter(passkey_ceremony::Column::Id.eq(id))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Deletes the ceremonies that ended before `now`; answers how many.
pub async fn delete_expired_ceremonies<C: ConnectionTrait>(
    conn: &C,
    now: i64,
) -> Result<u64, DbErr> {
    Ok(passkey_ceremony::Entity::delete_many()
        .filter(passkey_ceremony::Column::ExpiresAt.lte(now))
        .exec(conn)
        .await?
        .rows_affected)
}

//! The `login_challenges` rows: a password accepted, the second factor due.

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use crate::entity::login_challenge;

/// Ends every pending challenge of an account (suspension, reset, password
/// change); answers how many were pending.
pub async fn revoke_all<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
) -> Result<u64, DbErr> {
    Ok(login_challenge::Entity::update_many()
        .col_expr(login_challenge::Column::RevokedAt, Expr::value(now))
        .filter(login_challenge::Column::AccountId.eq(account_id))
        .filter(login_challenge::Column::UsedAt.is_null())
        .filter(login_challenge::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    row: login_challenge::Model,
) -> Result<(), DbErr> {
    login_challenge::Entity::insert(login_challenge::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn by_token_hash<C: ConnectionTrait>(
    conn: &C,
    token_hash: &str,
) -> Result<Option<login_challenge::Model>, DbErr> {
    login_challenge::Entity::find()
        .filter(login_challenge::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Uses challenge `id` at `now` if it is unused, not revoked, under
/// `max_wrong_codes` wrong codes and not expired; `false` when it was not.
pub async fn use_once<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    max_wrong_codes: i32,
    now: i64,
) -> Result<bool, DbErr> {
    let consumed = login_challenge::Entity::update_many()
        .col_expr(login_challenge::Column::UsedAt, Expr::value(now))
        .filter(login_challenge::Column::Id.eq(id))
        .filter(login_challenge::Column::UsedAt.is_null())
        .filter(login_challenge::Column::RevokedAt.is_null())
        .filter(login_challenge::Column::WrongCodes.lt(max_wrong_codes))
        .filter(login_challenge::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    Ok(consumed.rows_affected == 1)
}

/// Counts one wrong code against challenge `id`.
pub async fn count_wrong_code<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<(), DbErr> {
    login_challenge::Entity::update_many()
        .col_expr(
            login_challenge::Column::WrongCodes,
            Expr::col(login_challenge::Column::WrongCodes).add(1),
        )
        .filter(login_challenge::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

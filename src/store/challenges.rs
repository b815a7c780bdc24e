//! The `login_challenges` rows: a password accepted, the second factor due.

use sea_orm::{sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
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

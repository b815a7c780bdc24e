//! The `factor_resets` rows: support resets of a second factor, scheduled,
//! then cancelled or completed.

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::factor_reset;

pub const PENDING: &str = "pending";
pub const CANCELLED: &str = "cancelled";
pub const COMPLETED: &str = "completed";

/// Inserts a scheduled reset; a second pending reset of the account is the
/// database's unique violation, for the caller to tell.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: factor_reset::Model) -> Result<(), DbErr> {
    factor_reset::Entity::insert(factor_reset::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The reset whose cancel link's secret hashes to `hash`, whatever its status.
pub async fn by_cancel_token_hash<C: ConnectionTrait>(
    conn: &C,
    hash: &str,
) -> Result<Option<factor_reset::Model>, DbErr> {
    factor_reset::Entity::find()
        .filter(factor_reset::Column::CancelTokenHash.eq(hash))
        .one(conn)
        .await
}

/// Reset `id`, if it is one of account `account_id`.
pub async fn by_id_of_account<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    account_id: Uuid,
) -> Result<Option<factor_reset::Model>, DbErr> {
    factor_reset::Entity::find_by_id(id)
        .filter(factor_reset::Column::AccountId.eq(account_id))
        .one(conn)
        .await
}

/// Every pending reset of an account (at most one, by the unique index).
pub async fn pending_of_account<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<Vec<factor_reset::Model>, DbErr> {
    factor_reset::Entity::find()
        .filter(factor_reset::Column::AccountId.eq(account_id))
        .filter(factor_reset::Column::Status.eq(PENDING))
        .all(conn)
        .await
}

/// The pending reset of an account, if any.
pub async fn pending_one_of_account<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<Option<factor_reset::Model>, DbErr> {
    factor_reset::Entity::find()
        .filter(factor_reset::Column::AccountId.eq(account_id))
        .filter(factor_reset::Column::Status.eq(PENDING))
        .one(conn)
        .await
}

/// Up to `limit` pending resets due at `now`, the longest due first.
pub async fn due<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    limit: u64,
) -> Result<Vec<factor_reset::Model>, DbErr> {
    factor_reset::Entity::find()
        .filter(factor_reset::Column::Status.eq(PENDING))
        .filter(factor_reset::Column::DueAt.lte(now))
        .order_by_asc(factor_reset::Column::DueAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Marks reset `id` cancelled `via` a way, only while it is pending (and,
/// with `only_before_due`, not yet due); `false` when it was not.
pub async fn cancel<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    via: &str,
    only_before_due: bool,
    now: i64,
) -> Result<bool, DbErr> {
    let mut update = factor_reset::Entity::update_many()
        .col_expr(factor_reset::Column::Status, Expr::value(CANCELLED))
        .col_expr(
            factor_reset::Column::PendingAccountId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(factor_reset::Column::CancelledAt, Expr::value(now))
        .col_expr(factor_reset::Column::CancelledVia, Expr::value(via))
        .filter(factor_reset::Column::Id.eq(id))
        .filter(factor_reset::Column::Status.eq(PENDING));
    if only_before_due {
        update = update.filter(factor_reset::Column::DueAt.gt(now));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Claims reset `id` as completed, only while it is pending and due at
/// `now`; `false` when another instance did or it was cancelled.
pub async fn complete<C: ConnectionTrait>(conn: &C, id: Uuid, now: i64) -> Result<bool, DbErr> {
    Ok(factor_reset::Entity::update_many()
        .col_expr(factor_reset::Column::Status, Expr::value(COMPLETED))
        .col_expr(
            factor_reset::Column::PendingAccountId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(factor_reset::Column::CompletedAt, Expr::value(now))
        .filter(factor_reset::Column::Id.eq(id))
        .filter(factor_reset::Column::Status.eq(PENDING))
        .filter(factor_reset::Column::DueAt.lte(now))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

//! The `pending_requests` rows: anonymous requests answered OK whose work
//! is still to be done. A worker claims a row with a compare-and-set on its
//! `attempts` count, so every write below but the first holds a count.

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::pending_request;

/// Records a request.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    row: pending_request::Model,
) -> Result<(), DbErr> {
    pending_request::Entity::insert(pending_request::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn by_id<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<pending_request::Model>, DbErr> {
    pending_request::Entity::find_by_id(id).one(conn).await
}

/// Takes the lease of row `id` until `lease_until`, counting one more
/// attempt, only while its count is `attempts` and it is not given up;
/// `false` when it was not taken.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
    lease_until: i64,
) -> Result<bool, DbErr> {
    Ok(pending_request::Entity::update_many()
        .col_expr(pending_request::Column::Attempts, Expr::value(attempts + 1))
        .col_expr(pending_request::Column::RunAfter, Expr::value(lease_until))
        .filter(pending_request::Column::Id.eq(id))
        .filter(pending_request::Column::Attempts.eq(attempts))
        .filter(pending_request::Column::FailedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Records a failed attempt on row `id` while its count is still
/// `attempts`: due again at `run_after`, given up when `failed_at` is set;
/// `false` when the row was taken over meanwhile.
pub async fn record_failure<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
    run_after: i64,
    last_error: String,
    failed_at: Option<i64>,
) -> Result<bool, DbErr> {
    Ok(pending_request::Entity::update_many()
        .col_expr(pending_request::Column::RunAfter, Expr::value(run_after))
        .col_expr(pending_request::Column::LastError, Expr::value(last_error))
        .col_expr(pending_request::Column::FailedAt, Expr::value(failed_at))
        .filter(pending_request::Column::Id.eq(id))
        .filter(pending_request::Column::Attempts.eq(attempts))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Deletes row `id`, done, only while its count is still `attempts`;
/// `false` when the claim was lost.
pub async fn delete_claimed<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
) -> Result<bool, DbErr> {
    Ok(pending_request::Entity::delete_many()
        .filter(pending_request::Column::Id.eq(id))
        .filter(pending_request::Column::Attempts.eq(attempts))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Up to `limit` requests due at `now` and not given up, the longest due
/// first: their ids and counts of attempts.
pub async fn due<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    limit: u64,
) -> Result<Vec<(Uuid, i32)>, DbErr> {
    pending_request::Entity::find()
        .select_only()
        .column(pending_request::Column::Id)
        .column(pending_request::Column::Attempts)
        .filter(pending_request::Column::RunAfter.lte(now))
        .filter(pending_request::Column::FailedAt.is_null())
        .order_by_asc(pending_request::Column::RunAfter)
        .limit(limit)
        .into_tuple::<(Uuid, i32)>()
        .all(conn)
        .await
}

/// Makes row `id` due at `until` instead, only while its count is still
/// `attempts` and it is due at `now`; `false` when it was taken meanwhile.
pub async fn put_off<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
    now: i64,
    until: i64,
) -> Result<bool, DbErr> {
    Ok(pending_request::Entity::update_many()
        .col_expr(pending_request::Column::RunAfter, Expr::value(until))
        .filter(pending_request::Column::Id.eq(id))
        .filter(pending_request::Column::Attempts.eq(attempts))
        .filter(pending_request::Column::RunAfter.lte(now))
        .exec(conn)
        .await?
        .rows_affected
        == 1)
}

/// Makes row `id` due at `at` while its count is still `attempts` (it
/// could not be handed over).
pub async fn due_at<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    attempts: i32,
    at: i64,
) -> Result<(), DbErr> {
    pending_request::Entity::update_many()
        .col_expr(pending_request::Column::RunAfter, Expr::value(at))
        .filter(pending_request::Column::Id.eq(id))
        .filter(pending_request::Column::Attempts.eq(attempts))
        .exec(conn)
        .await?;
    Ok(())
}

/// How many requests are not given up (waiting or running).
pub async fn waiting<C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr> {
    pending_request::Entity::find()
        .filter(pending_request::Column::FailedAt.is_null())
        .count(conn)
        .await
}

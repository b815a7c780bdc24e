//! The `sessions` rows: customer sessions, found by the hash of their token.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::session;

pub async fn insert<C: ConnectionTrait>(conn: &C, row: session::Model) -> Result<(), DbErr> {
    session::Entity::insert(session::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn by_token_hash<C: ConnectionTrait>(
    conn: &C,
    token_hash: &str,
) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Records use of session `id` at `now`, unless it was revoked.
pub async fn touch<C: ConnectionTrait>(conn: &C, id: Uuid, now: i64) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(now))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Revokes every unrevoked, unexpired session of an account but `except`;
/// answers how many.
pub async fn revoke_all<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    except: Option<Uuid>,
    reason: &str,
    now: i64,
) -> Result<u64, DbErr> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokeReason, Expr::value(reason))
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now));
    if let Some(except) = except {
        update = update.filter(session::Column::Id.ne(except));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

/// The first `limit` ids (in order) of the sessions of an account revoked
/// at `now` for `reason`: in the revoking transaction, the ones it ended.
pub async fn revoked_at<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    reason: &str,
    now: i64,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.eq(now))
        .filter(session::Column::RevokeReason.eq(reason))
        .order_by_asc(session::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Revokes session `id` of account `account_id` if it is not yet revoked;
/// `false` when nothing changed (already revoked, or not theirs).
pub async fn revoke_one<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    account_id: Uuid,
    reason: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokeReason, Expr::value(reason))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Whether session `id` belongs to account `account_id`.
pub async fn belongs_to<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    account_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(session::Entity::find_by_id(id)
        .filter(session::Column::AccountId.eq(account_id))
        .one(conn)
        .await?
        .is_some())
}

/// Up to `limit` live sessions of an account (unrevoked, unexpired, seen
/// after `seen_after`), newest first, older than `after` when given.
pub async fn live_of_account<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
    seen_after: i64,
    limit: u64,
    after: Option<Uuid>,
) -> Result<Vec<session::Model>, DbErr> {
    let mut query = session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(seen_after))
        .order_by_desc(session::Column::Id)
        .limit(limit);
    if let Some(after) = after {
        query = query.filter(session::Column::Id.lt(after));
    }
    query.all(conn).await
}

/// How many live sessions an account has (unrevoked, unexpired, seen after
/// `seen_after`).
pub async fn count_live<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
    seen_after: i64,
) -> Result<u64, DbErr> {
    session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(seen_after))
        .count(conn)
        .await
}

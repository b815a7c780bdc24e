//! The `suspensions` rows: each suspension of an account's password and
//! its lifting.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::suspension;

/// The newest suspension of an account that is not lifted.
pub async fn active<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<Option<suspension::Model>, DbErr> {
    suspension::Entity::find()
        .filter(suspension::Column::AccountId.eq(account_id))
        .filter(suspension::Column::LiftedAt.is_null())
        .order_by_desc(suspension::Column::SuspendedAt)
        .one(conn)
        .await
}

/// The last `limit` suspensions of an account, newest first.
pub async fn recent<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    limit: u64,
) -> Result<Vec<suspension::Model>, DbErr> {
    suspension::Entity::find()
        .filter(suspension::Column::AccountId.eq(account_id))
        .order_by_desc(suspension::Column::SuspendedAt)
        .limit(limit)
        .all(conn)
        .await
}

pub async fn insert<C: ConnectionTrait>(conn: &C, row: suspension::Model) -> Result<(), DbErr> {
    suspension::Entity::insert(suspension::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Who lifted a suspension, and how.
pub struct Lift<'a> {
    pub by_kind: &'a str,
    pub by_name: Option<String>,
    pub method: &'a str,
}

/// Marks the suspension `open` lifted at `now`; answers it as updated.
pub async fn lift<C: ConnectionTrait>(
    conn: &C,
    open: suspension::Model,
    lift: Lift<'_>,
    now: i64,
) -> Result<suspension::Model, DbErr> {
    let mut active: suspension::ActiveModel = open.into();
    active.lifted_at = Set(Some(now));
    active.lifted_by_kind = Set(Some(lift.by_kind.to_string()));
    active.lifted_by_name = Set(lift.by_name);
    active.lift_method = Set(Some(lift.method.to_string()));
    sea_orm::ActiveModelTrait::update(active, conn).await
}

//! The `suspensions` rows: each suspension of an account's password and
//! its lifting.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
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

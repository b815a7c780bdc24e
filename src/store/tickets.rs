//! The `tickets` rows.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::ticket;

/// How many verified tickets of an account are neither resolved nor closed.
pub async fn open_of_account<C: ConnectionTrait>(conn: &C, account_id: Uuid) -> Result<u64, DbErr> {
    ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .filter(ticket::Column::Unverified.eq(false))
        .filter(ticket::Column::Status.is_not_in(["resolved", "closed"]))
        .count(conn)
        .await
}

/// The last `limit` tickets of an account, newest first.
pub async fn recent_of_account<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    limit: u64,
) -> Result<Vec<ticket::Model>, DbErr> {
    ticket::Entity::find()
        .filter(ticket::Column::AccountId.eq(account_id))
        .order_by_desc(ticket::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

//! The `identity_verifications` rows: how a support agent verified a
//! customer's identity on a ticket.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::entity::identity_verification;

pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    row: identity_verification::Model,
) -> Result<(), DbErr> {
    identity_verification::Entity::insert(identity_verification::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn by_id<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<identity_verification::Model>, DbErr> {
    identity_verification::Entity::find_by_id(id)
        .one(conn)
        .await
}

/// The newest verification of account `account_id` recorded on ticket
/// `ticket_id`, the one a factor reset relies on.
pub async fn latest_on_ticket<C: ConnectionTrait>(
    conn: &C,
    ticket_id: Uuid,
    account_id: Uuid,
) -> Result<Option<identity_verification::Model>, DbErr> {
    identity_verification::Entity::find()
        .filter(identity_verification::Column::TicketId.eq(ticket_id))
        .filter(identity_verification::Column::AccountId.eq(account_id))
        .order_by_desc(identity_verification::Column::Id)
        .one(conn)
        .await
}

//! Contact details: the account's phone and postal address, the history of
//! changes (`contact_changes`) and pending e-mail changes (`email_changes`).

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::{account, contact_change, email_change};

/// The newest change of `field` on an account.
pub async fn last_change<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    field: &str,
) -> Result<Option<contact_change::Model>, DbErr> {
    contact_change::Entity::find()
        .filter(contact_change::Column::AccountId.eq(account_id))
        .filter(contact_change::Column::Field.eq(field))
        .order_by_desc(contact_change::Column::Id)
        .one(conn)
        .await
}

/// The change of `field` recorded with event `event_id` on an account.
pub async fn change_of_event<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    event_id: Uuid,
    field: &str,
) -> Result<Option<contact_change::Model>, DbErr> {
    contact_change::Entity::find()
        .filter(contact_change::Column::EventId.eq(event_id))
        .filter(contact_change::Column::AccountId.eq(account_id))
        .filter(contact_change::Column::Field.eq(field))
        .one(conn)
        .await
}

pub async fn insert_change<C: ConnectionTrait>(
    conn: &C,
    row: contact_change::Model,
) -> Result<(), DbErr> {
    contact_change::Entity::insert(contact_change::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Up to `limit` changes of an account, newest first, older than `before`.
pub async fn changes<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    limit: u64,
    before: Option<Uuid>,
) -> Result<Vec<contact_change::Model>, DbErr> {
    let mut query = contact_change::Entity::find()
        .filter(contact_change::Column::AccountId.eq(account_id))
        .order_by_desc(contact_change::Column::Id)
        .limit(limit);
    if let Some(before) = before {
        query = query.filter(contact_change::Column::Id.lt(before));
    }
    query.all(conn).await
}

/// The newest e-mail change of an account still waiting at `now`.
pub async fn pending_email<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
) -> Result<Option<email_change::Model>, DbErr> {
    email_change::Entity::find()
        .filter(email_change::Column::AccountId.eq(account_id))
        .filter(email_change::Column::ConfirmedAt.is_null())
        .filter(email_change::Column::CancelledAt.is_null())
        .filter(email_change::Column::ExpiresAt.gt(now))
        .order_by_desc(email_change::Column::Id)
        .one(conn)
        .await
}

/// Cancels every waiting e-mail change of an account.
pub async fn cancel_pending_emails<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
) -> Result<(), DbErr> {
    email_change::Entity::update_many()
        .col_expr(email_change::Column::CancelledAt, Expr::value(now))
        .filter(email_change::Column::AccountId.eq(account_id))
        .filter(email_change::Column::ConfirmedAt.is_null())
        .filter(email_change::Column::CancelledAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn insert_email_change<C: ConnectionTrait>(
    conn: &C,
    row: email_change::Model,
) -> Result<(), DbErr> {
    email_change::Entity::insert(email_change::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A postal address as the account's columns hold it.
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<String>,
}

/// Sets the phone (when `phone` is given; `Some(None)` removes it) and the
/// postal address (when given) of an account.
pub async fn update_details<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    phone: Option<Option<String>>,
    address: Option<Address>,
    now: i64,
) -> Result<(), DbErr> {
    let mut change = account::Entity::update_many()
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id));
    if let Some(phone) = phone {
        change = change.col_expr(account::Column::Phone, Expr::value(phone));
    }
    if let Some(address) = address {
        change = change
            .col_expr(account::Column::AddressLine1, Expr::value(address.line1))
            .col_expr(account::Column::AddressLine2, Expr::value(address.line2))
            .col_expr(
                account::Column::PostalCode,
                Expr::value(address.postal_code),
            )
            .col_expr(account::Column::City, Expr::value(address.city))
            .col_expr(
                account::Column::CountryCode,
                Expr::value(address.country_code),
            );
    }
    change.exec(conn).await?;
    Ok(())
}

/// Sets the contact e-mail of an account, only while it is `current` when
/// given; `false` when it was not.
pub async fn set_email<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    email: String,
    current: Option<String>,
    now: i64,
) -> Result<bool, DbErr> {
    let mut update = account::Entity::update_many()
        .col_expr(account::Column::Email, Expr::value(email))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id));
    if let Some(current) = current {
        update = update.filter(account::Column::Email.eq(current));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

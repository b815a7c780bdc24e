//! Single-use links (password reset, "this wasn't me" report, e-mail
//! confirmation): one lookup and one compare-and-set for all three tables.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr,
    EntityTrait, QueryFilter,
};
use uuid::Uuid;

use crate::entity::{email_change, report_token, reset_token};

/// The columns a single-use table has under its own names.
pub struct Columns<C> {
    pub id: C,
    pub token_hash: C,
    /// Set once, when the link is used.
    pub used_at: C,
    /// Set when the link is withdrawn before use.
    pub withdrawn_at: C,
    pub expires_at: C,
}

/// A table of single-use links.
pub trait SingleUse: EntityTrait {
    fn columns() -> Columns<Self::Column>;
    fn id(row: &Self::Model) -> Uuid;
    fn account_id(row: &Self::Model) -> Uuid;
    /// Used or withdrawn.
    fn spent(row: &Self::Model) -> bool;
    fn expires_at(row: &Self::Model) -> i64;
}

/// What a presented link's hash finds.
pub enum Presented<M> {
    /// No row has this hash.
    Unknown,
    /// Used or withdrawn.
    Spent,
    Expired,
    Live(M),
}

/// The row whose hash is `token_hash`, as of `now`.
pub async fn find<T: SingleUse, C: ConnectionTrait>(
    conn: &C,
    token_hash: &str,
    now: i64,
) -> Result<Presented<T::Model>, DbErr> {
    let row = T::find()
        .filter(T::columns().token_hash.eq(token_hash))
        .one(conn)
        .await?;
    Ok(match row {
        None => Presented::Unknown,
        Some(row) if T::spent(&row) => Presented::Spent,
        Some(row) if T::expires_at(&row) <= now => Presented::Expired,
        Some(row) => Presented::Live(row),
    })
}

/// Marks row `id` used at `now`, if it is still unused, not withdrawn and
/// not expired. Of concurrent uses of one link exactly one gets `true`.
pub async fn consume<T: SingleUse, C: ConnectionTrait>(
    txn: &C,
    id: Uuid,
    now: i64,
) -> Result<bool, DbErr> {
    let columns = T::columns();
    let done = T::update_many()
        .col_expr(columns.used_at, Expr::value(now))
        .filter(columns.id.eq(id))
        .filter(columns.used_at.is_null())
        .filter(columns.withdrawn_at.is_null())
        .filter(columns.expires_at.gt(now))
        .exec(txn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// `SingleUse` for a table, given its used and withdrawn columns (the
/// field and the column name of each).
macro_rules! single_use {
    ($table:ident, $used:ident / $Used:ident, $withdrawn:ident / $Withdrawn:ident) => {
        impl SingleUse for $table::Entity {
            fn columns() -> Columns<$table::Column> {
                use $table::Column as C;
                Columns {
                    id: C::Id,
                    token_hash: C::TokenHash,
                    used_at: C::$Used,
                    withdrawn_at: C::$Withdrawn,
                    expires_at: C::ExpiresAt,
                }
            }
            fn id(row: &$table::Model) -> Uuid {
                row.id
            }
            fn account_id(row: &$table::Model) -> Uuid {
                row.account_id
            }
            fn spent(row: &$table::Model) -> bool {
                row.$used.is_some() || row.$withdrawn.is_some()
            }
            fn expires_at(row: &$table::Model) -> i64 {
                row.expires_at
            }
        }
    };
}

single_use!(
    reset_token,
    used_at / UsedAt,
    invalidated_at / InvalidatedAt
);
single_use!(
    report_token,
    used_at / UsedAt,
    invalidated_at / InvalidatedAt
);
single_use!(
    email_change,
    confirmed_at / ConfirmedAt,
    cancelled_at / CancelledAt
);

/// Stores a new "this wasn't me" link (its hash) for an account.
pub async fn insert_report<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    token_hash: String,
    event_id: Option<Uuid>,
    now: i64,
    expires_at: i64,
) -> Result<(), DbErr> {
    report_token::Entity::insert(report_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        token_hash: Set(token_hash),
        event_id: Set(event_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        invalidated_at: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Withdraws every unused "this wasn't me" link of an account; answers how
/// many.
pub async fn withdraw_reports<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
) -> Result<u64, DbErr> {
    Ok(report_token::Entity::update_many()
        .col_expr(report_token::Column::InvalidatedAt, Expr::value(now))
        .filter(report_token::Column::AccountId.eq(account_id))
        .filter(report_token::Column::UsedAt.is_null())
        .filter(report_token::Column::InvalidatedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Withdraws every unused reset link of an account but `except`; answers
/// how many.
pub async fn withdraw_resets<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    except: Option<Uuid>,
    now: i64,
) -> Result<u64, DbErr> {
    let mut update = reset_token::Entity::update_many()
        .col_expr(reset_token::Column::InvalidatedAt, Expr::value(now))
        .filter(reset_token::Column::AccountId.eq(account_id))
        .filter(reset_token::Column::UsedAt.is_null())
        .filter(reset_token::Column::InvalidatedAt.is_null());
    if let Some(except) = except {
        update = update.filter(reset_token::Column::Id.ne(except));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

pub async fn insert_reset<C: ConnectionTrait>(
    conn: &C,
    row: reset_token::Model,
) -> Result<(), DbErr> {
    reset_token::Entity::insert(reset_token::ActiveModel::from(row).reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

//! The `accounts` rows, and what hangs off an account's second factor.

use sea_orm::{
    sea_query::{Expr, ExprTrait, Func},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::{
    entity::{account, recovery_code},
    kinds::PasswordState,
};

pub async fn by_id<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find_by_id(id).one(conn).await
}

pub async fn by_login<C: ConnectionTrait>(
    conn: &C,
    login: &str,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::Login.eq(login))
        .one(conn)
        .await
}

/// Inserts a new account; a taken login is the database's unique
/// violation, for the caller to tell.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: account::Model) -> Result<(), DbErr> {
    account::Entity::insert(account::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The language code of account `id`, if it exists.
pub async fn locale<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<String>, DbErr> {
    account::Entity::find_by_id(id)
        .select_only()
        .column(account::Column::Locale)
        .into_tuple()
        .one(conn)
        .await
}

/// Removes the TOTP secret (enrolled or pending) of an account and, unless
/// `keep_recovery_codes` (another factor remains), its recovery codes.
pub async fn remove_second_factor<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    keep_recovery_codes: bool,
    now: i64,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(
            account::Column::TotpSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            account::Column::TotpPendingSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            account::Column::TotpPendingAt,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            account::Column::TotpEnabledAt,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id))
        .exec(conn)
        .await?;
    if keep_recovery_codes {
        return Ok(());
    }
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    super::challenges::revoke_all(conn, account_id, now).await?;
    Ok(())
}

/// Sets the password state of account `id` to `to`, only while it is
/// `from` (`Some`) or not `to` (`None`); `false` when it was not.
pub async fn set_password_state<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    from: Option<PasswordState>,
    to: PasswordState,
    now: i64,
) -> Result<bool, DbErr> {
    let update = account::Entity::update_many()
        .col_expr(account::Column::PasswordState, Expr::value(to.as_str()))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(id));
    let update = match from {
        Some(from) => update.filter(account::Column::PasswordState.eq(from.as_str())),
        None => update.filter(account::Column::PasswordState.ne(to.as_str())),
    };
    Ok(update.exec(conn).await?.rows_affected > 0)
}

/// The accounts (at most `limit` when given) whose login (`by_email`
/// false) or contact e-mail (true) is `typed`, compared in lower case.
pub async fn matching<C: ConnectionTrait>(
    conn: &C,
    typed: &str,
    by_email: bool,
    limit: Option<u64>,
) -> Result<Vec<account::Model>, DbErr> {
    let column = if by_email {
        account::Column::Email
    } else {
        account::Column::Login
    };
    account::Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(column))).eq(typed))
        .limit(limit)
        .all(conn)
        .await
}

/// Serialises the writers of one account for the rest of the transaction
/// (a row lock on PostgreSQL, the write lock on SQLite) with a write that
/// changes nothing.
pub async fn lock<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(
            account::Column::UpdatedAt,
            Expr::col(account::Column::UpdatedAt),
        )
        .filter(account::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Sets the password hash of account `id`: with `state` set as well, or
/// (`state` `None`) only while the state is `only_while`; `false` when
/// nothing was written.
pub async fn set_password<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    hash: String,
    state: Option<PasswordState>,
    only_while: Option<PasswordState>,
    now: i64,
) -> Result<bool, DbErr> {
    let mut update = account::Entity::update_many()
        .col_expr(account::Column::PasswordHash, Expr::value(hash))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(id));
    if let Some(state) = state {
        update = update.col_expr(account::Column::PasswordState, Expr::value(state.as_str()));
    }
    if let Some(only_while) = only_while {
        update = update.filter(account::Column::PasswordState.eq(only_while.as_str()));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

//! An account's second factor: its TOTP columns and recovery codes (their
//! hashes).

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
};
use uuid::Uuid;

use crate::entity::{account, recovery_code};

/// Records a TOTP enrolment begun at `at` (its secret sealed).
pub async fn begin_enrollment<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    sealed: String,
    at: i64,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::TotpPendingSecret, Expr::value(sealed))
        .col_expr(account::Column::TotpPendingAt, Expr::value(at))
        .filter(account::Column::Id.eq(account_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Makes the pending secret the account's, only while no secret is enrolled
/// and the pending one is still `pending` (as sealed); `step` is the step
/// of the confirming code, which cannot be used again. `false` when it was
/// not.
pub async fn activate<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    pending: String,
    step: i64,
    now: i64,
) -> Result<bool, DbErr> {
    let activated = account::Entity::update_many()
        .col_expr(account::Column::TotpSecret, Expr::value(pending.clone()))
        .col_expr(
            account::Column::TotpPendingSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            account::Column::TotpPendingAt,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(account::Column::TotpLastStep, Expr::value(step))
        .col_expr(account::Column::TotpEnabledAt, Expr::value(now))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::TotpSecret.is_null())
        .filter(account::Column::TotpPendingSecret.eq(pending))
        .exec(conn)
        .await?;
    Ok(activated.rows_affected == 1)
}

/// Accepts TOTP step `step` for an account, only if it is later than every
/// step accepted before (each code works once); `false` for a replay.
pub async fn accept_step<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    step: i64,
) -> Result<bool, DbErr> {
    let accepted = account::Entity::update_many()
        .col_expr(account::Column::TotpLastStep, Expr::value(step))
        .filter(account::Column::Id.eq(account_id))
        .filter(
            Expr::col(account::Column::TotpLastStep)
                .is_null()
                .or(Expr::col(account::Column::TotpLastStep).lt(step)),
        )
        .exec(conn)
        .await?;
    Ok(accepted.rows_affected == 1)
}

/// Stores new recovery codes (their hashes) for an account.
pub async fn insert_recovery_codes<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    code_hashes: Vec<String>,
    now: i64,
) -> Result<(), DbErr> {
    let rows = code_hashes
        .into_iter()
        .map(|code_hash| recovery_code::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(account_id),
            code_hash: Set(code_hash),
            created_at: Set(now),
            used_at: Set(None),
        });
    recovery_code::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn delete_recovery_codes<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<(), DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Uses the unused recovery code of an account whose hash is `code_hash`;
/// `false` when there is none (wrong or already used).
pub async fn use_recovery_code<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    code_hash: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let used = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .filter(recovery_code::Column::CodeHash.eq(code_hash))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    Ok(used.rows_affected == 1)
}

pub async fn recovery_codes_left<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
) -> Result<u64, DbErr> {
    recovery_code::Entity::find()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(conn)
        .await
}

/// Records a completed login of an account.
pub async fn set_last_login<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    now: i64,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::LastLoginAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id))
        .exec(conn)
        .await?;
    Ok(())
}

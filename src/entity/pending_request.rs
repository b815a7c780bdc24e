//! An anonymous request answered OK whose work is still to be done; what
//! the caller typed is sealed, bound to the row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pending_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// "password_reset" or "login_recovery".
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub input_sealed: String,
    pub client_address: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub user_agent: Option<String>,
    pub created_at: i64,
    /// Not run before then: the lease of the worker that claimed it, or the
    /// pause before the next attempt.
    pub run_after: i64,
    /// Claims so far; a claim is a compare-and-set on this count.
    pub attempts: i32,
    /// Set when it was given up (kept for the operator, never run again).
    pub failed_at: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

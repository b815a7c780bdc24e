//! A support reset of an account's second factor: scheduled, announced,
//! cancellable until `due_at`; only the SHA-256 of its cancel token is kept.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "factor_resets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub ticket_id: Uuid,
    pub verification_id: Uuid,
    pub requested_by: String,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    pub requested_at: i64,
    pub due_at: i64,
    /// The enrolment the reset was requested against.
    pub totp_enabled_at: Option<i64>,
    #[sea_orm(unique)]
    pub cancel_token_hash: String,
    pub status: String,
    /// The account while pending, NULL after (at most one pending per account).
    #[sea_orm(unique)]
    pub pending_account_id: Option<Uuid>,
    pub cancelled_at: Option<i64>,
    pub cancelled_via: Option<String>,
    pub completed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A support ticket; recovery tickets opened without login are unverified.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub reference: String,
    pub account_id: Option<Uuid>,
    pub category: String,
    pub status: String,
    pub priority: String,
    pub subject: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub assignee: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub linked_event_ids: String,
    pub unverified: bool,
    pub client_request_id: Option<String>,
    pub recovery_login_or_email: Option<String>,
    pub recovery_reachable_contact: Option<String>,
    pub client_address: Option<String>,
    /// All messages, internal notes included.
    pub message_count: i32,
    /// Messages the customer sees.
    pub public_message_count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

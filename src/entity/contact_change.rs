//! One change of a contact detail: old and new value, when, by whom, from where.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub field: String,
    #[sea_orm(column_type = "Text")]
    pub old_value: String,
    #[sea_orm(column_type = "Text")]
    pub new_value: String,
    pub changed_at: i64,
    pub actor_kind: String,
    pub actor_name: Option<String>,
    pub client_address: Option<String>,
    pub event_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A password suspension decided by the security team (or a service), and how it ended.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "suspensions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    #[sea_orm(column_type = "Text")]
    pub note: String,
    #[sea_orm(column_type = "Text")]
    pub evidence_event_ids: String,
    pub suspended_at: i64,
    pub suspended_by_kind: String,
    pub suspended_by_name: Option<String>,
    pub lifted_at: Option<i64>,
    pub lifted_by_kind: Option<String>,
    pub lifted_by_name: Option<String>,
    pub lift_method: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A credential of an internal service, a support agent or the security team; only the SHA-256 of its secret is kept.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub name: String,
    pub role: String,
    #[sea_orm(unique)]
    pub secret_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The client certificate identity this credential must come with.
    pub bound_certificate: Option<String>,
    /// The operator who created it (`gardien credential create`).
    pub created_by: Option<String>,
    /// The operator who revoked it.
    pub revoked_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A customer account: identity, contact details and password state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub login: String,
    pub email: String,
    pub phone: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<String>,
    pub locale: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub password_hash: Option<String>,
    pub password_state: String,
    pub last_login_at: Option<i64>,
    /// The active TOTP secret, sealed (AES-256-GCM, bound to the account id).
    #[sea_orm(column_type = "Text", nullable)]
    pub totp_secret: Option<String>,
    /// A secret being enrolled, sealed, until confirmed with a code.
    #[sea_orm(column_type = "Text", nullable)]
    pub totp_pending_secret: Option<String>,
    pub totp_pending_at: Option<i64>,
    /// The last accepted time step: a code is accepted once (compare-and-set).
    pub totp_last_step: Option<i64>,
    pub totp_enabled_at: Option<i64>,
    /// Passkeys registered (kept with the account so that `Login` knows of
    /// them from the row it reads anyway).
    pub passkey_count: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A WebAuthn ceremony in progress: the server's half (challenge and
//! allowed credentials) kept until the browser's answer comes back, once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkey_ceremonies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// SHA-256 of the ceremony token handed to the client, when the client
    /// names the ceremony by a token (registration, passwordless login).
    #[sea_orm(unique)]
    pub token_hash: Option<String>,
    /// The login challenge or reset link the ceremony belongs to, when the
    /// client names it by that instead.
    #[sea_orm(unique)]
    pub bound_to: Option<Uuid>,
    /// "register", "login", "second_factor" or "reset".
    pub purpose: String,
    pub account_id: Option<Uuid>,
    /// webauthn-rs's ceremony state, as JSON.
    #[sea_orm(column_type = "Text")]
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

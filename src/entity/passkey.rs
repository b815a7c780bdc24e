//! A passkey (WebAuthn credential) of an account: its public key and
//! counters as webauthn-rs keeps them (JSON), never a private key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkeys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    /// The credential id, base64url: unique across accounts.
    #[sea_orm(unique)]
    pub credential_id: String,
    pub name: String,
    /// webauthn-rs's `Passkey`, as JSON.
    #[sea_orm(column_type = "Text")]
    pub credential: String,
    /// The last signature counter seen (0 for authenticators without one).
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

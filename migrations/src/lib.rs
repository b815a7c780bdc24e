//! Database migrations of gardien, one file per migration, applied in order
//! at start-up of `gardien serve` and by `gardien migrate`.
//!
//! Times are stored as Unix milliseconds (`BIGINT`) so that comparisons are
//! exact and identical on SQLite and PostgreSQL; identifiers are UUIDs
//! (version 7, so they sort by creation time).

pub use sea_orm_migration::prelude::*;
/// The table of applied migrations, read by the readiness probe.
pub use sea_orm_migration::seaql_migrations;

mod m20261128_000001_foundation;
mod m20261128_000002_login;
mod m20261128_000003_two_factor;
mod m20261128_000004_support;
mod m20261128_000005_information_centre;
mod m20261128_000006_revocation_clock;
mod m20261203_000001_outbox_secret_sealed;
mod m20261203_000003_factor_reset;
mod m20261203_000004_compromised_passwords;
mod m20261203_000005_report_token_invalidation;
mod m20261203_000006_pending_requests;
mod m20261204_000001_credential_certificate_binding;
mod m20261204_000002_credential_operators;
mod m20261205_000001_passkeys;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_foundation::Migration),
            Box::new(m20261128_000002_login::Migration),
            Box::new(m20261128_000003_two_factor::Migration),
            Box::new(m20261128_000004_support::Migration),
            Box::new(m20261128_000005_information_centre::Migration),
            Box::new(m20261128_000006_revocation_clock::Migration),
            Box::new(m20261203_000001_outbox_secret_sealed::Migration),
            Box::new(m20261203_000003_factor_reset::Migration),
            Box::new(m20261203_000004_compromised_passwords::Migration),
            Box::new(m20261203_000005_report_token_invalidation::Migration),
            Box::new(m20261203_000006_pending_requests::Migration),
            Box::new(m20261204_000001_credential_certificate_binding::Migration),
            Box::new(m20261204_000002_credential_operators::Migration),
            Box::new(m20261205_000001_passkeys::Migration),
        ]
    }
}

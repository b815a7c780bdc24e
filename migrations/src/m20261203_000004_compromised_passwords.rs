//! Passwords known to be compromised for an account (in use when it was
//! suspended, or when the customer disputed an event or reported a change):
//! their argon2id PHC hashes, each with its own salt, never the password, so
//! that a new password can be checked against them.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_foundation::Accounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CompromisedPasswords {
    Table,
    Id,
    AccountId,
    PasswordHash,
    Cause,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CompromisedPasswords::Table)
                    .col(uuid(CompromisedPasswords::Id).primary_key())
                    .col(uuid(CompromisedPasswords::AccountId))
                    .col(text(CompromisedPasswords::PasswordHash))
                    .col(string(CompromisedPasswords::Cause))
                    .col(big_integer(CompromisedPasswords::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CompromisedPasswords::Table, CompromisedPasswords::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_compromised_passwords_account_recorded")
                    .table(CompromisedPasswords::Table)
                    .col(CompromisedPasswords::AccountId)
                    .col(CompromisedPasswords::RecordedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CompromisedPasswords::Table).to_owned())
            .await
    }
}

//! Passkeys (WebAuthn credentials), the ceremonies in progress, and the
//! count of passkeys on the account row (read by `Login` with the rest of
//! the account, so that a password login makes no extra query).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_foundation::Accounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    AccountId,
    CredentialId,
    Name,
    Credential,
    SignCount,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum PasskeyCeremonies {
    Table,
    Id,
    TokenHash,
    BoundTo,
    Purpose,
    AccountId,
    State,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AccountsPasskeys {
    PasskeyCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .col(uuid(Passkeys::Id).primary_key())
                    .col(uuid(Passkeys::AccountId))
                    .col(string_uniq(Passkeys::CredentialId))
                    .col(string(Passkeys::Name))
                    .col(text(Passkeys::Credential))
                    .col(big_integer(Passkeys::SignCount))
                    .col(big_integer(Passkeys::CreatedAt))
                    .col(big_integer_null(Passkeys::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Passkeys::Table, Passkeys::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_account")
                    .table(Passkeys::Table)
                    .col(Passkeys::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PasskeyCeremonies::Table)
                    .col(uuid(PasskeyCeremonies::Id).primary_key())
                    .col(string_null(PasskeyCeremonies::TokenHash).unique_key())
                    .col(uuid_null(PasskeyCeremonies::BoundTo).unique_key())
                    .col(string(PasskeyCeremonies::Purpose))
                    .col(uuid_null(PasskeyCeremonies::AccountId))
                    .col(text(PasskeyCeremonies::State))
                    .col(big_integer(PasskeyCeremonies::CreatedAt))
                    .col(big_integer(PasskeyCeremonies::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkey_ceremonies_expires")
                    .table(PasskeyCeremonies::Table)
                    .col(PasskeyCeremonies::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(integer(AccountsPasskeys::PasskeyCount).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(AccountsPasskeys::PasskeyCount)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PasskeyCeremonies::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Passkeys::Table).to_owned())
            .await
    }
}

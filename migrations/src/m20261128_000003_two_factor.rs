//! Two-factor authentication: the TOTP secret (sealed with AES-256-GCM) and
//! the last accepted time step on the account, single-use recovery codes,
//! and pending login challenges.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_foundation::Accounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// New columns of `accounts` (the names are the column names).
#[derive(DeriveIden)]
#[allow(clippy::enum_variant_names)]
enum TwoFactor {
    TotpSecret,
    TotpPendingSecret,
    TotpPendingAt,
    TotpLastStep,
    TotpEnabledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [
            text_null(TwoFactor::TotpSecret),
            text_null(TwoFactor::TotpPendingSecret),
            big_integer_null(TwoFactor::TotpPendingAt),
            big_integer_null(TwoFactor::TotpLastStep),
            big_integer_null(TwoFactor::TotpEnabledAt),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(uuid(RecoveryCodes::Id).primary_key())
                    .col(uuid(RecoveryCodes::AccountId))
                    .col(string_uniq(RecoveryCodes::CodeHash))
                    .col(big_integer(RecoveryCodes::CreatedAt))
                    .col(big_integer_null(RecoveryCodes::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecoveryCodes::Table, RecoveryCodes::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_account")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::AccountId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginChallenges::Table)
                    .col(uuid(LoginChallenges::Id).primary_key())
                    .col(uuid(LoginChallenges::AccountId))
                    .col(string_uniq(LoginChallenges::TokenHash))
                    .col(big_integer(LoginChallenges::CreatedAt))
                    .col(big_integer(LoginChallenges::ExpiresAt))
                    .col(integer(LoginChallenges::WrongCodes))
                    .col(big_integer_null(LoginChallenges::UsedAt))
                    .col(big_integer_null(LoginChallenges::RevokedAt))
                    .col(string_null(LoginChallenges::ClientAddress))
                    .col(string_null(LoginChallenges::UserAgent))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LoginChallenges::Table, LoginChallenges::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_challenges_account")
                    .table(LoginChallenges::Table)
                    .col(LoginChallenges::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginChallenges::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        for column in [
            TwoFactor::TotpSecret,
            TwoFactor::TotpPendingSecret,
            TwoFactor::TotpPendingAt,
            TwoFactor::TotpLastStep,
            TwoFactor::TotpEnabledAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    AccountId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum LoginChallenges {
    Table,
    Id,
    AccountId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    WrongCodes,
    UsedAt,
    RevokedAt,
    ClientAddress,
    UserAgent,
}

//! Login and recovery: sessions, the per-login failure counter, password
//! suspensions and reset tokens.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_foundation::Accounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(uuid(Sessions::Id).primary_key())
                    .col(uuid(Sessions::AccountId))
                    .col(string_uniq(Sessions::TokenHash))
                    .col(big_integer(Sessions::CreatedAt))
                    .col(big_integer(Sessions::LastSeenAt))
                    .col(big_integer(Sessions::ExpiresAt))
                    .col(big_integer_null(Sessions::RevokedAt))
                    .col(string_null(Sessions::RevokeReason))
                    .col(string_null(Sessions::ClientAddress))
                    .col(string_null(Sessions::UserAgent))
                    .col(boolean(Sessions::SecondFactorUsed))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_account")
                    .table(Sessions::Table)
                    .col(Sessions::AccountId)
                    .to_owned(),
            )
            .await?;

        // Keyed by a hash of the normalised login identifier, whether or not an
        // account has it, so that back-off never tells which logins exist.
        manager
            .create_table(
                Table::create()
                    .table(LoginThrottle::Table)
                    .col(string(LoginThrottle::LoginKey).primary_key())
                    .col(integer(LoginThrottle::Failures))
                    .col(big_integer(LoginThrottle::LastFailureAt))
                    .col(big_integer_null(LoginThrottle::BackoffUntil))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Suspensions::Table)
                    .col(uuid(Suspensions::Id).primary_key())
                    .col(uuid(Suspensions::AccountId))
                    .col(string(Suspensions::Reason))
                    .col(text(Suspensions::Note))
                    .col(text(Suspensions::EvidenceEventIds))
                    .col(big_integer(Suspensions::SuspendedAt))
                    .col(string(Suspensions::SuspendedByKind))
                    .col(string_null(Suspensions::SuspendedByName))
                    .col(big_integer_null(Suspensions::LiftedAt))
                    .col(string_null(Suspensions::LiftedByKind))
                    .col(string_null(Suspensions::LiftedByName))
                    .col(string_null(Suspensions::LiftMethod))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Suspensions::Table, Suspensions::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_suspensions_account")
                    .table(Suspensions::Table)
                    .col(Suspensions::AccountId)
                    .col(Suspensions::SuspendedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ResetTokens::Table)
                    .col(uuid(ResetTokens::Id).primary_key())
                    .col(uuid(ResetTokens::AccountId))
                    .col(string_uniq(ResetTokens::TokenHash))
                    .col(big_integer(ResetTokens::CreatedAt))
                    .col(big_integer(ResetTokens::ExpiresAt))
                    .col(big_integer_null(ResetTokens::UsedAt))
                    .col(big_integer_null(ResetTokens::InvalidatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ResetTokens::Table, ResetTokens::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reset_tokens_account")
                    .table(ResetTokens::Table)
                    .col(ResetTokens::AccountId)
                    .col(ResetTokens::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ResetTokens::Table.into_iden(),
            Suspensions::Table.into_iden(),
            LoginThrottle::Table.into_iden(),
            Sessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    AccountId,
    TokenHash,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
    RevokeReason,
    ClientAddress,
    UserAgent,
    SecondFactorUsed,
}

#[derive(DeriveIden)]
enum LoginThrottle {
    Table,
    LoginKey,
    Failures,
    LastFailureAt,
    BackoffUntil,
}

#[derive(DeriveIden)]
enum Suspensions {
    Table,
    Id,
    AccountId,
    Reason,
    Note,
    EvidenceEventIds,
    SuspendedAt,
    SuspendedByKind,
    SuspendedByName,
    LiftedAt,
    LiftedByKind,
    LiftedByName,
    LiftMethod,
}

#[derive(DeriveIden)]
enum ResetTokens {
    Table,
    Id,
    AccountId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    InvalidatedAt,
}

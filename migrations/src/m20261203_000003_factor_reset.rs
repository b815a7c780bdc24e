//! Support resets of the second factor: the identity verifications agents
//! record on tickets, and the delayed, cancellable factor resets that need
//! one.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_foundation::Accounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IdentityVerifications {
    Table,
    Id,
    TicketId,
    AccountId,
    Method,
    Agent,
    EvidenceReference,
    VerifiedAt,
}

#[derive(DeriveIden)]
enum FactorResets {
    Table,
    Id,
    AccountId,
    TicketId,
    VerificationId,
    RequestedBy,
    Reason,
    RequestedAt,
    DueAt,
    TotpEnabledAt,
    CancelTokenHash,
    Status,
    /// The account id while the reset is pending, NULL after: a unique
    /// column, so that an account has at most one pending reset on both
    /// engines (NULLs never collide).
    PendingAccountId,
    CancelledAt,
    CancelledVia,
    CompletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdentityVerifications::Table)
                    .col(uuid(IdentityVerifications::Id).primary_key())
                    .col(uuid(IdentityVerifications::TicketId))
                    .col(uuid(IdentityVerifications::AccountId))
                    .col(string(IdentityVerifications::Method))
                    .col(string(IdentityVerifications::Agent))
                    .col(string(IdentityVerifications::EvidenceReference))
                    .col(big_integer(IdentityVerifications::VerifiedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                IdentityVerifications::Table,
                                IdentityVerifications::TicketId,
                            )
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                IdentityVerifications::Table,
                                IdentityVerifications::AccountId,
                            )
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_identity_verifications_ticket")
                    .table(IdentityVerifications::Table)
                    .col(IdentityVerifications::TicketId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FactorResets::Table)
                    .col(uuid(FactorResets::Id).primary_key())
                    .col(uuid(FactorResets::AccountId))
                    .col(uuid(FactorResets::TicketId))
                    .col(uuid(FactorResets::VerificationId))
                    .col(string(FactorResets::RequestedBy))
                    .col(text(FactorResets::Reason))
                    .col(big_integer(FactorResets::RequestedAt))
                    .col(big_integer(FactorResets::DueAt))
                    .col(big_integer_null(FactorResets::TotpEnabledAt))
                    .col(string_uniq(FactorResets::CancelTokenHash))
                    .col(string(FactorResets::Status))
                    .col(uuid_null(FactorResets::PendingAccountId).unique_key())
                    .col(big_integer_null(FactorResets::CancelledAt))
                    .col(string_null(FactorResets::CancelledVia))
                    .col(big_integer_null(FactorResets::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(FactorResets::Table, FactorResets::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(FactorResets::Table, FactorResets::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(FactorResets::Table, FactorResets::VerificationId)
                            .to(IdentityVerifications::Table, IdentityVerifications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The background task looks for due pending resets.
        manager
            .create_index(
                Index::create()
                    .name("idx_factor_resets_status_due")
                    .table(FactorResets::Table)
                    .col(FactorResets::Status)
                    .col(FactorResets::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FactorResets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(IdentityVerifications::Table).to_owned())
            .await
    }
}

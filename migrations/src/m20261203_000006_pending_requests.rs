//! Anonymous requests answered OK whose work is still to be done (a reset
//! link to send, a login reminder): recorded before the answer, so that a
//! restart or a full in-memory queue never loses one. What the caller typed
//! is sealed (it may be a password typed in the wrong field); the row is
//! deleted in the transaction that does the work.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PendingRequests {
    Table,
    Id,
    Kind,
    InputSealed,
    ClientAddress,
    UserAgent,
    CreatedAt,
    RunAfter,
    Attempts,
    FailedAt,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PendingRequests::Table)
                    .col(uuid(PendingRequests::Id).primary_key())
                    .col(string(PendingRequests::Kind))
                    .col(text(PendingRequests::InputSealed))
                    .col(string_null(PendingRequests::ClientAddress))
                    .col(text_null(PendingRequests::UserAgent))
                    .col(big_integer(PendingRequests::CreatedAt))
                    .col(big_integer(PendingRequests::RunAfter))
                    .col(integer(PendingRequests::Attempts))
                    .col(big_integer_null(PendingRequests::FailedAt))
                    .col(text_null(PendingRequests::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_pending_requests_run_after")
                    .table(PendingRequests::Table)
                    .col(PendingRequests::RunAfter)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PendingRequests::Table).to_owned())
            .await
    }
}

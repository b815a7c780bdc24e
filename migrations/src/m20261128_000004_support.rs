//! Support tickets and their messages.

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
                    .table(Tickets::Table)
                    .col(uuid(Tickets::Id).primary_key())
                    .col(string_uniq(Tickets::Reference))
                    .col(uuid_null(Tickets::AccountId))
                    .col(string(Tickets::Category))
                    .col(string(Tickets::Status))
                    .col(string(Tickets::Priority))
                    .col(string(Tickets::Subject))
                    .col(big_integer(Tickets::CreatedAt))
                    .col(big_integer(Tickets::UpdatedAt))
                    .col(string_null(Tickets::Assignee))
                    .col(text(Tickets::LinkedEventIds))
                    .col(boolean(Tickets::Unverified))
                    .col(string_null(Tickets::ClientRequestId))
                    .col(string_null(Tickets::RecoveryLoginOrEmail))
                    .col(string_null(Tickets::RecoveryReachableContact))
                    .col(string_null(Tickets::ClientAddress))
                    .col(integer(Tickets::MessageCount))
                    .col(integer(Tickets::PublicMessageCount))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tickets::Table, Tickets::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A retried CreateTicket finds the first ticket; two concurrent
        // retries cannot both insert.
        manager
            .create_index(
                Index::create()
                    .name("idx_tickets_account_request")
                    .table(Tickets::Table)
                    .col(Tickets::AccountId)
                    .col(Tickets::ClientRequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tickets_status_created")
                    .table(Tickets::Table)
                    .col(Tickets::Status)
                    .col(Tickets::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TicketMessages::Table)
                    .col(uuid(TicketMessages::Id).primary_key())
                    .col(uuid(TicketMessages::TicketId))
                    .col(string(TicketMessages::AuthorKind))
                    .col(string_null(TicketMessages::AuthorName))
                    .col(text(TicketMessages::Body))
                    .col(boolean(TicketMessages::InternalNote))
                    .col(big_integer(TicketMessages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TicketMessages::Table, TicketMessages::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ticket_messages_ticket")
                    .table(TicketMessages::Table)
                    .col(TicketMessages::TicketId)
                    .col(TicketMessages::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TicketMessages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tickets::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    Reference,
    AccountId,
    Category,
    Status,
    Priority,
    Subject,
    CreatedAt,
    UpdatedAt,
    Assignee,
    LinkedEventIds,
    Unverified,
    ClientRequestId,
    RecoveryLoginOrEmail,
    RecoveryReachableContact,
    ClientAddress,
    MessageCount,
    PublicMessageCount,
}

#[derive(DeriveIden)]
enum TicketMessages {
    Table,
    Id,
    TicketId,
    AuthorKind,
    AuthorName,
    Body,
    InternalNote,
    CreatedAt,
}

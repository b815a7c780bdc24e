//! The information centre: idempotent activity from other services, "this
//! wasn't me" links, contact-detail history and e-mail change requests.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_foundation::Accounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    ActorName,
    SourceEventId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SecurityEvents::Table)
                    .add_column(string_null(SecurityEvents::SourceEventId))
                    .to_owned(),
            )
            .await?;
        // A service's own event id makes RecordActivity idempotent.
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_source")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::ActorName)
                    .col(SecurityEvents::SourceEventId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReportTokens::Table)
                    .col(uuid(ReportTokens::Id).primary_key())
                    .col(uuid(ReportTokens::AccountId))
                    .col(string_uniq(ReportTokens::TokenHash))
                    .col(uuid_null(ReportTokens::EventId))
                    .col(big_integer(ReportTokens::CreatedAt))
                    .col(big_integer(ReportTokens::ExpiresAt))
                    .col(big_integer_null(ReportTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReportTokens::Table, ReportTokens::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactChanges::Table)
                    .col(uuid(ContactChanges::Id).primary_key())
                    .col(uuid(ContactChanges::AccountId))
                    .col(string(ContactChanges::Field))
                    .col(text(ContactChanges::OldValue))
                    .col(text(ContactChanges::NewValue))
                    .col(big_integer(ContactChanges::ChangedAt))
                    .col(string(ContactChanges::ActorKind))
                    .col(string_null(ContactChanges::ActorName))
                    .col(string_null(ContactChanges::ClientAddress))
                    .col(uuid_null(ContactChanges::EventId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactChanges::Table, ContactChanges::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_changes_account")
                    .table(ContactChanges::Table)
                    .col(ContactChanges::AccountId)
                    .col(ContactChanges::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailChanges::Table)
                    .col(uuid(EmailChanges::Id).primary_key())
                    .col(uuid(EmailChanges::AccountId))
                    .col(string(EmailChanges::NewEmail))
                    .col(string_uniq(EmailChanges::TokenHash))
                    .col(big_integer(EmailChanges::CreatedAt))
                    .col(big_integer(EmailChanges::ExpiresAt))
                    .col(big_integer_null(EmailChanges::ConfirmedAt))
                    .col(big_integer_null(EmailChanges::CancelledAt))
                    .col(string_null(EmailChanges::ClientAddress))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailChanges::Table, EmailChanges::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EmailChanges::Table.into_iden(),
            ContactChanges::Table.into_iden(),
            ReportTokens::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(Index::drop().name("idx_security_events_source").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SecurityEvents::Table)
                    .drop_column(SecurityEvents::SourceEventId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ReportTokens {
    Table,
    Id,
    AccountId,
    TokenHash,
    EventId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum ContactChanges {
    Table,
    Id,
    AccountId,
    Field,
    OldValue,
    NewValue,
    ChangedAt,
    ActorKind,
    ActorName,
    ClientAddress,
    EventId,
}

#[derive(DeriveIden)]
enum EmailChanges {
    Table,
    Id,
    AccountId,
    NewEmail,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    ConfirmedAt,
    CancelledAt,
    ClientAddress,
}

//! Accounts, service credentials, the security-event journal and the e-mail
//! outbox: the tables every capability stands on.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(uuid(Accounts::Id).primary_key())
                    .col(string_uniq(Accounts::Login))
                    .col(string(Accounts::Email))
                    .col(string_null(Accounts::Phone))
                    .col(string_null(Accounts::AddressLine1))
                    .col(string_null(Accounts::AddressLine2))
                    .col(string_null(Accounts::PostalCode))
                    .col(string_null(Accounts::City))
                    .col(string_null(Accounts::CountryCode))
                    .col(string(Accounts::Locale))
                    .col(text_null(Accounts::PasswordHash))
                    .col(string(Accounts::PasswordState))
                    .col(big_integer_null(Accounts::LastLoginAt))
                    .col(big_integer(Accounts::CreatedAt))
                    .col(big_integer(Accounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_accounts_email")
                    .table(Accounts::Table)
                    .col(Accounts::Email)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Credentials::Table)
                    .col(uuid(Credentials::Id).primary_key())
                    .col(string_uniq(Credentials::Name))
                    .col(string(Credentials::Role))
                    .col(string_uniq(Credentials::SecretHash))
                    .col(big_integer(Credentials::CreatedAt))
                    .col(big_integer_null(Credentials::RevokedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .col(uuid(SecurityEvents::Id).primary_key())
                    .col(uuid(SecurityEvents::AccountId))
                    .col(string(SecurityEvents::Kind))
                    .col(big_integer(SecurityEvents::OccurredAt))
                    .col(string(SecurityEvents::ActorKind))
                    .col(string_null(SecurityEvents::ActorName))
                    .col(string_null(SecurityEvents::ClientAddress))
                    .col(string_null(SecurityEvents::UserAgent))
                    .col(text(SecurityEvents::Details))
                    .col(big_integer_null(SecurityEvents::AcknowledgedAt))
                    .col(big_integer_null(SecurityEvents::DisputedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SecurityEvents::Table, SecurityEvents::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_account_time")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::AccountId)
                    .col(SecurityEvents::OccurredAt)
                    .col(SecurityEvents::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(uuid(Outbox::Id).primary_key())
                    .col(uuid_null(Outbox::AccountId))
                    .col(string(Outbox::Kind))
                    .col(string(Outbox::Recipient))
                    .col(string(Outbox::Locale))
                    .col(text(Outbox::Subject))
                    .col(text(Outbox::BodyText))
                    .col(text_null(Outbox::BodyHtml))
                    .col(string(Outbox::Status))
                    .col(integer(Outbox::Attempts))
                    .col(big_integer(Outbox::NextAttemptAt))
                    .col(big_integer_null(Outbox::LeaseUntil))
                    .col(text_null(Outbox::LastError))
                    .col(big_integer(Outbox::CreatedAt))
                    .col(big_integer_null(Outbox::SentAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_status_next")
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            SecurityEvents::Table.into_iden(),
            Credentials::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub enum Accounts {
    Table,
    Id,
    Login,
    Email,
    Phone,
    AddressLine1,
    AddressLine2,
    PostalCode,
    City,
    CountryCode,
    Locale,
    PasswordHash,
    PasswordState,
    LastLoginAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    Id,
    Name,
    Role,
    SecretHash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Id,
    AccountId,
    Kind,
    OccurredAt,
    ActorKind,
    ActorName,
    ClientAddress,
    UserAgent,
    Details,
    AcknowledgedAt,
    DisputedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    AccountId,
    Kind,
    Recipient,
    Locale,
    Subject,
    BodyText,
    BodyHtml,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LastError,
    CreatedAt,
    SentAt,
}

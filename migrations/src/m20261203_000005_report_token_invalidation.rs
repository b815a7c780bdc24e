//! A "this wasn't me" link can be revoked without being used: confirming a
//! new contact e-mail revokes the links mailed to the old address.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReportTokens {
    Table,
    InvalidatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ReportTokens::Table)
                    .add_column(big_integer_null(ReportTokens::InvalidatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ReportTokens::Table)
                    .drop_column(ReportTokens::InvalidatedAt)
                    .to_owned(),
            )
            .await
    }
}

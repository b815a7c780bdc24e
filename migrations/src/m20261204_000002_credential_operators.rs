//! Who created and who revoked a credential (the operator named on the
//! command line), kept on the credential.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Credentials {
    Table,
    CreatedBy,
    RevokedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [Credentials::CreatedBy, Credentials::RevokedBy] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Credentials::Table)
                        .add_column(string_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Credentials::CreatedBy, Credentials::RevokedBy] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Credentials::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

//! One counter that every revocation of a session or a credential moves, in
//! the revoking transaction, so that instances can cache live sessions and
//! credentials and still refuse a revoked one on the very next call.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RevocationClock {
    Table,
    Id,
    Generation,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RevocationClock::Table)
                    .col(integer(RevocationClock::Id).primary_key())
                    .col(big_integer(RevocationClock::Generation))
                    .to_owned(),
            )
            .await?;
        let insert = Query::insert()
            .into_table(RevocationClock::Table)
            .columns([RevocationClock::Id, RevocationClock::Generation])
            .values([1.into(), 0i64.into()])
            .map_err(|error| DbErr::Custom(error.to_string()))?
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevocationClock::Table).to_owned())
            .await
    }
}

//! `execution_last_dequeues`: each user's latest dequeue, for the fair queue.

use sea_orm_migration::prelude::*;

use crate::columns::timestamp;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ExecutionLastDequeues {
    Table,
    UserId,
    LatestDequeue,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ExecutionLastDequeues as L;
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(
                        ColumnDef::new(L::UserId)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(timestamp(db, L::LatestDequeue).not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ExecutionLastDequeues::Table).to_owned())
            .await
    }
}

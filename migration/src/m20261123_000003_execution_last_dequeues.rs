//! `execution_last_dequeues`: each user's latest dequeue, for the fair queue.

use sea_orm_migration::prelude::*;

use recents_schema::Schema;

use crate::columns::timestamp;

/// Takes the schema mapping (for the prefix, and whether the queue is installed).
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

#[derive(DeriveIden)]
enum ExecutionLastDequeues {
    UserId,
    LatestDequeue,
}

fn table(schema: &Schema) -> Alias {
    Alias::new(format!(
        "{}execution_last_dequeues",
        schema.mapping().prefix
    ))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ExecutionLastDequeues as L;
        if !self.schema.install().fair_queue {
            return Ok(());
        }
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(table(&self.schema))
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
            .drop_table(
                Table::drop()
                    .table(table(&self.schema))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

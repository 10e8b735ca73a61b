//! `recents_backfill_checkpoints`: where each backfill pass stands, so a
//! backfill killed at any point resumes exactly where its last committed
//! batch ended (each batch advances its checkpoint in its own transaction).

use sea_orm_migration::prelude::*;

use recents_schema::Schema;

use crate::columns::timestamp;

/// Takes the schema mapping (for the prefix).
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

fn table(schema: &Schema) -> Alias {
    Alias::new(format!(
        "{}recents_backfill_checkpoints",
        schema.mapping().prefix
    ))
}

#[derive(DeriveIden)]
enum RecentsBackfillCheckpoints {
    Name,
    MaxId,
    ResumeAtId,
    RowsTotal,
    RowsScanned,
    StartedAt,
    UpdatedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use RecentsBackfillCheckpoints as C;
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(table(&self.schema))
                    // Which summary and scope, e.g. `workspace_recent_workflows`
                    // or `workspace_recent_workflows/workspace=5`.
                    .col(
                        ColumnDef::new(C::Name)
                            .string_len(255)
                            .not_null()
                            .primary_key(),
                    )
                    // The greatest history id when the pass started: later
                    // rows were written by code that keeps the summary itself.
                    .col(ColumnDef::new(C::MaxId).big_integer().not_null())
                    // Passes walk ids downwards; every id above this one is
                    // merged into the summary. 0 once the pass is done.
                    .col(ColumnDef::new(C::ResumeAtId).big_integer().not_null())
                    .col(ColumnDef::new(C::RowsTotal).big_integer().not_null())
                    .col(ColumnDef::new(C::RowsScanned).big_integer().not_null())
                    .col(timestamp(db, C::StartedAt).not_null())
                    .col(timestamp(db, C::UpdatedAt).not_null())
                    .col(timestamp(db, C::FinishedAt).null())
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

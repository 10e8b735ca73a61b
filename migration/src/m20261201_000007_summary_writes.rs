//! MySQL/MariaDB: a `writes` counter on each summary row, bumped by every
//! live write of the row (a save whose upsert does not raise it included, and
//! a delete that finds it need not lower it). On a Galera cluster row locks
//! are local to a node and only write-write conflicts are certified: with
//! every decision made from a row also writing it, a save or a delete racing
//! a lowering of the same row on another node conflicts at COMMIT (1213,
//! retryable) instead of leaving the row too high or too low. PostgreSQL and
//! SQLite order them by the row lock and need no column.

use recents_schema::Schema;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Takes the schema mapping (for the summary's prefix).
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        let table = n.unquoted_object("workspace_recent_workflows");
        if backend == DbBackend::MySql
            && self.schema.install().recent_workflows
            && !manager.has_column(&table, "writes").await?
        {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE {} ADD COLUMN writes BIGINT NOT NULL DEFAULT 0",
                    n.recent_workflows
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        let table = n.unquoted_object("workspace_recent_workflows");
        if backend == DbBackend::MySql
            && manager.has_table(&table).await?
            && manager.has_column(&table, "writes").await?
        {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE {} DROP COLUMN writes",
                    n.recent_workflows
                ))
                .await?;
        }
        Ok(())
    }
}

//! MySQL/MariaDB: a `writes` counter on each summary row, bumped by every
//! live write of the row (a save whose upsert does not raise it included, and
//! a delete that finds it need not lower it). On a Galera cluster row locks
//! are local to a node and only write-write conflicts are certified: with
//! every decision made from a row also writing it, a save or a delete racing
//! a lowering of the same row on another node conflicts at COMMIT (1213,
//! retryable) instead of leaving the row too high or too low. PostgreSQL and
//! SQLite order them by the row lock and need no column.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::MySql
            && !manager
                .has_column("workspace_recent_workflows", "writes")
                .await?
        {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE workspace_recent_workflows \
                     ADD COLUMN writes BIGINT NOT NULL DEFAULT 0",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::MySql
            && manager
                .has_column("workspace_recent_workflows", "writes")
                .await?
        {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE workspace_recent_workflows DROP COLUMN writes")
                .await?;
        }
        Ok(())
    }
}

//! Wake-ups for idle workers on PostgreSQL: every statement that inserts
//! jobs sends `NOTIFY recents_queue`, which the worker runtime LISTENs for, so
//! a job enqueued into an idle queue starts at once instead of at the next
//! poll. A hint only: a lost notification delays a job to the next poll, and
//! nothing else depends on it. MySQL/MariaDB and SQLite have no such channel;
//! their workers poll, and this migration does nothing there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

// A statement trigger: `enqueue_many`'s multi-row INSERT notifies once, and
// PostgreSQL delivers the notification at commit (never for a rolled-back
// enqueue), folding identical ones of one transaction into one.
const PG_FUNCTION: &str = "\
CREATE OR REPLACE FUNCTION recents_queue_wakeup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('recents_queue', '');
    RETURN NULL;
END
$$";

const PG_TRIGGER: &str = "CREATE TRIGGER execution_jobs_wakeup AFTER INSERT ON execution_jobs \
     FOR EACH STATEMENT EXECUTE FUNCTION recents_queue_wakeup()";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for sql in [
            PG_FUNCTION,
            "DROP TRIGGER IF EXISTS execution_jobs_wakeup ON execution_jobs",
            PG_TRIGGER,
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for sql in [
            "DROP TRIGGER IF EXISTS execution_jobs_wakeup ON execution_jobs",
            "DROP FUNCTION IF EXISTS recents_queue_wakeup()",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

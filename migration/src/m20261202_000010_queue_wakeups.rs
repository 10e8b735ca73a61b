//! Wake-ups for idle workers on PostgreSQL: every statement that inserts
//! jobs sends `NOTIFY recents_queue`, which the worker runtime LISTENs for, so
//! a job enqueued into an idle queue starts at once instead of at the next
//! poll. A hint only: a lost notification delays a job to the next poll, and
//! nothing else depends on it. MySQL/MariaDB and SQLite have no such channel;
//! their workers poll, and this migration does nothing there.

use recents_schema::{Names, Schema};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Takes the schema mapping: the trigger lands on the backend's jobs table.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

// A statement trigger: `enqueue_many`'s multi-row INSERT notifies once, and
// PostgreSQL delivers the notification at commit (never for a rolled-back
// enqueue), folding identical ones of one transaction into one.
fn pg_function(n: &Names) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('recents_queue', '');
    RETURN NULL;
END
$$",
        n.object("recents_queue_wakeup")
    )
}

fn pg_trigger(n: &Names) -> String {
    format!(
        "CREATE TRIGGER {} AFTER INSERT ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()",
        n.object("execution_jobs_wakeup"),
        n.jobs.table,
        n.object("recents_queue_wakeup")
    )
}

fn drop_trigger(n: &Names) -> String {
    format!(
        "DROP TRIGGER IF EXISTS {} ON {}",
        n.object("execution_jobs_wakeup"),
        n.jobs.table
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres
            || !self.schema.install().fair_queue
        {
            return Ok(());
        }
        let n = self.schema.names(DbBackend::Postgres);
        let db = manager.get_connection();
        for sql in [pg_function(n), drop_trigger(n), pg_trigger(n)] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres
            || !self.schema.install().fair_queue
        {
            return Ok(());
        }
        let n = self.schema.names(DbBackend::Postgres);
        let db = manager.get_connection();
        let function = format!(
            "DROP FUNCTION IF EXISTS {}()",
            n.object("recents_queue_wakeup")
        );
        for sql in [drop_trigger(n), function] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }
}

//! `idx_execution_jobs_finished`: the backend's jobs by `finished_at` (and
//! state), so that the console's jobs per second reads only the last
//! minute's rows of an index instead of every finished job, on every
//! refresh. See `recents_service::queue::throughput`.
//!
//! What it costs writers: on PostgreSQL and SQLite the index is partial
//! (`finished_at IS NOT NULL`), so an enqueue and a claim of a new job add
//! nothing; the update that finishes a job (complete, fail, cancel, a reset
//! that fails it) adds one entry, as does a later non-HOT update of a job
//! already finished once (an errored job's next claim). MySQL/MariaDB have
//! no partial indexes: every job has an entry from its insert, and each
//! change of its state or `finished_at` moves it (claim, finish). One
//! B-tree entry more per change, beside the several the jobs table already
//! keeps; the state is in the key so the count never reads the table.
//!
//! It is built without blocking writers on a table already large:
//! `CREATE INDEX CONCURRENTLY` on PostgreSQL (outside a transaction), an
//! in-place `ADD INDEX` on MySQL/MariaDB (online DDL).

use recents_schema::{Names, Schema};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// Takes the schema mapping: the index lands on the backend's jobs table.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

const FINISHED_INDEX: &str = "idx_execution_jobs_finished";

fn create_index(n: &Names) -> String {
    let j = &n.jobs;
    let index = n.object(FINISHED_INDEX);
    match n.backend {
        DbBackend::MySql => format!(
            "ALTER TABLE {table} ADD INDEX {index} ({finished}, {state})",
            table = j.table,
            finished = j.finished_at,
            state = j.state,
        ),
        DbBackend::Postgres => format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table} ({finished}, {state}) \
             WHERE {finished} IS NOT NULL",
            table = j.table,
            finished = j.finished_at,
            state = j.state,
        ),
        _ => format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {table} ({finished}, {state}) \
             WHERE {finished} IS NOT NULL",
            table = j.table,
            finished = j.finished_at,
            state = j.state,
        ),
    }
}

fn drop_index(n: &Names) -> String {
    let index = n.object(FINISHED_INDEX);
    match n.backend {
        DbBackend::MySql => format!("ALTER TABLE {} DROP INDEX {index}", n.jobs.table),
        DbBackend::Postgres => format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"),
        _ => format!("DROP INDEX IF EXISTS {index}"),
    }
}

/// Whether PostgreSQL holds the index from a concurrent build that failed
/// (killed, or a deadlock): it exists, is invalid and is never used, and
/// `IF NOT EXISTS` would keep it so. The next run drops and rebuilds it.
async fn invalid_on_postgres(manager: &SchemaManager<'_>, n: &Names) -> Result<bool, DbErr> {
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT NOT i.indisvalid AS invalid FROM pg_index i \
             WHERE i.indexrelid = to_regclass($1)",
            [n.object(FINISHED_INDEX).into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get::<bool>("", "invalid"),
        None => Ok(false),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // CREATE INDEX CONCURRENTLY refuses to run inside a transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().fair_queue {
            return Ok(());
        }
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        let db = manager.get_connection();
        if backend == DbBackend::Postgres && invalid_on_postgres(manager, n).await? {
            db.execute_unprepared(&drop_index(n)).await?;
        }
        let jobs = &self.schema.mapping().tables.execution_jobs;
        // MySQL/MariaDB have no IF NOT EXISTS for ADD INDEX.
        if !manager
            .has_index(jobs, &n.unquoted_object(FINISHED_INDEX))
            .await?
        {
            db.execute_unprepared(&create_index(n)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().fair_queue {
            return Ok(());
        }
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        let jobs = &self.schema.mapping().tables.execution_jobs;
        if manager
            .has_index(jobs, &n.unquoted_object(FINISHED_INDEX))
            .await?
        {
            manager
                .get_connection()
                .execute_unprepared(&drop_index(n))
                .await?;
        }
        Ok(())
    }
}

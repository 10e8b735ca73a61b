//! The fair queue's schema: the index that makes "each waiting user's oldest
//! job" an index probe, the triggers that keep `execution_last_dequeues`
//! exact whichever code path starts a job, and a fill of that table from the
//! jobs already there (so `migrate up` on an existing queue leaves it exact).
//! The index and the triggers land on the backend's jobs table, as the
//! schema mapping names it.

use std::time::Instant;

use recents_schema::{Names, Schema, numbered};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// Takes the schema mapping: the jobs table and its columns.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

const LOG: &str = "recents_migration";

/// Each user's jobs by start time: the fill and verify read the latest start
/// per user from it (production's table had the same index).
const USER_STARTED_INDEX: &str = "idx_execution_jobs_user_started";

/// The latest dequeue of all users: a dequeue starts after it.
const LATEST_INDEX: &str = "idx_execution_last_dequeues_latest";

/// Eligible jobs by user, oldest first (see `queue_index`).
const QUEUE_INDEX: &str = "idx_execution_jobs_queue";

/// MySQL/MariaDB's virtual column behind the queue index.
pub(crate) const QUEUED_USER_COLUMN: &str = "queued_user_id";

/// Jobs per fill batch (about): each batch is one short `INSERT … SELECT …
/// GROUP BY` over a range of users, read through `idx_execution_jobs_user_started`.
const FILL_BATCH_JOBS: i64 = 50_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // The fill commits batch by batch; the triggers exist before it starts,
    // so a job started during the fill is recorded by them, and the fill's
    // GREATEST upsert never lowers what they wrote.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().fair_queue {
            return Ok(());
        }
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        let m = self.schema.mapping();
        let jobs = &m.tables.execution_jobs;
        let queued_user = n.unquoted_object(QUEUED_USER_COLUMN);
        if backend == DbBackend::MySql && !manager.has_column(jobs, &queued_user).await? {
            db.execute_unprepared(&mysql_queue_column(n)).await?;
        }
        let user_started = n.unquoted_object(USER_STARTED_INDEX);
        if !manager.has_index(jobs, &user_started).await? {
            manager
                .create_index(
                    Index::create()
                        .name(&user_started)
                        .table(Alias::new(jobs))
                        .col(Alias::new(&m.columns.execution_jobs.user_id))
                        .col(Alias::new(&m.columns.execution_jobs.started_at))
                        .to_owned(),
                )
                .await?;
        }
        let last_dequeues = n.unquoted_object("execution_last_dequeues");
        let latest = n.unquoted_object(LATEST_INDEX);
        if !manager.has_index(&last_dequeues, &latest).await? {
            manager
                .create_index(
                    Index::create()
                        .name(&latest)
                        .table(Alias::new(&last_dequeues))
                        .col(Alias::new("latest_dequeue"))
                        .to_owned(),
                )
                .await?;
        }
        // One row that dequeues lock in turn (see recents-service's queue).
        let lock = n.unquoted_object("execution_dequeue_lock");
        if !manager.has_table(&lock).await? {
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new(&lock))
                        .col(
                            ColumnDef::new(Alias::new("id"))
                                .integer()
                                .not_null()
                                .primary_key(),
                        )
                        .to_owned(),
                )
                .await?;
            db.execute_unprepared(&format!("INSERT INTO {} (id) VALUES (1)", n.dequeue_lock))
                .await?;
        }
        for sql in up_statements(n) {
            db.execute_unprepared(&sql).await?;
        }
        fill(manager, n).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().fair_queue {
            return Ok(());
        }
        let db = manager.get_connection();
        let n = self.schema.names(manager.get_database_backend());
        for sql in down_statements(n) {
            db.execute_unprepared(&sql).await?;
        }
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new(n.unquoted_object("execution_dequeue_lock")))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

// Eligible jobs (queued or errored, not canceled) of one user, oldest first,
// are one contiguous index range: PostgreSQL and SQLite with a partial index,
// MySQL/MariaDB (no partial indexes) with an index on a virtual column that
// is the user id for eligible jobs and NULL otherwise.
fn queue_index(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "CREATE INDEX IF NOT EXISTS {index} ON {table} ({user}, {created}, {id}) \
         WHERE {state} IN ('queued', 'errored') AND NOT {cancel}",
        index = n.object(QUEUE_INDEX),
        table = j.table,
        user = j.user_id,
        created = j.created_at,
        id = j.id,
        state = j.state,
        cancel = j.cancel,
    )
}

fn mysql_queue_column(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "ALTER TABLE {table} ADD COLUMN {queued} BIGINT AS \
         (CASE WHEN {state} IN ('queued', 'errored') AND NOT {cancel} THEN {user} END) VIRTUAL, \
         ADD INDEX {index} ({queued}, {created}, {id})",
        table = j.table,
        queued = n.object(QUEUED_USER_COLUMN),
        state = j.state,
        cancel = j.cancel,
        user = j.user_id,
        index = n.object(QUEUE_INDEX),
        created = j.created_at,
        id = j.id,
    )
}

// PostgreSQL: statement-level triggers over transition tables, as in the seed,
// so `enqueue_many` or a bulk UPDATE fires once. The NOT EXISTS keeps updates
// that do not move a user's latest dequeue (heartbeats, completions) from
// touching, and so locking, that user's row.
fn pg_function(n: &Names) -> String {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {d} (user_id, latest_dequeue)
    SELECT n.{user}, MAX(n.{started}) FROM recents_new_jobs n
    WHERE n.{started} IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {d} d
                      WHERE d.user_id = n.{user} AND d.latest_dequeue >= n.{started})
    GROUP BY n.{user}
    ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = EXCLUDED.latest_dequeue
    WHERE {d}.latest_dequeue < EXCLUDED.latest_dequeue;
    RETURN NULL;
END
$$",
        function = n.object("recents_record_last_dequeue"),
        user = j.user_id,
        started = j.started_at,
    )
}

fn pg_triggers(n: &Names) -> [String; 2] {
    let table = &n.jobs.table;
    let function = n.object("recents_record_last_dequeue");
    ["insert", "update"].map(|event| {
        format!(
            "CREATE TRIGGER {trigger} AFTER {upper} ON {table} \
             REFERENCING NEW TABLE AS recents_new_jobs FOR EACH STATEMENT \
             EXECUTE FUNCTION {function}()",
            trigger = n.object(&format!("execution_jobs_last_dequeue_{event}")),
            upper = event.to_uppercase(),
        )
    })
}

// MySQL/MariaDB: row triggers. GREATEST keeps the time from going backwards
// when raw SQL writes an older `started_at`.
fn mysql_triggers(n: &Names) -> [String; 2] {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    let upsert = format!(
        "INSERT INTO {d} (user_id, latest_dequeue) VALUES (NEW.{user}, NEW.{started}) \
         ON DUPLICATE KEY UPDATE latest_dequeue = GREATEST(latest_dequeue, VALUES(latest_dequeue));",
        user = j.user_id,
        started = j.started_at,
    );
    [
        format!(
            "CREATE TRIGGER {trigger} AFTER INSERT ON {table} FOR EACH ROW \
             BEGIN \
               IF NEW.{started} IS NOT NULL THEN {upsert} END IF; \
             END",
            trigger = n.object("execution_jobs_last_dequeue_insert"),
            table = j.table,
            started = j.started_at,
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER UPDATE ON {table} FOR EACH ROW \
             BEGIN \
               IF NEW.{started} IS NOT NULL AND (OLD.{started} IS NULL OR NEW.{started} <> OLD.{started} \
                                                 OR NEW.{user} <> OLD.{user}) THEN {upsert} END IF; \
             END",
            trigger = n.object("execution_jobs_last_dequeue_update"),
            table = j.table,
            started = j.started_at,
            user = j.user_id,
        ),
    ]
}

// SQLite: row triggers; timestamps are UTC RFC 3339 text, so text order is
// time order.
fn sqlite_triggers(n: &Names) -> [String; 2] {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    let upsert = format!(
        "INSERT INTO {d} (user_id, latest_dequeue) VALUES (NEW.{user}, NEW.{started}) \
         ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = excluded.latest_dequeue \
         WHERE excluded.latest_dequeue > {d}.latest_dequeue;",
        user = j.user_id,
        started = j.started_at,
    );
    [
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER INSERT ON {table} \
             WHEN NEW.{started} IS NOT NULL BEGIN {upsert} END",
            trigger = n.object("execution_jobs_last_dequeue_insert"),
            table = j.table,
            started = j.started_at,
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER UPDATE OF {started}, {user} \
             ON {table} WHEN NEW.{started} IS NOT NULL BEGIN {upsert} END",
            trigger = n.object("execution_jobs_last_dequeue_update"),
            table = j.table,
            started = j.started_at,
            user = j.user_id,
        ),
    ]
}

fn drop_triggers(n: &Names) -> Vec<String> {
    ["insert", "update"]
        .into_iter()
        .map(|event| {
            let trigger = n.object(&format!("execution_jobs_last_dequeue_{event}"));
            match n.backend {
                DbBackend::Postgres => {
                    format!("DROP TRIGGER IF EXISTS {trigger} ON {}", n.jobs.table)
                }
                _ => format!("DROP TRIGGER IF EXISTS {trigger}"),
            }
        })
        .collect()
}

fn up_statements(n: &Names) -> Vec<String> {
    let mut all = Vec::new();
    match n.backend {
        DbBackend::Postgres => {
            all.push(queue_index(n));
            all.push(pg_function(n));
            all.extend(drop_triggers(n));
            all.extend(pg_triggers(n));
        }
        DbBackend::MySql => {
            all.extend(drop_triggers(n));
            all.extend(mysql_triggers(n));
        }
        _ => {
            all.push(queue_index(n));
            all.extend(sqlite_triggers(n));
        }
    }
    all
}

fn down_statements(n: &Names) -> Vec<String> {
    let mut all = drop_triggers(n);
    let queue = n.object(QUEUE_INDEX);
    let user_started = n.object(USER_STARTED_INDEX);
    let latest = n.object(LATEST_INDEX);
    match n.backend {
        DbBackend::Postgres => {
            all.push(format!(
                "DROP FUNCTION IF EXISTS {}()",
                n.object("recents_record_last_dequeue")
            ));
            all.push(format!("DROP INDEX IF EXISTS {queue}"));
            all.push(format!("DROP INDEX IF EXISTS {user_started}"));
            all.push(format!("DROP INDEX IF EXISTS {latest}"));
        }
        DbBackend::MySql => {
            all.push(format!(
                "ALTER TABLE {table} DROP INDEX {queue}, DROP COLUMN {column}, DROP INDEX {user_started}",
                table = n.jobs.table,
                column = n.object(QUEUED_USER_COLUMN),
            ));
            all.push(format!(
                "ALTER TABLE {} DROP INDEX {latest}",
                n.last_dequeues
            ));
        }
        _ => {
            all.push(format!("DROP INDEX IF EXISTS {queue}"));
            all.push(format!("DROP INDEX IF EXISTS {user_started}"));
            all.push(format!("DROP INDEX IF EXISTS {latest}"));
        }
    }
    all.push(format!("DELETE FROM {}", n.last_dequeues));
    all
}

/// One batch of users `[?, ?]`: their greatest `started_at`, never lowering a row.
fn fill_batch(n: &Names) -> String {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    let conflict = match n.backend {
        DbBackend::Postgres => format!(
            "ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = EXCLUDED.latest_dequeue \
             WHERE {d}.latest_dequeue < EXCLUDED.latest_dequeue"
        ),
        DbBackend::MySql => {
            "ON DUPLICATE KEY UPDATE latest_dequeue = GREATEST(latest_dequeue, VALUES(latest_dequeue))"
                .to_owned()
        }
        _ => format!(
            "ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = excluded.latest_dequeue \
             WHERE excluded.latest_dequeue > {d}.latest_dequeue"
        ),
    };
    numbered(
        n.backend,
        &format!(
            "INSERT INTO {d} (user_id, latest_dequeue) \
             SELECT {user}, MAX({started}) FROM {table} \
             WHERE {user} >= ? AND {user} <= ? AND {started} IS NOT NULL GROUP BY {user} {conflict}",
            user = j.user_id,
            started = j.started_at,
            table = j.table,
        ),
    )
}

async fn fill(manager: &SchemaManager<'_>, n: &Names) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let j = &n.jobs;
    let bounds = db
        .query_one_raw(Statement::from_string(
            backend,
            format!(
                "SELECT MIN({user}) AS lo, MAX({user}) AS hi FROM {table}",
                user = j.user_id,
                table = j.table
            ),
        ))
        .await?;
    let (lo, hi): (Option<i64>, Option<i64>) = match &bounds {
        Some(row) => (row.try_get("", "lo")?, row.try_get("", "hi")?),
        None => (None, None),
    };
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(());
    };
    let started = Instant::now();
    tracing::info!(target: LOG, "execution_last_dequeues: filling users {lo}..={hi}");
    let next_sql = numbered(
        backend,
        &format!(
            "SELECT {user} AS user_id FROM {table} WHERE {user} >= ? ORDER BY {user} LIMIT 1 OFFSET ?",
            user = j.user_id,
            table = j.table
        ),
    );
    let batch = fill_batch(n);
    // Inclusive ranges of users, up to `hi` itself: user i64::MAX included,
    // and no step past it.
    let mut from = lo;
    loop {
        // The user FILL_BATCH_JOBS jobs further on ends the batch, all of its
        // jobs included; one user with more jobs than that makes a batch of
        // its own.
        let next = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                &next_sql,
                [from.into(), (FILL_BATCH_JOBS - 1).into()],
            ))
            .await?;
        let to = match next {
            Some(row) => row.try_get::<i64>("", "user_id")?,
            None => hi,
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            &batch,
            [from.into(), to.into()],
        ))
        .await?;
        tracing::info!(
            target: LOG,
            "execution_last_dequeues: users up to {to} done ({:.1?})",
            started.elapsed()
        );
        if to >= hi {
            break;
        }
        from = to + 1;
    }
    Ok(())
}

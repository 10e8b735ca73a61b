//! The fair queue's schema: the index that makes "each waiting user's oldest
//! job" an index probe, the triggers that keep `execution_last_dequeues`
//! exact whichever code path starts a job, and a fill of that table from the
//! jobs already there (so `migrate up` on an existing queue leaves it exact).

use std::time::Instant;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::placeholders::numbered;

#[derive(DeriveMigrationName)]
pub struct Migration;

const LOG: &str = "recents_migration";

/// Each user's jobs by start time: the fill and verify read the latest start
/// per user from it (production's table had the same index).
const USER_STARTED_INDEX: &str = "idx_execution_jobs_user_started";

/// The latest dequeue of all users: a dequeue starts after it.
const LATEST_INDEX: &str = "idx_execution_last_dequeues_latest";

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
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        if backend == DbBackend::MySql
            && !manager
                .has_column("execution_jobs", "queued_user_id")
                .await?
        {
            db.execute_unprepared(MYSQL_QUEUE_COLUMN).await?;
        }
        if !manager
            .has_index("execution_jobs", USER_STARTED_INDEX)
            .await?
        {
            manager
                .create_index(
                    Index::create()
                        .name(USER_STARTED_INDEX)
                        .table(Alias::new("execution_jobs"))
                        .col(Alias::new("user_id"))
                        .col(Alias::new("started_at"))
                        .to_owned(),
                )
                .await?;
        }
        if !manager
            .has_index("execution_last_dequeues", LATEST_INDEX)
            .await?
        {
            manager
                .create_index(
                    Index::create()
                        .name(LATEST_INDEX)
                        .table(Alias::new("execution_last_dequeues"))
                        .col(Alias::new("latest_dequeue"))
                        .to_owned(),
                )
                .await?;
        }
        // One row that dequeues lock in turn (see recents-service's queue).
        if !manager.has_table("execution_dequeue_lock").await? {
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new("execution_dequeue_lock"))
                        .col(
                            ColumnDef::new(Alias::new("id"))
                                .integer()
                                .not_null()
                                .primary_key(),
                        )
                        .to_owned(),
                )
                .await?;
            db.execute_unprepared("INSERT INTO execution_dequeue_lock (id) VALUES (1)")
                .await?;
        }
        for sql in up_statements(backend) {
            db.execute_unprepared(sql).await?;
        }
        fill(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in down_statements(manager.get_database_backend()) {
            db.execute_unprepared(sql).await?;
        }
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("execution_dequeue_lock"))
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
const PG_SQLITE_QUEUE_INDEX: &str = "\
CREATE INDEX IF NOT EXISTS idx_execution_jobs_queue ON execution_jobs (user_id, created_at, id) \
WHERE state IN ('queued', 'errored') AND NOT cancel";

const MYSQL_QUEUE_COLUMN: &str = "\
ALTER TABLE execution_jobs ADD COLUMN queued_user_id BIGINT AS \
(CASE WHEN state IN ('queued', 'errored') AND NOT cancel THEN user_id END) VIRTUAL, \
ADD INDEX idx_execution_jobs_queue (queued_user_id, created_at, id)";

// PostgreSQL: statement-level triggers over transition tables, as in the seed,
// so `enqueue_many` or a bulk UPDATE fires once. The NOT EXISTS keeps updates
// that do not move a user's latest dequeue (heartbeats, completions) from
// touching, and so locking, that user's row.
const PG_FUNCTION: &str = "\
CREATE OR REPLACE FUNCTION recents_record_last_dequeue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO execution_last_dequeues (user_id, latest_dequeue)
    SELECT n.user_id, MAX(n.started_at) FROM recents_new_jobs n
    WHERE n.started_at IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM execution_last_dequeues d
                      WHERE d.user_id = n.user_id AND d.latest_dequeue >= n.started_at)
    GROUP BY n.user_id
    ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = EXCLUDED.latest_dequeue
    WHERE execution_last_dequeues.latest_dequeue < EXCLUDED.latest_dequeue;
    RETURN NULL;
END
$$";

const PG_TRIGGERS: [&str; 2] = [
    "CREATE TRIGGER execution_jobs_last_dequeue_insert AFTER INSERT ON execution_jobs \
     REFERENCING NEW TABLE AS recents_new_jobs FOR EACH STATEMENT \
     EXECUTE FUNCTION recents_record_last_dequeue()",
    "CREATE TRIGGER execution_jobs_last_dequeue_update AFTER UPDATE ON execution_jobs \
     REFERENCING NEW TABLE AS recents_new_jobs FOR EACH STATEMENT \
     EXECUTE FUNCTION recents_record_last_dequeue()",
];

// MySQL/MariaDB: row triggers. GREATEST keeps the time from going backwards
// when raw SQL writes an older `started_at`.
const MYSQL_TRIGGERS: [&str; 2] = [
    "CREATE TRIGGER execution_jobs_last_dequeue_insert AFTER INSERT ON execution_jobs FOR EACH ROW \
     BEGIN \
       IF NEW.started_at IS NOT NULL THEN \
         INSERT INTO execution_last_dequeues (user_id, latest_dequeue) VALUES (NEW.user_id, NEW.started_at) \
         ON DUPLICATE KEY UPDATE latest_dequeue = GREATEST(latest_dequeue, VALUES(latest_dequeue)); \
       END IF; \
     END",
    "CREATE TRIGGER execution_jobs_last_dequeue_update AFTER UPDATE ON execution_jobs FOR EACH ROW \
     BEGIN \
       IF NEW.started_at IS NOT NULL AND (OLD.started_at IS NULL OR NEW.started_at <> OLD.started_at \
                                          OR NEW.user_id <> OLD.user_id) THEN \
         INSERT INTO execution_last_dequeues (user_id, latest_dequeue) VALUES (NEW.user_id, NEW.started_at) \
         ON DUPLICATE KEY UPDATE latest_dequeue = GREATEST(latest_dequeue, VALUES(latest_dequeue)); \
       END IF; \
     END",
];

// SQLite: row triggers; timestamps are UTC RFC 3339 text, so text order is
// time order.
const SQLITE_TRIGGERS: [&str; 2] = [
    "CREATE TRIGGER IF NOT EXISTS execution_jobs_last_dequeue_insert AFTER INSERT ON execution_jobs \
     WHEN NEW.started_at IS NOT NULL \
     BEGIN \
       INSERT INTO execution_last_dequeues (user_id, latest_dequeue) VALUES (NEW.user_id, NEW.started_at) \
       ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = excluded.latest_dequeue \
       WHERE excluded.latest_dequeue > execution_last_dequeues.latest_dequeue; \
     END",
    "CREATE TRIGGER IF NOT EXISTS execution_jobs_last_dequeue_update AFTER UPDATE OF started_at, user_id \
     ON execution_jobs WHEN NEW.started_at IS NOT NULL \
     BEGIN \
       INSERT INTO execution_last_dequeues (user_id, latest_dequeue) VALUES (NEW.user_id, NEW.started_at) \
       ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = excluded.latest_dequeue \
       WHERE excluded.latest_dequeue > execution_last_dequeues.latest_dequeue; \
     END",
];

fn up_statements(backend: DbBackend) -> Vec<&'static str> {
    match backend {
        DbBackend::Postgres => {
            let mut all = vec![
                PG_SQLITE_QUEUE_INDEX,
                PG_FUNCTION,
                "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_insert ON execution_jobs",
                "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_update ON execution_jobs",
            ];
            all.extend(PG_TRIGGERS);
            all
        }
        DbBackend::MySql => {
            let mut all = vec![
                "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_insert",
                "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_update",
            ];
            all.extend(MYSQL_TRIGGERS);
            all
        }
        _ => {
            let mut all = vec![PG_SQLITE_QUEUE_INDEX];
            all.extend(SQLITE_TRIGGERS);
            all
        }
    }
}

fn down_statements(backend: DbBackend) -> Vec<&'static str> {
    match backend {
        DbBackend::Postgres => vec![
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_insert ON execution_jobs",
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_update ON execution_jobs",
            "DROP FUNCTION IF EXISTS recents_record_last_dequeue()",
            "DROP INDEX IF EXISTS idx_execution_jobs_queue",
            "DROP INDEX IF EXISTS idx_execution_jobs_user_started",
            "DROP INDEX IF EXISTS idx_execution_last_dequeues_latest",
            "DELETE FROM execution_last_dequeues",
        ],
        DbBackend::MySql => vec![
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_insert",
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_update",
            "ALTER TABLE execution_jobs DROP INDEX idx_execution_jobs_queue, DROP COLUMN queued_user_id, \
             DROP INDEX idx_execution_jobs_user_started",
            "ALTER TABLE execution_last_dequeues DROP INDEX idx_execution_last_dequeues_latest",
            "DELETE FROM execution_last_dequeues",
        ],
        _ => vec![
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_insert",
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_update",
            "DROP INDEX IF EXISTS idx_execution_jobs_queue",
            "DROP INDEX IF EXISTS idx_execution_jobs_user_started",
            "DROP INDEX IF EXISTS idx_execution_last_dequeues_latest",
            "DELETE FROM execution_last_dequeues",
        ],
    }
}

/// One batch of users: their greatest `started_at`, never lowering a row.
fn fill_batch(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) \
             SELECT user_id, MAX(started_at) FROM execution_jobs \
             WHERE user_id >= $1 AND user_id <= $2 AND started_at IS NOT NULL GROUP BY user_id \
             ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = EXCLUDED.latest_dequeue \
             WHERE execution_last_dequeues.latest_dequeue < EXCLUDED.latest_dequeue"
        }
        DbBackend::MySql => {
            "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) \
             SELECT user_id, MAX(started_at) FROM execution_jobs \
             WHERE user_id >= ? AND user_id <= ? AND started_at IS NOT NULL GROUP BY user_id \
             ON DUPLICATE KEY UPDATE latest_dequeue = GREATEST(latest_dequeue, VALUES(latest_dequeue))"
        }
        _ => {
            "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) \
             SELECT user_id, MAX(started_at) FROM execution_jobs \
             WHERE user_id >= ? AND user_id <= ? AND started_at IS NOT NULL GROUP BY user_id \
             ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = excluded.latest_dequeue \
             WHERE excluded.latest_dequeue > execution_last_dequeues.latest_dequeue"
        }
    }
}

async fn fill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let bounds = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT MIN(user_id) AS lo, MAX(user_id) AS hi FROM execution_jobs",
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
                numbered(
                    backend,
                    "SELECT user_id FROM execution_jobs WHERE user_id >= ? ORDER BY user_id LIMIT 1 OFFSET ?",
                ),
                [from.into(), (FILL_BATCH_JOBS - 1).into()],
            ))
            .await?;
        let to = match next {
            Some(row) => row.try_get::<i64>("", "user_id")?,
            None => hi,
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            fill_batch(backend),
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

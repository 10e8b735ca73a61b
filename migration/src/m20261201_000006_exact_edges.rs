//! Two corrections found by adversarial testing, each a schema matter:
//!
//! - `execution_last_dequeues` is exactly each user's greatest `started_at`
//!   over the jobs that exist, as the fair order defines it: a job deleted, or
//!   moved to another user, or given an earlier start takes its dequeue with
//!   it. (Migration 5's triggers only ever raised a row, so a deleted latest
//!   job left it too high.) Recomputed only when the leaving job held the
//!   user's latest start: one index probe.
//! - MySQL/MariaDB compare uids and worker names byte for byte, as
//!   PostgreSQL and SQLite do: `utf8mb4_bin` is a PAD SPACE collation, so
//!   `'ann'` and `'ann '` were one user there (and worker names were
//!   case-insensitive). A NO PAD binary collation keeps them apart.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        if backend == DbBackend::MySql {
            let collation = byte_collation(manager).await?;
            for sql in mysql_columns(collation) {
                db.execute_unprepared(&sql).await?;
            }
        }
        for sql in up_statements(backend) {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        for sql in down_statements(backend) {
            db.execute_unprepared(sql).await?;
        }
        if backend == DbBackend::MySql {
            for sql in mysql_columns_before() {
                db.execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }
}

/// The NO PAD binary collation of utf8mb4: MariaDB and MySQL 8 name it
/// differently.
async fn byte_collation(manager: &SchemaManager<'_>) -> Result<&'static str, DbErr> {
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            "SELECT VERSION() AS version",
        ))
        .await?;
    let version: String = match row {
        Some(row) => row.try_get("", "version")?,
        None => String::new(),
    };
    Ok(if version.contains("MariaDB") {
        "utf8mb4_nopad_bin"
    } else {
        "utf8mb4_0900_bin"
    })
}

fn mysql_columns(collation: &str) -> Vec<String> {
    vec![
        format!(
            "ALTER TABLE saved_runs MODIFY uid VARCHAR(255) CHARACTER SET utf8mb4 \
             COLLATE {collation} NOT NULL"
        ),
        format!(
            "ALTER TABLE workspace_recent_workflows MODIFY uid VARCHAR(255) CHARACTER SET utf8mb4 \
             COLLATE {collation} NOT NULL"
        ),
        format!(
            "ALTER TABLE execution_jobs MODIFY worker_hostname VARCHAR(255) CHARACTER SET utf8mb4 \
             COLLATE {collation} NULL"
        ),
    ]
}

fn mysql_columns_before() -> [&'static str; 3] {
    [
        "ALTER TABLE saved_runs MODIFY uid VARCHAR(255) CHARACTER SET utf8mb4 \
         COLLATE utf8mb4_bin NOT NULL",
        "ALTER TABLE workspace_recent_workflows MODIFY uid VARCHAR(255) CHARACTER SET utf8mb4 \
         COLLATE utf8mb4_bin NOT NULL",
        "ALTER TABLE execution_jobs MODIFY worker_hostname VARCHAR(255) NULL",
    ]
}

// PostgreSQL: statement triggers over transition tables, like migration 5's.
// Each affected user's row is locked first, then recomputed by statements of
// their own: in READ COMMITTED each statement of a function takes a new
// snapshot, so the recompute sees every dequeue that committed before the lock
// was granted, and a dequeue still running raises the row again afterwards
// (its upsert keeps the greater time). Users go in id order, so two such
// statements lock rows in one order.
const PG_RECOMPUTE: &str = "\
CREATE OR REPLACE FUNCTION recents_recompute_last_dequeue(u bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM execution_last_dequeues WHERE user_id = u FOR UPDATE;
    UPDATE execution_last_dequeues d SET latest_dequeue = m.latest
    FROM (SELECT MAX(started_at) AS latest FROM execution_jobs WHERE user_id = u) m
    WHERE d.user_id = u AND m.latest IS NOT NULL AND d.latest_dequeue <> m.latest;
    DELETE FROM execution_last_dequeues d WHERE d.user_id = u AND NOT EXISTS (
        SELECT 1 FROM execution_jobs j WHERE j.user_id = u AND j.started_at IS NOT NULL);
END
$$";

// The trigger function that recomputes, in user order, each user whose
// latest start may have left with the statement's rows: `leaving` narrows the
// old rows `o` that held their user's latest start.
fn pg_forget(name: &str, leaving: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE u bigint;
BEGIN
    FOR u IN SELECT DISTINCT o.user_id FROM recents_old_jobs o
             JOIN execution_last_dequeues d ON d.user_id = o.user_id AND o.started_at >= d.latest_dequeue
             WHERE {leaving}
             ORDER BY 1
    LOOP
        PERFORM recents_recompute_last_dequeue(u);
    END LOOP;
    RETURN NULL;
END
$$"
    )
}

// Deleted jobs all leave. Updated jobs leave when they now hold a lesser start
// (or none, or belong to another user); heartbeats and completions keep their
// start, so they pass the anti-join and lock nothing.
const PG_DELETED: &str = "TRUE";
const PG_LOWERED: &str = "NOT EXISTS (SELECT 1 FROM recents_new_jobs n \
    WHERE n.id = o.id AND n.user_id = o.user_id AND n.started_at >= o.started_at)";

const PG_TRIGGERS: [&str; 2] = [
    "CREATE TRIGGER execution_jobs_last_dequeue_delete AFTER DELETE ON execution_jobs \
     REFERENCING OLD TABLE AS recents_old_jobs FOR EACH STATEMENT \
     EXECUTE FUNCTION recents_forget_deleted_dequeues()",
    "CREATE TRIGGER execution_jobs_last_dequeue_lower AFTER UPDATE ON execution_jobs \
     REFERENCING OLD TABLE AS recents_old_jobs NEW TABLE AS recents_new_jobs FOR EACH STATEMENT \
     EXECUTE FUNCTION recents_forget_lowered_dequeues()",
];

// MySQL/MariaDB: row triggers calling one procedure. It locks the user's row,
// then finds the greatest remaining start with a locking read: that sees the
// latest committed jobs (and this transaction's own changes), where a plain
// read would answer from the transaction's snapshot.
const MYSQL_FORGET: &str = "\
CREATE PROCEDURE recents_forget_last_dequeue(IN u BIGINT, IN started DATETIME(6))
BEGIN
  DECLARE latest DATETIME(6) DEFAULT NULL;
  DECLARE remaining DATETIME(6) DEFAULT NULL;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  SELECT latest_dequeue INTO latest FROM execution_last_dequeues WHERE user_id = u FOR UPDATE;
  IF latest IS NOT NULL AND started >= latest THEN
    SELECT started_at INTO remaining FROM execution_jobs
    WHERE user_id = u AND started_at IS NOT NULL ORDER BY started_at DESC LIMIT 1 LOCK IN SHARE MODE;
    IF remaining IS NULL THEN
      DELETE FROM execution_last_dequeues WHERE user_id = u;
    ELSE
      UPDATE execution_last_dequeues SET latest_dequeue = remaining WHERE user_id = u;
    END IF;
  END IF;
END";

const MYSQL_TRIGGERS: [&str; 2] = [
    "CREATE TRIGGER execution_jobs_last_dequeue_delete AFTER DELETE ON execution_jobs FOR EACH ROW \
     BEGIN \
       IF OLD.started_at IS NOT NULL THEN CALL recents_forget_last_dequeue(OLD.user_id, OLD.started_at); END IF; \
     END",
    "CREATE TRIGGER execution_jobs_last_dequeue_lower AFTER UPDATE ON execution_jobs FOR EACH ROW \
     BEGIN \
       IF OLD.started_at IS NOT NULL AND (NEW.user_id <> OLD.user_id OR NEW.started_at IS NULL \
                                          OR NEW.started_at < OLD.started_at) THEN \
         CALL recents_forget_last_dequeue(OLD.user_id, OLD.started_at); \
       END IF; \
     END",
];

// SQLite: row triggers; one writer at a time, so no locks to take. Times are
// UTC text in one format within years 1000 to 9999, so text order is time
// order. Both triggers recompute the user of the leaving row `OLD`.
fn sqlite_trigger(name: &str, event: &str, when: &str) -> String {
    format!(
        "CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON execution_jobs WHEN {when} \
         BEGIN \
           DELETE FROM execution_last_dequeues WHERE user_id = OLD.user_id \
             AND latest_dequeue <= OLD.started_at AND NOT EXISTS (\
               SELECT 1 FROM execution_jobs j WHERE j.user_id = OLD.user_id AND j.started_at IS NOT NULL); \
           UPDATE execution_last_dequeues SET latest_dequeue = (\
               SELECT MAX(j.started_at) FROM execution_jobs j WHERE j.user_id = OLD.user_id) \
             WHERE user_id = OLD.user_id AND latest_dequeue <= OLD.started_at; \
         END"
    )
}

fn up_statements(backend: DbBackend) -> Vec<String> {
    let mut all: Vec<String> = down_statements(backend)
        .into_iter()
        .map(String::from)
        .collect();
    match backend {
        DbBackend::Postgres => {
            all.push(PG_RECOMPUTE.into());
            all.push(pg_forget("recents_forget_deleted_dequeues", PG_DELETED));
            all.push(pg_forget("recents_forget_lowered_dequeues", PG_LOWERED));
            all.extend(PG_TRIGGERS.map(String::from));
        }
        DbBackend::MySql => {
            all.push(MYSQL_FORGET.into());
            all.extend(MYSQL_TRIGGERS.map(String::from));
        }
        _ => {
            all.push(sqlite_trigger(
                "execution_jobs_last_dequeue_delete",
                "DELETE",
                "OLD.started_at IS NOT NULL",
            ));
            all.push(sqlite_trigger(
                "execution_jobs_last_dequeue_lower",
                "UPDATE OF started_at, user_id",
                "OLD.started_at IS NOT NULL AND (NEW.user_id <> OLD.user_id \
                 OR NEW.started_at IS NULL OR NEW.started_at < OLD.started_at)",
            ));
        }
    }
    all
}

fn down_statements(backend: DbBackend) -> Vec<&'static str> {
    match backend {
        DbBackend::Postgres => vec![
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_delete ON execution_jobs",
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_lower ON execution_jobs",
            "DROP FUNCTION IF EXISTS recents_forget_deleted_dequeues()",
            "DROP FUNCTION IF EXISTS recents_forget_lowered_dequeues()",
            "DROP FUNCTION IF EXISTS recents_recompute_last_dequeue(bigint)",
        ],
        DbBackend::MySql => vec![
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_delete",
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_lower",
            "DROP PROCEDURE IF EXISTS recents_forget_last_dequeue",
        ],
        _ => vec![
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_delete",
            "DROP TRIGGER IF EXISTS execution_jobs_last_dequeue_lower",
        ],
    }
}

//! Two corrections found by adversarial testing, each a schema matter:
//!
//! - `execution_last_dequeues` is exactly each user's greatest `started_at`
//!   over the jobs that exist, as the fair order defines it: a job deleted, or
//!   moved to another user, or given an earlier start takes its dequeue with
//!   it. (Migration 5's triggers only ever raised a row, so a deleted latest
//!   job left it too high.) Recomputed only when the leaving job held the
//!   user's latest start: one index probe.
//! - MySQL/MariaDB compare uids byte for byte, as PostgreSQL and SQLite do:
//!   `utf8mb4_bin` is a PAD SPACE collation, so `'ann'` and `'ann '` were one
//!   user there. A NO PAD binary collation keeps them apart in recents'
//!   summary (the history tables recents creates have it from migration 1;
//!   a backend's own keep theirs).

use recents_schema::{Names, Schema};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::columns::byte_collation;

/// Takes the schema mapping: the jobs table, and the summary's prefix.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        let install = self.schema.install();
        if backend == DbBackend::MySql && install.recent_workflows {
            // Only recents' own summary: the backend's uid column keeps its
            // collation (the history tables recents creates have this one
            // from the start; a database made before got it here).
            let collation = byte_collation(manager).await?;
            let table = n.unquoted_object("workspace_recent_workflows");
            if uid_collation(manager, &table).await?.as_deref() != Some(collation) {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {} MODIFY uid VARCHAR(255) CHARACTER SET utf8mb4 \
                     COLLATE {collation} NOT NULL",
                    n.recent_workflows
                ))
                .await?;
            }
        }
        if install.fair_queue {
            for sql in up_statements(n) {
                db.execute_unprepared(&sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        if self.schema.install().fair_queue {
            for sql in down_statements(n) {
                db.execute_unprepared(&sql).await?;
            }
        }
        Ok(())
    }
}

/// The collation of `uid` in `table` (MySQL/MariaDB).
async fn uid_collation(manager: &SchemaManager<'_>, table: &str) -> Result<Option<String>, DbErr> {
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            "SELECT CAST(COLLATION_NAME AS CHAR) AS collation FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'uid'",
            [table.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "collation")?,
        None => None,
    })
}

// PostgreSQL: statement triggers over transition tables, like migration 5's.
// Each affected user's row is locked first, then recomputed by statements of
// their own: in READ COMMITTED each statement of a function takes a new
// snapshot, so the recompute sees every dequeue that committed before the lock
// was granted, and a dequeue still running raises the row again afterwards
// (its upsert keeps the greater time). Users go in id order, so two such
// statements lock rows in one order.
fn pg_recompute(n: &Names) -> String {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    format!(
        "CREATE OR REPLACE FUNCTION {function}(u bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM {d} WHERE user_id = u FOR UPDATE;
    UPDATE {d} d SET latest_dequeue = m.latest
    FROM (SELECT MAX({started}) AS latest FROM {table} WHERE {user} = u) m
    WHERE d.user_id = u AND m.latest IS NOT NULL AND d.latest_dequeue <> m.latest;
    DELETE FROM {d} d WHERE d.user_id = u AND NOT EXISTS (
        SELECT 1 FROM {table} j WHERE j.{user} = u AND j.{started} IS NOT NULL);
END
$$",
        function = n.object("recents_recompute_last_dequeue"),
        started = j.started_at,
        user = j.user_id,
        table = j.table,
    )
}

// The trigger function that recomputes, in user order, each user whose
// latest start may have left with the statement's rows: `leaving` narrows the
// old rows `o` that held their user's latest start.
fn pg_forget(n: &Names, name: &str, leaving: &str) -> String {
    let j = &n.jobs;
    format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE u bigint;
BEGIN
    FOR u IN SELECT DISTINCT o.{user} FROM recents_old_jobs o
             JOIN {d} d ON d.user_id = o.{user} AND o.{started} >= d.latest_dequeue
             WHERE {leaving}
             ORDER BY 1
    LOOP
        PERFORM {recompute}(u);
    END LOOP;
    RETURN NULL;
END
$$",
        function = n.object(name),
        user = j.user_id,
        started = j.started_at,
        d = n.last_dequeues,
        recompute = n.object("recents_recompute_last_dequeue"),
    )
}

// Deleted jobs all leave. Updated jobs leave when they now hold a lesser start
// (or none, or belong to another user); heartbeats and completions keep their
// start, so they pass the anti-join and lock nothing.
fn pg_lowered(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "NOT EXISTS (SELECT 1 FROM recents_new_jobs n \
         WHERE n.{id} = o.{id} AND n.{user} = o.{user} AND n.{started} >= o.{started})",
        id = j.id,
        user = j.user_id,
        started = j.started_at,
    )
}

fn pg_triggers(n: &Names) -> [String; 2] {
    let table = &n.jobs.table;
    [
        format!(
            "CREATE TRIGGER {trigger} AFTER DELETE ON {table} \
             REFERENCING OLD TABLE AS recents_old_jobs FOR EACH STATEMENT \
             EXECUTE FUNCTION {function}()",
            trigger = n.object("execution_jobs_last_dequeue_delete"),
            function = n.object("recents_forget_deleted_dequeues"),
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER UPDATE ON {table} \
             REFERENCING OLD TABLE AS recents_old_jobs NEW TABLE AS recents_new_jobs FOR EACH STATEMENT \
             EXECUTE FUNCTION {function}()",
            trigger = n.object("execution_jobs_last_dequeue_lower"),
            function = n.object("recents_forget_lowered_dequeues"),
        ),
    ]
}

// MySQL/MariaDB: row triggers calling one procedure. It locks the user's row,
// then finds the greatest remaining start with a locking read: that sees the
// latest committed jobs (and this transaction's own changes), where a plain
// read would answer from the transaction's snapshot.
fn mysql_forget(n: &Names) -> String {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    format!(
        "CREATE PROCEDURE {procedure}(IN u BIGINT, IN started DATETIME(6))
BEGIN
  DECLARE latest DATETIME(6) DEFAULT NULL;
  DECLARE remaining DATETIME(6) DEFAULT NULL;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  SELECT latest_dequeue INTO latest FROM {d} WHERE user_id = u FOR UPDATE;
  IF latest IS NOT NULL AND started >= latest THEN
    SELECT {started_at} INTO remaining FROM {table}
    WHERE {user} = u AND {started_at} IS NOT NULL ORDER BY {started_at} DESC LIMIT 1 LOCK IN SHARE MODE;
    IF remaining IS NULL THEN
      DELETE FROM {d} WHERE user_id = u;
    ELSE
      UPDATE {d} SET latest_dequeue = remaining WHERE user_id = u;
    END IF;
  END IF;
END",
        procedure = n.object("recents_forget_last_dequeue"),
        started_at = j.started_at,
        table = j.table,
        user = j.user_id,
    )
}

fn mysql_triggers(n: &Names) -> [String; 2] {
    let j = &n.jobs;
    let procedure = n.object("recents_forget_last_dequeue");
    [
        format!(
            "CREATE TRIGGER {trigger} AFTER DELETE ON {table} FOR EACH ROW \
             BEGIN \
               IF OLD.{started} IS NOT NULL THEN CALL {procedure}(OLD.{user}, OLD.{started}); END IF; \
             END",
            trigger = n.object("execution_jobs_last_dequeue_delete"),
            table = j.table,
            started = j.started_at,
            user = j.user_id,
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER UPDATE ON {table} FOR EACH ROW \
             BEGIN \
               IF OLD.{started} IS NOT NULL AND (NEW.{user} <> OLD.{user} OR NEW.{started} IS NULL \
                                                 OR NEW.{started} < OLD.{started}) THEN \
                 CALL {procedure}(OLD.{user}, OLD.{started}); \
               END IF; \
             END",
            trigger = n.object("execution_jobs_last_dequeue_lower"),
            table = j.table,
            started = j.started_at,
            user = j.user_id,
        ),
    ]
}

// SQLite: row triggers; one writer at a time, so no locks to take. Times are
// UTC text in one format within years 1000 to 9999, so text order is time
// order. Both triggers recompute the user of the leaving row `OLD`.
fn sqlite_trigger(n: &Names, name: &str, event: &str, when: &str) -> String {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    format!(
        "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER {event} ON {table} WHEN {when} \
         BEGIN \
           DELETE FROM {d} WHERE user_id = OLD.{user} \
             AND latest_dequeue <= OLD.{started} AND NOT EXISTS (\
               SELECT 1 FROM {table} j WHERE j.{user} = OLD.{user} AND j.{started} IS NOT NULL); \
           UPDATE {d} SET latest_dequeue = (\
               SELECT MAX(j.{started}) FROM {table} j WHERE j.{user} = OLD.{user}) \
             WHERE user_id = OLD.{user} AND latest_dequeue <= OLD.{started}; \
         END",
        trigger = n.object(name),
        table = j.table,
        user = j.user_id,
        started = j.started_at,
    )
}

fn up_statements(n: &Names) -> Vec<String> {
    let mut all = down_statements(n);
    let j = &n.jobs;
    match n.backend {
        DbBackend::Postgres => {
            all.push(pg_recompute(n));
            all.push(pg_forget(n, "recents_forget_deleted_dequeues", "TRUE"));
            all.push(pg_forget(
                n,
                "recents_forget_lowered_dequeues",
                &pg_lowered(n),
            ));
            all.extend(pg_triggers(n));
        }
        DbBackend::MySql => {
            all.push(mysql_forget(n));
            all.extend(mysql_triggers(n));
        }
        _ => {
            all.push(sqlite_trigger(
                n,
                "execution_jobs_last_dequeue_delete",
                "DELETE",
                &format!("OLD.{} IS NOT NULL", j.started_at),
            ));
            all.push(sqlite_trigger(
                n,
                "execution_jobs_last_dequeue_lower",
                &format!("UPDATE OF {}, {}", j.started_at, j.user_id),
                &format!(
                    "OLD.{started} IS NOT NULL AND (NEW.{user} <> OLD.{user} \
                     OR NEW.{started} IS NULL OR NEW.{started} < OLD.{started})",
                    started = j.started_at,
                    user = j.user_id,
                ),
            ));
        }
    }
    all
}

fn down_statements(n: &Names) -> Vec<String> {
    let table = &n.jobs.table;
    let delete = n.object("execution_jobs_last_dequeue_delete");
    let lower = n.object("execution_jobs_last_dequeue_lower");
    match n.backend {
        DbBackend::Postgres => vec![
            format!("DROP TRIGGER IF EXISTS {delete} ON {table}"),
            format!("DROP TRIGGER IF EXISTS {lower} ON {table}"),
            format!(
                "DROP FUNCTION IF EXISTS {}()",
                n.object("recents_forget_deleted_dequeues")
            ),
            format!(
                "DROP FUNCTION IF EXISTS {}()",
                n.object("recents_forget_lowered_dequeues")
            ),
            format!(
                "DROP FUNCTION IF EXISTS {}(bigint)",
                n.object("recents_recompute_last_dequeue")
            ),
        ],
        DbBackend::MySql => vec![
            format!("DROP TRIGGER IF EXISTS {delete}"),
            format!("DROP TRIGGER IF EXISTS {lower}"),
            format!(
                "DROP PROCEDURE IF EXISTS {}",
                n.object("recents_forget_last_dequeue")
            ),
        ],
        _ => vec![
            format!("DROP TRIGGER IF EXISTS {delete}"),
            format!("DROP TRIGGER IF EXISTS {lower}"),
        ],
    }
}

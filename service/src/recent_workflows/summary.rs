//! The statements that keep `workspace_recent_workflows` exact, per backend,
//! side by side.
//!
//! Every save upserts two rows (the member's and the workspace's, uid `''`) in
//! one `INSERT … SELECT` that also resolves the version to its published run.
//! The upsert keeps the greater `(last_used_at, last_saved_run_id)`, compared
//! as a pair, so concurrent transactions may commit in any order and the row
//! still ends at the maximum: no read-modify-write, no extra round trip.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use recents_entity::workspace_recent_workflow::WORKSPACE_SCOPE_UID;
use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::error::Result;
use crate::ids::{PublishedRunId, SavedRunId, WorkspaceId};
use crate::sql::{for_update, statement};

/// The column list every write of a summary row inserts, in this order.
pub(crate) const INSERT_INTO: &str = "INSERT INTO workspace_recent_workflows \
    (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at) ";

// PostgreSQL and SQLite share the standard upsert. The WHERE on DO UPDATE
// makes the row monotonic; a pair comparison breaks ties on the run id.
const KEEP_GREATER_STANDARD: &str = "\
ON CONFLICT (workspace_id, uid, published_run_id) DO UPDATE \
SET last_saved_run_id = excluded.last_saved_run_id, last_used_at = excluded.last_used_at \
WHERE (excluded.last_used_at, excluded.last_saved_run_id) \
    > (workspace_recent_workflows.last_used_at, workspace_recent_workflows.last_saved_run_id)";

// MySQL/MariaDB: no WHERE on ON DUPLICATE KEY UPDATE, and assignments run left
// to right, each seeing the one before. So the run id moves first, on the pair
// comparison; then the time follows it, GREATEST guarding the same run saved
// again with an older time.
const KEEP_GREATER_MYSQL: &str = "\
ON DUPLICATE KEY UPDATE \
last_saved_run_id = IF((VALUES(last_used_at), VALUES(last_saved_run_id)) \
    > (workspace_recent_workflows.last_used_at, workspace_recent_workflows.last_saved_run_id), \
    VALUES(last_saved_run_id), workspace_recent_workflows.last_saved_run_id), \
last_used_at = IF(workspace_recent_workflows.last_saved_run_id = VALUES(last_saved_run_id), \
    GREATEST(workspace_recent_workflows.last_used_at, VALUES(last_used_at)), \
    workspace_recent_workflows.last_used_at)";

/// The conflict clause that makes an `INSERT_INTO … SELECT`/`VALUES` a
/// monotonic upsert: a row only ever moves to a greater
/// `(last_used_at, last_saved_run_id)`. The live save, `recompute` and the
/// backfill all use it, so they agree whatever order they commit in.
pub(crate) fn keep_greater(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::MySql => KEEP_GREATER_MYSQL,
        _ => KEEP_GREATER_STANDARD,
    }
}

// MySQL/MariaDB, the live paths: KEEP_GREATER_MYSQL, and a write of the row's
// `writes` counter whether or not the row rises. On one server the row lock
// orders a save and a lowering path of the same group; on a Galera cluster
// row locks are local to a node and only write-write conflicts are
// certified, so a save that decided from a stale read "not greater" and wrote
// nothing would let a lowering path on another node leave the row too low.
// Writing the row makes every such pair conflict at COMMIT (1213, retryable).
// The backfill keeps the plain clause: it runs on one node, beside no
// lowering path (the lowering lock is PostgreSQL's only).
const COUNT_THE_WRITE_MYSQL: &str = ", writes = workspace_recent_workflows.writes + 1";

/// MySQL/MariaDB: writes the row's `writes` counter, so that a decision made
/// from the row (here: "the leaving run is not the latest, nothing to do")
/// conflicts on a Galera cluster with a concurrent write of the row on another
/// node (see [`COUNT_THE_WRITE_MYSQL`]). Nothing elsewhere.
async fn count_write<C: ConnectionTrait>(conn: &C, key: &Key) -> Result<()> {
    let backend = conn.get_database_backend();
    if backend == DbBackend::MySql {
        conn.execute_raw(statement(
            backend,
            "UPDATE workspace_recent_workflows SET writes = writes + 1 \
             WHERE workspace_id = ? AND uid = ? AND published_run_id = ?",
            key_values(key),
        ))
        .await?;
    }
    Ok(())
}

// The rows a saved run counts for, read from the run as the database stored
// it (PostgreSQL rounds sub-microsecond times, SQLite keeps them as written:
// the summary must hold exactly what history holds), resolving its version to
// its published run: the member's row, then the workspace's, the order in
// which every save and every move locks them. A run whose uid is '' counts
// for its workspace only: '' names no member (the member scope refuses it),
// and the workspace's row is the one with uid ''.
const RUN_SELECT: &str = "\
SELECT s.workspace_id, CASE WHEN k.wide = 1 THEN '' ELSE s.uid END, v.published_run_id, s.id, s.updated_at \
FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id \
CROSS JOIN (SELECT 0 AS wide UNION ALL SELECT 1) k \
WHERE s.id = ? AND s.workspace_id = ? AND (k.wide = 1 OR s.uid <> '') ";

// With a freshness window, a row already recent enough is filtered out before
// the insert is attempted, so no conflict arises and no row lock is taken: a
// plain MVCC read instead of a wait behind the hot row's writer.
const FRESHNESS_STANDARD: &str = "AND NOT EXISTS (\
SELECT 1 FROM workspace_recent_workflows f \
WHERE f.workspace_id = s.workspace_id AND f.uid = CASE WHEN k.wide = 1 THEN '' ELSE s.uid END \
AND f.published_run_id = v.published_run_id AND f.last_used_at >= ?) ";

const MEMBER_FIRST: &str = "ORDER BY k.wide ";

static UPSERT_STANDARD: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_INTO}{RUN_SELECT}{MEMBER_FIRST}{KEEP_GREATER_STANDARD}"));
static UPSERT_STANDARD_FRESHNESS: LazyLock<String> = LazyLock::new(|| {
    format!("{INSERT_INTO}{RUN_SELECT}{FRESHNESS_STANDARD}{MEMBER_FIRST}{KEEP_GREATER_STANDARD}")
});
static UPSERT_MYSQL: LazyLock<String> = LazyLock::new(|| {
    format!("{INSERT_INTO}{RUN_SELECT}{MEMBER_FIRST}{KEEP_GREATER_MYSQL}{COUNT_THE_WRITE_MYSQL}")
});

// MySQL/MariaDB: an INSERT … SELECT takes shared locks on what it reads under
// REPEATABLE READ, which would queue behind the hot row's writer; a plain
// SELECT is a consistent non-locking read. So the freshness check is its own
// statement there: how many of the run's rows are fresh, and how many it has.
const FRESH_ROWS_MYSQL: &str = "\
SELECT (SELECT COUNT(*) FROM workspace_recent_workflows f \
        WHERE f.workspace_id = s.workspace_id AND f.uid IN (s.uid, '') \
        AND f.published_run_id = v.published_run_id AND f.last_used_at >= ?) AS fresh, \
    CASE WHEN s.uid = '' THEN 1 ELSE 2 END AS scopes \
FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id \
WHERE s.id = ? AND s.workspace_id = ?";

/// The PostgreSQL advisory lock that keeps summary rows from being lowered
/// while a backfill batch runs (the bytes spell "recents" and a 1).
///
/// A backfill batch reads `saved_runs` from a snapshot without row locks, so
/// a run moved or deleted after that snapshot could be written back by the
/// batch's monotonic upsert, and nothing would ever lower it again. Every
/// path that lowers a row (`forget`, `recompute`) holds this lock shared; a
/// batch holds it exclusively. Saves that only raise rows never take it.
/// Deleting a published run or a workspace needs none either: a batch that
/// would write a row for it fails the row's foreign key and is retried.
/// MySQL/MariaDB need no such lock (the batch's `INSERT … SELECT` reads the
/// runs with shared row locks), nor SQLite (one writer at a time).
pub(crate) const LOWERING_LOCK: i64 = 0x7265_6365_6e74_7301;

/// Records the saved run `run` of `workspace`, as stored, in its member's
/// and its workspace's summary rows. (The workspace narrows every read to
/// the one workspace: a PostgreSQL sharded by workspace routes it to one shard.) A run without a version counts towards nothing.
/// Returns whether any summary row was written (`false` also when every row
/// already held as much, or was fresh, or the run does not exist).
///
/// `fresh_after`: when set, a row whose `last_used_at` is at or after it is
/// left alone (the freshness window); `None` is exact.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    run: SavedRunId,
    workspace: WorkspaceId,
    fresh_after: Option<DateTime<Utc>>,
) -> Result<bool> {
    let backend = conn.get_database_backend();
    let written = match backend {
        DbBackend::MySql => {
            if let Some(cutoff) = fresh_after {
                let row = conn
                    .query_one_raw(statement(
                        backend,
                        FRESH_ROWS_MYSQL,
                        vec![cutoff.into(), run.0.into(), workspace.0.into()],
                    ))
                    .await?;
                let Some(row) = row else {
                    return Ok(false);
                };
                let fresh: i64 = row.try_get("", "fresh")?;
                let scopes: i64 = row.try_get("", "scopes")?;
                if fresh >= scopes {
                    return Ok(false);
                }
            }
            conn.execute_raw(statement(
                backend,
                &UPSERT_MYSQL,
                vec![run.0.into(), workspace.0.into()],
            ))
            .await?
        }
        _ => {
            let mut values: Vec<Value> = vec![run.0.into(), workspace.0.into()];
            let sql: &str = match fresh_after {
                Some(cutoff) => {
                    values.push(cutoff.into());
                    &UPSERT_STANDARD_FRESHNESS
                }
                None => &UPSERT_STANDARD,
            };
            conn.execute_raw(statement(backend, sql, values)).await?
        }
    };
    Ok(written.rows_affected() > 0)
}

/// The summary key a saved run counts towards, if it counts at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub workspace_id: WorkspaceId,
    pub uid: String,
    pub published_run_id: PublishedRunId,
}

/// Brings one summary row back to its history aggregate after `run` left the
/// group (deleted, moved, or saved with an older time). Nothing is read from
/// history unless `run` was the row's latest run: any other run leaving
/// cannot change the maximum.
pub(crate) async fn forget<C: ConnectionTrait>(conn: &C, key: &Key, run: SavedRunId) -> Result<()> {
    let latest = lock_row(conn, key).await?;
    match latest {
        Some(latest) if latest == run => set_to_history(conn, key, true).await,
        // Not the latest: nothing to lower, but the decision rests on the
        // row as read, so the row is written (on MySQL/MariaDB).
        Some(_) => count_write(conn, key).await,
        None => Ok(()),
    }
}

/// Brings one summary row back to its history aggregate, whatever it holds
/// (after runs were detached in bulk).
pub(crate) async fn recompute<C: ConnectionTrait>(conn: &C, key: &Key) -> Result<()> {
    let exists = lock_row(conn, key).await?.is_some();
    set_to_history(conn, key, exists).await
}

fn key_values(key: &Key) -> Vec<Value> {
    vec![
        key.workspace_id.0.into(),
        key.uid.clone().into(),
        key.published_run_id.0.into(),
    ]
}

/// Locks the row and returns its latest run. With the row locked, a
/// concurrent save has either committed (and the aggregate read after this
/// sees its run) or waits for us and applies its upsert on top.
async fn lock_row<C: ConnectionTrait>(conn: &C, key: &Key) -> Result<Option<SavedRunId>> {
    let backend = conn.get_database_backend();
    hold_lowering_lock(conn).await?;
    let lock = for_update(backend);
    Ok(conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT last_saved_run_id FROM workspace_recent_workflows \
                 WHERE workspace_id = ? AND uid = ? AND published_run_id = ?{lock}"
            ),
            key_values(key),
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "last_saved_run_id"))
        .transpose()?
        .map(SavedRunId))
}

/// Takes [`LOWERING_LOCK`] shared until the transaction ends (PostgreSQL
/// only). Call it before locking any summary row in the transaction: a batch
/// takes the lock first and then row locks, so the same order here keeps the
/// two from deadlocking.
pub(crate) async fn hold_lowering_lock<C: ConnectionTrait>(conn: &C) -> Result<()> {
    let backend = conn.get_database_backend();
    if backend == DbBackend::Postgres {
        conn.execute_raw(statement(
            backend,
            "SELECT pg_advisory_xact_lock_shared(?)",
            vec![LOWERING_LOCK.into()],
        ))
        .await?;
    }
    Ok(())
}

async fn set_to_history<C: ConnectionTrait>(conn: &C, key: &Key, exists: bool) -> Result<()> {
    let backend = conn.get_database_backend();
    let aggregate = crate::recent_workflows::history::aggregate(conn, key).await?;
    let (sql, values) = match (aggregate, exists) {
        (Some((run_id, at)), true) => {
            let mut values: Vec<Value> = vec![run_id.0.into(), at.into()];
            values.extend(key_values(key));
            (
                match backend {
                    DbBackend::MySql => {
                        "UPDATE workspace_recent_workflows SET last_saved_run_id = ?, last_used_at = ?, \
                         writes = writes + 1 \
                         WHERE workspace_id = ? AND uid = ? AND published_run_id = ?"
                    }
                    _ => {
                        "UPDATE workspace_recent_workflows SET last_saved_run_id = ?, last_used_at = ? \
                         WHERE workspace_id = ? AND uid = ? AND published_run_id = ?"
                    }
                },
                values,
            )
        }
        (Some((run_id, at)), false) => {
            // A save of this group committing after the history read above
            // may have inserted the row meanwhile: keep the greater of the two.
            let mut values = key_values(key);
            values.extend([Value::from(run_id.0), at.into()]);
            let sql = format!(
                "{INSERT_INTO}VALUES (?, ?, ?, ?, ?) {}",
                keep_greater(backend)
            );
            conn.execute_raw(statement(backend, &sql, values)).await?;
            return Ok(());
        }
        (None, true) => (
            "DELETE FROM workspace_recent_workflows \
             WHERE workspace_id = ? AND uid = ? AND published_run_id = ?",
            key_values(key),
        ),
        (None, false) => return Ok(()),
    };
    conn.execute_raw(statement(backend, sql, values)).await?;
    Ok(())
}

/// The member's and the workspace's key for a run using `published_run_id`
/// (the workspace's only, for a run whose uid is `''`).
pub(crate) fn keys(
    workspace_id: WorkspaceId,
    uid: &str,
    published_run_id: PublishedRunId,
) -> Vec<Key> {
    let workspace = Key {
        workspace_id,
        uid: WORKSPACE_SCOPE_UID.to_owned(),
        published_run_id,
    };
    if uid == WORKSPACE_SCOPE_UID {
        return vec![workspace];
    }
    vec![
        Key {
            workspace_id,
            uid: uid.to_owned(),
            published_run_id,
        },
        workspace,
    ]
}

//! The statements that keep `workspace_recent_workflows` exact, per backend,
//! side by side.
//!
//! Every save upserts two rows (the member's and the workspace's, uid `''`) in
//! one `INSERT … SELECT` that also resolves the version to its published run.
//! The upsert keeps the greater `(last_used_at, last_saved_run_id)`, compared
//! as a pair, so concurrent transactions may commit in any order and the row
//! still ends at the maximum: no read-modify-write, no extra round trip.

use chrono::{DateTime, Utc};
use recents_entity::workspace_recent_workflow::WORKSPACE_SCOPE_UID;
use recents_schema::{Names, Schema};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};

use super::{Key, SavedRun};
use crate::error::Result;
use crate::ids::{PublishedRunId, SavedRunId, VersionId, WorkspaceId};
use crate::sql::{for_update, statement};

/// `INSERT INTO` the summary with the column list every write of a summary
/// row inserts, in this order.
pub(super) fn insert_into(n: &Names) -> String {
    format!(
        "INSERT INTO {} (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at) ",
        n.recent_workflows
    )
}

/// The conflict clause that makes an `insert_into … SELECT`/`VALUES` a
/// monotonic upsert: a row only ever moves to a greater
/// `(last_used_at, last_saved_run_id)`. The live save, `recompute` and the
/// backfill all use it, so they agree whatever order they commit in.
pub(super) fn keep_greater(n: &Names) -> String {
    let r = &n.recent_workflows;
    match n.backend {
        // MySQL/MariaDB: no WHERE on ON DUPLICATE KEY UPDATE, and assignments
        // run left to right, each seeing the one before. So the run id moves
        // first, on the pair comparison; then the time follows it, GREATEST
        // guarding the same run saved again with an older time.
        DbBackend::MySql => format!(
            "ON DUPLICATE KEY UPDATE \
             last_saved_run_id = IF((VALUES(last_used_at), VALUES(last_saved_run_id)) \
                 > ({r}.last_used_at, {r}.last_saved_run_id), \
                 VALUES(last_saved_run_id), {r}.last_saved_run_id), \
             last_used_at = IF({r}.last_saved_run_id = VALUES(last_saved_run_id), \
                 GREATEST({r}.last_used_at, VALUES(last_used_at)), {r}.last_used_at)"
        ),
        // PostgreSQL and SQLite share the standard upsert. The WHERE on DO
        // UPDATE makes the row monotonic; a pair comparison breaks ties on
        // the run id.
        _ => format!(
            "ON CONFLICT (workspace_id, uid, published_run_id) DO UPDATE \
             SET last_saved_run_id = excluded.last_saved_run_id, last_used_at = excluded.last_used_at \
             WHERE (excluded.last_used_at, excluded.last_saved_run_id) \
                 > ({r}.last_used_at, {r}.last_saved_run_id)"
        ),
    }
}

// MySQL/MariaDB, the live paths: `keep_greater`, and a write of the row's
// `writes` counter whether or not the row rises. On one server the row lock
// orders a save and a lowering path of the same group; on a Galera cluster
// row locks are local to a node and only write-write conflicts are
// certified, so a save that decided from a stale read "not greater" and wrote
// nothing would let a lowering path on another node leave the row too low.
// Writing the row makes every such pair conflict at COMMIT (1213, retryable).
// The backfill keeps the plain clause: it runs on one node, beside no
// lowering path (the lowering lock is PostgreSQL's only).
fn count_the_write(n: &Names) -> String {
    format!(", writes = {}.writes + 1", n.recent_workflows)
}

/// MySQL/MariaDB: writes the row's `writes` counter, so that a decision made
/// from the row (here: "the leaving run is not the latest, nothing to do")
/// conflicts on a Galera cluster with a concurrent write of the row on another
/// node (see [`count_the_write`]). Nothing elsewhere.
async fn count_write<C: ConnectionTrait>(conn: &C, n: &Names, key: &Key) -> Result<()> {
    if n.backend == DbBackend::MySql {
        conn.execute_raw(statement(
            n.backend,
            &format!(
                "UPDATE {} SET writes = writes + 1 {KEY_IS}",
                n.recent_workflows
            ),
            key_values(key),
        ))
        .await?;
    }
    Ok(())
}

/// The condition naming one summary row by [`key_values`].
const KEY_IS: &str = "WHERE workspace_id = ? AND uid = ? AND published_run_id = ?";

// The rows a saved run counts for, read from the run as the database stored
// it (PostgreSQL rounds sub-microsecond times, SQLite keeps them as written:
// the summary must hold exactly what history holds), resolving its version to
// its published run: the member's row, then the workspace's, the order in
// which every save and every move locks them. A run whose uid is '' counts
// for its workspace only: '' names no member (the member scope refuses it),
// and the workspace's row is the one with uid ''.
fn run_select(n: &Names) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    format!(
        "SELECT s.{ws}, CASE WHEN k.wide = 1 THEN '' ELSE s.{uid} END, v.{pr}, s.{id}, s.{at} \
         FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version} \
         CROSS JOIN (SELECT 0 AS wide UNION ALL SELECT 1) k \
         WHERE s.{id} = ? AND s.{ws} = ? AND (k.wide = 1 OR s.{uid} <> '') ",
        ws = s.workspace_id,
        uid = s.uid,
        pr = v.published_run_id,
        id = s.id,
        at = s.updated_at,
        runs = s.table,
        versions = v.table,
        v_id = v.id,
        version = s.version_id,
    )
}

// With a freshness window, a row already recent enough is filtered out before
// the insert is attempted, so no conflict arises and no row lock is taken: a
// plain MVCC read instead of a wait behind the hot row's writer.
fn freshness_standard(n: &Names) -> String {
    let s = &n.saved_runs;
    format!(
        "AND NOT EXISTS (SELECT 1 FROM {r} f \
         WHERE f.workspace_id = s.{ws} AND f.uid = CASE WHEN k.wide = 1 THEN '' ELSE s.{uid} END \
         AND f.published_run_id = v.{pr} AND f.last_used_at >= ?) ",
        r = n.recent_workflows,
        ws = s.workspace_id,
        uid = s.uid,
        pr = n.versions.published_run_id,
    )
}

const MEMBER_FIRST: &str = "ORDER BY k.wide ";

/// The upsert of a run's rows; `fresh`: with the freshness filter (not on
/// MySQL, see [`fresh_rows_mysql`]).
fn upsert(n: &Names, fresh: bool) -> String {
    let freshness = if fresh {
        freshness_standard(n)
    } else {
        String::new()
    };
    let conflict = match n.backend {
        DbBackend::MySql => format!("{}{}", keep_greater(n), count_the_write(n)),
        _ => keep_greater(n),
    };
    format!(
        "{}{}{freshness}{MEMBER_FIRST}{conflict}",
        insert_into(n),
        run_select(n)
    )
}

// MySQL/MariaDB: an INSERT … SELECT takes shared locks on what it reads under
// REPEATABLE READ, which would queue behind the hot row's writer; a plain
// SELECT is a consistent non-locking read. So the freshness check is its own
// statement there: how many of the run's rows are fresh, and how many it has.
fn fresh_rows_mysql(n: &Names) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    format!(
        "SELECT (SELECT COUNT(*) FROM {r} f \
                 WHERE f.workspace_id = s.{ws} AND f.uid IN (s.{uid}, '') \
                 AND f.published_run_id = v.{pr} AND f.last_used_at >= ?) AS fresh, \
             CASE WHEN s.{uid} = '' THEN 1 ELSE 2 END AS scopes \
         FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version} \
         WHERE s.{id} = ? AND s.{ws} = ?",
        r = n.recent_workflows,
        ws = s.workspace_id,
        uid = s.uid,
        pr = v.published_run_id,
        runs = s.table,
        versions = v.table,
        v_id = v.id,
        version = s.version_id,
        id = s.id,
    )
}

#[derive(FromQueryResult)]
struct FreshRows {
    fresh: i64,
    scopes: i64,
}

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
pub(super) const LOWERING_LOCK: i64 = 0x7265_6365_6e74_7301;

/// Records the saved run `run` of `workspace`, as stored, in its member's
/// and its workspace's summary rows. (The workspace narrows every read to
/// the one workspace: a PostgreSQL sharded by workspace routes it to one shard.) A run without a version counts towards nothing.
/// Returns whether any summary row was written (`false` also when every row
/// already held as much, or was fresh, or the run does not exist).
///
/// `fresh_after`: when set, a row whose `last_used_at` is at or after it is
/// left alone (the freshness window); `None` is exact.
pub(super) async fn record<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    run: SavedRunId,
    workspace: WorkspaceId,
    fresh_after: Option<DateTime<Utc>>,
) -> Result<bool> {
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let written = match backend {
        DbBackend::MySql => {
            if let Some(cutoff) = fresh_after {
                let rows = conn
                    .query_one_raw(statement(
                        backend,
                        &fresh_rows_mysql(n),
                        vec![cutoff.into(), run.0.into(), workspace.0.into()],
                    ))
                    .await?;
                let Some(rows) = rows else {
                    return Ok(false);
                };
                let rows = FreshRows::from_query_result(&rows, "")?;
                if rows.fresh >= rows.scopes {
                    return Ok(false);
                }
            }
            conn.execute_raw(statement(
                backend,
                &upsert(n, false),
                vec![run.0.into(), workspace.0.into()],
            ))
            .await?
        }
        _ => {
            let mut values: Vec<Value> = vec![run.0.into(), workspace.0.into()];
            if let Some(cutoff) = fresh_after {
                values.push(cutoff.into());
            }
            conn.execute_raw(statement(
                backend,
                &upsert(n, fresh_after.is_some()),
                values,
            ))
            .await?
        }
    };
    Ok(written.rows_affected() > 0)
}

/// Brings one summary row back to its history aggregate after `run` left the
/// group (deleted, moved, or saved with an older time). Nothing is read from
/// history unless `run` was the row's latest run: any other run leaving
/// cannot change the maximum.
pub(super) async fn forget<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    key: &Key,
    run: SavedRunId,
) -> Result<()> {
    let n = schema.names(conn.get_database_backend());
    let latest = lock_row(conn, n, key).await?;
    match latest {
        Some(latest) if latest == run => set_to_history(conn, n, key, true).await,
        // Not the latest: nothing to lower, but the decision rests on the
        // row as read, so the row is written (on MySQL/MariaDB).
        Some(_) => count_write(conn, n, key).await,
        None => Ok(()),
    }
}

/// Brings one summary row back to its history aggregate, whatever it holds
/// (after runs were detached in bulk).
pub(super) async fn recompute<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    key: &Key,
) -> Result<()> {
    let n = schema.names(conn.get_database_backend());
    let exists = lock_row(conn, n, key).await?.is_some();
    set_to_history(conn, n, key, exists).await
}

fn key_values(key: &Key) -> Vec<Value> {
    vec![
        key.workspace_id.0.into(),
        key.uid.clone().into(),
        key.published_run_id.0.into(),
    ]
}

#[derive(FromQueryResult)]
struct LatestRun {
    last_saved_run_id: i64,
}

/// Locks the row and returns its latest run. With the row locked, a
/// concurrent save has either committed (and the aggregate read after this
/// sees its run) or waits for us and applies its upsert on top.
async fn lock_row<C: ConnectionTrait>(
    conn: &C,
    n: &Names,
    key: &Key,
) -> Result<Option<SavedRunId>> {
    hold_lowering_lock(conn).await?;
    let lock = for_update(n.backend);
    let row = conn
        .query_one_raw(statement(
            n.backend,
            &format!(
                "SELECT last_saved_run_id FROM {} {KEY_IS}{lock}",
                n.recent_workflows
            ),
            key_values(key),
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(SavedRunId(
            LatestRun::from_query_result(&row, "")?.last_saved_run_id,
        )),
        None => None,
    })
}

/// Takes [`LOWERING_LOCK`] shared until the transaction ends (PostgreSQL
/// only). Call it before locking any summary row in the transaction: a batch
/// takes the lock first and then row locks, so the same order here keeps the
/// two from deadlocking.
pub(super) async fn hold_lowering_lock<C: ConnectionTrait>(conn: &C) -> Result<()> {
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

async fn set_to_history<C: ConnectionTrait>(
    conn: &C,
    n: &Names,
    key: &Key,
    exists: bool,
) -> Result<()> {
    let r = &n.recent_workflows;
    let aggregate = crate::recent_workflows::history::aggregate(conn, n, key).await?;
    let (sql, values) = match (aggregate, exists) {
        (Some((run_id, at)), true) => {
            let mut values: Vec<Value> = vec![run_id.0.into(), at.into()];
            values.extend(key_values(key));
            let writes = match n.backend {
                DbBackend::MySql => ", writes = writes + 1",
                _ => "",
            };
            (
                format!("UPDATE {r} SET last_saved_run_id = ?, last_used_at = ?{writes} {KEY_IS}"),
                values,
            )
        }
        (Some((run_id, at)), false) => {
            // A save of this group committing after the history read above
            // may have inserted the row meanwhile: keep the greater of the two.
            let mut values = key_values(key);
            values.extend([Value::from(run_id.0), at.into()]);
            (
                format!(
                    "{}VALUES (?, ?, ?, ?, ?) {}",
                    insert_into(n),
                    keep_greater(n)
                ),
                values,
            )
        }
        (None, true) => (format!("DELETE FROM {r} {KEY_IS}"), key_values(key)),
        (None, false) => return Ok(()),
    };
    conn.execute_raw(statement(n.backend, &sql, values)).await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct OfVersion {
    published_run_id: PublishedRunId,
}

/// The published run of a version; `lock` is appended to the read (a row
/// lock, or a locking read that sees the latest committed row on MySQL).
pub(super) async fn published_run_of<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    version: VersionId,
    lock: &str,
) -> Result<Option<PublishedRunId>> {
    let backend = conn.get_database_backend();
    let v = &schema.names(backend).versions;
    Ok(
        match conn
            .query_one_raw(statement(
                backend,
                &format!(
                    "SELECT {pr} AS published_run_id FROM {table} WHERE {id} = ?{lock}",
                    pr = v.published_run_id,
                    table = v.table,
                    id = v.id,
                ),
                vec![version.0.into()],
            ))
            .await?
        {
            Some(row) => Some(OfVersion::from_query_result(&row, "")?.published_run_id),
            None => None,
        },
    )
}

/// Moves a run's use in the summary after an update in place: from `before`
/// (the run as it was, locked) to `after` (as it now is). Nothing but a
/// record of the new use when the run stays in its group and does not go
/// back in time; otherwise the group it left is brought back to history.
///
/// The protocol: the lowering lock (PostgreSQL), then every summary row
/// involved locked in one order for everyone (two moves in opposite
/// directions would otherwise lock each other's rows in opposite orders),
/// then the old group forgotten (its recompute reads history, which already
/// holds the run as updated, so the group comes out exact, the same group
/// back in time included), then the new use recorded on top.
pub(super) async fn move_run<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    before: &SavedRun,
    after: &SavedRun,
    fresh_after: Option<DateTime<Utc>>,
) -> Result<()> {
    let same_group = before.workspace_id == after.workspace_id
        && before.uid == after.uid
        && before.version_id == after.version_id;
    if !(same_group && before.updated_at <= after.updated_at) {
        let old_group = match before.version_id {
            Some(v) => published_run_of(conn, schema, v, "").await?,
            None => None,
        };
        let new_group = match after.version_id {
            Some(v) => published_run_of(conn, schema, v, "").await?,
            None => None,
        };
        let mut involved = Vec::new();
        if let Some(pr) = old_group {
            involved.extend(keys(before.workspace_id, &before.uid, pr));
        }
        if let Some(pr) = new_group {
            involved.extend(keys(after.workspace_id, &after.uid, pr));
        }
        hold_lowering_lock(conn).await?;
        lock_in_order(conn, schema, &involved).await?;
        if let Some(pr) = old_group {
            for key in keys(before.workspace_id, &before.uid, pr) {
                forget(conn, schema, &key, before.id).await?;
            }
        }
    }
    if after.version_id.is_some() {
        record(conn, schema, after.id, after.workspace_id, fresh_after).await?;
    }
    Ok(())
}

/// Locks the existing summary rows of `keys` in the order every save takes
/// them: by workspace and published run, the member's row before the
/// workspace's (the order of the upsert's two rows). SQLite has one writer
/// and nothing to order.
async fn lock_in_order<C: ConnectionTrait>(conn: &C, schema: &Schema, keys: &[Key]) -> Result<()> {
    let backend = conn.get_database_backend();
    if keys.is_empty() || backend == DbBackend::Sqlite {
        return Ok(());
    }
    let tuples = vec!["(?, ?, ?)"; keys.len()].join(", ");
    let values = keys.iter().flat_map(key_values).collect();
    conn.query_all_raw(statement(
        backend,
        &format!(
            "SELECT workspace_id FROM {} \
             WHERE (workspace_id, uid, published_run_id) IN ({tuples}) \
             ORDER BY workspace_id, published_run_id, uid = '', uid FOR UPDATE",
            schema.names(backend).recent_workflows
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// The member's and the workspace's key for a run using `published_run_id`
/// (the workspace's only, for a run whose uid is `''`).
pub(super) fn keys(
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

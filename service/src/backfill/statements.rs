//! The backfill's SQL, per backend, side by side.
//!
//! A batch is a range of history ids, walked from the newest down: the newest
//! runs set most summary rows to their final value in the first batches, so
//! the older batches after them mostly compare and write nothing.

use sea_orm::DbBackend;

use crate::recent_workflows::history::batch_aggregate;
use crate::recent_workflows::summary::{INSERT_INTO, LOWERING_LOCK, keep_greater};

use super::BackfillScope;

/// The history table a scope reads, and the condition (on alias `s`, with
/// `?` placeholders) that narrows it to the scope.
pub(super) fn history(scope: &BackfillScope) -> (&'static str, &'static str) {
    match scope {
        BackfillScope::RecentWorkflows => ("saved_runs", ""),
        BackfillScope::RecentWorkflowsOf(_) => ("saved_runs", " AND s.workspace_id = ?"),
        BackfillScope::LastDequeues => ("execution_jobs", ""),
    }
}

/// The ids at or below `?` still to do: how many (up to `?`), and the lowest,
/// which ends the batch. PostgreSQL plans it as an Aggregate over a Limit over
/// an Index Only Scan Backward of the primary key: `batch_rows` index entries.
pub(super) fn probe(scope: &BackfillScope) -> String {
    let (table, only) = history(scope);
    format!(
        "SELECT COUNT(*) AS n, MIN(t.id) AS low FROM (\
            SELECT s.id FROM {table} s WHERE s.id <= ?{only} ORDER BY s.id DESC LIMIT ?\
         ) t"
    )
}

/// The pass's extent: the greatest id now (later rows are written by code
/// that keeps the summary itself) and how many rows lie at or below it.
pub(super) fn extent(scope: &BackfillScope) -> String {
    let (table, only) = history(scope);
    format!("SELECT MAX(s.id) AS max_id, COUNT(*) AS n FROM {table} s WHERE 1 = 1{only}")
}

/// Merges the batch `s.id BETWEEN ? AND ?` (plus the scope's condition) into
/// its summary with the monotonic upsert the live path uses.
pub(super) fn merge_batch(backend: DbBackend, scope: &BackfillScope) -> String {
    let (_, only) = history(scope);
    match scope {
        BackfillScope::LastDequeues => merge_last_dequeues(backend),
        _ => merge_recent_workflows(backend, &format!("s.id >= ? AND s.id <= ?{only}")),
    }
}

fn merge_recent_workflows(backend: DbBackend, filter: &str) -> String {
    let batch = batch_aggregate(backend, filter);
    let keep_greater = keep_greater(backend);
    match backend {
        // Rows the summary already holds at or above are dropped before the
        // insert: the upsert would lock each such row only to write nothing,
        // and in a backfill that is nearly every row after the first batches.
        // The check may read a row that rises before the insert; the conflict
        // clause still decides. Plan: Index Scan of saved_runs_pkey over the
        // id range, Hash Join to the versions, Sort + Unique per level, then
        // per candidate row one index probe of the summary (SubPlan), about
        // 3 µs each; no tuple is locked unless it is written.
        DbBackend::Postgres => format!(
            "{INSERT_INTO}SELECT h.* FROM ({batch}) h \
             WHERE NOT COALESCE((\
                SELECT (r.last_used_at, r.last_saved_run_id) >= (h.last_used_at, h.last_saved_run_id) \
                FROM workspace_recent_workflows r \
                WHERE r.workspace_id = h.workspace_id AND r.uid = h.uid \
                AND r.published_run_id = h.published_run_id), false) \
             {keep_greater}"
        ),
        // SQLite needs a WHERE before ON CONFLICT to parse an INSERT … SELECT.
        DbBackend::Sqlite => {
            format!("{INSERT_INTO}SELECT h.* FROM ({batch}) h WHERE true {keep_greater}")
        }
        // MySQL/MariaDB: INSERT … SELECT reads the runs with shared locks
        // (under REPEATABLE READ, which the batch sets), so a run being moved
        // or deleted is read as committed after that change, never before it.
        _ => format!("{INSERT_INTO}SELECT h.* FROM ({batch}) h {keep_greater}"),
    }
}

// The greatest `started_at` per user; a user's row only ever rises.
fn merge_last_dequeues(backend: DbBackend) -> String {
    let insert = "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) \
                  SELECT s.user_id, MAX(s.started_at) FROM execution_jobs s \
                  WHERE s.id >= ? AND s.id <= ? AND s.started_at IS NOT NULL \
                  GROUP BY s.user_id";
    format!("{insert}{}", keep_greater_latest_dequeue(backend))
}

/// The conflict clause of an insert into `execution_last_dequeues` that
/// never lowers a row (a dequeue's trigger may have written a later time).
pub(crate) fn keep_greater_latest_dequeue(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::MySql => {
            " ON DUPLICATE KEY UPDATE latest_dequeue = \
             GREATEST(execution_last_dequeues.latest_dequeue, VALUES(latest_dequeue))"
        }
        _ => {
            " ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = excluded.latest_dequeue \
             WHERE excluded.latest_dequeue > execution_last_dequeues.latest_dequeue"
        }
    }
}

/// PostgreSQL, first in a batch: room for the batch's sorts in memory; no
/// JIT, whose compilation (the per-row check's estimate crosses
/// `jit_above_cost`) took longer than a whole batch's work; and, for recent
/// workflows, [`LOWERING_LOCK`] exclusively, so no summary row is lowered
/// between the batch's snapshot and its commit.
pub(super) fn batch_setup_postgres(scope: &BackfillScope) -> String {
    let lock = match scope {
        BackfillScope::LastDequeues => String::new(),
        _ => format!(", pg_advisory_xact_lock({LOWERING_LOCK})"),
    };
    format!("SELECT {SESSION_POSTGRES}{lock}")
}

/// The batch's settings on PostgreSQL, until its transaction ends.
pub(crate) const SESSION_POSTGRES: &str =
    "set_config('work_mem', '64MB', true), set_config('jit', 'off', true)";

pub(super) const CHECKPOINT_COLUMNS: &str = "name, max_id, resume_at_id, rows_total, rows_scanned, \
    started_at, updated_at, finished_at";

/// Reads a checkpoint, locking it for the rest of the transaction (SQLite
/// locks the whole database on `BEGIN IMMEDIATE` instead).
pub(super) fn read_checkpoint(backend: DbBackend) -> String {
    let lock = match backend {
        DbBackend::Sqlite => "",
        _ => " FOR UPDATE",
    };
    format!("SELECT {CHECKPOINT_COLUMNS} FROM recents_backfill_checkpoints WHERE name = ?{lock}")
}

pub(super) const START_CHECKPOINT: &str = "INSERT INTO recents_backfill_checkpoints \
    (max_id, resume_at_id, rows_total, rows_scanned, started_at, updated_at, finished_at, name) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

pub(super) const RESTART_CHECKPOINT: &str = "UPDATE recents_backfill_checkpoints SET \
    max_id = ?, resume_at_id = ?, rows_total = ?, rows_scanned = ?, started_at = ?, updated_at = ?, \
    finished_at = ? WHERE name = ?";

pub(super) const ADVANCE_CHECKPOINT: &str = "UPDATE recents_backfill_checkpoints SET \
    resume_at_id = ?, rows_scanned = rows_scanned + ?, updated_at = ?, finished_at = ? \
    WHERE name = ?";

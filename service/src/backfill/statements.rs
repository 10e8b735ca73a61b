//! The backfill's SQL, per backend, side by side, over the tables the schema
//! mapping names.
//!
//! A batch is a range of history ids, walked from the newest down: the newest
//! runs set most summary rows to their final value in the first batches, so
//! the older batches after them mostly compare and write nothing.

use recents_schema::Names;

use crate::{queue, recent_workflows};

use super::BackfillScope;
use crate::maintenance::SESSION_POSTGRES;
use crate::sql::for_update;

/// The history a scope reads: its table, its id column, and the condition
/// (on alias `s`, with `?` placeholders) that narrows it to the scope.
fn history(n: &Names, scope: &BackfillScope) -> (String, String, String) {
    let s = &n.saved_runs;
    match scope {
        BackfillScope::RecentWorkflows => (s.table.clone(), s.id.clone(), String::new()),
        BackfillScope::RecentWorkflowsOf(_) => (
            s.table.clone(),
            s.id.clone(),
            format!(" AND s.{} = ?", s.workspace_id),
        ),
        BackfillScope::LastDequeues => (n.jobs.table.clone(), n.jobs.id.clone(), String::new()),
    }
}

/// The ids at or below `?` still to do: how many (up to `?`), and the lowest,
/// which ends the batch. PostgreSQL plans it as an Aggregate over a Limit over
/// an Index Only Scan Backward of the primary key: `batch_rows` index entries.
pub(super) fn probe(n: &Names, scope: &BackfillScope) -> String {
    let (table, id, only) = history(n, scope);
    format!(
        "SELECT COUNT(*) AS n, MIN(t.id) AS low FROM (\
            SELECT s.{id} AS id FROM {table} s WHERE s.{id} <= ?{only} ORDER BY s.{id} DESC LIMIT ?\
         ) t"
    )
}

/// The pass's extent: the greatest id now (later rows are written by code
/// that keeps the summary itself) and how many rows lie at or below it.
pub(super) fn extent(n: &Names, scope: &BackfillScope) -> String {
    let (table, id, only) = history(n, scope);
    format!("SELECT MAX(s.{id}) AS max_id, COUNT(*) AS n FROM {table} s WHERE 1 = 1{only}")
}

/// Merges the batch `s.id BETWEEN ? AND ?` (plus the scope's condition) into
/// its summary with the monotonic upsert the live path uses.
pub(super) fn merge_batch(n: &Names, scope: &BackfillScope) -> String {
    let (_, id, only) = history(n, scope);
    match scope {
        BackfillScope::LastDequeues => queue::merge_last_dequeues_batch(n),
        _ => recent_workflows::backfill::merge_batch(
            n,
            &format!("s.{id} >= ? AND s.{id} <= ?{only}"),
        ),
    }
}

/// PostgreSQL, first in a batch: room for the batch's sorts in memory; no
/// JIT, whose compilation (the per-row check's estimate crosses
/// `jit_above_cost`) took longer than a whole batch's work; and, for recent
/// workflows, the summary's lowering lock exclusively, so no summary row is lowered
/// between the batch's snapshot and its commit.
pub(super) fn batch_setup_postgres(scope: &BackfillScope) -> String {
    let lock = match scope {
        BackfillScope::LastDequeues => String::new(),
        _ => format!(", {}", recent_workflows::backfill::lowering_lock()),
    };
    format!("SELECT {SESSION_POSTGRES}{lock}")
}

const CHECKPOINT_COLUMNS: &str = "name, max_id, resume_at_id, rows_total, rows_scanned, \
    started_at, updated_at, finished_at";

/// Reads a checkpoint; `lock`: for the rest of the transaction (SQLite locks
/// the whole database on `BEGIN IMMEDIATE` instead).
pub(super) fn read_checkpoint(n: &Names, lock: bool) -> String {
    let lock = if lock { for_update(n.backend) } else { "" };
    format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM {} WHERE name = ?{lock}",
        n.checkpoints
    )
}

pub(super) fn start_checkpoint(n: &Names) -> String {
    format!(
        "INSERT INTO {} \
         (max_id, resume_at_id, rows_total, rows_scanned, started_at, updated_at, finished_at, name) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        n.checkpoints
    )
}

pub(super) fn restart_checkpoint(n: &Names) -> String {
    format!(
        "UPDATE {} SET max_id = ?, resume_at_id = ?, rows_total = ?, rows_scanned = ?, \
         started_at = ?, updated_at = ?, finished_at = ? WHERE name = ?",
        n.checkpoints
    )
}

pub(super) fn advance_checkpoint(n: &Names) -> String {
    format!(
        "UPDATE {} SET resume_at_id = ?, rows_scanned = rows_scanned + ?, updated_at = ?, \
         finished_at = ? WHERE name = ?",
        n.checkpoints
    )
}

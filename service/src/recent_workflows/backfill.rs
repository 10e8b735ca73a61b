//! The recent-workflows summary's part of a backfill: the statement that
//! merges one batch of saved runs into the summary, and the lock that keeps
//! lowering paths out while it runs. The pass itself (checkpoints, batches,
//! retries) is `crate::backfill`'s, shared with the queue's summary.

use recents_schema::Names;
use sea_orm::DbBackend;

use super::history::batch_aggregate;
use super::summary::{LOWERING_LOCK, insert_into, keep_greater};

/// PostgreSQL: the lowering paths' advisory lock, held exclusively to the
/// batch's commit (a fragment of the batch's setup `SELECT`).
pub(crate) fn lowering_lock() -> String {
    format!("pg_advisory_xact_lock({LOWERING_LOCK})")
}

/// Merges the saved runs that `filter` (on alias `s`, with `?`s) selects
/// into the summary with the monotonic upsert the live path uses.
pub(crate) fn merge_batch(n: &Names, filter: &str) -> String {
    let batch = batch_aggregate(n, filter);
    let insert_into = insert_into(n);
    let keep_greater = keep_greater(n);
    let r = &n.recent_workflows;
    match n.backend {
        // Rows the summary already holds at or above are dropped before the
        // insert: the upsert would lock each such row only to write nothing,
        // and in a backfill that is nearly every row after the first batches.
        // The check may read a row that rises before the insert; the conflict
        // clause still decides. Plan: Index Scan of saved_runs_pkey over the
        // id range, Hash Join to the versions, Sort + Unique per level, then
        // per candidate row one index probe of the summary (SubPlan), about
        // 3 µs each; no tuple is locked unless it is written.
        DbBackend::Postgres => format!(
            "{insert_into}SELECT h.* FROM ({batch}) h \
             WHERE NOT COALESCE((\
                SELECT (r.last_used_at, r.last_saved_run_id) >= (h.last_used_at, h.last_saved_run_id) \
                FROM {r} r \
                WHERE r.workspace_id = h.workspace_id AND r.uid = h.uid \
                AND r.published_run_id = h.published_run_id), false) \
             {keep_greater}"
        ),
        // SQLite needs a WHERE before ON CONFLICT to parse an INSERT … SELECT.
        DbBackend::Sqlite => {
            format!("{insert_into}SELECT h.* FROM ({batch}) h WHERE true {keep_greater}")
        }
        // MySQL/MariaDB: INSERT … SELECT reads the runs with shared locks
        // (under REPEATABLE READ, which the batch sets), so a run being moved
        // or deleted is read as committed after that change, never before it.
        _ => format!("{insert_into}SELECT h.* FROM ({batch}) h {keep_greater}"),
    }
}

//! The history answer: what the summary must always equal, computed from
//! `saved_runs` in O(runs of the scope). Public as the baseline for verify,
//! the benchmark and the tests.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Value};

use super::read::{check_workspace_rows, rows_to_workflows};
use super::summary::Key;
use super::{RecentWorkflow, Scope};
use crate::error::Result;
use crate::ids::{SavedRunId, WorkspaceId};
use crate::sql::{latest_committed, statement};
use crate::validate;

// The seed's query: DISTINCT ON sorts every matching run by workflow. Kept as
// production ran it so the benchmark compares against the real baseline.
const HISTORY_POSTGRES: &str = "\
SELECT w.deleted_at AS workspace_deleted_at, t.published_run_id, p.title, t.last_used_at, t.last_saved_run_id \
FROM workspaces w LEFT JOIN (\
    SELECT DISTINCT ON (v.published_run_id) v.published_run_id, s.updated_at AS last_used_at, s.id AS last_saved_run_id \
    FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id \
    WHERE s.workspace_id = ? MEMBER \
    ORDER BY v.published_run_id, s.updated_at DESC, s.id DESC\
) t ON 1 = 1 LEFT JOIN published_runs p ON p.id = t.published_run_id \
WHERE w.id = ? \
ORDER BY t.last_used_at DESC, t.published_run_id DESC LIMIT ?";

// MySQL/MariaDB and SQLite have no DISTINCT ON: the same answer by window.
const HISTORY_STANDARD: &str = "\
SELECT w.deleted_at AS workspace_deleted_at, t.published_run_id, p.title, t.last_used_at, t.last_saved_run_id \
FROM workspaces w LEFT JOIN (\
    SELECT v.published_run_id, s.updated_at AS last_used_at, s.id AS last_saved_run_id, \
        ROW_NUMBER() OVER (PARTITION BY v.published_run_id ORDER BY s.updated_at DESC, s.id DESC) AS nth \
    FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id \
    WHERE s.workspace_id = ? MEMBER\
) t ON t.nth = 1 LEFT JOIN published_runs p ON p.id = t.published_run_id \
WHERE w.id = ? \
ORDER BY t.last_used_at DESC, t.published_run_id DESC LIMIT ?";

/// The recent workflows of `workspace_id` computed from `saved_runs`: over
/// the scope's runs with a version, grouped by published run, the greatest
/// `updated_at` (ties: the higher run id), newest first, then by published
/// run id descending. Reads every run of the scope: use [`super::recent_workflows`].
///
/// # Errors
/// As [`super::recent_workflows`].
pub async fn recent_workflows_from_history<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<RecentWorkflow>> {
    let limit = validate::limit(limit)?;
    let member = match scope {
        Scope::Workspace => None,
        Scope::Member(uid) => Some(validate::uid(uid)?),
    };
    let backend = conn.get_database_backend();
    let template = match backend {
        DbBackend::Postgres => HISTORY_POSTGRES,
        _ => HISTORY_STANDARD,
    };
    let mut values: Vec<Value> = vec![workspace_id.0.into()];
    let sql = match member {
        Some(uid) => {
            values.push(uid.into());
            template.replace("MEMBER", "AND s.uid = ?")
        }
        None => template.replace("MEMBER", ""),
    };
    values.push(workspace_id.0.into());
    values.push(i64::from(limit).into());
    let rows = conn.query_all_raw(statement(backend, &sql, values)).await?;
    check_workspace_rows(workspace_id, &rows)?;
    rows_to_workflows(&rows)
}

// The same definition in set form, for every key of a batch of runs at once:
// the member rows (latest run per workspace, uid and published run) and, from
// those, the workspace rows (uid ''), since the latest of all runs is the
// latest of the members' latest. Runs whose own uid is '' count for their
// workspace only: '' names no member, and it is the workspace rows' uid.
// FILTER is the batch's condition on `s`.
//
// PostgreSQL: DISTINCT ON over one in-memory sort per level. The uid sorts
// with the "C" collation: grouping only needs equal strings together, and
// byte order is several times cheaper than the locale's.
const BATCH_POSTGRES: &str = "\
WITH m AS (\
    SELECT DISTINCT ON (s.workspace_id, s.uid COLLATE \"C\", v.published_run_id) \
        s.workspace_id, s.uid, v.published_run_id, s.id AS last_saved_run_id, s.updated_at AS last_used_at \
    FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id \
    WHERE FILTER \
    ORDER BY s.workspace_id, s.uid COLLATE \"C\", v.published_run_id, s.updated_at DESC, s.id DESC\
) \
SELECT workspace_id, uid, published_run_id, last_saved_run_id, last_used_at FROM m WHERE uid <> '' \
UNION ALL (\
    SELECT DISTINCT ON (workspace_id, published_run_id) \
        workspace_id, '', published_run_id, last_saved_run_id, last_used_at \
    FROM m ORDER BY workspace_id, published_run_id, last_used_at DESC, last_saved_run_id DESC\
)";

// MySQL/MariaDB and SQLite: the same by window, in one derived table (no CTE,
// so it nests in MariaDB's INSERT … SELECT). Each member winner is emitted
// twice, once as itself and once as its workspace's row when it is also the
// workspace's winner.
const BATCH_STANDARD: &str = "\
SELECT m.workspace_id, CASE WHEN k.wide = 1 THEN '' ELSE m.uid END AS uid, m.published_run_id, \
    m.last_saved_run_id, m.last_used_at \
FROM (\
    SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.workspace_id, r.published_run_id \
        ORDER BY r.last_used_at DESC, r.last_saved_run_id DESC) AS nth_in_workspace \
    FROM (\
        SELECT s.workspace_id, s.uid, v.published_run_id, s.id AS last_saved_run_id, s.updated_at AS last_used_at, \
            ROW_NUMBER() OVER (PARTITION BY s.workspace_id, s.uid, v.published_run_id \
                ORDER BY s.updated_at DESC, s.id DESC) AS nth \
        FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id \
        WHERE FILTER\
    ) r WHERE r.nth = 1\
) m CROSS JOIN (SELECT 0 AS wide UNION ALL SELECT 1) k \
WHERE (k.wide = 0 AND m.uid <> '') OR (k.wide = 1 AND m.nth_in_workspace = 1)";

/// A `SELECT` of every summary row (member and workspace rows) that the runs
/// matching `filter` (a condition on `s`, the saved runs) aggregate to, as
/// `(workspace_id, uid, published_run_id, last_saved_run_id, last_used_at)`.
/// Exact for every key whose runs all match `filter`; for a batch of an id
/// range, the batch's part of a maximum that can be merged monotonically.
pub(crate) fn batch_aggregate(backend: DbBackend, filter: &str) -> String {
    match backend {
        DbBackend::Postgres => BATCH_POSTGRES,
        _ => BATCH_STANDARD,
    }
    .replace("FILTER", filter)
}

/// The history aggregate of one summary key: the latest `(id, updated_at)`.
pub(crate) async fn aggregate<C: ConnectionTrait>(
    conn: &C,
    key: &Key,
) -> Result<Option<(SavedRunId, DateTime<Utc>)>> {
    let backend = conn.get_database_backend();
    let mut values: Vec<Value> = vec![key.workspace_id.0.into(), key.published_run_id.0.into()];
    let member = if key.uid.is_empty() {
        ""
    } else {
        values.push(key.uid.clone().into());
        "AND s.uid = ?"
    };
    // Read after the row's lock was taken: the latest committed runs.
    let lock = latest_committed(backend);
    let row = conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT s.id, s.updated_at FROM saved_runs s \
                 JOIN published_run_versions v ON v.id = s.parent_version_id \
                 WHERE s.workspace_id = ? AND v.published_run_id = ? {member} \
                 ORDER BY s.updated_at DESC, s.id DESC LIMIT 1{lock}"
            ),
            values,
        ))
        .await?;
    Ok(match row {
        Some(row) => Some((
            SavedRunId(row.try_get("", "id")?),
            row.try_get("", "updated_at")?,
        )),
        None => None,
    })
}

//! The history answer: what the summary must always equal, computed from
//! `saved_runs` in O(runs of the scope). Public as the baseline for verify,
//! the benchmark and the tests.

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};

use super::Key;
use super::read::{check_workspace_rows, rows_to_workflows};
use super::{RecentWorkflow, Scope};
use crate::error::Result;
use crate::handle::Recents;
use crate::ids::{SavedRunId, WorkspaceId};
use crate::sql::{latest_committed, statement};
use crate::validate;

/// The brute-force answer: `DISTINCT ON` on PostgreSQL, `ROW_NUMBER()`
/// elsewhere, over every run of the workspace (or of one member, `member`
/// holding its condition).
fn from_history(n: &Names, member: &str) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    let w = &n.workspaces;
    let p = &n.published_runs;
    let runs = format!(
        "FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version} WHERE s.{ws} = ? {member}",
        runs = s.table,
        versions = v.table,
        v_id = v.id,
        version = s.version_id,
        ws = s.workspace_id,
    );
    let latest = match n.backend {
        DbBackend::Postgres => format!(
            "SELECT DISTINCT ON (v.{pr}) v.{pr} AS published_run_id, s.{at} AS last_used_at, \
                 s.{id} AS last_saved_run_id \
             {runs} ORDER BY v.{pr}, s.{at} DESC, s.{id} DESC) t ON 1 = 1",
            pr = v.published_run_id,
            at = s.updated_at,
            id = s.id,
        ),
        _ => format!(
            "SELECT v.{pr} AS published_run_id, s.{at} AS last_used_at, s.{id} AS last_saved_run_id, \
                 ROW_NUMBER() OVER (PARTITION BY v.{pr} ORDER BY s.{at} DESC, s.{id} DESC) AS nth \
             {runs}) t ON t.nth = 1",
            pr = v.published_run_id,
            at = s.updated_at,
            id = s.id,
        ),
    };
    format!(
        "SELECT {deleted} AS workspace_deleted_at, t.published_run_id, p.{title} AS title, \
             t.last_used_at, t.last_saved_run_id \
         FROM {workspaces} w LEFT JOIN ({latest} \
         LEFT JOIN {published_runs} p ON p.{p_id} = t.published_run_id \
         WHERE w.{w_id} = ? \
         ORDER BY t.last_used_at DESC, t.published_run_id DESC LIMIT ?",
        deleted = w.deleted_at_of("w"),
        title = p.title,
        workspaces = w.table,
        published_runs = p.table,
        p_id = p.id,
        w_id = w.id,
    )
}

/// The definition the summary is tested against: the latest `limit`
/// distinct published runs of `scope` in `workspace_id`, computed from every
/// saved run in it. O(history): for tests, `verify` and the benchmark only.
///
/// # Errors
/// As [`super::recent_workflows`].
pub async fn recent_workflows_from_history<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<RecentWorkflow>> {
    Recents::standard()
        .recent_workflows_from_history(conn, workspace_id, scope, limit)
        .await
}

impl Recents {
    /// [`recent_workflows_from_history`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`super::recent_workflows`].
    pub async fn recent_workflows_from_history<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: WorkspaceId,
        scope: &Scope,
        limit: u32,
    ) -> Result<Vec<RecentWorkflow>> {
        let schema = self.schema();
        let limit = validate::limit(limit)?;
        let member = match scope {
            Scope::Workspace => None,
            Scope::Member(uid) => Some(validate::uid(uid)?),
        };
        let backend = conn.get_database_backend();
        let n = schema.names(backend);
        let mut values: Vec<Value> = vec![workspace_id.0.into()];
        let sql = match member {
            Some(uid) => {
                values.push(uid.into());
                from_history(n, &format!("AND s.{} = ?", n.saved_runs.uid))
            }
            None => from_history(n, ""),
        };
        values.push(workspace_id.0.into());
        values.push(i64::from(limit).into());
        let rows = conn.query_all_raw(statement(backend, &sql, values)).await?;
        check_workspace_rows(workspace_id, &rows)?;
        rows_to_workflows(&rows)
    }
}

/// The summary rows that the saved runs matching `filter` (a condition on
/// the runs `s`, with its own placeholders) add up to, as
/// `(workspace_id, uid, published_run_id, last_saved_run_id, last_used_at)`:
/// each member's latest run per published run, and each workspace's (uid
/// `''`; a run whose uid is `''` counts for its workspace only).
pub(super) fn batch_aggregate(n: &Names, filter: &str) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    let runs = format!(
        "FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version} WHERE {filter}",
        runs = s.table,
        versions = v.table,
        v_id = v.id,
        version = s.version_id,
    );
    match n.backend {
        DbBackend::Postgres => format!(
            "WITH m AS (\
                SELECT DISTINCT ON (s.{ws}, s.{uid} COLLATE \"C\", v.{pr}) \
                    s.{ws} AS workspace_id, s.{uid} AS uid, v.{pr} AS published_run_id, \
                    s.{id} AS last_saved_run_id, s.{at} AS last_used_at \
                {runs} \
                ORDER BY s.{ws}, s.{uid} COLLATE \"C\", v.{pr}, s.{at} DESC, s.{id} DESC\
            ) \
            SELECT workspace_id, uid, published_run_id, last_saved_run_id, last_used_at FROM m WHERE uid <> '' \
            UNION ALL (\
                SELECT DISTINCT ON (workspace_id, published_run_id) \
                    workspace_id, '', published_run_id, last_saved_run_id, last_used_at \
                FROM m ORDER BY workspace_id, published_run_id, last_used_at DESC, last_saved_run_id DESC\
            )",
            ws = s.workspace_id,
            uid = s.uid,
            pr = v.published_run_id,
            id = s.id,
            at = s.updated_at,
        ),
        _ => format!(
            "SELECT m.workspace_id, CASE WHEN k.wide = 1 THEN '' ELSE m.uid END AS uid, m.published_run_id, \
                m.last_saved_run_id, m.last_used_at \
            FROM (\
                SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.workspace_id, r.published_run_id \
                    ORDER BY r.last_used_at DESC, r.last_saved_run_id DESC) AS nth_in_workspace \
                FROM (\
                    SELECT s.{ws} AS workspace_id, s.{uid} AS uid, v.{pr} AS published_run_id, \
                        s.{id} AS last_saved_run_id, s.{at} AS last_used_at, \
                        ROW_NUMBER() OVER (PARTITION BY s.{ws}, s.{uid}, v.{pr} \
                            ORDER BY s.{at} DESC, s.{id} DESC) AS nth \
                    {runs}\
                ) r WHERE r.nth = 1\
            ) m CROSS JOIN (SELECT 0 AS wide UNION ALL SELECT 1) k \
            WHERE (k.wide = 0 AND m.uid <> '') OR (k.wide = 1 AND m.nth_in_workspace = 1)",
            ws = s.workspace_id,
            uid = s.uid,
            pr = v.published_run_id,
            id = s.id,
            at = s.updated_at,
        ),
    }
}

#[derive(FromQueryResult)]
struct LatestRun {
    id: i64,
    updated_at: DateTime<Utc>,
}

/// The history aggregate of one summary key: the latest `(id, updated_at)`.
pub(super) async fn aggregate<C: ConnectionTrait>(
    conn: &C,
    n: &Names,
    key: &Key,
) -> Result<Option<(SavedRunId, DateTime<Utc>)>> {
    let s = &n.saved_runs;
    let v = &n.versions;
    let mut values: Vec<Value> = vec![key.workspace_id.0.into(), key.published_run_id.0.into()];
    let member = if key.uid.is_empty() {
        String::new()
    } else {
        values.push(key.uid.clone().into());
        format!("AND s.{} = ?", s.uid)
    };
    let lock = latest_committed(n.backend);
    let row = conn
        .query_one_raw(statement(
            n.backend,
            &format!(
                "SELECT s.{id} AS id, s.{at} AS updated_at FROM {runs} s \
                 JOIN {versions} v ON v.{v_id} = s.{version} \
                 WHERE s.{ws} = ? AND v.{pr} = ? {member} \
                 ORDER BY s.{at} DESC, s.{id} DESC LIMIT 1{lock}",
                id = s.id,
                at = s.updated_at,
                runs = s.table,
                versions = v.table,
                v_id = v.id,
                version = s.version_id,
                ws = s.workspace_id,
                pr = v.published_run_id,
            ),
            values,
        ))
        .await?;
    Ok(match row {
        Some(row) => {
            let run = LatestRun::from_query_result(&row, "")?;
            Some((SavedRunId(run.id), run.updated_at))
        }
        None => None,
    })
}

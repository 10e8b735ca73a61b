//! The fast read: an index range of `limit` summary rows.

use chrono::{DateTime, Utc};
use recents_entity::workspace_recent_workflow::WORKSPACE_SCOPE_UID;
use recents_schema::Names;
use sea_orm::{ConnectionTrait, FromQueryResult, QueryResult};

use super::{RecentWorkflow, Scope};
use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::{PublishedRunId, SavedRunId, WorkspaceId};
use crate::sql::statement;
use crate::validate;

// One round trip answers both "does the workspace exist and live?" and the
// read. The inner query is `workspace_id = ? AND uid = ? ORDER BY last_used_at
// DESC, published_run_id DESC LIMIT n` over idx_workspace_recent_workflows_recency:
// PostgreSQL plans it as an Index Scan with a Limit, nested-looping into
// published_runs by primary key, so it touches `limit` summary rows whatever
// the history holds. The workspace scope reads the uid '' rows the same way.
fn recent(n: &Names) -> String {
    let w = &n.workspaces;
    let p = &n.published_runs;
    format!(
        "SELECT {deleted} AS workspace_deleted_at, x.published_run_id, x.title, x.last_used_at, x.last_saved_run_id \
         FROM {workspaces} w LEFT JOIN (\
             SELECT r.published_run_id, p.{title} AS title, r.last_used_at, r.last_saved_run_id \
             FROM {r} r JOIN {published_runs} p ON p.{p_id} = r.published_run_id \
             WHERE r.workspace_id = ? AND r.uid = ? \
             ORDER BY r.last_used_at DESC, r.published_run_id DESC LIMIT ?\
         ) x ON 1 = 1 \
         WHERE w.{w_id} = ? \
         ORDER BY x.last_used_at DESC, x.published_run_id DESC",
        deleted = w.deleted_at_of("w"),
        workspaces = w.table,
        title = p.title,
        r = n.recent_workflows,
        published_runs = p.table,
        p_id = p.id,
        w_id = w.id,
    )
}

/// The `limit` workflows the scope used most recently, newest first (ties:
/// higher published run id first). Exact: equal to
/// [`recent_workflows_from_history`](super::recent_workflows_from_history)
/// whenever saves go through [`save_run`](super::save_run) with the default
/// (exact) options.
///
/// Cost: one statement reading `limit` index entries of the summary and
/// `limit` published runs by primary key, for either scope. The workspace
/// scope reads its own summary rows (uid `''`), so a team workspace with
/// thousands of members costs the same as a personal one. `saved_runs` is
/// never read.
///
/// # Errors
/// [`Error::InvalidLimit`] unless `1 <= limit <= 1000`, [`Error::InvalidUid`]
/// for a bad member uid (both before any statement is sent);
/// [`Error::WorkspaceNotFound`], [`Error::WorkspaceDeleted`];
/// [`Error::Database`].
pub async fn recent_workflows<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<RecentWorkflow>> {
    Recents::standard()
        .recent_workflows(conn, workspace_id, scope, limit)
        .await
}

/// The home page's list: a personal workspace shows its own recent workflows
/// (workspace scope), a team workspace those of the viewing member.
///
/// # Errors
/// As [`recent_workflows`].
pub async fn home_recent_workflows<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    viewer_uid: &str,
    limit: u32,
) -> Result<Vec<RecentWorkflow>> {
    Recents::standard()
        .home_recent_workflows(conn, workspace_id, viewer_uid, limit)
        .await
}

#[derive(FromQueryResult)]
struct WorkspaceKind {
    is_personal: Option<bool>,
    deleted_at: Option<DateTime<Utc>>,
}

impl Recents {
    /// [`recent_workflows`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`recent_workflows`].
    pub async fn recent_workflows<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: WorkspaceId,
        scope: &Scope,
        limit: u32,
    ) -> Result<Vec<RecentWorkflow>> {
        let limit = validate::limit(limit)?;
        let uid = match scope {
            Scope::Workspace => WORKSPACE_SCOPE_UID,
            Scope::Member(uid) => validate::uid(uid)?,
        };
        let backend = conn.get_database_backend();
        let rows = conn
            .query_all_raw(statement(
                backend,
                &recent(self.schema().names(backend)),
                vec![
                    workspace_id.0.into(),
                    uid.into(),
                    i64::from(limit).into(),
                    workspace_id.0.into(),
                ],
            ))
            .await?;
        check_workspace_rows(workspace_id, &rows)?;
        rows_to_workflows(&rows)
    }

    /// [`home_recent_workflows`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`recent_workflows`].
    pub async fn home_recent_workflows<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: WorkspaceId,
        viewer_uid: &str,
        limit: u32,
    ) -> Result<Vec<RecentWorkflow>> {
        validate::limit(limit)?;
        validate::uid(viewer_uid)?;
        let backend = conn.get_database_backend();
        let w = &self.schema().names(backend).workspaces;
        let row = conn
            .query_one_raw(statement(
                backend,
                &format!(
                    "SELECT {personal} AS is_personal, {deleted} AS deleted_at FROM {table} w WHERE w.{id} = ?",
                    personal = w.is_personal_of("w"),
                    deleted = w.deleted_at_of("w"),
                    table = w.table,
                    id = w.id,
                ),
                vec![workspace_id.0.into()],
            ))
            .await?
            .ok_or(Error::WorkspaceNotFound(workspace_id))?;
        let workspace = WorkspaceKind::from_query_result(&row, "")?;
        if workspace.deleted_at.is_some() {
            return Err(Error::WorkspaceDeleted(workspace_id));
        }
        let scope = if workspace.is_personal == Some(true) {
            Scope::Workspace
        } else {
            Scope::Member(viewer_uid.to_owned())
        };
        self.recent_workflows(conn, workspace_id, &scope, limit)
            .await
    }
}

/// Turns "no row" into `WorkspaceNotFound` and a set `deleted_at` into
/// `WorkspaceDeleted`, for statements that left-join their answer to the workspace.
pub(super) fn check_workspace_rows(workspace_id: WorkspaceId, rows: &[QueryResult]) -> Result<()> {
    let first = rows.first().ok_or(Error::WorkspaceNotFound(workspace_id))?;
    if first
        .try_get::<Option<DateTime<Utc>>>("", "workspace_deleted_at")?
        .is_some()
    {
        return Err(Error::WorkspaceDeleted(workspace_id));
    }
    Ok(())
}

/// One row of a recent-workflows statement: all NULL but the workspace's
/// deletion time when the scope has no workflow (the workspace's row is
/// left-joined to the answer).
#[derive(FromQueryResult)]
struct WorkflowRow {
    published_run_id: Option<i64>,
    title: Option<String>,
    last_used_at: Option<DateTime<Utc>>,
    last_saved_run_id: Option<i64>,
}

pub(super) fn rows_to_workflows(rows: &[QueryResult]) -> Result<Vec<RecentWorkflow>> {
    let mut workflows = Vec::with_capacity(rows.len());
    for row in rows {
        let row = WorkflowRow::from_query_result(row, "")?;
        let (Some(published_run_id), Some(last_used_at), Some(last_saved_run_id)) = (
            row.published_run_id,
            row.last_used_at,
            row.last_saved_run_id,
        ) else {
            continue;
        };
        workflows.push(RecentWorkflow {
            published_run_id: PublishedRunId(published_run_id),
            // A workflow deleted between the summary read and the join is
            // not in the answer; one with a NULL title shows an empty one.
            title: row.title.unwrap_or_default(),
            last_used_at,
            last_saved_run_id: SavedRunId(last_saved_run_id),
        });
    }
    Ok(workflows)
}

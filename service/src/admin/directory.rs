//! The workspace directory operators browse: a page of workspaces at a time
//! with what each holds (history runs, summary rows, latest use), and the
//! members of one. Keyset-paginated, so a hundred thousand workspaces never
//! load at once and page `n` costs what page 1 costs.

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{ConnectionTrait, FromQueryResult, QueryResult, Value};

use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::WorkspaceId;
use crate::maintenance::count;
use crate::sql::statement;
use crate::validate;

/// The longest name filter, in bytes.
pub const MAX_FILTER_BYTES: usize = 255;

/// One workspace as the operator console lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceOverview {
    /// The workspace.
    pub id: WorkspaceId,
    /// Its name.
    pub name: String,
    /// Personal (home page in workspace scope) or team (per member).
    pub is_personal: bool,
    /// When it was soft-deleted, if it was.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Saved runs in its history.
    pub history_runs: u64,
    /// Rows it has in `workspace_recent_workflows` (all members and the
    /// workspace-wide rows).
    pub summary_rows: u64,
    /// Its latest recorded use of any workflow, from the summary.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The order of a workspace listing. Every order is total (ties on the
/// name break on the id), so a cursor resumes exactly where a page ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WorkspaceOrder {
    /// Oldest id first (the primary key: no sort at all).
    #[default]
    IdAscending,
    /// Newest id first.
    IdDescending,
    /// By name, A to Z, in the database's collation.
    NameAscending,
    /// By name, Z to A.
    NameDescending,
}

/// Where the next page starts: the last workspace of the page before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceCursor {
    /// The last workspace's id.
    pub id: WorkspaceId,
    /// Its name (the keyset of the name orders).
    pub name: String,
}

/// Which page of workspaces to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceListing {
    /// Only workspaces whose name contains this, case-insensitively.
    pub name_contains: Option<String>,
    /// The order of the listing.
    pub order: WorkspaceOrder,
    /// Start after this workspace; `None` for the first page.
    pub after: Option<WorkspaceCursor>,
    /// Workspaces per page, `1..=MAX_LIMIT`.
    pub limit: u32,
}

impl Default for WorkspaceListing {
    fn default() -> Self {
        Self {
            name_contains: None,
            order: WorkspaceOrder::default(),
            after: None,
            limit: 50,
        }
    }
}

/// One page of a workspace listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspacePage {
    /// The workspaces of the page, in the listing's order.
    pub workspaces: Vec<WorkspaceOverview>,
    /// The cursor of the next page, `None` on the last one.
    pub next: Option<WorkspaceCursor>,
}

// The page is chosen first (an index range on the primary key, or a top-n
// sort on the name), and only its rows get their counts: each a range count
// on an index (idx_saved_runs_workspace, the summary's primary key, the
// recency index's first entry). So a page costs `limit` small index reads
// plus the run counts of the workspaces it shows, never a scan of the
// history of the others. PostgreSQL's plan (demo, 300k-run workspace on the
// page): Limit over an Index Scan on workspaces_pkey, then three SubPlans run
// once per page row (Index Only Scan on idx_saved_runs_workspace; the
// summary's primary key, or a Seq Scan while the summary is tiny; a Limit 1
// Index Only Scan on idx_workspace_recent_workflows_recency): 50 ms for the
// page, nearly all of it counting the heavy workspace's 300k runs.
fn list(n: &Names, filter: &str, keyset: &str, inner: &str, outer: &str) -> String {
    let w = &n.workspaces;
    let personal = w.is_personal_of("w");
    format!(
        "SELECT p.id, p.name, p.is_personal, p.deleted_at, \
             (SELECT COUNT(*) FROM {runs} s WHERE s.{run_ws} = p.id) AS history_runs, \
             (SELECT COUNT(*) FROM {r} r WHERE r.workspace_id = p.id) AS summary_rows, \
             (SELECT MAX(r.last_used_at) FROM {r} r \
                 WHERE r.workspace_id = p.id AND r.uid = '') AS last_used_at \
         FROM (\
             SELECT w.{id} AS id, w.{name} AS name, {personal} AS is_personal, \
                 {deleted} AS deleted_at FROM {table} w \
             WHERE 1 = 1 {filter} {keyset} ORDER BY {inner} LIMIT ?\
         ) p \
         ORDER BY {outer}",
        runs = n.saved_runs.table,
        run_ws = n.saved_runs.workspace_id,
        r = n.recent_workflows,
        id = w.id,
        name = w.name,
        deleted = w.deleted_at_of("w"),
        table = w.table,
    )
}

/// One page of workspaces with their counts, in `listing.order`, resuming
/// after `listing.after`.
///
/// Cost: the page's `limit + 1` workspaces by index (id orders) or by a
/// top-n sort of the matching workspaces (name orders, and any name filter,
/// which is a substring match); then, per workspace shown, three index reads,
/// the run count being a count of that workspace's entries in
/// `idx_saved_runs_workspace`.
///
/// # Errors
/// [`Error::InvalidLimit`], [`Error::InvalidArgument`] for a filter longer
/// than [`MAX_FILTER_BYTES`] (before any statement); [`Error::Database`].
pub async fn list_workspaces<C: ConnectionTrait>(
    conn: &C,
    listing: &WorkspaceListing,
) -> Result<WorkspacePage> {
    Recents::standard().list_workspaces(conn, listing).await
}

/// One workspace with its counts, deleted or not.
///
/// # Errors
/// [`Error::WorkspaceNotFound`]; [`Error::Database`].
pub async fn workspace_overview<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
) -> Result<WorkspaceOverview> {
    Recents::standard()
        .workspace_overview(conn, workspace_id)
        .await
}

/// The members of a workspace: the distinct users with a recorded use in
/// its summary, in uid order, `limit` at a time after `after`.
///
/// # Errors
/// [`Error::InvalidLimit`] (before any statement); [`Error::WorkspaceNotFound`],
/// [`Error::WorkspaceDeleted`]; [`Error::Database`].
pub async fn workspace_members<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<String>> {
    Recents::standard()
        .workspace_members(conn, workspace_id, after, limit)
        .await
}

impl Recents {
    /// [`list_workspaces`] of the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`list_workspaces`].
    pub async fn list_workspaces<C: ConnectionTrait>(
        &self,
        conn: &C,
        listing: &WorkspaceListing,
    ) -> Result<WorkspacePage> {
        let n = self.schema().names(conn.get_database_backend());
        let name_col = n.workspaces.name.clone();
        let id_col = n.workspaces.id.clone();
        let limit = validate::limit(listing.limit)?;
        let mut values: Vec<Value> = Vec::new();
        let filter = match listing.name_contains.as_deref().map(str::trim) {
            Some(needle) if !needle.is_empty() => {
                validate::text("name filter", needle, MAX_FILTER_BYTES)?;
                values.push(like_pattern(needle).into());
                format!("AND LOWER(w.{name_col}) LIKE ? ESCAPE '!'")
            }
            _ => String::new(),
        };
        let (name, id) = (&name_col, &id_col);
        let (keyset, inner, outer) = match listing.order {
            WorkspaceOrder::IdAscending => {
                (format!("AND w.{id} > ?"), format!("w.{id} ASC"), "p.id ASC")
            }
            WorkspaceOrder::IdDescending => (
                format!("AND w.{id} < ?"),
                format!("w.{id} DESC"),
                "p.id DESC",
            ),
            WorkspaceOrder::NameAscending => (
                format!("AND (w.{name} > ? OR (w.{name} = ? AND w.{id} > ?))"),
                format!("w.{name} ASC, w.{id} ASC"),
                "p.name ASC, p.id ASC",
            ),
            WorkspaceOrder::NameDescending => (
                format!("AND (w.{name} < ? OR (w.{name} = ? AND w.{id} < ?))"),
                format!("w.{name} DESC, w.{id} DESC"),
                "p.name DESC, p.id DESC",
            ),
        };
        let keyset = match &listing.after {
            None => String::new(),
            Some(after) => {
                match listing.order {
                    WorkspaceOrder::IdAscending | WorkspaceOrder::IdDescending => {
                        values.push(after.id.0.into());
                    }
                    WorkspaceOrder::NameAscending | WorkspaceOrder::NameDescending => {
                        values.push(after.name.clone().into());
                        values.push(after.name.clone().into());
                        values.push(after.id.0.into());
                    }
                }
                keyset
            }
        };
        values.push(i64::from(limit + 1).into());
        let sql = list(n, &filter, &keyset, &inner, outer);
        let rows = conn
            .query_all_raw(statement(conn.get_database_backend(), &sql, values))
            .await?;
        let mut workspaces = rows.iter().map(overview_of).collect::<Result<Vec<_>>>()?;
        let next = if workspaces.len() > limit as usize {
            workspaces.truncate(limit as usize);
            workspaces.last().map(|last| WorkspaceCursor {
                id: last.id,
                name: last.name.clone(),
            })
        } else {
            None
        };
        Ok(WorkspacePage { workspaces, next })
    }

    /// [`workspace_overview`] of the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`workspace_overview`].
    pub async fn workspace_overview<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: WorkspaceId,
    ) -> Result<WorkspaceOverview> {
        let n = self.schema().names(conn.get_database_backend());
        let id = &n.workspaces.id;
        let sql = list(
            n,
            &format!("AND w.{id} = ?"),
            "",
            &format!("w.{id}"),
            "p.id",
        );
        let row = conn
            .query_one_raw(statement(
                conn.get_database_backend(),
                &sql,
                vec![workspace_id.0.into(), 1i64.into()],
            ))
            .await?
            .ok_or(Error::WorkspaceNotFound(workspace_id))?;
        overview_of(&row)
    }

    // The summary's primary key (workspace_id, uid, published_run_id) yields
    // the uids of a workspace in order: DISTINCT walks it and stops after
    // `limit`. `uid > ?` skips the workspace-wide rows (uid '', the least
    // string) and resumes after the previous page.
    /// [`workspace_members`] of the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`workspace_members`].
    pub async fn workspace_members<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: WorkspaceId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>> {
        let limit = validate::limit(limit)?;
        let backend = conn.get_database_backend();
        let n = self.schema().names(backend);
        let w = &n.workspaces;
        let members = format!(
            "SELECT {deleted} AS workspace_deleted_at, x.uid \
             FROM {table} w LEFT JOIN (\
                 SELECT DISTINCT r.uid FROM {r} r \
                 WHERE r.workspace_id = ? AND r.uid > ? ORDER BY r.uid LIMIT ?\
             ) x ON 1 = 1 \
             WHERE w.{id} = ? \
             ORDER BY x.uid",
            deleted = w.deleted_at_of("w"),
            table = w.table,
            r = n.recent_workflows,
            id = w.id,
        );
        let rows = conn
            .query_all_raw(statement(
                backend,
                &members,
                vec![
                    workspace_id.0.into(),
                    after.unwrap_or("").into(),
                    i64::from(limit).into(),
                    workspace_id.0.into(),
                ],
            ))
            .await?;
        let first = rows.first().ok_or(Error::WorkspaceNotFound(workspace_id))?;
        if Member::from_query_result(first, "")?
            .workspace_deleted_at
            .is_some()
        {
            return Err(Error::WorkspaceDeleted(workspace_id));
        }
        let mut members = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(uid) = Member::from_query_result(row, "")?.uid {
                members.push(uid);
            }
        }
        Ok(members)
    }
}

#[derive(FromQueryResult)]
struct Member {
    workspace_deleted_at: Option<DateTime<Utc>>,
    uid: Option<String>,
}

#[derive(FromQueryResult)]
struct OverviewRow {
    id: WorkspaceId,
    name: String,
    is_personal: Option<bool>,
    deleted_at: Option<DateTime<Utc>>,
    history_runs: i64,
    summary_rows: i64,
    last_used_at: Option<DateTime<Utc>>,
}

fn overview_of(row: &QueryResult) -> Result<WorkspaceOverview> {
    let row = OverviewRow::from_query_result(row, "")?;
    Ok(WorkspaceOverview {
        id: row.id,
        name: row.name,
        is_personal: row.is_personal.unwrap_or(false),
        deleted_at: row.deleted_at,
        history_runs: count(row.history_runs),
        summary_rows: count(row.summary_rows),
        last_used_at: row.last_used_at,
    })
}

/// `%needle%`, lowercased, with the LIKE wildcards of the needle escaped by `!`.
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_wildcards_in_a_filter_match_themselves() {
        assert_eq!(like_pattern("Team_A"), "%team!_a%");
        assert_eq!(like_pattern("50%!"), "%50!%!!%");
    }
}

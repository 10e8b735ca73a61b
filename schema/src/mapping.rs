//! The mapping as a team writes it: the backend's table and column names
//! under recents' names for them, every key optional (the default is
//! recents' own name), as a value to build in code or to read from TOML.

use serde::{Deserialize, Serialize};

/// The backend's names for the history tables recents reads and writes, and
/// the prefix of recents' own tables. Defaults are recents' names, so
/// `SchemaMapping::default()` describes a database recents created.
///
/// ```
/// use recents_schema::SchemaMapping;
///
/// let mapping: SchemaMapping = toml::from_str(r#"
///     [tables]
///     saved_runs = "bots_savedrun"
///
///     [columns.saved_runs]
///     version_id = "parent_version_id"
/// "#).unwrap();
/// assert_eq!(mapping.tables.saved_runs, "bots_savedrun");
/// assert_eq!(mapping.tables.workspaces, "workspaces");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaMapping {
    /// Put before the name of every table, index, trigger and function
    /// recents owns (`""`: none), so two installations can share a database.
    pub prefix: String,
    /// The history tables.
    pub tables: TableNames,
    /// Their columns.
    pub columns: ColumnNames,
    /// Which of recents' parts to install and check.
    pub install: Install,
    /// How the recent-workflows summary is kept.
    pub recent_workflows: RecentWorkflowsSettings,
}

/// The `[recent_workflows]` section: who keeps the summary exact.
///
/// ```
/// use recents_schema::{MaintainedBy, SchemaMapping};
///
/// let mapping: SchemaMapping = toml::from_str("[recent_workflows]\nmaintained_by = \"triggers\"").unwrap();
/// assert_eq!(mapping.recent_workflows.maintained_by, MaintainedBy::Triggers);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecentWorkflowsSettings {
    /// `"service"` (the default) or `"triggers"`.
    pub maintained_by: MaintainedBy,
}

/// Who writes `workspace_recent_workflows`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaintainedBy {
    /// recents' write path (`save_run`, `touch`, `retract`, the deletes), in
    /// the caller's transaction, as each statement runs.
    #[default]
    Service,
    /// Database triggers on the saved-runs and versions tables, whoever
    /// writes them (raw SQL, other services); on PostgreSQL at commit.
    Triggers,
}

impl MaintainedBy {
    /// The value as the mapping spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MaintainedBy::Service => "service",
            MaintainedBy::Triggers => "triggers",
        }
    }
}

/// Which of recents' parts a database has: a backend without a jobs table
/// adopts recent workflows alone, and the other way round. Chosen at
/// adoption: the migrations of a part left out are recorded as applied
/// without creating anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Install {
    /// The recent-workflows summary over workspaces, published runs,
    /// versions and saved runs.
    pub recent_workflows: bool,
    /// The fair queue over the jobs table.
    pub fair_queue: bool,
}

impl Default for Install {
    fn default() -> Self {
        Self {
            recent_workflows: true,
            fair_queue: true,
        }
    }
}

/// The backend's history tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableNames {
    /// Workspaces (`workspaces`).
    pub workspaces: String,
    /// Workflows, the published runs (`published_runs`).
    pub published_runs: String,
    /// Versions of published runs (`published_run_versions`).
    pub versions: String,
    /// Saved runs, the history of recent workflows (`saved_runs`).
    pub saved_runs: String,
    /// Jobs of the fair queue (`execution_jobs`).
    pub execution_jobs: String,
}

impl Default for TableNames {
    fn default() -> Self {
        Self {
            workspaces: "workspaces".into(),
            published_runs: "published_runs".into(),
            versions: "published_run_versions".into(),
            saved_runs: "saved_runs".into(),
            execution_jobs: "execution_jobs".into(),
        }
    }
}

/// The backend's columns, table by table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnNames {
    /// Of the workspaces table.
    pub workspaces: WorkspaceColumns,
    /// Of the published-runs table.
    pub published_runs: PublishedRunColumns,
    /// Of the versions table.
    pub versions: VersionColumns,
    /// Of the saved-runs table.
    pub saved_runs: SavedRunColumns,
    /// Of the jobs table.
    pub execution_jobs: ExecutionJobColumns,
}

/// Columns of the workspaces table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceColumns {
    /// The integer primary key.
    pub id: String,
    /// The name operators browse by.
    pub name: String,
    /// Whether the home page shows the whole workspace (a boolean). `None`:
    /// `is_personal` if the table has it; a table without it has team
    /// workspaces only.
    pub is_personal: Option<String>,
    /// The soft-delete time (a timestamp, NULL while live). `None`:
    /// `deleted_at` if the table has it; a table without it has no soft deletes.
    pub deleted_at: Option<String>,
}

impl Default for WorkspaceColumns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            name: "name".into(),
            is_personal: None,
            deleted_at: None,
        }
    }
}

/// Columns of the published-runs table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishedRunColumns {
    /// The integer primary key.
    pub id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// The title a recent-workflows answer carries.
    pub title: String,
}

impl Default for PublishedRunColumns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            workspace_id: "workspace_id".into(),
            title: "title".into(),
        }
    }
}

/// Columns of the versions table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VersionColumns {
    /// The integer primary key.
    pub id: String,
    /// The published run it is a version of.
    pub published_run_id: String,
}

impl Default for VersionColumns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            published_run_id: "published_run_id".into(),
        }
    }
}

/// Columns of the saved-runs table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SavedRunColumns {
    /// The integer primary key.
    pub id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// The user who saved it (text).
    pub uid: String,
    /// The version it ran (nullable: a run without one counts for nothing).
    pub version_id: String,
    /// Its status text (written by `save_run` only).
    pub run_status: String,
    /// When it was created (written by `save_run` only).
    pub created_at: String,
    /// When it was last saved: a run's use.
    pub updated_at: String,
}

impl Default for SavedRunColumns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            workspace_id: "workspace_id".into(),
            uid: "uid".into(),
            version_id: "parent_version_id".into(),
            run_status: "run_status".into(),
            created_at: "created_at".into(),
            updated_at: "updated_at".into(),
        }
    }
}

/// Columns of the jobs table (the fair queue reads and writes them all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionJobColumns {
    /// The integer primary key.
    pub id: String,
    /// Whose job it is (an integer).
    pub user_id: String,
    /// `queued`, `processing`, `errored`, `failed`, `completed` or `canceled` (text).
    pub state: String,
    /// What to run (JSON).
    pub payload: String,
    /// When it was enqueued.
    pub created_at: String,
    /// When it was last dequeued.
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// Not eligible before this time.
    pub process_after: String,
    /// How often it was reset after stalling (an integer).
    pub num_resets: String,
    /// How often it failed (an integer).
    pub num_failures: String,
    /// The last failure's message (text).
    pub failure_message: String,
    /// The worker processing it (text).
    pub worker_hostname: String,
    /// The worker's last heartbeat for it.
    pub last_heartbeat_at: String,
    /// Whether it was canceled (a boolean).
    pub cancel: String,
}

impl Default for ExecutionJobColumns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            user_id: "user_id".into(),
            state: "state".into(),
            payload: "payload".into(),
            created_at: "created_at".into(),
            started_at: "started_at".into(),
            finished_at: "finished_at".into(),
            process_after: "process_after".into(),
            num_resets: "num_resets".into(),
            num_failures: "num_failures".into(),
            failure_message: "failure_message".into(),
            worker_hostname: "worker_hostname".into(),
            last_heartbeat_at: "last_heartbeat_at".into(),
            cancel: "cancel".into(),
        }
    }
}

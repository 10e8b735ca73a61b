//! Recent workflows: which published runs a workspace (or one member of it)
//! used last, read from the `workspace_recent_workflows` summary in O(limit)
//! instead of from `saved_runs` in O(history).
//!
//! The summary holds, per (workspace, uid, published run), the greatest
//! `(updated_at, id)` of the saved runs in that group, plus one row per
//! (workspace, published run) under the reserved uid `''` for the whole
//! workspace. [`save_run`] keeps both in the run-save transaction;
//! [`recent_workflows_from_history`] is the definition they are tested against.

pub(crate) mod backfill;
mod history;
mod read;
mod settings;

pub(crate) use settings::check_mode;
mod summary;
pub mod verify;
mod write;

use chrono::{DateTime, Utc};
use sea_orm::FromQueryResult;

use crate::ids::{PublishedRunId, SavedRunId, VersionId, WorkspaceId};

pub use history::recent_workflows_from_history;
pub use read::{home_recent_workflows, recent_workflows};
pub use write::{
    RunSave, SaveOptions, delete_published_run, delete_saved_run, delete_version, retract,
    save_run, touch,
};

/// Whose runs a recent-workflows read looks at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every run of the workspace (a personal workspace's home page).
    Workspace,
    /// Only this user's runs in the workspace (the team-workspace path).
    Member(String),
}

/// One workflow in a recent-workflows answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentWorkflow {
    /// The published run (workflow).
    pub published_run_id: PublishedRunId,
    /// Its title.
    pub title: String,
    /// The greatest `updated_at` of the scope's runs of this workflow.
    pub last_used_at: DateTime<Utc>,
    /// The run that has it (ties: the higher id).
    pub last_saved_run_id: SavedRunId,
}

/// A saved run as the summary sees it: what [`save_run`] returns and what
/// [`touch`] and [`retract`] take, whatever else the backend's row holds.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct SavedRun {
    /// The run.
    pub id: SavedRunId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Who saved it.
    pub uid: String,
    /// The version it ran (`None`: it counts for nothing).
    pub version_id: Option<VersionId>,
    /// Its last save: the run's use.
    pub updated_at: DateTime<Utc>,
}

impl From<&recents_entity::saved_run::Model> for SavedRun {
    /// A row of recents' own `saved_runs` table, as the summary sees it.
    fn from(run: &recents_entity::saved_run::Model) -> Self {
        Self {
            id: SavedRunId(run.id),
            workspace_id: WorkspaceId(run.workspace_id),
            uid: run.uid.clone(),
            version_id: run.parent_version_id.map(VersionId),
            updated_at: run.updated_at,
        }
    }
}

/// The key of one summary row (a workspace, a member or `''` for the
/// workspace row, a workflow): what a saved run counts towards, if it
/// counts at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub workspace_id: WorkspaceId,
    pub uid: String,
    pub published_run_id: PublishedRunId,
}

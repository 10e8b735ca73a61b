//! SeaORM entities for the tables `recents` reads and writes.
//!
//! The history tables (`workspaces`, `published_runs`, `published_run_versions`,
//! `saved_runs`, `execution_jobs`) belong to the backend; `recents` only adds the
//! two summary tables (`workspace_recent_workflows`, `execution_last_dequeues`).
//! Entities are plain data: behaviour lives in `recents-service`, schema in
//! `recents-migration` (indexes and triggers cannot be expressed here).

pub mod execution_job;
pub mod execution_last_dequeue;
pub mod published_run;
pub mod published_run_version;
pub mod saved_run;
pub mod workspace;
pub mod workspace_recent_workflow;

/// The entities, under the names a caller usually wants in scope.
pub mod prelude {
    pub use crate::execution_job::{Entity as ExecutionJob, JobState};
    pub use crate::execution_last_dequeue::Entity as ExecutionLastDequeue;
    pub use crate::published_run::Entity as PublishedRun;
    pub use crate::published_run_version::Entity as PublishedRunVersion;
    pub use crate::saved_run::Entity as SavedRun;
    pub use crate::workspace::Entity as Workspace;
    pub use crate::workspace_recent_workflow::Entity as WorkspaceRecentWorkflow;
}

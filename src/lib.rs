//! `recents`: exact recent-use summaries and a fair job queue for SeaORM backends.
//!
//! One dependency for a backend service crate. The root holds what a backend
//! calls, listed here by part: the run-save path and the reads of recent
//! workflows, the fair queue (under [`queue`]), the maintenance of the
//! summaries (backfill, verify, repair), the handle over a schema mapping,
//! errors and ids. recents' migrations are under [`migration`], its entities
//! under [`entity`].
//!
//! The operator's tools (connecting by URL, schema status, the workspace
//! directory, queue statistics) are the console's layer, apart under
//! [`admin`]: a backend with its own pool and migrator needs none of them.
//!
//! ```no_run
//! # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), recents::Error> {
//! use recents::{Scope, WorkspaceId, recent_workflows};
//!
//! let recent = recent_workflows(db, WorkspaceId(5), &Scope::Workspace, 4).await?;
//! # Ok(()) }
//! ```

pub use recents_entity as entity;
pub use recents_migration as migration;
pub use recents_service::admin;

// Recent workflows: the run-save path (in the backend's transaction) and
// the reads, with the history query they replace.
pub use recents_service::recent_workflows::{
    RecentWorkflow, RunSave, SaveOptions, SavedRun, Scope, delete_published_run, delete_saved_run,
    delete_version, home_recent_workflows, recent_workflows, recent_workflows_from_history,
    retract, save_run, touch,
};
pub use recents_service::{MAX_LIMIT, MAX_UID_BYTES, begin_write};

// The fair queue: claims, the job lifecycle, the worker runtime, and the
// verify and repair of its per-user rows.
pub mod queue {
    //! The fair execution queue: see [`recents_service::queue`].
    pub use recents_service::queue::*;

    // Moved to `recents::admin` (the console's layer); kept here so
    // callers of the first round still build.
    #[doc(hidden)]
    pub use recents_service::admin::{UserQueueStats, queue_stats};
}
pub use recents_service::queue::{
    LastDequeueDrift, LastDequeueReport, QueueHeadReport, repair_last_dequeues, repair_queue_heads,
    verify_last_dequeues, verify_queue_heads,
};

// Maintenance: build a summary from history, prove it equals history, mend it.
pub use recents_service::backfill::{
    BackfillOptions, BackfillReport, BackfillScope, CancelToken, Checkpoint, MAX_BATCH_ROWS,
    Progress, backfill, checkpoint,
};
pub use recents_service::verify::{
    Drift, DriftKind, RepairReport, SAMPLES_PER_KIND, VerifyOptions, VerifyReport, VerifyScope,
    repair, verify,
};

// One handle over a schema mapping; errors; ids.
pub use recents_service::{
    Error, JobId, PublishedRunId, Recents, Result, SavedRunId, Schema, SchemaError, SchemaMapping,
    UserId, VersionId, WorkspaceId,
};

// The first round exported the console's layer at the root too. Kept, out of
// the documentation, so existing callers build; new code uses [`admin`].
#[doc(hidden)]
pub use recents_service::admin::{
    DEFAULT_DATABASE_URL, Migrate, SchemaStatus, Tables, WorkspaceCursor, WorkspaceListing,
    WorkspaceOrder, WorkspaceOverview, WorkspacePage, connect, connect_and_migrate,
    connect_unchecked, list_workspaces, migrate_up, open_tables, redact, schema_status,
    tables_status, workspace_members, workspace_overview,
};
#[doc(hidden)]
pub use recents_service::{error, ids};
#[doc(hidden)]
pub mod sql {
    //! Kept for callers of the first round: [`begin_write`] is at the crate
    //! root, [`statement`] in [`admin`](crate::admin).
    pub use recents_service::admin::statement;
    pub use recents_service::begin_write;
}

// Every Rust block of the README compiles, and runs, as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! `recents-service`: exact recent-use summaries and a fair job queue over
//! SeaORM, maintained in the same transaction as the history they summarise.
//!
//! Every function is generic over [`sea_orm::ConnectionTrait`], so a backend
//! passes its own transaction straight through.
//!
//! ```no_run
//! # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
//! use recents_service::{RunSave, SaveOptions, Scope, WorkspaceId, VersionId, recent_workflows, save_run};
//! use sea_orm::TransactionTrait;
//!
//! let txn = db.begin().await?;                          // the backend's run-save transaction
//! save_run(&txn, &RunSave {
//!     id: None,
//!     workspace_id: WorkspaceId(5),
//!     uid: "alice".into(),
//!     parent_version_id: Some(VersionId(7)),
//!     run_status: "running".into(),
//!     updated_at: chrono::Utc::now(),
//! }, &SaveOptions::exact()).await?;                    // the run and its summary rows, together
//! txn.commit().await?;
//!
//! let recent = recent_workflows(db, WorkspaceId(5), &Scope::Workspace, 4).await?; // 4 index rows
//! # Ok(()) }
//! ```

pub mod admin;
pub mod backfill;
pub mod error;
mod handle;
pub mod ids;
mod maintenance;
pub mod queue;
pub mod recent_workflows;
mod sql;
mod validate;

pub use backfill::{
    BackfillOptions, BackfillReport, BackfillScope, CancelToken, Checkpoint, Progress, backfill,
    checkpoint,
};
pub use error::{Error, Result};
pub use handle::Recents;
pub use ids::{JobId, PublishedRunId, SavedRunId, UserId, VersionId, WorkspaceId};
pub use queue::{
    LastDequeueDrift, LastDequeueReport, QueueHeadReport, repair_last_dequeues, repair_queue_heads,
    verify_last_dequeues, verify_queue_heads,
};
pub use recent_workflows::verify;
pub use recent_workflows::{
    RecentWorkflow, RunSave, SaveOptions, SavedRun, Scope, delete_published_run, delete_saved_run,
    delete_version, home_recent_workflows, recent_workflows, recent_workflows_from_history,
    retract, save_run, touch,
};
pub use recents_schema::{Schema, SchemaError, SchemaMapping};
pub use sql::begin_write;
pub use validate::{MAX_LIMIT, MAX_UID_BYTES};
pub use verify::{
    Drift, DriftKind, RepairReport, VerifyOptions, VerifyReport, VerifyScope, repair, verify,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_row_uid_is_never_a_valid_user() {
        let reserved = recents_entity::workspace_recent_workflow::WORKSPACE_SCOPE_UID;
        assert!(matches!(validate::uid(reserved), Err(Error::InvalidUid(_))));
    }

    #[test]
    fn limits_outside_one_to_a_thousand_are_refused() {
        assert!(matches!(
            validate::limit(0),
            Err(Error::InvalidLimit { got: 0, .. })
        ));
        assert!(matches!(
            validate::limit(1001),
            Err(Error::InvalidLimit { got: 1001, .. })
        ));
        assert_eq!(validate::limit(1000).unwrap(), 1000);
    }

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let pg = sql::statement(sea_orm::DbBackend::Postgres, "a = ? AND b = ?", vec![]);
        assert_eq!(pg.sql, "a = $1 AND b = $2");
        let my = sql::statement(sea_orm::DbBackend::MySql, "a = ? AND b = ?", vec![]);
        assert_eq!(my.sql, "a = ? AND b = ?");
    }
}

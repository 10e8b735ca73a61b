//! `workspace_recent_workflows`: per (workspace, user, published run), the latest
//! use of that workflow, kept exact by `recents-service` in the run-save transaction.
//!
//! The row whose `uid` is the empty string ([`WORKSPACE_SCOPE_UID`]) aggregates
//! every user of the workspace, so the workspace-scope read is an index range of
//! `limit` rows however many members share a workflow.

use sea_orm::entity::prelude::*;

/// The `uid` of the row that summarises all users of a workspace.
///
/// The member scope never has an empty uid: the service rejects one as bad
/// input. A backend's own history may still hold runs with uid `''`: those
/// count for their workspace's rows only, never for a member row of their own.
pub const WORKSPACE_SCOPE_UID: &str = "";

/// One row of `workspace_recent_workflows`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspace_recent_workflows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: i64,
    /// The user, or [`WORKSPACE_SCOPE_UID`] for the workspace-wide row.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uid: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub published_run_id: i64,
    /// The saved run with the greatest `(updated_at, id)` in this group.
    pub last_saved_run_id: i64,
    /// That run's `updated_at`.
    pub last_used_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::workspace::Entity",
        from = "Column::WorkspaceId",
        to = "super::workspace::Column::Id",
        on_delete = "Cascade"
    )]
    Workspace,
    #[sea_orm(
        belongs_to = "super::published_run::Entity",
        from = "Column::PublishedRunId",
        to = "super::published_run::Column::Id",
        on_delete = "Cascade"
    )]
    PublishedRun,
}

impl Related<super::workspace::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workspace.def()
    }
}

impl Related<super::published_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PublishedRun.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

//! `saved_runs`: the history the recent-workflows summary is derived from.

use sea_orm::entity::prelude::*;

/// One row of `saved_runs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saved_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    /// The user who saved the run.
    pub uid: String,
    /// The published-run version this run was started from, if any.
    pub parent_version_id: Option<i64>,
    pub run_status: String,
    pub created_at: DateTimeUtc,
    /// Bumped on every save; the recency the summary orders by.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::workspace::Entity",
        from = "Column::WorkspaceId",
        to = "super::workspace::Column::Id"
    )]
    Workspace,
    #[sea_orm(
        belongs_to = "super::published_run_version::Entity",
        from = "Column::ParentVersionId",
        to = "super::published_run_version::Column::Id",
        on_delete = "SetNull"
    )]
    PublishedRunVersion,
}

impl Related<super::workspace::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workspace.def()
    }
}

impl Related<super::published_run_version::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PublishedRunVersion.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

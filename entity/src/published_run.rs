//! `published_runs`: a workflow, published in a workspace; runs use it through its versions.

use sea_orm::entity::prelude::*;

/// One row of `published_runs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "published_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: i64,
    pub title: String,
    pub created_at: DateTimeUtc,
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
    #[sea_orm(has_many = "super::published_run_version::Entity")]
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

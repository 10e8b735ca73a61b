//! `workspaces`: a personal or team workspace; soft-deleted through `deleted_at`.

use sea_orm::entity::prelude::*;

/// One row of `workspaces`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// A personal workspace shows its recent workflows in workspace scope,
    /// a team workspace per member.
    pub is_personal: bool,
    pub created_at: DateTimeUtc,
    /// Set when the workspace is soft-deleted; its reads then fail.
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::published_run::Entity")]
    PublishedRun,
    #[sea_orm(has_many = "super::saved_run::Entity")]
    SavedRun,
}

impl Related<super::published_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PublishedRun.def()
    }
}

impl Related<super::saved_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SavedRun.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

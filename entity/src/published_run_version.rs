//! `published_run_versions`: one version of a published run; saved runs point here.

use sea_orm::entity::prelude::*;

/// One row of `published_run_versions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "published_run_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub published_run_id: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::published_run::Entity",
        from = "Column::PublishedRunId",
        to = "super::published_run::Column::Id",
        on_delete = "Cascade"
    )]
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

//! `execution_last_dequeues`: per user, the greatest `started_at` of their jobs,
//! kept by database triggers so the fair queue never aggregates the job history.

use sea_orm::entity::prelude::*;

/// One row of `execution_last_dequeues`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_last_dequeues")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub latest_dequeue: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

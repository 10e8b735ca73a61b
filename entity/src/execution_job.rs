//! `execution_jobs`: the queue of workspace executions, one row per job.

use sea_orm::entity::prelude::*;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum JobState {
    /// Waiting for a worker.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Handed to a worker, which heartbeats it.
    #[sea_orm(string_value = "processing")]
    Processing,
    /// Finished successfully.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// Failed and waiting for a retry after `process_after`.
    #[sea_orm(string_value = "errored")]
    Errored,
    /// Failed for good.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Canceled before it finished.
    #[sea_orm(string_value = "canceled")]
    Canceled,
}

/// One row of `execution_jobs`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub state: JobState,
    pub payload: Json,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// Not eligible before this time (retry backoff).
    pub process_after: Option<DateTimeUtc>,
    pub num_resets: i32,
    pub num_failures: i32,
    pub failure_message: Option<String>,
    pub worker_hostname: Option<String>,
    pub last_heartbeat_at: Option<DateTimeUtc>,
    pub cancel: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

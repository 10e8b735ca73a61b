//! The queue per user, as the operator console's Queue screen shows it: how
//! many jobs each user has in each state, and when it was last served.

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::error::Result;
use crate::handle::Recents;
use crate::ids::UserId;
use crate::maintenance::count;
use crate::sql::statement;

/// One user's line in [`queue_stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserQueueStats {
    /// The user.
    pub user_id: UserId,
    /// Jobs `queued`.
    pub queued: u64,
    /// Jobs `errored` (waiting for a retry).
    pub errored: u64,
    /// Jobs `processing`.
    pub processing: u64,
    /// Jobs `failed` for good.
    pub failed: u64,
    /// Greatest `started_at` of the user's jobs (`None`: never served).
    pub latest_dequeue: Option<DateTime<Utc>>,
}

// Through idx_execution_jobs_state: the finished states are never read but
// `failed`, which operators want to see.
fn stats(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "SELECT s.user_id, s.queued, s.errored, s.processing, s.failed, l.latest_dequeue \
         FROM (\
             SELECT {user} AS user_id, \
                 COUNT(CASE WHEN {state} = 'queued' AND NOT {cancel} THEN 1 END) AS queued, \
                 COUNT(CASE WHEN {state} = 'errored' AND NOT {cancel} THEN 1 END) AS errored, \
                 COUNT(CASE WHEN {state} = 'processing' THEN 1 END) AS processing, \
                 COUNT(CASE WHEN {state} = 'failed' THEN 1 END) AS failed \
             FROM {table} WHERE {state} IN ('queued', 'errored', 'processing', 'failed') \
             GROUP BY {user}\
         ) s LEFT JOIN {last} l ON l.user_id = s.user_id \
         ORDER BY s.user_id",
        user = j.user_id,
        state = j.state,
        cancel = j.cancel,
        table = j.table,
        last = n.last_dequeues,
    )
}

#[derive(FromQueryResult)]
struct StatsRow {
    user_id: UserId,
    queued: i64,
    errored: i64,
    processing: i64,
    failed: i64,
    latest_dequeue: Option<DateTime<Utc>>,
}

/// Per user with queued, errored, processing or failed jobs: the counts and
/// the latest dequeue, by user id.
///
/// # Errors
/// [`crate::Error::Database`].
pub async fn queue_stats<C: ConnectionTrait>(conn: &C) -> Result<Vec<UserQueueStats>> {
    Recents::standard().queue_stats(conn).await
}

impl Recents {
    /// [`queue_stats`] of the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`queue_stats`].
    pub async fn queue_stats<C: ConnectionTrait>(&self, conn: &C) -> Result<Vec<UserQueueStats>> {
        let backend = conn.get_database_backend();
        let rows = conn
            .query_all_raw(statement(
                backend,
                &stats(self.schema().names(backend)),
                vec![],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let row = StatsRow::from_query_result(row, "")?;
                Ok(UserQueueStats {
                    user_id: row.user_id,
                    queued: count(row.queued),
                    errored: count(row.errored),
                    processing: count(row.processing),
                    failed: count(row.failed),
                    latest_dequeue: row.latest_dequeue,
                })
            })
            .collect()
    }
}

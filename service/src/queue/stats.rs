//! What the operator console shows of the queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::lifecycle::before;
use super::{Job, UserQueueStats};
use crate::error::Result;
use crate::handle::Recents;
use crate::ids::UserId;
use crate::maintenance::count;
use crate::sql::{now, statement};
use crate::validate;

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

/// `processing` jobs whose heartbeat is older than `max_age`, stalest first:
/// what [`reset_stalled`](super::reset_stalled) would act on.
///
/// # Errors
/// [`crate::Error::InvalidLimit`] unless `1 <= limit <= 1000`;
/// [`crate::Error::InvalidArgument`] for a `max_age` too large;
/// [`crate::Error::Database`].
pub async fn stalled_jobs<C: ConnectionTrait>(
    conn: &C,
    max_age: Duration,
    limit: u32,
) -> Result<Vec<Job>> {
    Recents::standard().stalled_jobs(conn, max_age, limit).await
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

    /// [`stalled_jobs`] of the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`stalled_jobs`].
    pub async fn stalled_jobs<C: ConnectionTrait>(
        &self,
        conn: &C,
        max_age: Duration,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let limit = validate::limit(limit)?;
        let cutoff = before(now(), max_age, "max_age")?;
        let backend = conn.get_database_backend();
        let j = &self.schema().names(backend).jobs;
        let sql = format!(
            "SELECT {columns} FROM {table} j WHERE j.{state} = 'processing' \
             AND (j.{beat} IS NULL OR j.{beat} < ?) ORDER BY j.{beat}, j.{id} LIMIT ?",
            columns = j.all_as_recents("j"),
            table = j.table,
            state = j.state,
            beat = j.last_heartbeat_at,
            id = j.id,
        );
        let rows = conn
            .query_all_raw(statement(
                backend,
                &sql,
                vec![cutoff.into(), i64::from(limit).into()],
            ))
            .await?;
        Ok(rows
            .iter()
            .map(|row| Job::from_query_result(row, ""))
            .collect::<Result<_, _>>()?)
    }
}

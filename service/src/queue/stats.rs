//! What the operator console shows of the queue: per-user counts, the
//! stalled jobs, and the throughput, each one read cheap enough to repeat
//! every second on a jobs table of millions of finished rows.

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
        self.stalled_jobs_as_of(conn, now(), max_age, limit).await
    }

    /// [`stalled_jobs`] as if the time were `as_of`: what
    /// [`reset_stalled_as_of`](Self::reset_stalled_as_of) with the same
    /// time would act on.
    ///
    /// # Errors
    /// As [`stalled_jobs`].
    pub async fn stalled_jobs_as_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        as_of: DateTime<Utc>,
        max_age: Duration,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let limit = validate::limit(limit)?;
        let cutoff = before(as_of, max_age, "max_age")?;
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

/// Jobs whose run ended within a window: the queue's throughput, as
/// [`throughput`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throughput {
    /// The window's end, to the microsecond: it holds `finished_at` in
    /// `(until - window, until]`.
    pub until: DateTime<Utc>,
    /// The window's length.
    pub window: Duration,
    /// Jobs now `completed` that finished in the window.
    pub completed: u64,
    /// Jobs now `errored` (a retry is due later) or `failed` whose last run
    /// ended in the window.
    pub failed: u64,
}

impl Throughput {
    /// Runs ended per second over the window, successes and failures.
    pub fn per_second(&self) -> f64 {
        let seconds = self.window.as_secs_f64();
        if seconds > 0.0 {
            (self.completed + self.failed) as f64 / seconds
        } else {
            0.0
        }
    }
}

// A range of idx_execution_jobs_finished (migration 13), index-only: the
// rows read are the window's, however many jobs finished before it. The
// bounds also rule out rows without finished_at, which the index leaves out
// on PostgreSQL and SQLite (both planners see that a comparison implies IS
// NOT NULL). Canceled jobs are in the range but not counted: nothing ran.
// tests/queue_throughput.rs checks the plans: PostgreSQL `Index Only Scan
// using idx_execution_jobs_finished`; MySQL/MariaDB `key` the index with
// `Using index`; SQLite `SEARCH … USING COVERING INDEX` the index.
fn throughput_sql(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "SELECT COUNT(CASE WHEN {state} = 'completed' THEN 1 END) AS completed, \
             COUNT(CASE WHEN {state} IN ('errored', 'failed') THEN 1 END) AS failed \
         FROM {table} WHERE {finished} > ? AND {finished} <= ?",
        state = j.state,
        table = j.table,
        finished = j.finished_at,
    )
}

#[derive(FromQueryResult)]
struct ThroughputRow {
    completed: i64,
    failed: i64,
}

/// The jobs whose run ended in the last `window`: `completed`, or
/// `errored`/`failed` by their latest run, by `finished_at`. A job that
/// failed, was retried and is running again is not counted until it ends
/// again. Reads only the window's rows of an index on `finished_at`.
///
/// ```no_run
/// # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
/// let t = recents_service::queue::throughput(db, std::time::Duration::from_secs(60)).await?;
/// println!("{:.1} jobs/s ({} failed)", t.per_second(), t.failed);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`crate::Error::InvalidArgument`] for a `window` too large;
/// [`crate::Error::Database`].
pub async fn throughput<C: ConnectionTrait>(conn: &C, window: Duration) -> Result<Throughput> {
    Recents::standard()
        .throughput_as_of(conn, now(), window)
        .await
}

impl Recents {
    /// [`throughput`] of the jobs table this handle's schema names, over the
    /// window that ends at `until`.
    ///
    /// # Errors
    /// As [`throughput`], and [`crate::Error::InvalidArgument`] for an
    /// `until` outside the years every backend stores.
    pub async fn throughput_as_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        until: DateTime<Utc>,
        window: Duration,
    ) -> Result<Throughput> {
        let until = validate::timestamp("until", until)?;
        let since = before(until, window, "window")?;
        let backend = conn.get_database_backend();
        let row = conn
            .query_one_raw(statement(
                backend,
                &throughput_sql(self.schema().names(backend)),
                vec![since.into(), until.into()],
            ))
            .await?;
        let row = match row {
            Some(row) => ThroughputRow::from_query_result(&row, "")?,
            None => ThroughputRow {
                completed: 0,
                failed: 0,
            },
        };
        Ok(Throughput {
            until,
            window,
            completed: count(row.completed),
            failed: count(row.failed),
        })
    }
}

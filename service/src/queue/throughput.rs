//! The queue's throughput: jobs whose run ended within a window, read from
//! an index on `finished_at` (migration 13) cheaply enough to repeat every
//! second on a jobs table of millions of finished rows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::lifecycle::since;
use crate::error::Result;
use crate::handle::Recents;
use crate::maintenance::count;
use crate::sql::{now, statement};
use crate::validate;

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
// A window reaching back before the earliest stored time starts at it,
// inclusive (`from_start`).
fn throughput_sql(n: &Names, from_start: bool) -> String {
    let j = &n.jobs;
    format!(
        "SELECT COUNT(CASE WHEN {state} = 'completed' THEN 1 END) AS completed, \
             COUNT(CASE WHEN {state} IN ('errored', 'failed') THEN 1 END) AS failed \
         FROM {table} WHERE {finished} {after} ? AND {finished} <= ?",
        after = if from_start { ">=" } else { ">" },
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
        let since = since(until, window, "window")?;
        let backend = conn.get_database_backend();
        let row = conn
            .query_one_raw(statement(
                backend,
                &throughput_sql(self.schema().names(backend), since.clamped),
                vec![since.at.into(), until.into()],
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

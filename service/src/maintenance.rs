//! What every maintenance pass shares, whichever summary it serves: one
//! retry policy for a step that lost a race, one walk over a key in
//! batches, one way to count drift and keep samples of it, the batch
//! settings on PostgreSQL, the check that a workspace exists, and counts
//! read back.

use std::time::Duration;

use recents_schema::Schema;
use sea_orm::{ConnectionTrait, FromQueryResult, SqlErr};

use crate::error::{Error, Result};
use crate::ids::WorkspaceId;
use crate::sql::statement;

/// Runs `step` again when it lost a race the database resolved by aborting
/// it: a deadlock, a serialization failure, or a published run deleted (a
/// foreign key) or a checkpoint created (a unique key) by a concurrent
/// transaction. The retry sees the winner's commit.
pub(crate) async fn retrying<T, F, Fut>(mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 8;
    let mut attempt = 1;
    loop {
        match step().await {
            Err(err) if attempt < ATTEMPTS && lost_a_race(&err) => {
                tracing::debug!(attempt, %err, "maintenance step lost a race; retrying");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Whether a step lost a race: retryable by [`Error::is_retryable`], or a
/// key violated by a concurrent transaction's commit.
pub(crate) fn lost_a_race(err: &Error) -> bool {
    err.is_retryable()
        || matches!(err, Error::Database(db) if matches!(
            db.sql_err(),
            Some(SqlErr::ForeignKeyConstraintViolation(_) | SqlErr::UniqueConstraintViolation(_))
        ))
}

/// A batch's settings on PostgreSQL, until its transaction ends.
pub(crate) const SESSION_POSTGRES: &str =
    "set_config('work_mem', '64MB', true), set_config('jit', 'off', true)";

/// A count the database returns as a signed integer.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// [`Error::WorkspaceNotFound`] unless the workspace exists (deleted or not).
pub(crate) async fn check_workspace<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    id: WorkspaceId,
) -> Result<()> {
    let backend = conn.get_database_backend();
    let w = &schema.names(backend).workspaces;
    conn.query_one_raw(statement(
        backend,
        &format!(
            "SELECT {id} AS id FROM {table} WHERE {id} = ?",
            id = w.id,
            table = w.table
        ),
        vec![id.0.into()],
    ))
    .await?
    .map(|_| ())
    .ok_or(Error::WorkspaceNotFound(id))
}

/// A walk over the whole `i64` range of a key (a workspace, a user) in
/// inclusive batches `[low, high]`. A batch ends at the key `batch - 1`
/// history rows further on and takes every row of that key, since a summary
/// row depends on all of them; the last batch runs to `i64::MAX`, so rows of
/// keys above every history row are read too. Keys `i64::MIN` and
/// `i64::MAX` are covered and no step goes past either end. The verify and
/// repair passes of every summary walk this way.
pub(crate) struct KeyBatches {
    next_end: String,
    batch: u32,
    low: Option<i64>,
}

impl KeyBatches {
    /// Batches of about `batch` rows of `table` by its `key` column (both
    /// quoted), or [`Error::InvalidArgument`] naming `what` for a batch of 0.
    /// An index-only walk when `key` leads an index.
    pub(crate) fn over(table: &str, key: &str, batch: u32, what: &'static str) -> Result<Self> {
        if batch == 0 {
            return Err(Error::InvalidArgument {
                what,
                why: "must be at least 1".into(),
            });
        }
        Ok(Self {
            next_end: format!(
                "SELECT {key} AS batch_end FROM {table} WHERE {key} >= ? ORDER BY {key} LIMIT 1 OFFSET ?"
            ),
            batch,
            low: Some(i64::MIN),
        })
    }

    /// The next batch, `None` once the walk passed `i64::MAX`.
    pub(crate) async fn next<C: ConnectionTrait>(
        &mut self,
        conn: &C,
    ) -> Result<Option<(i64, i64)>> {
        let Some(low) = self.low else {
            return Ok(None);
        };
        let row = conn
            .query_one_raw(statement(
                conn.get_database_backend(),
                &self.next_end,
                vec![low.into(), i64::from(self.batch - 1).into()],
            ))
            .await?;
        let high = match row {
            Some(row) => BatchEnd::from_query_result(&row, "")?.batch_end,
            None => i64::MAX,
        };
        self.low = high.checked_add(1);
        Ok(Some((low, high)))
    }
}

#[derive(FromQueryResult)]
struct BatchEnd {
    batch_end: i64,
}

/// How a summary row differs from its definition over history (each
/// summary's report says which kinds it can find).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriftKind {
    /// History has runs for the key; the summary has no row.
    Missing,
    /// The row is below the history's latest run (a lost write).
    Stale,
    /// The row is above it: a run that was deleted or moved, or a time
    /// written by hand. The live path's upsert never lowers a row.
    TooHigh,
    /// The row has no run left in history.
    Extra,
}

/// How many drifted rows of each kind a report keeps as samples.
pub const SAMPLES_PER_KIND: usize = 5;

/// Counts one drifted row in its kind's `count` and keeps it in `samples`
/// while that kind has no more than [`SAMPLES_PER_KIND`]: what every drift
/// report records.
pub(crate) fn tally<D>(count: &mut u64, samples: &mut Vec<D>, drift: D) {
    *count += 1;
    if *count <= SAMPLES_PER_KIND as u64 {
        samples.push(drift);
    }
}

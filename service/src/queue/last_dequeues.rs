//! Verify and repair of `execution_last_dequeues`: each row against the
//! greatest `started_at` of its user's jobs.
//!
//! The triggers keep each row exactly its user's greatest `started_at` over
//! the jobs that exist (a deleted or moved job takes its dequeue with it), so
//! a row drifts only if the triggers were disabled or dropped, or the table
//! was written by hand. Verify
//! reads the jobs once, in batches of users, through
//! `idx_execution_jobs_user_started`; repair sets each drifted row to the
//! aggregate exactly, lowering it if need be.

use chrono::{DateTime, Utc};
use recents_schema::{Names, Schema};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, TransactionSession, TransactionTrait};

use crate::error::Result;
use crate::handle::Recents;
use crate::ids::UserId;
use crate::maintenance::{DriftKind, KeyBatches, count, tally};
use crate::sql::{begin_write, for_update, statement};

// One batch of users [?, ?]: users whose greatest start differs from their
// row (or who have no row), then rows of users without a started job.
fn drift(n: &Names) -> String {
    let j = &n.jobs;
    let d = &n.last_dequeues;
    format!(
        "SELECT h.user_id, h.latest AS history_at, l.latest_dequeue AS summary_at FROM (\
            SELECT {user} AS user_id, MAX({started}) AS latest FROM {jobs} \
            WHERE {user} >= ? AND {user} <= ? AND {started} IS NOT NULL GROUP BY {user}\
         ) h LEFT JOIN {d} l ON l.user_id = h.user_id \
         WHERE l.user_id IS NULL OR l.latest_dequeue <> h.latest \
         UNION ALL \
         SELECT l.user_id, NULL, l.latest_dequeue FROM {d} l \
         WHERE l.user_id >= ? AND l.user_id <= ? AND NOT EXISTS (\
             SELECT 1 FROM {jobs} j WHERE j.{user} = l.user_id AND j.{started} IS NOT NULL)",
        user = j.user_id,
        started = j.started_at,
        jobs = j.table,
    )
}

fn batch_sizes(n: &Names) -> String {
    format!(
        "SELECT (SELECT COUNT(*) FROM {jobs} WHERE {user} >= ? AND {user} <= ?) AS jobs, \
             (SELECT COUNT(*) FROM {d} WHERE user_id >= ? AND user_id <= ?) AS rows_",
        jobs = n.jobs.table,
        user = n.jobs.user_id,
        d = n.last_dequeues,
    )
}

#[derive(FromQueryResult)]
struct BatchSizes {
    jobs: i64,
    rows_: i64,
}

#[derive(FromQueryResult)]
struct DriftRow {
    user_id: UserId,
    history_at: Option<DateTime<Utc>>,
    summary_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct Latest {
    latest: Option<DateTime<Utc>>,
}

/// One drifted `execution_last_dequeues` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastDequeueDrift {
    /// How it drifted.
    pub kind: DriftKind,
    /// The user.
    pub user_id: UserId,
    /// The row's latest dequeue, if the row exists.
    pub summary: Option<DateTime<Utc>>,
    /// The greatest `started_at` of the user's jobs, if any started.
    pub history: Option<DateTime<Utc>>,
}

/// What a verify pass over `execution_last_dequeues` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastDequeueReport {
    /// Jobs read.
    pub jobs: u64,
    /// Rows of `execution_last_dequeues`.
    pub rows: u64,
    /// Users with started jobs and no row.
    pub missing: u64,
    /// Rows below the greatest start.
    pub stale: u64,
    /// Rows above it.
    pub too_high: u64,
    /// Rows of users without a started job.
    pub extra: u64,
    /// The first few drifted rows of each kind.
    pub samples: Vec<LastDequeueDrift>,
    /// Rows set to their aggregate (by [`repair_last_dequeues`]).
    pub repaired: u64,
}

impl LastDequeueReport {
    /// Drifted rows of all kinds.
    pub fn drifted(&self) -> u64 {
        self.missing + self.stale + self.too_high + self.extra
    }

    /// Whether every row equals its users' greatest start.
    pub fn is_exact(&self) -> bool {
        self.drifted() == 0
    }

    fn record(&mut self, drift: LastDequeueDrift) {
        let count = match drift.kind {
            DriftKind::Missing => &mut self.missing,
            DriftKind::Stale => &mut self.stale,
            DriftKind::TooHigh => &mut self.too_high,
            DriftKind::Extra => &mut self.extra,
        };
        tally(count, &mut self.samples, drift);
    }
}

/// Compares every `execution_last_dequeues` row with the greatest
/// `started_at` of its user's jobs, in batches of about `batch_jobs` jobs.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `batch_jobs` of 0; [`Error::Database`].
pub async fn verify_last_dequeues<C>(conn: &C, batch_jobs: u32) -> Result<LastDequeueReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard()
        .verify_last_dequeues(conn, batch_jobs)
        .await
}

/// The [`verify_last_dequeues`] pass, setting each drifted row to its
/// aggregate in a short transaction under the row's lock (deleting rows of
/// users without a started job).
///
/// # Errors
/// As [`verify_last_dequeues`].
pub async fn repair_last_dequeues<C>(conn: &C, batch_jobs: u32) -> Result<LastDequeueReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard()
        .repair_last_dequeues(conn, batch_jobs)
        .await
}

impl Recents {
    /// [`verify_last_dequeues`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`verify_last_dequeues`].
    pub async fn verify_last_dequeues<C>(
        &self,
        conn: &C,
        batch_jobs: u32,
    ) -> Result<LastDequeueReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        pass(conn, self.schema(), batch_jobs, false).await
    }

    /// [`repair_last_dequeues`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`verify_last_dequeues`].
    pub async fn repair_last_dequeues<C>(
        &self,
        conn: &C,
        batch_jobs: u32,
    ) -> Result<LastDequeueReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        pass(conn, self.schema(), batch_jobs, true).await
    }
}

async fn pass<C>(
    conn: &C,
    schema: &Schema,
    batch_jobs: u32,
    repair: bool,
) -> Result<LastDequeueReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let mut report = LastDequeueReport::default();
    let mut batches = KeyBatches::over(&n.jobs.table, &n.jobs.user_id, batch_jobs, "batch_jobs")?;
    while let Some((low, high)) = batches.next(conn).await? {
        let range = || vec![low.into(), high.into(), low.into(), high.into()];
        if let Some(sizes) = conn
            .query_one_raw(statement(backend, &batch_sizes(n), range()))
            .await?
        {
            let sizes = BatchSizes::from_query_result(&sizes, "")?;
            report.jobs += count(sizes.jobs);
            report.rows += count(sizes.rows_);
        }
        let rows = conn
            .query_all_raw(statement(backend, &drift(n), range()))
            .await?;
        let mut drifts = Vec::new();
        for row in &rows {
            let row = DriftRow::from_query_result(row, "")?;
            let (history, summary) = (row.history_at, row.summary_at);
            let kind = match (summary, history) {
                (None, Some(_)) => DriftKind::Missing,
                (Some(_), None) => DriftKind::Extra,
                (Some(s), Some(h)) if s < h => DriftKind::Stale,
                (Some(s), Some(h)) if s > h => DriftKind::TooHigh,
                // Equal once decoded (SQLite text spells one time two ways).
                _ => continue,
            };
            drifts.push(LastDequeueDrift {
                kind,
                user_id: row.user_id,
                summary,
                history,
            });
        }
        drifts.sort_by_key(|d| d.user_id);
        for drift in drifts {
            if repair {
                set_exact(conn, n, drift.user_id).await?;
                report.repaired += 1;
            }
            report.record(drift);
        }
    }
    Ok(report)
}

/// Sets one user's row to the greatest start of its jobs, under the row's
/// lock so that a concurrent dequeue's trigger writes after it.
async fn set_exact<C>(conn: &C, n: &Names, user: UserId) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = n.backend;
    let d = &n.last_dequeues;
    let lock = for_update(backend);
    let txn = begin_write(conn).await?;
    let exists = txn
        .query_one_raw(statement(
            backend,
            &format!("SELECT user_id FROM {d} WHERE user_id = ?{lock}"),
            vec![user.0.into()],
        ))
        .await?
        .is_some();
    let latest = match txn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT MAX({started}) AS latest FROM {jobs} WHERE {user} = ?",
                started = n.jobs.started_at,
                jobs = n.jobs.table,
                user = n.jobs.user_id,
            ),
            vec![user.0.into()],
        ))
        .await?
    {
        Some(row) => Latest::from_query_result(&row, "")?.latest,
        None => None,
    };
    match (exists, latest) {
        (true, Some(latest)) => {
            txn.execute_raw(statement(
                backend,
                &format!("UPDATE {d} SET latest_dequeue = ? WHERE user_id = ?"),
                vec![latest.into(), user.0.into()],
            ))
            .await?;
        }
        (true, None) => {
            txn.execute_raw(statement(
                backend,
                &format!("DELETE FROM {d} WHERE user_id = ?"),
                vec![user.0.into()],
            ))
            .await?;
        }
        // No row to lock: a dequeue may insert one meanwhile, so never
        // lower what is there.
        (false, Some(latest)) => {
            let upsert = format!(
                "INSERT INTO {d} (user_id, latest_dequeue) VALUES (?, ?){}",
                keep_greater_latest_dequeue(n)
            );
            txn.execute_raw(statement(
                backend,
                &upsert,
                vec![user.0.into(), latest.into()],
            ))
            .await?;
        }
        (false, None) => {}
    }
    txn.commit().await?;
    Ok(())
}

/// The conflict clause of an insert into `execution_last_dequeues` that
/// never lowers a row (a dequeue's trigger may have written a later time).
fn keep_greater_latest_dequeue(n: &Names) -> String {
    let d = &n.last_dequeues;
    match n.backend {
        DbBackend::MySql => format!(
            " ON DUPLICATE KEY UPDATE latest_dequeue = GREATEST({d}.latest_dequeue, VALUES(latest_dequeue))"
        ),
        _ => format!(
            " ON CONFLICT (user_id) DO UPDATE SET latest_dequeue = excluded.latest_dequeue \
             WHERE excluded.latest_dequeue > {d}.latest_dequeue"
        ),
    }
}

/// The backfill's batch for this summary: the greatest `started_at` per user
/// of the jobs `id >= ? AND id <= ?`; a user's row only ever rises.
pub(crate) fn merge_batch(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "INSERT INTO {d} (user_id, latest_dequeue) \
         SELECT s.{user}, MAX(s.{started}) FROM {table} s \
         WHERE s.{id} >= ? AND s.{id} <= ? AND s.{started} IS NOT NULL \
         GROUP BY s.{user}{keep}",
        d = n.last_dequeues,
        user = j.user_id,
        started = j.started_at,
        table = j.table,
        id = j.id,
        keep = keep_greater_latest_dequeue(n),
    )
}

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
use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};

use super::{DriftKind, SAMPLES_PER_KIND};
use crate::backfill::statements::keep_greater_latest_dequeue;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::sql::{begin_write, for_update, statement};

// One batch of users [?, ?]: users whose greatest start differs from their
// row (or who have no row), then rows of users without a started job.
const DRIFT: &str = "\
SELECT h.user_id, h.latest AS history_at, l.latest_dequeue AS summary_at FROM (\
    SELECT user_id, MAX(started_at) AS latest FROM execution_jobs \
    WHERE user_id >= ? AND user_id <= ? AND started_at IS NOT NULL GROUP BY user_id\
) h LEFT JOIN execution_last_dequeues l ON l.user_id = h.user_id \
WHERE l.user_id IS NULL OR l.latest_dequeue <> h.latest \
UNION ALL \
SELECT l.user_id, NULL, l.latest_dequeue FROM execution_last_dequeues l \
WHERE l.user_id >= ? AND l.user_id <= ? AND NOT EXISTS (\
    SELECT 1 FROM execution_jobs j WHERE j.user_id = l.user_id AND j.started_at IS NOT NULL)";

const BATCH_SIZES: &str = "\
SELECT (SELECT COUNT(*) FROM execution_jobs WHERE user_id >= ? AND user_id <= ?) AS jobs, \
    (SELECT COUNT(*) FROM execution_last_dequeues WHERE user_id >= ? AND user_id <= ?) AS rows_";

// The user `?` jobs further on ends a batch, all its jobs included: an
// index-only walk.
const NEXT_BATCH_END: &str = "\
SELECT user_id FROM execution_jobs WHERE user_id >= ? ORDER BY user_id LIMIT 1 OFFSET ?";

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

    fn count(&mut self, kind: DriftKind) -> &mut u64 {
        match kind {
            DriftKind::Missing => &mut self.missing,
            DriftKind::Stale => &mut self.stale,
            DriftKind::TooHigh => &mut self.too_high,
            DriftKind::Extra => &mut self.extra,
        }
    }

    fn record(&mut self, drift: LastDequeueDrift) {
        let count = self.count(drift.kind);
        *count += 1;
        if *count as usize <= SAMPLES_PER_KIND {
            self.samples.push(drift);
        }
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
    pass(conn, batch_jobs, false).await
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
    pass(conn, batch_jobs, true).await
}

async fn pass<C>(conn: &C, batch_jobs: u32, repair: bool) -> Result<LastDequeueReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    if batch_jobs == 0 {
        return Err(Error::InvalidArgument {
            what: "batch_jobs",
            why: "must be at least 1".into(),
        });
    }
    let backend = conn.get_database_backend();
    let mut report = LastDequeueReport::default();
    // Inclusive batches `[low, high]` up to user i64::MAX itself, with no
    // step past it.
    let mut low = i64::MIN;
    loop {
        let next = conn
            .query_one_raw(statement(
                backend,
                NEXT_BATCH_END,
                vec![low.into(), i64::from(batch_jobs - 1).into()],
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "user_id"))
            .transpose()?;
        // The last batch runs to the end of the id range, so that rows of
        // users above every job's user are read too.
        let high = next.unwrap_or(i64::MAX);
        let range = || vec![low.into(), high.into(), low.into(), high.into()];
        if let Some(sizes) = conn
            .query_one_raw(statement(backend, BATCH_SIZES, range()))
            .await?
        {
            report.jobs += sizes.try_get::<i64>("", "jobs")?.max(0) as u64;
            report.rows += sizes.try_get::<i64>("", "rows_")?.max(0) as u64;
        }
        let rows = conn
            .query_all_raw(statement(backend, DRIFT, range()))
            .await?;
        let mut drifts = Vec::new();
        for row in &rows {
            let history: Option<DateTime<Utc>> = row.try_get("", "history_at")?;
            let summary: Option<DateTime<Utc>> = row.try_get("", "summary_at")?;
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
                user_id: UserId(row.try_get("", "user_id")?),
                summary,
                history,
            });
        }
        drifts.sort_by_key(|d| d.user_id);
        for drift in drifts {
            if repair {
                set_exact(conn, drift.user_id).await?;
                report.repaired += 1;
            }
            report.record(drift);
        }
        if high == i64::MAX {
            return Ok(report);
        }
        low = high + 1;
    }
}

/// Sets one user's row to the greatest start of its jobs, under the row's
/// lock so that a concurrent dequeue's trigger writes after it.
async fn set_exact<C>(conn: &C, user: UserId) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let lock = for_update(backend);
    let txn = begin_write(conn).await?;
    let exists = txn
        .query_one_raw(statement(
            backend,
            &format!("SELECT user_id FROM execution_last_dequeues WHERE user_id = ?{lock}"),
            vec![user.0.into()],
        ))
        .await?
        .is_some();
    let latest: Option<DateTime<Utc>> = txn
        .query_one_raw(statement(
            backend,
            "SELECT MAX(started_at) AS latest FROM execution_jobs WHERE user_id = ?",
            vec![user.0.into()],
        ))
        .await?
        .map(|row| row.try_get("", "latest"))
        .transpose()?
        .flatten();
    match (exists, latest) {
        (true, Some(latest)) => {
            txn.execute_raw(statement(
                backend,
                "UPDATE execution_last_dequeues SET latest_dequeue = ? WHERE user_id = ?",
                vec![latest.into(), user.0.into()],
            ))
            .await?;
        }
        (true, None) => {
            txn.execute_raw(statement(
                backend,
                "DELETE FROM execution_last_dequeues WHERE user_id = ?",
                vec![user.0.into()],
            ))
            .await?;
        }
        // No row to lock: a dequeue may insert one meanwhile, so never
        // lower what is there.
        (false, Some(latest)) => {
            let upsert = format!(
                "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) VALUES (?, ?){}",
                keep_greater_latest_dequeue(backend)
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

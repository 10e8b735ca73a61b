//! Verify and repair of `execution_queue_heads`: each row against its
//! definition (`recents_schema::Names::queue_head_of`) as of its own
//! `as_of`, and every user with eligible jobs against the rows.
//!
//! The triggers keep the rows exact whatever writes the jobs, so a row
//! drifts only if the triggers were disabled or dropped, or the table was
//! written by hand. Repair rebuilds a drifted user's row from its jobs, as
//! of now, under the row's lock.

use chrono::{DateTime, Utc};
use recents_schema::{Names, Schema};
use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};

use super::fair_order::refresh_users;
use super::sql;
use crate::error::Result;
use crate::handle::Recents;
use crate::ids::{JobId, UserId};
use crate::maintenance::{DriftKind, KeyBatches, count, tally};
use crate::sql::{begin_read_committed, finish, for_update, now, statement};

/// A user's row of `execution_queue_heads` (or what it should be).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueHead {
    /// The user's latest dequeue (`None`: never served).
    pub latest_dequeue: Option<DateTime<Utc>>,
    /// The user's oldest eligible job due at `as_of`, with its `created_at`.
    pub head: Option<(JobId, DateTime<Utc>)>,
    /// Eligible jobs due at `as_of`.
    pub due_count: u64,
    /// The earliest `process_after` after `as_of` of the user's eligible jobs.
    pub next_due_at: Option<DateTime<Utc>>,
    /// When the row was last made from the jobs.
    pub as_of: DateTime<Utc>,
}

/// One drifted row: [`DriftKind::Missing`] (a waiting user without a row),
/// [`DriftKind::Stale`] (a row that differs from its definition) or
/// [`DriftKind::Extra`] (a row of a user with nothing eligible).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueHeadDrift {
    /// How it drifted.
    pub kind: DriftKind,
    /// The user.
    pub user_id: UserId,
    /// The row, if it exists.
    pub row: Option<QueueHead>,
    /// What the row should be as of its `as_of`, if the user has eligible jobs.
    pub expected: Option<QueueHead>,
}

/// What a verify pass over `execution_queue_heads` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueHeadReport {
    /// Rows read.
    pub rows: u64,
    /// Waiting users without a row.
    pub missing: u64,
    /// Rows that differ from their definition.
    pub stale: u64,
    /// Rows of users with nothing eligible.
    pub extra: u64,
    /// The first few drifted rows of each kind.
    pub samples: Vec<QueueHeadDrift>,
    /// Rows rebuilt from the jobs (by [`repair_queue_heads`]).
    pub repaired: u64,
}

impl QueueHeadReport {
    /// Drifted rows of all kinds.
    pub fn drifted(&self) -> u64 {
        self.missing + self.stale + self.extra
    }

    /// Whether every row equals its definition.
    pub fn is_exact(&self) -> bool {
        self.drifted() == 0
    }

    fn record(&mut self, drift: QueueHeadDrift) {
        let count = match drift.kind {
            DriftKind::Missing => &mut self.missing,
            DriftKind::Extra => &mut self.extra,
            _ => &mut self.stale,
        };
        tally(count, &mut self.samples, drift);
    }
}

/// Compares every `execution_queue_heads` row with its definition from the
/// jobs, and every user with eligible jobs with the rows, in batches of
/// about `batch_jobs` jobs.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `batch_jobs` of 0; [`Error::Database`].
pub async fn verify_queue_heads<C>(conn: &C, batch_jobs: u32) -> Result<QueueHeadReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard()
        .verify_queue_heads(conn, batch_jobs)
        .await
}

/// The [`verify_queue_heads`] pass, rebuilding each drifted user's row from
/// its jobs (as of now) in a short transaction under the row's lock.
///
/// # Errors
/// As [`verify_queue_heads`].
pub async fn repair_queue_heads<C>(conn: &C, batch_jobs: u32) -> Result<QueueHeadReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard()
        .repair_queue_heads(conn, batch_jobs)
        .await
}

impl Recents {
    /// [`verify_queue_heads`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`verify_queue_heads`].
    pub async fn verify_queue_heads<C>(&self, conn: &C, batch_jobs: u32) -> Result<QueueHeadReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        pass(conn, self.schema(), batch_jobs, false).await
    }

    /// [`repair_queue_heads`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`verify_queue_heads`].
    pub async fn repair_queue_heads<C>(&self, conn: &C, batch_jobs: u32) -> Result<QueueHeadReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        pass(conn, self.schema(), batch_jobs, true).await
    }
}

#[derive(FromQueryResult)]
struct RowAndDefinition {
    user_id: i64,
    latest_dequeue: Option<DateTime<Utc>>,
    head_job_id: Option<i64>,
    head_created_at: Option<DateTime<Utc>>,
    due_count: i64,
    next_due_at: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
    d_latest_dequeue: Option<DateTime<Utc>>,
    d_head_job_id: Option<i64>,
    d_head_created_at: Option<DateTime<Utc>>,
    d_due_count: i64,
    d_next_due_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct UserRow {
    user_id: i64,
}

fn head(id: Option<i64>, created: Option<DateTime<Utc>>) -> Option<(JobId, DateTime<Utc>)> {
    id.zip(created).map(|(id, created)| (JobId(id), created))
}

async fn pass<C>(
    conn: &C,
    schema: &Schema,
    batch_jobs: u32,
    repair: bool,
) -> Result<QueueHeadReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let mut report = QueueHeadReport::default();
    let mut batches = KeyBatches::over(&n.jobs.table, &n.jobs.user_id, batch_jobs, "batch_jobs")?;
    while let Some((low, high)) = batches.next(conn).await? {
        let mut drifts = Vec::new();
        let rows = conn
            .query_all_raw(statement(
                backend,
                &sql::rows_and_definitions(n),
                vec![low.into(), high.into()],
            ))
            .await?;
        for row in &rows {
            report.rows += 1;
            let r = RowAndDefinition::from_query_result(row, "")?;
            let stored = QueueHead {
                latest_dequeue: r.latest_dequeue,
                head: head(r.head_job_id, r.head_created_at),
                due_count: count(r.due_count),
                next_due_at: r.next_due_at,
                as_of: r.as_of,
            };
            if r.d_due_count == 0 && r.d_next_due_at.is_none() {
                drifts.push(QueueHeadDrift {
                    kind: DriftKind::Extra,
                    user_id: UserId(r.user_id),
                    row: Some(stored),
                    expected: None,
                });
                continue;
            }
            let expected = QueueHead {
                latest_dequeue: r.d_latest_dequeue,
                head: head(r.d_head_job_id, r.d_head_created_at),
                due_count: count(r.d_due_count),
                next_due_at: r.d_next_due_at,
                as_of: r.as_of,
            };
            if stored != expected {
                drifts.push(QueueHeadDrift {
                    kind: DriftKind::Stale,
                    user_id: UserId(r.user_id),
                    row: Some(stored),
                    expected: Some(expected),
                });
            }
        }
        let missing = conn
            .query_all_raw(statement(
                backend,
                &sql::users_without_row(n),
                vec![low.into(), high.into()],
            ))
            .await?;
        for row in &missing {
            drifts.push(QueueHeadDrift {
                kind: DriftKind::Missing,
                user_id: UserId(UserRow::from_query_result(row, "")?.user_id),
                row: None,
                expected: None,
            });
        }
        drifts.sort_by_key(|d| d.user_id);
        for drift in drifts {
            if repair {
                rebuild(conn, n, drift.user_id.0).await?;
                report.repaired += 1;
            }
            report.record(drift);
        }
    }
    Ok(report)
}

/// Rebuilds one user's row from its jobs as of now, under the row's lock
/// (a trigger waiting for it applies its change to the new row).
async fn rebuild<C>(conn: &C, n: &Names, user: i64) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = n.backend;
    let heads = &n.queue_heads;
    let txn = begin_read_committed(conn).await?;
    let done: Result<()> = async {
        txn.query_one_raw(statement(
            backend,
            &format!(
                "SELECT user_id FROM {heads} WHERE user_id = ?{}",
                for_update(backend)
            ),
            vec![user.into()],
        ))
        .await?;
        txn.execute_raw(statement(
            backend,
            &format!("DELETE FROM {heads} WHERE user_id = ?"),
            vec![user.into()],
        ))
        .await?;
        let now = now();
        txn.execute_raw(statement(
            backend,
            &format!(
                "INSERT INTO {heads} (user_id, due_count, as_of) SELECT ?, 0, ? \
                 WHERE EXISTS (SELECT 1 FROM {jobs} e WHERE {eligible} AND {owner} = ?)",
                jobs = n.jobs.table,
                eligible = n.job_eligible("e"),
                owner = n.job_owner("e"),
            ),
            vec![user.into(), now.into(), user.into()],
        ))
        .await?;
        refresh_users(&txn, n, &[user], now).await
    }
    .await;
    finish(txn, done).await
}

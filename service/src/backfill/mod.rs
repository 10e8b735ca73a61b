//! Backfill: builds the summary tables from history online, for a team that
//! adopts `recents` with years of history, or after a bug left rows behind.
//!
//! A summary row is a maximum over history, so it can be built in any order
//! and in pieces: each batch aggregates one id range of history with
//! set-based SQL and merges the result with the same monotonic upsert the
//! live writers use. Live writes and the backfill therefore agree whatever
//! the interleaving, and running the backfill again changes nothing. Each
//! batch is one short transaction that also advances the pass's checkpoint,
//! so a backfill killed at any point (SIGKILL included) resumes exactly at
//! its last committed batch.

pub(crate) mod statements;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use recents_schema::Schema;
use sea_orm::{
    ConnectionTrait, DbBackend, FromQueryResult, IsolationLevel, TransactionSession,
    TransactionTrait, Value,
};

use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::WorkspaceId;
use crate::maintenance::{check_workspace, count, retrying};
use crate::sql::{begin_write, now, statement};

/// Which summary a backfill builds, from which history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BackfillScope {
    /// `workspace_recent_workflows` from every saved run.
    RecentWorkflows,
    /// `workspace_recent_workflows` from the saved runs of one workspace.
    RecentWorkflowsOf(WorkspaceId),
    /// `execution_last_dequeues` (each user's greatest `started_at`) from
    /// every execution job.
    LastDequeues,
}

impl BackfillScope {
    /// The checkpoint's name in `recents_backfill_checkpoints`: one pass per
    /// scope at a time.
    pub fn checkpoint_name(&self) -> String {
        match self {
            BackfillScope::RecentWorkflows => "workspace_recent_workflows".into(),
            BackfillScope::RecentWorkflowsOf(id) => {
                format!("workspace_recent_workflows/workspace={id}")
            }
            BackfillScope::LastDequeues => "execution_last_dequeues".into(),
        }
    }
}

/// Asks a running backfill to stop after its current batch. Clones share
/// the flag, so one goes to the backfill and one stays with whoever stops it.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the backfills holding a clone of this token after their
    /// current batch; each leaves its checkpoint at that batch.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// How a backfill runs.
#[derive(Clone, Debug)]
pub struct BackfillOptions {
    /// History rows per batch, each batch one transaction. The default
    /// (50,000) keeps a batch near a tenth of a second on PostgreSQL.
    pub batch_rows: u32,
    /// A pause after each batch, to leave the database to the site.
    pub pause: Duration,
    /// Stops the backfill between batches.
    pub cancel: CancelToken,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            batch_rows: 50_000,
            pause: Duration::ZERO,
            cancel: CancelToken::new(),
        }
    }
}

/// The largest [`BackfillOptions::batch_rows`] accepted.
pub const MAX_BATCH_ROWS: u32 = 1_000_000;

/// Where a backfill stands, reported after every batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// History rows merged so far in this pass (including before a resume).
    pub rows_scanned: u64,
    /// History rows in the pass, counted when it started.
    pub rows_total: u64,
    /// This call's speed, in history rows per second.
    pub rows_per_second: f64,
    /// The time left at that speed, when there is a speed to go by.
    pub eta: Option<Duration>,
    /// The greatest id still to merge (0 once the pass is done).
    pub resume_at_id: i64,
    /// Whether the pass is complete.
    pub finished: bool,
}

/// What one call of [`backfill`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct BackfillReport {
    /// The call continued a pass an earlier call left unfinished.
    pub resumed: bool,
    /// History rows this call merged.
    pub rows_scanned: u64,
    /// Batches this call committed.
    pub batches: u64,
    /// The pass is complete; `false` after a cancellation (call again to resume).
    pub finished: bool,
    /// How long the call took.
    pub elapsed: Duration,
}

/// One row of `recents_backfill_checkpoints`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// [`BackfillScope::checkpoint_name`].
    pub name: String,
    /// The greatest history id when the pass started; the pass covers ids up to it.
    pub max_id: i64,
    /// Every id above this one is merged; 0 once the pass is done.
    pub resume_at_id: i64,
    /// History rows in the pass, counted when it started.
    pub rows_total: u64,
    /// History rows merged so far.
    pub rows_scanned: u64,
    /// When the pass started.
    pub started_at: DateTime<Utc>,
    /// When its last batch committed.
    pub updated_at: DateTime<Utc>,
    /// When it completed, if it has.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Builds the summary of `scope` from history, batch by batch, calling
/// `progress` after each batch.
///
/// Resumes the scope's unfinished pass if there is one; otherwise starts a
/// new pass over the history that exists now (rows written later are written
/// by code that keeps the summary itself, so the pass never chases them).
/// Safe while the application writes: every batch merges with the live
/// path's monotonic upsert, and on PostgreSQL excludes the paths that lower
/// a row (deleting or moving a run) for its few milliseconds, since its
/// snapshot may predate them. Idempotent: a second pass changes nothing.
///
/// Pass a connection, not a transaction: inside a transaction the batches
/// are savepoints, and a crash loses them all.
///
/// Runs written by code that does not keep the summary (an application not
/// yet calling [`save_run`](crate::save_run)) after the pass started are not
/// covered: run another pass once that code is deployed.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `batch_rows` outside `1..=1_000_000`,
/// [`Error::WorkspaceNotFound`] for an unknown workspace (both before any
/// write); [`Error::Database`], after retrying a batch that lost a deadlock
/// or a race with a deleted workflow a few times (the checkpoint then holds
/// the last committed batch); [`Error::CheckpointRemoved`].
pub async fn backfill<C, P>(
    conn: &C,
    scope: &BackfillScope,
    options: &BackfillOptions,
    progress: P,
) -> Result<BackfillReport>
where
    C: ConnectionTrait + TransactionTrait,
    P: FnMut(&Progress),
{
    Recents::standard()
        .backfill(conn, scope, options, progress)
        .await
}

/// The checkpoint of `scope`'s latest pass, if it ever ran.
///
/// # Errors
/// [`Error::Database`].
pub async fn checkpoint<C: ConnectionTrait>(
    conn: &C,
    scope: &BackfillScope,
) -> Result<Option<Checkpoint>> {
    Recents::standard().checkpoint(conn, scope).await
}

impl Recents {
    /// [`backfill`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`backfill`].
    pub async fn backfill<C, P>(
        &self,
        conn: &C,
        scope: &BackfillScope,
        options: &BackfillOptions,
        mut progress: P,
    ) -> Result<BackfillReport>
    where
        C: ConnectionTrait + TransactionTrait,
        P: FnMut(&Progress),
    {
        let schema = self.schema();
        if options.batch_rows == 0 || options.batch_rows > MAX_BATCH_ROWS {
            return Err(Error::InvalidArgument {
                what: "batch_rows",
                why: format!("must be between 1 and {MAX_BATCH_ROWS}"),
            });
        }
        if let BackfillScope::RecentWorkflowsOf(workspace_id) = scope {
            check_workspace(conn, schema, *workspace_id).await?;
        }
        let started = Instant::now();
        let (mut checkpoint, resumed) = retrying(|| start_pass(conn, schema, scope)).await?;
        let mut report = BackfillReport {
            resumed,
            rows_scanned: 0,
            batches: 0,
            finished: checkpoint.finished_at.is_some(),
            elapsed: Duration::ZERO,
        };
        while !report.finished && !options.cancel.is_cancelled() {
            let (advanced, rows) =
                retrying(|| merge_batch(conn, schema, scope, options.batch_rows)).await?;
            checkpoint = advanced;
            report.rows_scanned += rows;
            report.batches += 1;
            report.finished = checkpoint.finished_at.is_some();
            progress(&progress_of(&checkpoint, report.rows_scanned, started));
            if !report.finished && !options.pause.is_zero() {
                tokio::time::sleep(options.pause).await;
            }
        }
        if report.batches == 0 {
            // Nothing to merge (or cancelled before the first batch): still one
            // event, so a progress display always learns where the pass stands.
            progress(&progress_of(&checkpoint, 0, started));
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// [`checkpoint`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`checkpoint`].
    pub async fn checkpoint<C: ConnectionTrait>(
        &self,
        conn: &C,
        scope: &BackfillScope,
    ) -> Result<Option<Checkpoint>> {
        read_checkpoint(conn, self.schema(), &scope.checkpoint_name(), false).await
    }
}

fn progress_of(checkpoint: &Checkpoint, rows_this_call: u64, started: Instant) -> Progress {
    let seconds = started.elapsed().as_secs_f64();
    let rows_per_second = if seconds > 0.0 {
        rows_this_call as f64 / seconds
    } else {
        0.0
    };
    let left = checkpoint
        .rows_total
        .saturating_sub(checkpoint.rows_scanned);
    let eta = if checkpoint.finished_at.is_some() {
        Some(Duration::ZERO)
    } else if rows_per_second > 0.0 {
        Some(Duration::from_secs_f64(left as f64 / rows_per_second))
    } else {
        None
    };
    Progress {
        rows_scanned: checkpoint.rows_scanned,
        rows_total: checkpoint.rows_total,
        rows_per_second,
        eta,
        resume_at_id: checkpoint.resume_at_id,
        finished: checkpoint.finished_at.is_some(),
    }
}

/// A transaction for one step. MySQL/MariaDB run it under REPEATABLE READ,
/// whatever the server's default: only then does `INSERT … SELECT` read the
/// runs with shared locks (see `statements::merge_batch`).
async fn begin_step<C>(conn: &C) -> Result<C::Transaction>
where
    C: ConnectionTrait + TransactionTrait,
{
    Ok(match conn.get_database_backend() {
        DbBackend::MySql => {
            conn.begin_with_config(Some(IsolationLevel::RepeatableRead), None)
                .await?
        }
        _ => begin_write(conn).await?,
    })
}

/// Continues the scope's unfinished pass, or starts a new one. Returns the
/// checkpoint and whether it was resumed.
async fn start_pass<C>(
    conn: &C,
    schema: &Schema,
    scope: &BackfillScope,
) -> Result<(Checkpoint, bool)>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = begin_step(conn).await?;
    let backend = txn.get_database_backend();
    let n = schema.names(backend);
    let name = scope.checkpoint_name();
    let existing = read_checkpoint(&txn, schema, &name, true).await?;
    if let Some(checkpoint) = &existing
        && checkpoint.finished_at.is_none()
    {
        txn.commit().await?;
        return Ok((checkpoint.clone(), true));
    }
    let row = txn
        .query_one_raw(statement(
            backend,
            &statements::extent(n, scope),
            scope_values(scope),
        ))
        .await?;
    let (max_id, rows_total) = match row {
        Some(row) => {
            let extent = Extent::from_query_result(&row, "")?;
            (extent.max_id.unwrap_or(0), extent.n)
        }
        None => (0, 0),
    };
    let now = now();
    let checkpoint = Checkpoint {
        name: name.clone(),
        max_id,
        resume_at_id: max_id,
        rows_total: rows_total.max(0) as u64,
        rows_scanned: 0,
        started_at: now,
        updated_at: now,
        // Nothing to merge: the pass is done as it starts.
        finished_at: (rows_total == 0).then_some(now),
    };
    let sql = match existing {
        Some(_) => statements::restart_checkpoint(n),
        None => statements::start_checkpoint(n),
    };
    txn.execute_raw(statement(
        backend,
        &sql,
        vec![
            checkpoint.max_id.into(),
            checkpoint.resume_at_id.into(),
            rows_total.into(),
            0i64.into(),
            now.into(),
            now.into(),
            checkpoint.finished_at.into(),
            name.into(),
        ],
    ))
    .await?;
    txn.commit().await?;
    Ok((checkpoint, false))
}

/// Merges the next batch below the checkpoint and advances it, in one
/// transaction. Returns the advanced checkpoint and the rows merged.
async fn merge_batch<C>(
    conn: &C,
    schema: &Schema,
    scope: &BackfillScope,
    batch_rows: u32,
) -> Result<(Checkpoint, u64)>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = begin_step(conn).await?;
    let backend = txn.get_database_backend();
    let n = schema.names(backend);
    if backend == DbBackend::Postgres {
        txn.execute_raw(statement(
            backend,
            &statements::batch_setup_postgres(scope),
            vec![],
        ))
        .await?;
    }
    let name = scope.checkpoint_name();
    // Read under lock, not remembered: a second backfill of the same scope
    // waits here and then continues after this batch instead of redoing it.
    let Some(mut checkpoint) = read_checkpoint(&txn, schema, &name, true).await? else {
        return Err(Error::CheckpointRemoved(name));
    };
    if checkpoint.finished_at.is_some() {
        txn.commit().await?;
        return Ok((checkpoint, 0));
    }
    let mut values: Vec<Value> = vec![checkpoint.resume_at_id.into()];
    values.extend(scope_values(scope));
    values.push(i64::from(batch_rows).into());
    let probe = txn
        .query_one_raw(statement(backend, &statements::probe(n, scope), values))
        .await?;
    let (rows, low) = match probe {
        Some(row) => {
            let probe = Probe::from_query_result(&row, "")?;
            (count(probe.n), probe.low)
        }
        None => (0, None),
    };
    let now = now();
    if let Some(low) = low {
        let mut values: Vec<Value> = vec![low.into(), checkpoint.resume_at_id.into()];
        values.extend(scope_values(scope));
        txn.execute_raw(statement(
            backend,
            &statements::merge_batch(n, scope),
            values,
        ))
        .await?;
    }
    // A short batch reached the lowest id, or the batch reached i64::MIN:
    // nothing is left below it.
    let next = low
        .filter(|_| rows >= u64::from(batch_rows))
        .and_then(|low| low.checked_sub(1));
    let finished = next.is_none();
    checkpoint.resume_at_id = next.unwrap_or(0);
    checkpoint.rows_scanned += rows;
    checkpoint.updated_at = now;
    checkpoint.finished_at = finished.then_some(now);
    txn.execute_raw(statement(
        backend,
        &statements::advance_checkpoint(n),
        vec![
            checkpoint.resume_at_id.into(),
            (rows as i64).into(),
            now.into(),
            checkpoint.finished_at.into(),
            name.into(),
        ],
    ))
    .await?;
    txn.commit().await?;
    Ok((checkpoint, rows))
}

/// Reads a checkpoint; `lock`: for the rest of the transaction.
async fn read_checkpoint<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    name: &str,
    lock: bool,
) -> Result<Option<Checkpoint>> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            &statements::read_checkpoint(schema.names(backend), lock),
            vec![name.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => {
            let row = CheckpointRow::from_query_result(&row, "")?;
            Some(Checkpoint {
                name: row.name,
                max_id: row.max_id,
                resume_at_id: row.resume_at_id,
                rows_total: count(row.rows_total),
                rows_scanned: count(row.rows_scanned),
                started_at: row.started_at,
                updated_at: row.updated_at,
                finished_at: row.finished_at,
            })
        }
        None => None,
    })
}

#[derive(FromQueryResult)]
struct CheckpointRow {
    name: String,
    max_id: i64,
    resume_at_id: i64,
    rows_total: i64,
    rows_scanned: i64,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct Extent {
    max_id: Option<i64>,
    n: i64,
}

#[derive(FromQueryResult)]
struct Probe {
    n: i64,
    low: Option<i64>,
}

/// The values of the scope's own condition (`statements::history`).
fn scope_values(scope: &BackfillScope) -> Vec<Value> {
    match scope {
        BackfillScope::RecentWorkflowsOf(id) => vec![id.0.into()],
        _ => vec![],
    }
}

//! Verify and repair: proves `workspace_recent_workflows` equal to its
//! history, and brings back any row that drifted (after a bug, a manual SQL
//! fix, or saves written by code that does not keep the summary).
//!
//! Verify makes one pass over the scope's history in batches of whole
//! workspaces; each batch is a single statement that aggregates the runs and
//! compares the result with the summary rows, so it reads one snapshot and
//! reports no false drift while the application writes. Repair recomputes
//! each drifted row under its row lock, which also lowers rows that are too
//! high: a monotonic upsert never could.

use chrono::{DateTime, Utc};
use recents_schema::{Names, Schema};
use sea_orm::{
    ConnectionTrait, DbBackend, FromQueryResult, QueryResult, TransactionSession, TransactionTrait,
    Value,
};

use crate::error::Result;
use crate::handle::Recents;
use crate::ids::{PublishedRunId, SavedRunId, WorkspaceId};
pub use crate::maintenance::{DriftKind, SAMPLES_PER_KIND};
use crate::maintenance::{KeyBatches, SESSION_POSTGRES, check_workspace, count, retrying, tally};
use crate::recent_workflows::Key;
use crate::recent_workflows::history::batch_aggregate;
use crate::recent_workflows::summary;
use crate::sql::{begin_write, statement};

/// The workspaces of one batch: a range, or one workspace, written as an
/// equality so that a PostgreSQL sharded by workspace (Citus) routes each
/// statement to the one shard that holds it (see docs/scale-out.md).
#[derive(Clone, Copy, Debug)]
enum Batch {
    Range(i64, i64),
    One(i64),
}

impl Batch {
    /// The batch as a condition on `column`, with [`Batch::values`] for its `?`s.
    fn on(self, column: &str) -> String {
        match self {
            Batch::Range(..) => format!("{column} >= ? AND {column} <= ?"),
            Batch::One(_) => format!("{column} = ?"),
        }
    }

    fn values(self) -> Vec<Value> {
        match self {
            Batch::Range(low, high) => vec![low.into(), high.into()],
            Batch::One(id) => vec![id.into()],
        }
    }
}

/// The comparison of one batch: every key where the history aggregate
/// `history` and the summary row differ, or only one exists. Takes the
/// history's `?`s, then the batch's.
fn drift_sql(n: &Names, history: &str, batch: Batch) -> String {
    let summary = batch.on("workspace_id");
    let table = &n.recent_workflows;
    match n.backend {
        // A FULL JOIN, with the batch's sorts given memory.
        DbBackend::Postgres => format!(
            "SELECT COALESCE(h.workspace_id, r.workspace_id) AS workspace_id, COALESCE(h.uid, r.uid) AS uid, \
                COALESCE(h.published_run_id, r.published_run_id) AS published_run_id, \
                h.last_saved_run_id AS history_run_id, h.last_used_at AS history_at, \
                r.last_saved_run_id AS summary_run_id, r.last_used_at AS summary_at \
             FROM ({history}) h FULL JOIN (\
                SELECT workspace_id, uid, published_run_id, last_saved_run_id, last_used_at \
                FROM {table} WHERE {summary}\
             ) r ON r.workspace_id = h.workspace_id AND r.uid = h.uid AND r.published_run_id = h.published_run_id \
             WHERE h.last_saved_run_id IS DISTINCT FROM r.last_saved_run_id \
                OR h.last_used_at IS DISTINCT FROM r.last_used_at"
        ),
        // MySQL/MariaDB have no FULL JOIN: the differing and missing rows,
        // then the extra ones.
        _ => format!(
            "WITH h AS ({history}), r AS (\
                SELECT workspace_id, uid, published_run_id, last_saved_run_id, last_used_at \
                FROM {table} WHERE {summary}\
             ) \
             SELECT h.workspace_id, h.uid, h.published_run_id, \
                h.last_saved_run_id AS history_run_id, h.last_used_at AS history_at, \
                r.last_saved_run_id AS summary_run_id, r.last_used_at AS summary_at \
             FROM h LEFT JOIN r ON r.workspace_id = h.workspace_id AND r.uid = h.uid \
                AND r.published_run_id = h.published_run_id \
             WHERE r.workspace_id IS NULL OR r.last_saved_run_id <> h.last_saved_run_id \
                OR r.last_used_at <> h.last_used_at \
             UNION ALL \
             SELECT r.workspace_id, r.uid, r.published_run_id, NULL, NULL, r.last_saved_run_id, r.last_used_at \
             FROM r LEFT JOIN h ON h.workspace_id = r.workspace_id AND h.uid = r.uid \
                AND h.published_run_id = r.published_run_id \
             WHERE h.workspace_id IS NULL"
        ),
    }
}

/// The batch's history and summary rows; takes the batch's `?`s twice.
fn batch_sizes(n: &Names, batch: Batch) -> String {
    format!(
        "SELECT (SELECT COUNT(*) FROM {runs} WHERE {history}) AS history_rows, \
            (SELECT COUNT(*) FROM {summary_table} WHERE {summary}) AS summary_rows",
        runs = n.saved_runs.table,
        history = batch.on(&n.saved_runs.workspace_id),
        summary_table = n.recent_workflows,
        summary = batch.on("workspace_id"),
    )
}

#[derive(FromQueryResult)]
struct BatchSizes {
    history_rows: i64,
    summary_rows: i64,
}

/// Which workspaces' summary rows verify and repair check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerifyScope {
    /// Every workspace.
    All,
    /// One workspace (soft-deleted ones too).
    Workspace(WorkspaceId),
}

/// How verify and repair batch their pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// History rows per batch, rounded up to whole workspaces.
    pub batch_rows: u32,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            batch_rows: 100_000,
        }
    }
}

/// One drifted summary row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// How it drifted.
    pub kind: DriftKind,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The member, or `''` for the workspace row.
    pub uid: String,
    /// The workflow.
    pub published_run_id: PublishedRunId,
    /// The summary row's `(last_saved_run_id, last_used_at)`, if it exists.
    pub summary: Option<(SavedRunId, DateTime<Utc>)>,
    /// The history aggregate, if the key has runs.
    pub history: Option<(SavedRunId, DateTime<Utc>)>,
}

/// What a verify pass found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// History rows (saved runs) in the scope.
    pub history_rows: u64,
    /// Summary rows in the scope.
    pub summary_rows: u64,
    /// Keys with history and no summary row.
    pub missing: u64,
    /// Rows below their history aggregate.
    pub stale: u64,
    /// Rows above their history aggregate.
    pub too_high: u64,
    /// Rows without history.
    pub extra: u64,
    /// The first few drifted rows of each kind ([`SAMPLES_PER_KIND`]).
    pub samples: Vec<Drift>,
}

impl VerifyReport {
    /// Drifted rows of all kinds.
    pub fn drifted(&self) -> u64 {
        self.missing + self.stale + self.too_high + self.extra
    }

    /// Whether every summary row equals its history aggregate.
    pub fn is_exact(&self) -> bool {
        self.drifted() == 0
    }

    /// Drifted rows of one kind.
    pub fn count(&self, kind: DriftKind) -> u64 {
        match kind {
            DriftKind::Missing => self.missing,
            DriftKind::Stale => self.stale,
            DriftKind::TooHigh => self.too_high,
            DriftKind::Extra => self.extra,
        }
    }

    fn record(&mut self, drift: &Drift) {
        let count = match drift.kind {
            DriftKind::Missing => &mut self.missing,
            DriftKind::Stale => &mut self.stale,
            DriftKind::TooHigh => &mut self.too_high,
            DriftKind::Extra => &mut self.extra,
        };
        tally(count, &mut self.samples, drift.clone());
    }
}

/// What a repair found and fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The drift found, as [`verify`] reports it.
    pub found: VerifyReport,
    /// Rows recomputed (every drifted row found).
    pub repaired: u64,
}

/// Compares every summary row of `scope` with its history aggregate, in one
/// batched pass over the scope's runs (never a query per row), and counts
/// missing, stale, too-high and extra rows.
///
/// Cost: each batch aggregates about `batch_rows` runs (whole workspaces:
/// a workspace with 1.8M runs is one batch) and reads their summary rows.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `batch_rows` of 0;
/// [`Error::WorkspaceNotFound`]; [`Error::Database`].
pub async fn verify<C>(
    conn: &C,
    scope: &VerifyScope,
    options: &VerifyOptions,
) -> Result<VerifyReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard().verify(conn, scope, options).await
}

/// Runs the [`verify`] pass and recomputes every drifted row it finds from
/// history, each in a short transaction of its own under the row's lock:
/// exactly the drift found, including rows too high.
///
/// Drift is expected to be rare; to build a summary from nothing, use
/// [`backfill`](crate::backfill()), which is set-based.
///
/// # Errors
/// As [`verify`].
pub async fn repair<C>(
    conn: &C,
    scope: &VerifyScope,
    options: &VerifyOptions,
) -> Result<RepairReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard().repair(conn, scope, options).await
}

impl Recents {
    /// [`verify`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`verify`].
    pub async fn verify<C>(
        &self,
        conn: &C,
        scope: &VerifyScope,
        options: &VerifyOptions,
    ) -> Result<VerifyReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let mut report = VerifyReport::default();
        pass(conn, self.schema(), scope, options, &mut report, false).await?;
        Ok(report)
    }

    /// [`repair`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`verify`].
    pub async fn repair<C>(
        &self,
        conn: &C,
        scope: &VerifyScope,
        options: &VerifyOptions,
    ) -> Result<RepairReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let mut report = RepairReport::default();
        report.repaired =
            pass(conn, self.schema(), scope, options, &mut report.found, true).await?;
        Ok(report)
    }
}

async fn recompute<C>(conn: &C, schema: &Schema, key: &Key) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    retrying(|| async {
        let txn = begin_write(conn).await?;
        match summary::recompute(&txn, schema, key).await {
            Ok(()) => Ok(txn.commit().await?),
            Err(err) => Err(err),
        }
    })
    .await
}

async fn pass<C>(
    conn: &C,
    schema: &Schema,
    scope: &VerifyScope,
    options: &VerifyOptions,
    report: &mut VerifyReport,
    repair: bool,
) -> Result<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    // A batch takes all of a workspace's runs, since its workspace rows
    // depend on every one of them.
    let mut batches = KeyBatches::over(
        &n.saved_runs.table,
        &n.saved_runs.workspace_id,
        options.batch_rows,
        "batch_rows",
    )?;
    let mut one = match scope {
        VerifyScope::All => None,
        VerifyScope::Workspace(id) => {
            check_workspace(conn, schema, *id).await?;
            Some(id.0)
        }
    };
    let mut repaired = 0;
    loop {
        let batch = match scope {
            VerifyScope::Workspace(_) => match one.take() {
                Some(id) => Batch::One(id),
                None => break,
            },
            VerifyScope::All => match batches.next(conn).await? {
                Some((low, high)) => Batch::Range(low, high),
                None => break,
            },
        };
        let mut values = batch.values();
        values.extend(batch.values());
        let sizes = conn
            .query_one_raw(statement(backend, &batch_sizes(n, batch), values))
            .await?;
        if let Some(sizes) = sizes {
            let sizes = BatchSizes::from_query_result(&sizes, "")?;
            report.history_rows += count(sizes.history_rows);
            report.summary_rows += count(sizes.summary_rows);
        }
        // A flag, not a callback: an async closure over `&Drift` would make
        // this future `Send` for one lifetime only, and the console runs
        // repairs in spawned tasks.
        for drift in drift_in(conn, n, batch).await? {
            report.record(&drift);
            if repair {
                let key = Key {
                    workspace_id: drift.workspace_id,
                    uid: drift.uid.clone(),
                    published_run_id: drift.published_run_id,
                };
                recompute(conn, schema, &key).await?;
                repaired += 1;
            }
        }
    }
    Ok(repaired)
}

/// The drifted rows of one batch of workspaces, read in one statement.
async fn drift_in<C>(conn: &C, n: &Names, batch: Batch) -> Result<Vec<Drift>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = n.backend;
    let history = batch_aggregate(n, &batch.on(&format!("s.{}", n.saved_runs.workspace_id)));
    let mut values = batch.values();
    values.extend(batch.values());
    let drift = statement(backend, &drift_sql(n, &history, batch), values);
    let rows = if backend == DbBackend::Postgres {
        // The backfill's batch settings: sorts in memory, no JIT.
        let txn = conn.begin().await?;
        txn.execute_unprepared(&format!("SELECT {SESSION_POSTGRES}"))
            .await?;
        let rows = txn.query_all_raw(drift).await?;
        txn.commit().await?;
        rows
    } else {
        conn.query_all_raw(drift).await?
    };
    let mut drifts = Vec::new();
    for row in &rows {
        if let Some(drift) = drift_of(row)? {
            drifts.push(drift);
        }
    }
    drifts.sort_by(|a, b| {
        (a.workspace_id, &a.uid, a.published_run_id).cmp(&(
            b.workspace_id,
            &b.uid,
            b.published_run_id,
        ))
    });
    Ok(drifts)
}

/// One row of a batch's comparison.
#[derive(FromQueryResult)]
struct DriftRow {
    workspace_id: WorkspaceId,
    uid: String,
    published_run_id: PublishedRunId,
    history_run_id: Option<SavedRunId>,
    history_at: Option<DateTime<Utc>>,
    summary_run_id: Option<SavedRunId>,
    summary_at: Option<DateTime<Utc>>,
}

fn drift_of(row: &QueryResult) -> Result<Option<Drift>> {
    let row = DriftRow::from_query_result(row, "")?;
    let history = row.history_run_id.zip(row.history_at);
    let summary = row.summary_run_id.zip(row.summary_at);
    let kind = match (&summary, &history) {
        (None, Some(_)) => DriftKind::Missing,
        (Some(_), None) => DriftKind::Extra,
        (Some((s_id, s_at)), Some((h_id, h_at))) => match (s_at, s_id).cmp(&(h_at, h_id)) {
            std::cmp::Ordering::Less => DriftKind::Stale,
            std::cmp::Ordering::Greater => DriftKind::TooHigh,
            // Equal once decoded: two spellings of one time (SQLite text).
            std::cmp::Ordering::Equal => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    Ok(Some(Drift {
        kind,
        workspace_id: row.workspace_id,
        uid: row.uid,
        published_run_id: row.published_run_id,
        summary,
        history,
    }))
}

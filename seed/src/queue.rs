//! Execution jobs for the fair queue: a queue shaped like the second seed's
//! table (351k jobs, 24k of them waiting, every user served before) at a
//! scale factor, and the demo's few thousand. Bulk-loaded set-based, one
//! `INSERT … SELECT` per batch over a number source made by the database
//! (`generate_series` on PostgreSQL, cross-joined digits elsewhere), never
//! row by row. Deterministic: the same shape gives the same rows.
//!
//! Job `n` (0-based) is created `n` seconds after [`JobShape::first_at`], so
//! creation order is id order. The oldest jobs are finished (completed, one
//! in twenty failed), then come the `processing` ones, then the waiting ones
//! (`queued`, one in a hundred `errored` after a failed attempt and due
//! again). The triggers of migration 5 record each user's latest dequeue as
//! the rows go in (on PostgreSQL once per statement).

use std::time::Instant;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use recents_service::Error;
use recents_service::admin::statement;
use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::bulk::DIGITS;

/// Jobs in the second seed's table.
pub const SEED_JOBS: u64 = 351_000;

/// Jobs queued in the second seed's slow case.
pub const SEED_QUEUED: u64 = 24_000;

/// Rows per generated statement: a million from `generate_series`, a
/// hundred thousand (five digit tables) elsewhere.
const PG_BATCH: u64 = 1_000_000;
const DIGITS_BATCH: u64 = 100_000;

/// How many jobs to make, in which states, for how many users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobShape {
    /// All jobs, finished, processing and waiting together.
    pub jobs: u64,
    /// Jobs `processing`, after the finished ones: every other one has a
    /// heartbeat as old as its start (stalled), the rest one at
    /// [`present`](Self::present).
    pub processing: u64,
    /// Waiting jobs, the newest: `queued`, or `errored` and due.
    pub waiting: u64,
    /// Users `1..=users`. Finished and processing jobs go round the users,
    /// so each has a latest dequeue; waiting jobs are skewed towards the
    /// first users (user `k` gets about `(k/users)^(1/3)` of them
    /// cumulatively), as a few heavy users fill a real queue.
    pub users: u64,
    /// When job 0 was created.
    pub first_at: DateTime<Utc>,
}

impl JobShape {
    /// The second seed's queue at `scale` (1.0 = 351k jobs, 24k waiting) for
    /// `users` users, with no job processing, created from 2024-06-01 UTC.
    pub fn seed(scale: f64, users: u64) -> Self {
        Self {
            jobs: scaled(SEED_JOBS, scale),
            processing: 0,
            waiting: scaled(SEED_QUEUED, scale),
            users,
            first_at: Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap(),
        }
    }

    /// The same shape with `waiting` jobs waiting (the total stays).
    pub fn with_waiting(mut self, waiting: u64) -> Self {
        self.waiting = waiting;
        self
    }

    /// When the last job was created: the heartbeat of the live processing
    /// jobs.
    pub fn present(&self) -> DateTime<Utc> {
        self.first_at.trunc_subsecs(0) + Duration::seconds(self.jobs as i64)
    }

    fn finished(&self) -> u64 {
        self.jobs.saturating_sub(self.processing + self.waiting)
    }
}

fn scaled(value: u64, scale: f64) -> u64 {
    ((value as f64 * scale).round() as u64).max(1)
}

/// What [`insert_jobs`] made.
#[derive(Clone, Debug, PartialEq)]
pub struct Jobs {
    /// The shape asked for.
    pub shape: JobShape,
    /// Rows inserted.
    pub inserted: u64,
    /// Users with at least one waiting job.
    pub waiting_users: u64,
    /// Seconds the load took.
    pub load_seconds: f64,
}

/// Inserts the jobs of `shape` (appending to what is there; see [`clear`]).
///
/// # Errors
/// [`Error::InvalidArgument`] for no users or more processing and waiting
/// jobs than jobs; [`Error::Database`].
pub async fn insert_jobs<C: ConnectionTrait>(conn: &C, shape: &JobShape) -> Result<Jobs, Error> {
    if shape.users == 0 {
        return Err(Error::InvalidArgument {
            what: "users",
            why: "jobs need at least one user".into(),
        });
    }
    if shape.processing + shape.waiting > shape.jobs {
        return Err(Error::InvalidArgument {
            what: "jobs",
            why: format!(
                "{} processing and {} waiting exceed {} jobs",
                shape.processing, shape.waiting, shape.jobs
            ),
        });
    }
    let started = Instant::now();
    let backend = conn.get_database_backend();
    let first_at = shape.first_at.trunc_subsecs(0);
    let batch = if backend == DbBackend::Postgres {
        PG_BATCH
    } else {
        DIGITS_BATCH
    };
    let mut inserted = 0;
    let mut lo = 0;
    while lo < shape.jobs {
        let hi = (lo + batch).min(shape.jobs);
        let sql = insert_statement(backend, shape, lo, hi);
        let mut values: Vec<Value> = vec![payload()];
        values.extend((0..5).map(|_| at_value(backend, first_at)));
        let done = conn.execute_raw(statement(backend, &sql, values)).await?;
        inserted += done.rows_affected();
        lo = hi;
    }
    let waiting_users = conn
        .query_one_raw(statement(
            backend,
            "SELECT COUNT(DISTINCT user_id) AS n FROM execution_jobs \
             WHERE state IN ('queued', 'errored')",
            vec![],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0) as u64;
    Ok(Jobs {
        shape: shape.clone(),
        inserted,
        waiting_users,
        load_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Empties `execution_jobs`, `execution_last_dequeues` and
/// `execution_queue_heads`, for a new shape (TRUNCATE fires no row trigger).
///
/// # Errors
/// [`Error::Database`].
pub async fn clear<C: ConnectionTrait>(conn: &C) -> Result<(), Error> {
    let backend = conn.get_database_backend();
    let statements: &[&str] = match backend {
        DbBackend::Postgres => {
            &["TRUNCATE execution_jobs, execution_last_dequeues, execution_queue_heads"]
        }
        DbBackend::MySql => &[
            "TRUNCATE TABLE execution_jobs",
            "TRUNCATE TABLE execution_last_dequeues",
            "TRUNCATE TABLE execution_queue_heads",
        ],
        _ => &[
            "DELETE FROM execution_jobs",
            "DELETE FROM execution_last_dequeues",
            "DELETE FROM execution_queue_heads",
        ],
    };
    for sql in statements {
        conn.execute_raw(statement(backend, sql, vec![])).await?;
    }
    Ok(())
}

/// [`crate::statistics::analyze`] of the jobs and the queue's own tables.
///
/// # Errors
/// [`Error::Database`].
pub async fn analyze<C: ConnectionTrait>(conn: &C) -> Result<(), Error> {
    crate::statistics::analyze(
        conn,
        &[
            "execution_jobs",
            "execution_last_dequeues",
            "execution_queue_heads",
        ],
    )
    .await
}

/// One batch, jobs `lo..hi`. Takes `?`s: the payload, then `first_at` five
/// times. Only counts computed here are spelled into the SQL.
fn insert_statement(backend: DbBackend, shape: &JobShape, lo: u64, hi: u64) -> String {
    let done = shape.finished();
    let active = done + shape.processing;
    let users = shape.users;
    let present = shape.jobs;
    let div = |a: &str, b: &str| match backend {
        DbBackend::MySql => format!("(({a}) DIV ({b}))"),
        _ => format!("(({a}) / ({b}))"),
    };
    // A hash of n in 0..1e6; its cube over 1e12 skews waiting jobs to the
    // first users.
    let h = "((g.n * 2654435761) % 1000000)";
    let skew = div(
        &format!("{} * {h}", div(&format!("{h} * {h}"), "1000000")),
        "1000000",
    );
    let waiting_user = div(&format!("{skew} * {users}"), "1000000");
    let retried = format!("(g.n >= {active} AND g.n % 100 = 42)");
    let derived = format!(
        "SELECT g.n, \
            CASE WHEN g.n < {active} THEN 1 + g.n % {users} ELSE 1 + {waiting_user} END AS user_id, \
            CASE WHEN g.n < {done} THEN CASE WHEN g.n % 20 = 7 THEN 'failed' ELSE 'completed' END \
                 WHEN g.n < {active} THEN 'processing' \
                 WHEN {retried} THEN 'errored' ELSE 'queued' END AS state, \
            g.n AS created_s, \
            CASE WHEN g.n < {active} OR {retried} THEN g.n + 2 END AS started_s, \
            CASE WHEN g.n < {done} THEN g.n + 32 + g.n % 90 WHEN {retried} THEN g.n + 5 END AS finished_s, \
            CASE WHEN {retried} THEN g.n + 30 END AS after_s, \
            CASE WHEN g.n < {done} THEN g.n + 32 + g.n % 90 \
                 WHEN g.n < {active} THEN CASE WHEN g.n % 2 = 0 THEN g.n + 12 ELSE {present} END \
                 WHEN {retried} THEN g.n + 5 END AS beat_s, \
            CASE WHEN g.n < {done} AND g.n % 20 = 7 THEN 3 WHEN {retried} THEN 1 ELSE 0 END AS num_failures, \
            CASE WHEN (g.n < {done} AND g.n % 20 = 7) OR {retried} THEN 'exit status 1' END AS failure_message, \
            CASE WHEN g.n < {active} OR {retried} THEN 'seed-worker' END AS worker \
         FROM {series} WHERE g.n < {hi}",
        series = series(backend, lo, hi),
    );
    let cancel = match backend {
        DbBackend::Postgres => "FALSE",
        _ => "0",
    };
    format!(
        "INSERT INTO execution_jobs (user_id, state, payload, created_at, started_at, finished_at, \
            process_after, num_resets, num_failures, failure_message, worker_hostname, \
            last_heartbeat_at, cancel) \
         SELECT r.user_id, r.state, {payload}, {created}, {started}, {finished}, {after}, 0, \
            r.num_failures, r.failure_message, r.worker, {beat}, {cancel} \
         FROM ({derived}) r ORDER BY r.n",
        payload = match backend {
            DbBackend::Postgres => "CAST(? AS JSON)",
            _ => "?",
        },
        created = at(backend, "r.created_s"),
        started = at(backend, "r.started_s"),
        finished = at(backend, "r.finished_s"),
        after = at(backend, "r.after_s"),
        beat = at(backend, "r.beat_s"),
    )
}

/// Numbers `lo..hi` (at least) as a derived table `g(n)`; the caller cuts
/// at `hi`. Elsewhere than PostgreSQL, only as many digit tables as `hi - lo`
/// needs, so that the demo's few thousand do not make a hundred thousand.
fn series(backend: DbBackend, lo: u64, hi: u64) -> String {
    if backend == DbBackend::Postgres {
        return format!(
            "generate_series(CAST({lo} AS BIGINT), CAST({} AS BIGINT)) AS g(n)",
            hi.saturating_sub(1).max(lo)
        );
    }
    let mut places = 1;
    let mut span = 10;
    while span < hi - lo {
        places += 1;
        span *= 10;
    }
    let names = ["a", "b", "c", "e", "f", "h"];
    let sum = (0..places)
        .map(|p| format!("{} * {}.d", 10u64.pow(p as u32), names[p]))
        .collect::<Vec<_>>()
        .join(" + ");
    let tables = (0..places)
        .map(|p| format!("{DIGITS} {}", names[p]))
        .collect::<Vec<_>>()
        .join(" CROSS JOIN ");
    format!("(SELECT {lo} + {sum} AS n FROM {tables}) g")
}

/// `first_at` plus `seconds` (NULL stays NULL) in the column's own type; on
/// SQLite the text sqlx writes for a whole UTC second, so that text order
/// stays time order next to rows the service writes. Takes one `?`.
fn at(backend: DbBackend, seconds: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("CAST(? AS TIMESTAMPTZ) + {seconds} * INTERVAL '1 second'")
        }
        DbBackend::MySql => format!("TIMESTAMPADD(SECOND, {seconds}, ?)"),
        // A NULL `seconds` makes the modifier, and so the whole text, NULL.
        _ => {
            format!("strftime('%Y-%m-%dT%H:%M:%S', ?, '+' || {seconds} || ' seconds') || '+00:00'")
        }
    }
}

fn at_value(backend: DbBackend, first_at: DateTime<Utc>) -> Value {
    match backend {
        DbBackend::Postgres | DbBackend::MySql => first_at.into(),
        _ => first_at.format("%Y-%m-%d %H:%M:%S").to_string().into(),
    }
}

/// The payload, bound as text: PostgreSQL casts it to `json` in the
/// statement (text has no assignment cast to json), MySQL/MariaDB and SQLite
/// store the text.
fn payload() -> Value {
    r#"{"batch_spec": "seed"}"#.into()
}

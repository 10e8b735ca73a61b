//! Figure 4: the fair queue's dequeue at the second seed's 24k waiting jobs,
//! the seed's query before and after its last-dequeue table against
//! `recents_service::queue::dequeue`, for 20, 2,000 and 20,000 users; and
//! dequeue+complete throughput with 8 workers, one at a time and in batches
//! of 10, beside a plain FIFO queue (`FOR UPDATE SKIP LOCKED`, no fairness)
//! over the same jobs, its physical reference.
//!
//! The seed's two queries are its plans translated to our schema as
//! read-only SELECTs of the head job id (its LockRows step left out, so that
//! repetitions see the same data and the baselines are, if anything,
//! flattered). Ours is the real `dequeue` (lock row, claim UPDATE …
//! RETURNING with SKIP LOCKED, trigger), run inside a transaction that is
//! rolled back after each repetition: only the `dequeue` call is timed, so
//! its savepoint stands in for the claim's own commit and no commit flush is
//! counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use recents::admin::statement;
use recents::queue::{complete, dequeue, dequeue_many, next_in_line};
use recents_seed::queue::{self as jobs, JobShape};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::explain;
use crate::figure::{Figure, percentile};
use sea_orm::DbBackend;

/// The user counts measured: about the seed's (24 users had dequeued, 5 had
/// jobs waiting), a hundred and a thousand times more.
pub const USERS: [u64; 3] = [20, 2_000, 20_000];

/// The FIFO reference's table: the jobs' queue columns, no triggers.
const FIFO: &str = "bench_fifo_jobs";

const WORKERS: u64 = 8;

/// Wall time per query and point after the first 5 repetitions.
const BUDGET: Duration = Duration::from_secs(3);

/// What `recents` is timed doing, for the report.
pub const MEASURED: &str = "figure 4: baselines are the seed's dequeue query before its change \
(each user's latest dequeue by GROUP BY MAX(started_at) over all jobs, every waiting job ranked \
by window functions) and after it (latest dequeue from execution_last_dequeues, every waiting \
job still ranked), translated to our schema as read-only SELECTs of the head job id (no row \
lock); recents is recents_service::queue::dequeue (lock row, claim UPDATE … RETURNING, \
trigger) timed inside a transaction rolled back after each repetition. All three must hand \
out the same head job (and next_in_line too). Throughput: 8 workers each looping dequeue + \
complete (or dequeue_many(10) + 10 completes), committed, until the given number of jobs is \
done; the FIFO reference is the same loop over a copy of the jobs without triggers: SELECT the \
oldest eligible job FOR UPDATE SKIP LOCKED, UPDATE it processing, commit, then complete it.";

// Both seed queries share their shape: the queue view (the waiting jobs
// ranked within their user, then globally by place and latest dequeue),
// then the dequeue's 50 potential candidates, then the first of them still
// waiting. Eligibility is ours (queued or errored, not canceled, due), so
// that all three answer the same question; `created_at, id` completes the
// seed's order (place, latest dequeue NULLS FIRST), as our order does.
// Takes `?`s: now, now.
fn seed_query(latest_dequeues: &str) -> String {
    format!(
        "WITH queue_candidates AS (\
            SELECT exec.id, exec.created_at, queue.latest_dequeue, \
                RANK() OVER (PARTITION BY exec.user_id ORDER BY exec.created_at, exec.id) \
                    AS place_in_user_queue \
            FROM execution_jobs exec \
            LEFT JOIN ({latest_dequeues}) queue ON queue.user_id = exec.user_id \
            WHERE exec.state IN ('queued', 'errored') AND NOT exec.cancel \
                AND (exec.process_after IS NULL OR exec.process_after <= ?)\
        ), execution_queue AS (\
            SELECT id, ROW_NUMBER() OVER (ORDER BY place_in_user_queue, \
                latest_dequeue IS NOT NULL, latest_dequeue, created_at, id) AS place_in_global_queue \
            FROM queue_candidates\
        ), potential_candidates AS (\
            SELECT j.id AS candidate_id, \
                ROW_NUMBER() OVER (ORDER BY q.place_in_global_queue) AS candidate_order \
            FROM execution_jobs j LEFT JOIN execution_queue q ON q.id = j.id \
            WHERE j.state IN ('queued', 'errored') AND NOT j.cancel \
                AND (j.process_after IS NULL OR j.process_after <= ?) \
            ORDER BY q.place_in_global_queue LIMIT 50\
        ) \
        SELECT j.id FROM execution_jobs j \
        JOIN potential_candidates pc ON pc.candidate_id = j.id \
        WHERE j.state IN ('queued', 'errored') \
        ORDER BY pc.candidate_order LIMIT 1"
    )
}

/// Before: each user's latest dequeue aggregated from all of its jobs.
fn before_query() -> String {
    seed_query(
        "SELECT user_id, MAX(started_at) AS latest_dequeue FROM execution_jobs GROUP BY user_id",
    )
}

/// After: read from the trigger-kept table. (The seed joined it inner, which
/// drops users never served; a LEFT JOIN keeps them, first.)
fn after_query() -> String {
    seed_query("SELECT user_id, latest_dequeue FROM execution_last_dequeues")
}

/// One point of the plot: p50 of the three at one user count.
#[derive(Clone, Debug)]
pub struct DequeueSample {
    /// Users of the queue.
    pub users: u64,
    /// Jobs waiting.
    pub waiting: u64,
    /// Users with waiting jobs.
    pub waiting_users: u64,
    pub before_p50: Duration,
    pub after_p50: Duration,
    pub recents_p50: Duration,
    /// The head job, which all three handed out.
    pub head: i64,
}

/// What figure 4 measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub figures: Vec<Figure>,
    pub samples: Vec<DequeueSample>,
    /// (what, plan) of our claim statement at the seed's queue size.
    pub plans: Vec<(String, String)>,
}

/// Generates the seed's queue for each user count and measures it; fails
/// if the three heads differ. `drain` jobs (at most those waiting) are
/// dequeued and completed by 8 workers, each drain on a fresh copy of the
/// same jobs; `explain` captures our claim's plan.
pub async fn measure(
    conn: &DatabaseConnection,
    scale: f64,
    repetitions: usize,
    drain: u64,
    explain: bool,
) -> Result<Measured> {
    let mut measured = Measured::default();
    let repetitions = repetitions.max(1);
    let mut p50_at_fewest = None;
    for users in USERS {
        let shape = JobShape::seed(scale, users);
        let waiting = shape.waiting;
        let made = load(conn, &shape).await?;
        let head = agreed_head(conn, users, waiting).await?;
        let before = timed(repetitions, || select_head(conn, before_query())).await?;
        let after = timed(repetitions, || select_head(conn, after_query())).await?;
        let ours = timed(repetitions, || dequeue_rolled_back(conn)).await?;
        measured.samples.push(DequeueSample {
            users,
            waiting,
            waiting_users: made.waiting_users,
            before_p50: percentile(&before, 50.0),
            after_p50: percentile(&after, 50.0),
            recents_p50: percentile(&ours, 50.0),
            head,
        });
        let at = format!(
            "{users} users ({} with jobs waiting), {waiting} waiting of {} jobs",
            made.waiting_users, shape.jobs
        );
        for p in [50.0, 99.0] {
            measured.figures.push(Figure::latency(
                format!("queue.dequeue.p{p}.users_{users}"),
                format!(
                    "dequeue, {at}, p{p}: seed after vs recents (n={}/{})",
                    after.len(),
                    ours.len()
                ),
                percentile(&after, p),
                percentile(&ours, p),
            ));
        }
        measured.figures.push(Figure::latency(
            format!("queue.dequeue.p50.users_{users}.vs_seed_before"),
            format!(
                "dequeue, {at}, p50: seed before vs recents (n={}/{})",
                before.len(),
                ours.len()
            ),
            percentile(&before, 50.0),
            percentile(&ours, 50.0),
        ));
        match p50_at_fewest {
            None => p50_at_fewest = Some((users, percentile(&ours, 50.0))),
            Some((fewest, p50)) => measured.figures.push(Figure::latency(
                format!("queue.dequeue.p50.users_{users}.vs_users_{fewest}"),
                format!("dequeue p50, flat in users: recents at {fewest} users vs at {users}"),
                p50,
                percentile(&ours, 50.0),
            )),
        }
        if explain && let Some(plan) = explain::dequeue_plan(conn).await? {
            measured.plans.push((at.clone(), plan));
        }
        let drained = drain.min(waiting).max(1);
        let fifo = fifo_throughput(conn, drained).await?;
        measured.figures.push(Figure::throughput(
            format!("queue.drain.fifo.users_{users}"),
            format!("plain FIFO SKIP LOCKED queue, dequeue+complete, 8 workers, {users} users, {drained} jobs"),
            "jobs/s",
            None,
            fifo,
        ));
        for batch in [1u32, 10] {
            load(conn, &shape).await?;
            let rate = throughput(conn, drained, batch).await?;
            let (id, what) = match batch {
                1 => ("fair", "dequeue+complete"),
                _ => ("fair_batch10", "dequeue_many(10)+complete"),
            };
            measured.figures.push(Figure::throughput(
                format!("queue.drain.{id}.users_{users}"),
                format!("{what}, 8 workers, {users} users, {drained} jobs: FIFO vs recents"),
                "jobs/s",
                Some(fifo),
                rate,
            ));
        }
    }
    Ok(measured)
}

/// Empties the queue and loads `shape`, with fresh statistics.
async fn load(conn: &DatabaseConnection, shape: &JobShape) -> Result<jobs::Jobs> {
    jobs::clear(conn).await?;
    let made = jobs::insert_jobs(conn, shape).await?;
    jobs::analyze(conn).await?;
    Ok(made)
}

/// The head by the seed's two queries, by `dequeue` and by `next_in_line`;
/// an error naming each when they differ.
async fn agreed_head(conn: &DatabaseConnection, users: u64, waiting: u64) -> Result<i64> {
    let before = head_of(conn, before_query()).await?;
    let after = head_of(conn, after_query()).await?;
    let (ours, _) = claim_rolled_back(conn).await?;
    let line = next_in_line(conn, 1).await?.first().map(|j| j.job_id.0);
    match (before, after, ours, line) {
        (Some(b), Some(a), Some(o), Some(l)) if b == a && a == o && o == l => Ok(o),
        _ => bail!(
            "MISMATCH of the dequeue head at {users} users, {waiting} waiting: \
             seed before {before:?}, seed after {after:?}, recents dequeue {ours:?}, \
             recents next_in_line {line:?}"
        ),
    }
}

async fn head_of(conn: &DatabaseConnection, sql: String) -> Result<Option<i64>> {
    let backend = conn.get_database_backend();
    let now = chrono::Utc::now();
    let row = conn
        .query_one_raw(statement(backend, &sql, vec![now.into(), now.into()]))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get::<i64>("", "id")?),
        None => None,
    })
}

async fn select_head(conn: &DatabaseConnection, sql: String) -> Result<Duration> {
    let started = Instant::now();
    head_of(conn, sql).await?;
    Ok(started.elapsed())
}

async fn dequeue_rolled_back(conn: &DatabaseConnection) -> Result<Duration> {
    Ok(claim_rolled_back(conn).await?.1)
}

/// `dequeue` inside a transaction that is then rolled back: the job it
/// claimed and how long the call took.
async fn claim_rolled_back(conn: &DatabaseConnection) -> Result<(Option<i64>, Duration)> {
    let txn = recents::begin_write(conn).await?;
    let started = Instant::now();
    let job = dequeue(&txn, "bench-latency").await?;
    let took = started.elapsed();
    txn.rollback().await?;
    Ok((job.map(|j| j.id), took))
}

/// Runs `once` until `repetitions`, or at least 5 times and then until the
/// budget is spent; the times it reports.
async fn timed<F, Fut>(repetitions: usize, mut once: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Duration>>,
{
    let mut times = Vec::with_capacity(repetitions);
    let budget = Instant::now();
    while times.len() < repetitions && (times.len() < 5 || budget.elapsed() < BUDGET) {
        times.push(once().await?);
    }
    Ok(times)
}

/// 8 workers dequeue (`batch` at a time) and complete `jobs` jobs, each in
/// its own committed transactions; jobs per second. Fails if a job is left
/// processing.
async fn throughput(conn: &DatabaseConnection, jobs: u64, batch: u32) -> Result<f64> {
    let tickets = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let conn = conn.clone();
        let tickets = tickets.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("bench-worker-{w}");
            loop {
                let taken = tickets.fetch_add(u64::from(batch), Ordering::Relaxed);
                if taken >= jobs {
                    break;
                }
                let want = (jobs - taken).min(u64::from(batch)) as u32;
                let claimed = loop {
                    match dequeue_many(&conn, &name, want).await {
                        Ok(claimed) if claimed.is_empty() => {
                            bail!("{name}: the queue ran dry before {jobs} jobs")
                        }
                        Ok(claimed) => break claimed,
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => return Err(e.into()),
                    }
                };
                // A short batch (fewer users than asked) gives its tickets back.
                if claimed.len() < want as usize {
                    tickets.fetch_sub((want as usize - claimed.len()) as u64, Ordering::Relaxed);
                }
                for job in &claimed {
                    loop {
                        match complete(&conn, job).await {
                            Ok(()) => break,
                            Err(e) if e.is_retryable() => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
            Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            "SELECT COUNT(*) AS n FROM execution_jobs WHERE state = 'processing'",
            vec![],
        ))
        .await?;
    let left: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    if left != 0 {
        bail!("{left} jobs left processing after the throughput run");
    }
    Ok(rate)
}

/// The FIFO reference: the waiting jobs copied into a table of their own
/// (no triggers, one partial index on `(created_at, id)`), drained by 8
/// workers that each lock the oldest eligible job with `FOR UPDATE SKIP
/// LOCKED`, set it processing, commit, then complete it in a second
/// transaction, as the fair loop does. Jobs per second.
async fn fifo_throughput(conn: &DatabaseConnection, jobs: u64) -> Result<f64> {
    let backend = conn.get_database_backend();
    let time = match backend {
        DbBackend::Postgres => "TIMESTAMPTZ",
        DbBackend::MySql => "DATETIME(6)",
        _ => "TEXT",
    };
    let setup: Vec<String> = vec![
        format!("DROP TABLE IF EXISTS {FIFO}"),
        format!(
            "CREATE TABLE {FIFO} (id BIGINT PRIMARY KEY, state VARCHAR(16) NOT NULL, \
             created_at {time} NOT NULL, process_after {time}, cancel BOOLEAN NOT NULL, \
             started_at {time}, finished_at {time}, worker_hostname VARCHAR(255))"
        ),
        format!(
            "INSERT INTO {FIFO} SELECT id, state, created_at, process_after, cancel, \
             started_at, finished_at, worker_hostname FROM execution_jobs \
             WHERE state IN ('queued', 'errored') AND NOT cancel"
        ),
        match backend {
            DbBackend::MySql => {
                format!("CREATE INDEX {FIFO}_waiting ON {FIFO} (state, created_at, id)")
            }
            _ => format!(
                "CREATE INDEX {FIFO}_waiting ON {FIFO} (created_at, id) \
                 WHERE state IN ('queued', 'errored') AND NOT cancel"
            ),
        },
        match backend {
            DbBackend::Postgres => format!("VACUUM ANALYZE {FIFO}"),
            DbBackend::MySql => format!("ANALYZE TABLE {FIFO}"),
            _ => "ANALYZE".to_owned(),
        },
    ];
    for sql in &setup {
        conn.query_all_raw(statement(backend, sql, vec![])).await?;
    }
    // SQLite has one writer: its claim is a plain read under the write lock.
    let (order, started, lock) = match backend {
        DbBackend::Postgres => ("created_at, id", "now()", " FOR UPDATE SKIP LOCKED"),
        DbBackend::MySql => (
            "state, created_at, id",
            "UTC_TIMESTAMP(6)",
            " FOR UPDATE SKIP LOCKED",
        ),
        _ => (
            "created_at, id",
            "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
            "",
        ),
    };
    let claim = format!(
        "SELECT id FROM {FIFO} WHERE state IN ('queued', 'errored') AND NOT cancel \
         AND (process_after IS NULL OR process_after <= ?) \
         ORDER BY {order} LIMIT 1{lock}"
    );
    let start = format!(
        "UPDATE {FIFO} SET state = 'processing', started_at = {started}, worker_hostname = ? \
         WHERE id = ?"
    );
    let finish =
        format!("UPDATE {FIFO} SET state = 'completed', finished_at = {started} WHERE id = ?");
    let tickets = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let conn = conn.clone();
        let tickets = tickets.clone();
        let (claim, start, finish) = (claim.clone(), start.clone(), finish.clone());
        workers.push(tokio::spawn(async move {
            let name = format!("bench-fifo-{w}");
            while tickets.fetch_add(1, Ordering::Relaxed) < jobs {
                // A deadlock (MySQL/MariaDB's gap locks) is retried, as the
                // fair loop retries its retryable errors.
                let id = loop {
                    match fifo_claim(&conn, backend, &claim, &start, &name).await {
                        Ok(Some(id)) => break id,
                        Ok(None) => bail!("{name}: the FIFO queue ran dry before {jobs} jobs"),
                        Err(e) if e.to_string().contains("40001") => continue,
                        Err(e) => return Err(e.into()),
                    }
                };
                loop {
                    match conn
                        .execute_raw(statement(backend, &finish, vec![id.into()]))
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.to_string().contains("40001") => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let rate = jobs as f64 / began.elapsed().as_secs_f64();
    conn.execute_raw(statement(backend, &format!("DROP TABLE {FIFO}"), vec![]))
        .await?;
    Ok(rate)
}

/// One FIFO claim: the oldest eligible job locked, set processing, committed.
async fn fifo_claim(
    conn: &DatabaseConnection,
    backend: DbBackend,
    claim: &str,
    start: &str,
    worker: &str,
) -> Result<Option<i64>, sea_orm::DbErr> {
    let txn = recents::begin_write(conn).await?;
    let row = txn
        .query_one_raw(statement(backend, claim, vec![chrono::Utc::now().into()]))
        .await?;
    let Some(row) = row else {
        txn.rollback().await?;
        return Ok(None);
    };
    let id: i64 = row.try_get("", "id")?;
    txn.execute_raw(statement(backend, start, vec![worker.into(), id.into()]))
        .await?;
    txn.commit().await?;
    Ok(Some(id))
}

//! Figure 6, beside figure 4: the worker runtime (`recents::queue::Worker`).
//!
//! - Wake-up latency on PostgreSQL: a job enqueued into an idle queue, from
//!   the producer's `enqueue` call to the handler's start, with a 1 s poll
//!   interval: a worker that LISTENs (migration 10's trigger notifies on each
//!   enqueue) against the same worker polling only. Enqueues land at a
//!   random phase of the poll.
//! - Drain throughput with a no-op handler at 2,000 users: the runtime with 8
//!   handlers against a raw loop of `dequeue` + `complete` in 8 tasks, each
//!   on a fresh copy of the same queue, in the same run.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::Rng;
use recents::UserId;
use recents::admin::statement;
use recents::queue::{
    CancellationToken, Job, JobContext, NewJob, Worker, complete, dequeue, enqueue,
};
use recents_seed::queue::{self as jobs, JobShape};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::mpsc;

use crate::figure::{Figure, percentile};

/// The figure's number for `--figures` (not in the default run).
pub const FIGURE: u32 = 6;

/// Handlers of the runtime, and tasks of the raw loop.
const CONCURRENCY: usize = 8;

/// Users of the drained queue.
const USERS: u64 = 2_000;

/// The poll interval of the wake-up figure.
const POLL: Duration = Duration::from_secs(1);

/// What figure 6 measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    /// Why part of it did not run (the wake-ups off PostgreSQL).
    pub skipped: Vec<String>,
}

/// Measures the wake-ups (PostgreSQL only) with `repetitions / 20` samples
/// (10 to 40) per worker, and the drain of `drain` jobs.
pub async fn measure(
    conn: &DatabaseConnection,
    scale: f64,
    repetitions: usize,
    drain: u64,
) -> Result<Measured> {
    let mut measured = Measured::default();
    if conn.get_database_backend() == DbBackend::Postgres {
        let samples = (repetitions / 20).clamp(10, 40);
        jobs::clear(conn).await?;
        let listening = wakeup_latencies(conn, true, samples).await?;
        let polling = wakeup_latencies(conn, false, samples).await?;
        for p in [50.0, 99.0] {
            measured.figures.push(Figure::latency(
                format!("worker.wakeup.p{p}"),
                format!(
                    "worker wake-up, enqueue into an idle queue → handler start, poll {POLL:?}, \
                     p{p}: polling vs LISTEN (n={samples}/{samples})"
                ),
                percentile(&polling, p),
                percentile(&listening, p),
            ));
        }
        measured.notes.push(format!(
            "figure 6: wake-up latency is from the producer's enqueue call to the handler's \
             start, one job at a time into an idle queue at a random phase of the {POLL:?} \
             poll; recents is a Worker that LISTENs (migration 10's NOTIFY), the baseline the \
             same Worker with wakeups(false)."
        ));
    } else {
        measured.skipped.push(
            "figure 6: the wake-up latency is PostgreSQL's (LISTEN/NOTIFY); elsewhere workers poll"
                .into(),
        );
    }
    let drained = drain.max(1);
    let mut shape = JobShape::seed(scale, USERS).with_waiting(drained);
    shape.jobs = shape.jobs.max(drained);
    load(conn, &shape).await?;
    let raw = raw_drain(conn, drained).await?;
    load(conn, &shape).await?;
    let runtime = runtime_drain(conn, drained).await?;
    let at = format!("{USERS} users, {drained} jobs, no-op handler, {CONCURRENCY} at once");
    measured.figures.push(Figure::throughput(
        format!("worker.drain.runtime.users_{USERS}"),
        format!("worker drain, {at}: raw dequeue+complete loop vs Worker"),
        "jobs/s",
        Some(raw),
        runtime,
    ));
    measured.figures.push(Figure::throughput(
        format!("worker.drain.raw.users_{USERS}"),
        format!("raw dequeue+complete loop drain, {at}"),
        "jobs/s",
        None,
        raw,
    ));
    measured.notes.push(format!(
        "figure 6: drain throughput is jobs per second until the last of {drained} waiting jobs \
         is completed: the raw loop is {CONCURRENCY} tasks each looping dequeue + complete; the \
         runtime is one Worker with concurrency {CONCURRENCY} and batch {CONCURRENCY} (claims by \
         repeated dequeue), heartbeats and a no-op handler spawned per job. Each drains its own \
         fresh copy of the same queue."
    ));
    Ok(measured)
}

async fn load(conn: &DatabaseConnection, shape: &JobShape) -> Result<()> {
    jobs::clear(conn).await?;
    jobs::insert_jobs(conn, shape).await?;
    jobs::analyze(conn).await?;
    Ok(())
}

/// Starts an idle worker polling every second, listening or not, and times
/// `samples` jobs from enqueue to handler start.
async fn wakeup_latencies(
    conn: &DatabaseConnection,
    listen: bool,
    samples: usize,
) -> Result<Vec<Duration>> {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let worker = Worker::new(
        conn.clone(),
        format!("bench-wakeup-{listen}"),
        move |_job: Job, _ctx: JobContext| {
            let started_tx = started_tx.clone();
            async move {
                let _ = started_tx.send(Instant::now());
                Ok::<_, Infallible>(())
            }
        },
    )
    .concurrency(1)
    .batch(1)
    .poll_interval(POLL, POLL)
    .resetter(false)
    .wakeups(listen);
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    // Its first look finds the queue empty.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let pause = rand::rng().random_range(0..POLL.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let enqueued = Instant::now();
        enqueue(conn, &NewJob::now(UserId(1), serde_json::json!({}))).await?;
        let Ok(Some(at)) = tokio::time::timeout(POLL * 5, started.recv()).await else {
            bail!(
                "figure 6: a job enqueued into an idle queue did not start within {:?}",
                POLL * 5
            );
        };
        times.push(at.saturating_duration_since(enqueued));
    }
    stop.cancel();
    running.await??;
    Ok(times)
}

/// One Worker with a no-op handler drains `n` jobs: jobs per second until
/// the n-th completion.
async fn runtime_drain(conn: &DatabaseConnection, n: u64) -> Result<f64> {
    let worker = Worker::new(
        conn.clone(),
        "bench-runtime",
        |_job: Job, _ctx: JobContext| async { Ok::<_, Infallible>(()) },
    )
    .concurrency(CONCURRENCY)
    .batch(CONCURRENCY)
    .poll_interval(Duration::from_millis(1), Duration::from_millis(50))
    .resetter(false);
    let metrics = worker.metrics();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    while metrics.snapshot().completed < n {
        if started.elapsed() > Duration::from_secs(600) || running.is_finished() {
            bail!(
                "figure 6: the runtime completed {} of {n} jobs",
                metrics.snapshot().completed
            );
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    let report = running.await??;
    if report.completed != n {
        bail!(
            "figure 6: the runtime completed {} jobs, not {n}",
            report.completed
        );
    }
    none_processing(conn).await?;
    Ok(rate)
}

/// `CONCURRENCY` tasks loop `dequeue` + `complete` until `n` jobs are done.
async fn raw_drain(conn: &DatabaseConnection, n: u64) -> Result<f64> {
    let tickets = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let conn = conn.clone();
        let tickets = tickets.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("bench-raw-{t}");
            while tickets.fetch_add(1, Ordering::Relaxed) < n {
                let job = loop {
                    match dequeue(&conn, &name).await {
                        Ok(Some(job)) => break job,
                        Ok(None) => bail!("{name}: the queue ran dry before {n} jobs"),
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => return Err(e.into()),
                    }
                };
                loop {
                    match complete(&conn, &job).await {
                        Ok(()) => break,
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    none_processing(conn).await?;
    Ok(rate)
}

async fn none_processing(conn: &DatabaseConnection) -> Result<()> {
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
        bail!("figure 6: {left} jobs left processing after a drain");
    }
    Ok(())
}

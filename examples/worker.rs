//! A worker process on the fair queue, with a producer beside it: the
//! producer enqueues jobs of many users (one of them heavy), a
//! `recents::queue::Worker` runs them. On the embedded SQLite database by
//! default, or on `DATABASE_URL` (PostgreSQL wakes the worker on each
//! enqueue; elsewhere it polls).
//!
//! ```text
//! cargo run --example worker -- --jobs 100          # exits after 100 jobs
//! DATABASE_URL=postgres://postgres@127.0.0.1/recents cargo run --example worker
//! ```
//!
//! Without `--jobs` it runs until SIGTERM or Ctrl-C, then shuts down
//! gracefully. `cargo test --example worker` runs it for 40 jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use recents::queue::{
    self, CancellationToken, Job, JobContext, NewJob, Worker, WorkerMetrics, WorkerReport,
};
use recents::{Error, UserId};
use sea_orm::DatabaseConnection;

/// What to run: `--jobs N` (default: until a signal), `--users N` (20),
/// `--concurrency N` (8).
#[derive(Clone, Debug)]
struct Args {
    jobs: Option<u64>,
    users: i64,
    concurrency: usize,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            jobs: None,
            users: 20,
            concurrency: 8,
        };
        while let Some(flag) = args.next() {
            let mut value = |name: &str| -> Result<u64, String> {
                let v = args.next().ok_or(format!("{name} needs a number"))?;
                v.parse()
                    .map_err(|_| format!("{name}: {v:?} is not a number"))
            };
            match flag.as_str() {
                "--jobs" => parsed.jobs = Some(value("--jobs")?),
                "--users" => parsed.users = value("--users")?.clamp(1, 1_000_000) as i64,
                "--concurrency" => parsed.concurrency = value("--concurrency")? as usize,
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; use --jobs N, --users N, --concurrency N"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// Enqueues `jobs` jobs (or forever), ten at a time: every tenth job is the
/// heavy user's (user 1), the rest spread over the others. Each job asks
/// for a few milliseconds of work.
async fn produce(db: DatabaseConnection, args: Args, stop: CancellationToken) -> Result<(), Error> {
    let mut made = 0u64;
    while args.jobs.is_none_or(|n| made < n) && !stop.is_cancelled() {
        let batch = args.jobs.map_or(10, |n| (n - made).min(10));
        let jobs: Vec<NewJob> = (0..batch)
            .map(|i| {
                let n = made + i;
                let user = if n.is_multiple_of(10) || args.users == 1 {
                    1
                } else {
                    2 + (n as i64 % (args.users - 1))
                };
                NewJob::now(UserId(user), serde_json::json!({ "n": n, "ms": n % 7 }))
            })
            .collect();
        queue::enqueue_many(&db, &jobs).await?;
        made += batch;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Runs the producer and a worker until `jobs` jobs are done (or a signal):
/// the worker's report and its counters.
async fn demo(db: DatabaseConnection, args: Args) -> Result<(WorkerReport, WorkerMetrics), Error> {
    let stop = CancellationToken::new();
    let done = Arc::new(AtomicU64::new(0));
    let (counted, target, finish) = (done.clone(), args.jobs, stop.clone());
    let worker = Worker::new(
        db.clone(),
        format!("demo-{}", std::process::id()),
        move |job: Job, ctx: JobContext| {
            let (counted, finish) = (counted.clone(), finish.clone());
            async move {
                let ms = job.payload["ms"].as_u64().unwrap_or(1);
                tokio::select! {
                    () = ctx.canceled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                }
                let n = counted.fetch_add(1, Ordering::Relaxed) + 1;
                if target.is_some_and(|t| n >= t) {
                    finish.cancel();
                }
                Ok::<_, Error>(())
            }
        },
    )
    .concurrency(args.concurrency)
    .batch(args.concurrency.min(8))
    .poll_interval(Duration::from_millis(20), Duration::from_secs(1))
    .shutdown_grace(Duration::from_secs(10));
    let metrics = worker.metrics();
    let producer = tokio::spawn(produce(db, args, stop.clone()));
    let shutdown = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = queue::shutdown_on_signal() => stop.cancel(),
            }
        }
    };
    let report = worker.run(shutdown).await?;
    producer.await.expect("the producer task")?;
    Ok((report, metrics.snapshot()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(std::env::args().skip(1))?;
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://worker-demo.db?mode=rwc".into());
    let db = recents::admin::connect_and_migrate(&url).await?;
    println!("worker demo on {}: {args:?}", recents::admin::redact(&url));
    let (report, m) = demo(db, args).await?;
    let mean = m
        .claim_latency
        .sum
        .checked_div(m.claim_latency.count.max(1) as u32)
        .unwrap_or_default();
    println!(
        "completed {}, failed {}, retried {}, canceled {}, abandoned {}; claimed {}, mean claim {mean:?}",
        report.completed,
        report.failed,
        report.retried,
        report.canceled,
        report.abandoned,
        m.claimed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_exits_by_itself_after_its_jobs() {
        let path =
            std::env::temp_dir().join(format!("recents-worker-demo-{}.db", std::process::id()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = recents::admin::connect_and_migrate(&url).await.unwrap();
        let args = Args::parse(
            ["--jobs", "40", "--users", "5"]
                .map(String::from)
                .into_iter(),
        )
        .unwrap();
        let (report, metrics) =
            tokio::time::timeout(Duration::from_secs(60), demo(db.clone(), args))
                .await
                .expect("the demo ends by itself")
                .unwrap();
        assert!(report.completed >= 40, "{report:?}");
        assert_eq!(metrics.completed, report.completed);
        let _ = db.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(Args::parse(["--jobs", "x"].map(String::from).into_iter()).is_err());
        assert!(Args::parse(["--frobnicate"].map(String::from).into_iter()).is_err());
    }
}

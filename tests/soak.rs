//! Soak on PostgreSQL: 32 writers saving runs, 8 queue workers, backfills
//! and the console's read queries, all at once, for `RECENTS_SOAK_SECS`
//! seconds (default 30). At the end verify reports zero drift and every job
//! was processed exactly once. Prints throughput and p50/p99 latencies.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recents::admin::{WorkspaceListing, list_workspaces, queue_stats, workspace_overview};
use recents::queue::{JobState, NewJob, complete, dequeue, enqueue_many, next_in_line};
use recents::{
    BackfillOptions, BackfillScope, RunSave, Scope, UserId, VerifyOptions, VerifyScope, VersionId,
    WorkspaceId, backfill, recent_workflows, verify, verify_last_dequeues,
};
use recents_testkit::TestDb;
use sea_orm::{ConnectOptions, Database, EntityTrait};
use support::{at, published_run, version, workspace};

const WRITERS: usize = 32;
const WORKERS: usize = 8;

#[derive(Default)]
struct Latencies(BTreeMap<&'static str, Vec<Duration>>);

impl Latencies {
    fn add(&mut self, what: &'static str, took: Duration) {
        self.0.entry(what).or_default().push(took);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn soak_writers_workers_backfill_and_reads_end_exact(db: &TestDb) {
    let secs: u64 = std::env::var("RECENTS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut options = ConnectOptions::new(db.url.clone());
    options
        .max_connections((WRITERS + WORKERS + 4) as u32)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    let conn = Database::connect(options).await.unwrap();

    // 8 workspaces of 4 workflows with 2 versions each.
    let mut shape: Vec<(WorkspaceId, Vec<VersionId>)> = Vec::new();
    for w in 0..8 {
        let ws = workspace(&conn, &format!("ws-{w}"), w % 2 == 0).await;
        let mut versions = Vec::new();
        for p in 0..4 {
            let pr = published_run(&conn, ws, &format!("flow-{p}")).await;
            versions.push(version(&conn, pr).await);
            versions.push(version(&conn, pr).await);
        }
        shape.push((ws, versions));
    }
    let shape = Arc::new(shape);
    let jobs: Vec<NewJob> = (0..1_000)
        .map(|i| NewJob::now(UserId(i % 40), serde_json::json!({ "i": i })))
        .collect();
    let mut enqueued = enqueue_many(&conn, &jobs).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let served = Arc::new(Mutex::new(Vec::<i64>::new()));
    let retries = Arc::new(Mutex::new(0u64));
    let mut tasks = Vec::new();

    for w in 0..WRITERS {
        let (conn, stop, latencies, retries, shape) = (
            conn.clone(),
            stop.clone(),
            latencies.clone(),
            retries.clone(),
            shape.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(w as u64);
            let mut mine: Vec<(i64, WorkspaceId)> = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (ws, versions) = &shape[rng.random_range(0..shape.len())];
                // New runs mostly; sometimes an update of an own run.
                let (id, ws) = match mine.len() {
                    len if len > 0 && rng.random_range(0..4) == 0 => {
                        let (id, ws) = mine[rng.random_range(0..len)];
                        (Some(recents::SavedRunId(id)), ws)
                    }
                    _ => (None, *ws),
                };
                let save = RunSave {
                    id,
                    workspace_id: ws,
                    uid: format!("user-{}", rng.random_range(0..6)),
                    parent_version_id: Some(versions[rng.random_range(0..versions.len())]),
                    run_status: "running".into(),
                    updated_at: at(n * 10 + w as i64, rng.random_range(0..1_000_000)),
                };
                let started = Instant::now();
                let result = support::save_committed(&conn, &save).await;
                match result {
                    Ok(saved) => {
                        latencies.lock().unwrap().add("save_run", started.elapsed());
                        if id.is_none() {
                            mine.push((saved, ws));
                        }
                    }
                    Err(e) if e.is_retryable() => *retries.lock().unwrap() += 1,
                    Err(e) => panic!("writer {w}: {e}"),
                }
            }
        }));
    }
    for w in 0..WORKERS {
        let (conn, stop, latencies, served, retries) = (
            conn.clone(),
            stop.clone(),
            latencies.clone(),
            served.clone(),
            retries.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let name = format!("soak-worker-{w}");
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match dequeue(&conn, &name).await {
                    Ok(Some(job)) => {
                        latencies.lock().unwrap().add("dequeue", started.elapsed());
                        served.lock().unwrap().push(job.id);
                        loop {
                            match complete(&conn, &job).await {
                                Ok(()) => break,
                                Err(e) if e.is_retryable() => *retries.lock().unwrap() += 1,
                                Err(e) => panic!("{name}: {e}"),
                            }
                        }
                    }
                    Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(e) if e.is_retryable() => *retries.lock().unwrap() += 1,
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        }));
    }
    // A producer keeps the queue fed; the console's reads; backfills.
    let producer = {
        let (conn, stop) = (conn.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<NewJob> = (0..5)
                    .map(|k| NewJob::now(UserId((i + k) % 55), serde_json::json!({})))
                    .collect();
                i += 5;
                ids.extend(enqueue_many(&conn, &batch).await.unwrap());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ids
        })
    };
    {
        let (conn, stop, latencies, shape) =
            (conn.clone(), stop.clone(), latencies.clone(), shape.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let ws = shape[k % shape.len()].0;
                let t = Instant::now();
                list_workspaces(&conn, &WorkspaceListing::default())
                    .await
                    .unwrap();
                latencies
                    .lock()
                    .unwrap()
                    .add("console: workspaces", t.elapsed());
                let t = Instant::now();
                workspace_overview(&conn, ws).await.unwrap();
                recent_workflows(&conn, ws, &Scope::Workspace, 4)
                    .await
                    .unwrap();
                recent_workflows(&conn, ws, &Scope::Member("user-1".into()), 4)
                    .await
                    .unwrap();
                latencies
                    .lock()
                    .unwrap()
                    .add("console: workspace", t.elapsed());
                let t = Instant::now();
                queue_stats(&conn).await.unwrap();
                next_in_line(&conn, 20).await.unwrap();
                latencies.lock().unwrap().add("console: queue", t.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    {
        let (conn, stop) = (conn.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let options = BackfillOptions {
                batch_rows: 500,
                ..BackfillOptions::default()
            };
            while !stop.load(Ordering::Relaxed) {
                backfill(&conn, &BackfillScope::RecentWorkflows, &options, |_| {})
                    .await
                    .unwrap();
                backfill(&conn, &BackfillScope::LastDequeues, &options, |_| {})
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }

    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    enqueued.extend(producer.await.unwrap());
    let elapsed = began.elapsed();

    // Drain what is left, then: every job served exactly once, all completed.
    while let Some(job) = dequeue(&conn, "drain").await.unwrap() {
        complete(&conn, &job).await.unwrap();
        served.lock().unwrap().push(job.id);
    }
    let mut served = served.lock().unwrap().clone();
    served.sort();
    let mut expected: Vec<i64> = enqueued.iter().map(|j| j.0).collect();
    expected.sort();
    assert_eq!(served, expected, "every job processed exactly once");
    let not_completed = recents::entity::prelude::ExecutionJob::find()
        .all(&conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.state != JobState::Completed)
        .count();
    assert_eq!(not_completed, 0);
    let report = verify(&conn, &VerifyScope::All, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert!(
        verify_last_dequeues(&conn, 10_000)
            .await
            .unwrap()
            .is_exact()
    );

    let latencies = latencies.lock().unwrap();
    eprintln!(
        "soak on {} for {:.0?}: {WRITERS} writers, {WORKERS} workers, backfills and console reads; \
         {} retries; verify exact, {} jobs exactly once",
        db.backend.name(),
        elapsed,
        retries.lock().unwrap(),
        served.len()
    );
    for (what, all) in &latencies.0 {
        let mut all = all.clone();
        all.sort();
        eprintln!(
            "  {what:<20} {:>8.0}/s  p50 {:>8.2?}  p99 {:>8.2?}",
            all.len() as f64 / elapsed.as_secs_f64(),
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        );
    }
}

mod pg {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn soak_writers_workers_backfill_and_reads_end_exact() {
        recents_testkit::run_on(
            recents_testkit::Backend::Postgres,
            super::soak_writers_workers_backfill_and_reads_end_exact,
        )
        .await;
    }
}

//! The worker runtime on every backend: shutdown loses no job, a killed
//! worker's job goes to another worker once, a canceled job's handler is
//! told, panics and timeouts fail the job and not the worker, PostgreSQL
//! wakes idle workers at once, and a fleet drains a skewed queue exactly
//! once in the fair order.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use recents::entity::prelude::*;
use recents::queue::{
    CancellationToken, Job, JobContext, JobHandler, JobState, NewJob, QueueOptions, StopReason,
    Worker, WorkerReport, cancel, complete, dequeue, enqueue, enqueue_many, heartbeat,
    reset_stalled, workers,
};
use recents::{Error, JobId, UserId};
use recents_testkit::{Backend, TestDb, backend_tests, run_on};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, EntityTrait};
use tokio::sync::mpsc;

/// Quick timings for tests: polls from 20 ms, heartbeats every 100 ms,
/// stalled after 2 s, the resetter every 200 ms.
fn quick<H: JobHandler>(worker: Worker<H>) -> Worker<H> {
    worker
        .poll_interval(Duration::from_millis(20), Duration::from_millis(200))
        .heartbeat_interval(Duration::from_millis(100))
        .stall_age(Duration::from_secs(2))
        .reset_every(Duration::from_millis(200), 3)
}

async fn job(conn: &DatabaseConnection, id: JobId) -> Job {
    ExecutionJob::find_by_id(id.0)
        .one(conn)
        .await
        .unwrap()
        .unwrap()
}

/// Waits up to `limit` for `check` to hold, polling every 20 ms.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `worker` in a task until the returned token is canceled.
fn spawn<H: JobHandler>(
    worker: Worker<H>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<WorkerReport, Error>>,
) {
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    (stop, running)
}

async fn stopped(
    stop: CancellationToken,
    running: tokio::task::JoinHandle<Result<WorkerReport, Error>>,
) -> WorkerReport {
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap()
}

async fn enqueue_users(
    conn: &DatabaseConnection,
    users: impl IntoIterator<Item = i64>,
) -> Vec<JobId> {
    let jobs: Vec<NewJob> = users
        .into_iter()
        .map(|u| NewJob::now(UserId(u), serde_json::json!({})))
        .collect();
    enqueue_many(conn, &jobs).await.unwrap()
}

async fn a_shutdown_with_jobs_in_flight_finishes_them_and_loses_none(db: &TestDb) {
    let ids = enqueue_users(&db.conn, 1..=8).await;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let worker = quick(Worker::new(
        db.conn.clone(),
        "worker-a",
        move |job: Job, _ctx: JobContext| {
            let started_tx = started_tx.clone();
            async move {
                let _ = started_tx.send(job.id);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, String>(())
            }
        },
    ))
    .concurrency(4)
    .shutdown_grace(Duration::from_secs(10));
    let metrics = worker.metrics();
    let (stop, running) = spawn(worker);
    for _ in 0..4 {
        tokio::time::timeout(Duration::from_secs(10), started.recv())
            .await
            .expect("four handlers start")
            .unwrap();
    }
    assert_eq!(
        metrics.snapshot().in_flight,
        4,
        "read while the worker runs"
    );
    let report = stopped(stop, running).await;
    assert_eq!(
        report,
        WorkerReport {
            completed: 4,
            ..WorkerReport::default()
        }
    );
    let mut states = BTreeMap::new();
    for id in ids {
        *states
            .entry(format!("{:?}", job(&db.conn, id).await.state))
            .or_insert(0) += 1;
    }
    // The four in flight finished; the other four were never claimed.
    assert_eq!(
        states,
        BTreeMap::from([("Completed".to_owned(), 4), ("Queued".to_owned(), 4)])
    );
    let m = metrics.snapshot();
    assert_eq!((m.claimed, m.completed, m.in_flight), (4, 4, 0));
    assert!(m.claim_latency.count >= 1);
}

async fn a_shutdown_past_its_grace_abandons_the_job_to_reset_stalled(db: &TestDb) {
    let [id] = enqueue_users(&db.conn, [1]).await[..] else {
        unreachable!()
    };
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let worker = quick(Worker::new(
        db.conn.clone(),
        "worker-a",
        move |_job: Job, _ctx: JobContext| {
            let started_tx = started_tx.clone();
            async move {
                let _ = started_tx.send(());
                // Ignores its cancellation: only the abort stops it.
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, String>(())
            }
        },
    ))
    .shutdown_grace(Duration::from_millis(200))
    .resetter(false);
    let (stop, running) = spawn(worker);
    tokio::time::timeout(Duration::from_secs(10), started.recv())
        .await
        .unwrap();
    let report = stopped(stop, running).await;
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert_eq!(report.completed, 0);
    assert_eq!(job(&db.conn, id).await.state, JobState::Processing);
    // Its heartbeats stopped with the worker: it stalls, and is handed on.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reset = reset_stalled(&db.conn, Duration::from_millis(500), 3)
        .await
        .unwrap();
    assert_eq!(reset.requeued, vec![id]);
}

/// The child of [`a_worker_killed_mid_job_has_its_job_run_once_by_another`]:
/// a worker whose handler says which job it started and then hangs, until
/// the parent kills the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_worker_killed_mid_job_has_its_job_run_once_by_another"]
async fn child_worker_hangs_in_its_handler() {
    let url = std::env::var("RECENTS_WORKER_CHILD_URL").expect("the parent's database");
    let mut options = ConnectOptions::new(url);
    options.max_connections(4).sqlx_logging(false);
    let conn = Database::connect(options).await.unwrap();
    let worker = quick(Worker::new(
        conn,
        "doomed",
        |job: Job, _ctx: JobContext| async move {
            println!("STARTED {}", job.id);
            std::future::pending::<()>().await;
            Ok::<_, String>(())
        },
    ))
    .resetter(false);
    worker.run(std::future::pending()).await.unwrap();
}

/// SIGKILL, for real: the worker runs in a child process, which is killed
/// while its handler runs; nothing of it gets to clean up.
async fn a_worker_killed_mid_job_has_its_job_run_once_by_another(db: &TestDb) {
    let [id] = enqueue_users(&db.conn, [1]).await[..] else {
        unreachable!()
    };
    let (mut child, line) = support::child_reporting(
        "child_worker_hangs_in_its_handler",
        &[("RECENTS_WORKER_CHILD_URL", db.url.clone())],
        "STARTED",
    )
    .await;
    assert!(line.ends_with(&format!("STARTED {}", id.0)), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let held = job(&db.conn, id).await;
    assert_eq!(held.state, JobState::Processing);
    assert_eq!(held.worker_hostname.as_deref(), Some("doomed"));

    let runs = Arc::new(Mutex::new(HashMap::<i64, u32>::new()));
    let counted = runs.clone();
    let worker = quick(Worker::new(
        db.conn.clone(),
        "heir",
        move |job: Job, _ctx: JobContext| {
            let counted = counted.clone();
            async move {
                *counted.lock().unwrap().entry(job.id).or_default() += 1;
                Ok::<_, String>(())
            }
        },
    ))
    .stall_age(Duration::from_millis(1500));
    let metrics = worker.metrics();
    let (stop, running) = spawn(worker);
    eventually(
        "the heir completes the job",
        Duration::from_secs(15),
        || async { job(&db.conn, id).await.state == JobState::Completed },
    )
    .await;
    // A few more heartbeats and resets: nothing runs it again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = stopped(stop, running).await;
    assert_eq!(*runs.lock().unwrap(), HashMap::from([(id.0, 1)]));
    assert_eq!(report.completed, 1);
    assert_eq!(
        metrics.snapshot().reset,
        1,
        "the heir's resetter handed it on"
    );
    let done = job(&db.conn, id).await;
    assert_eq!(done.num_resets, 1);
    assert_eq!(done.worker_hostname.as_deref(), Some("heir"));
}

async fn a_canceled_jobs_handler_sees_the_cancellation(db: &TestDb) {
    let [id] = enqueue_users(&db.conn, [1]).await[..] else {
        unreachable!()
    };
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (saw_tx, mut saw) = mpsc::unbounded_channel();
    let worker = quick(Worker::new(
        db.conn.clone(),
        "worker-a",
        move |_job: Job, ctx: JobContext| {
            let (started_tx, saw_tx) = (started_tx.clone(), saw_tx.clone());
            async move {
                let _ = started_tx.send(());
                tokio::select! {
                    () = ctx.canceled() => {
                        let _ = saw_tx.send((ctx.is_canceled(), ctx.stop_reason()));
                    }
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
                Ok::<_, String>(())
            }
        },
    ))
    .stall_age(Duration::from_millis(1500));
    let (stop, running) = spawn(worker);
    tokio::time::timeout(Duration::from_secs(10), started.recv())
        .await
        .unwrap();
    assert_eq!(cancel(&db.conn, id).await.unwrap(), JobState::Processing);
    let seen = tokio::time::timeout(Duration::from_secs(5), saw.recv())
        .await
        .expect("the handler is told within a few heartbeats")
        .unwrap();
    assert_eq!(seen, (true, Some(StopReason::Canceled)));
    // Its Ok is not recorded: the job is not completed; no longer
    // heartbeaten, it stalls and the resetter makes it canceled.
    eventually("the job ends canceled", Duration::from_secs(10), || async {
        job(&db.conn, id).await.state == JobState::Canceled
    })
    .await;
    let report = stopped(stop, running).await;
    assert_eq!(
        report,
        WorkerReport {
            canceled: 1,
            ..WorkerReport::default()
        }
    );
}

async fn a_panicking_handler_fails_its_job_and_not_the_worker(db: &TestDb) {
    let boom = enqueue(
        &db.conn,
        &NewJob::now(UserId(1), serde_json::json!({"panic": true})),
    )
    .await
    .unwrap();
    let fine = enqueue(&db.conn, &NewJob::now(UserId(2), serde_json::json!({})))
        .await
        .unwrap();
    let worker = quick(Worker::new(
        db.conn.clone(),
        "worker-a",
        |job: Job, _ctx: JobContext| async move {
            if job.payload["panic"] == true {
                panic!("boom in job {}", job.id);
            }
            Ok::<_, String>(())
        },
    ))
    .concurrency(1)
    .queue_options(QueueOptions {
        max_failures: 1,
        backoff: Duration::from_secs(1),
    });
    let metrics = worker.metrics();
    let (stop, running) = spawn(worker);
    eventually("both jobs end", Duration::from_secs(10), || async {
        job(&db.conn, fine).await.state == JobState::Completed
            && job(&db.conn, boom).await.state == JobState::Failed
    })
    .await;
    let report = stopped(stop, running).await;
    assert_eq!((report.completed, report.failed), (1, 1), "{report:?}");
    let failed = job(&db.conn, boom).await;
    assert_eq!(
        failed.failure_message.as_deref(),
        Some(format!("handler panicked: boom in job {}", boom.0).as_str())
    );
    assert_eq!(metrics.snapshot().panicked, 1);
}

async fn a_failing_handler_is_retried_after_the_backoff_then_completes(db: &TestDb) {
    let [id] = enqueue_users(&db.conn, [1]).await[..] else {
        unreachable!()
    };
    let attempts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let counted = attempts.clone();
    let worker = quick(Worker::new(
        db.conn.clone(),
        "worker-a",
        move |job: Job, _ctx: JobContext| {
            let counted = counted.clone();
            async move {
                let first = {
                    let mut attempts = counted.lock().unwrap();
                    attempts.push(Instant::now());
                    attempts.len() == 1
                };
                if first {
                    return Err(format!("workspace of job {} is \0 locked", job.id));
                }
                Ok(())
            }
        },
    ))
    .queue_options(QueueOptions {
        max_failures: 3,
        backoff: Duration::from_millis(300),
    });
    let (stop, running) = spawn(worker);
    eventually("the retry completes", Duration::from_secs(10), || async {
        job(&db.conn, id).await.state == JobState::Completed
    })
    .await;
    let report = stopped(stop, running).await;
    assert_eq!((report.retried, report.completed), (1, 1), "{report:?}");
    let done = job(&db.conn, id).await;
    assert_eq!(done.num_failures, 1);
    // The message as the handler gave it, its NUL made printable.
    assert_eq!(
        done.failure_message.as_deref(),
        Some(format!("workspace of job {} is \u{fffd} locked", id.0).as_str())
    );
    let attempts = attempts.lock().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts[1] - attempts[0] >= Duration::from_millis(250),
        "the backoff was kept"
    );
}

/// Sets its flag when dropped: the handler's task was aborted.
struct DropFlag(Arc<Mutex<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = true;
    }
}

async fn a_handler_past_its_timeout_is_stopped_and_failed(db: &TestDb) {
    let [id] = enqueue_users(&db.conn, [1]).await[..] else {
        unreachable!()
    };
    let dropped = Arc::new(Mutex::new(false));
    let flag = dropped.clone();
    let worker = quick(Worker::new(
        db.conn.clone(),
        "worker-a",
        move |_job: Job, _ctx: JobContext| {
            let guard = DropFlag(flag.clone());
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, String>(())
            }
        },
    ))
    .handler_timeout(Duration::from_millis(300))
    .queue_options(QueueOptions {
        max_failures: 1,
        backoff: Duration::from_secs(1),
    });
    let metrics = worker.metrics();
    let started = Instant::now();
    let (stop, running) = spawn(worker);
    eventually("the job fails", Duration::from_secs(10), || async {
        job(&db.conn, id).await.state == JobState::Failed
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let report = stopped(stop, running).await;
    assert_eq!(report.failed, 1);
    let failed = job(&db.conn, id).await;
    assert_eq!(
        failed.failure_message.as_deref(),
        Some("handler timed out after 300ms")
    );
    assert!(*dropped.lock().unwrap(), "the handler's task was aborted");
    assert_eq!(metrics.snapshot().timed_out, 1);
}

async fn bad_options_are_refused_before_anything_runs(db: &TestDb) {
    let handler = |_job: Job, _ctx: JobContext| async move { Ok::<_, String>(()) };
    let refused = [
        Worker::new(db.conn.clone(), "", handler)
            .run(std::future::ready(()))
            .await,
        Worker::new(db.conn.clone(), "w", handler)
            .concurrency(0)
            .run(std::future::ready(()))
            .await,
        Worker::new(db.conn.clone(), "w", handler)
            .poll_interval(Duration::from_secs(2), Duration::from_secs(1))
            .run(std::future::ready(()))
            .await,
        Worker::new(db.conn.clone(), "w", handler)
            .heartbeat_interval(Duration::from_secs(90))
            .run(std::future::ready(()))
            .await,
    ];
    for result in refused {
        assert!(
            matches!(result, Err(Error::InvalidArgument { .. })),
            "{result:?}"
        );
    }
}

async fn workers_lists_who_holds_jobs_and_their_last_heartbeat(db: &TestDb) {
    enqueue_users(&db.conn, [1, 2, 3]).await;
    let a1 = dequeue(&db.conn, "a").await.unwrap().unwrap();
    let a2 = dequeue(&db.conn, "a").await.unwrap().unwrap();
    let b = dequeue(&db.conn, "b").await.unwrap().unwrap();
    heartbeat(&db.conn, "a", &[JobId(a1.id), JobId(a2.id)])
        .await
        .unwrap();
    let seen = workers(&db.conn).await.unwrap();
    let summary: Vec<(&str, u64)> = seen
        .iter()
        .map(|w| (w.name.as_str(), w.in_flight))
        .collect();
    assert_eq!(summary, [("a", 2), ("b", 1)]);
    assert!(seen[0].last_heartbeat >= a2.last_heartbeat_at);
    assert_eq!(seen[1].last_heartbeat, b.last_heartbeat_at);
    complete(&db.conn, &b).await.unwrap();
    let seen = workers(&db.conn).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].name, "a");
}

/// How long after its enqueue into an idle queue a job's handler starts,
/// with a 30 s poll interval; `None` if not within `limit`.
async fn start_delay(db: &TestDb, wakeups: bool, limit: Duration) -> Option<Duration> {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let worker = Worker::new(
        db.conn.clone(),
        "idle",
        move |_job: Job, _ctx: JobContext| {
            let started_tx = started_tx.clone();
            async move {
                let _ = started_tx.send(Instant::now());
                Ok::<_, String>(())
            }
        },
    )
    .poll_interval(Duration::from_secs(30), Duration::from_secs(30))
    .wakeups(wakeups);
    let (stop, running) = spawn(worker);
    // Its first look finds the queue empty; the next poll is 30 s away.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let enqueued = Instant::now();
    enqueue_users(&db.conn, [1]).await;
    let delay = tokio::time::timeout(limit, started.recv())
        .await
        .ok()
        .flatten()
        .map(|at| at - enqueued);
    stopped(stop, running).await;
    delay
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_an_idle_worker_within_milliseconds_of_an_enqueue() {
    run_on(Backend::Postgres, async |db: &TestDb| {
        let delay = start_delay(db, true, Duration::from_secs(2))
            .await
            .expect("the job starts within 2 s, not at the next 30 s poll");
        eprintln!("wake-up: handler started {delay:?} after the enqueue");
    })
    .await;
}

/// The control of the test above: without LISTEN the same job waits for
/// the poll, so that test does measure the wake-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_wakeups_an_idle_worker_waits_for_its_poll() {
    run_on(Backend::Postgres, async |db: &TestDb| {
        assert_eq!(
            start_delay(db, false, Duration::from_millis(1500)).await,
            None
        );
    })
    .await;
}

const FLEET_WORKERS: usize = 4;
const HANDLERS: usize = 4;

/// A skewed queue: one user with 60 jobs, 15 with 6, 4 with 1.
fn skewed() -> Vec<NewJob> {
    let mut jobs = Vec::new();
    for round in 0..60 {
        for (user, count) in [
            (1, 60),
            (2, 6),
            (3, 6),
            (4, 6),
            (5, 6),
            (6, 6),
            (7, 6),
            (8, 6),
        ]
        .into_iter()
        .chain((9..=16).map(|u| (u, 6)))
        .chain((17..=20).map(|u| (u, 1)))
        {
            if round < count {
                jobs.push(NewJob::now(
                    UserId(user),
                    serde_json::json!({ "round": round }),
                ));
            }
        }
    }
    jobs
}

async fn a_fleet_drains_a_skewed_queue_exactly_once_and_fairly(db: &TestDb) {
    let ids = enqueue_many(&db.conn, &skewed()).await.unwrap();
    let total = ids.len();
    let pool = db.connect_again(12).await;
    let runs = Arc::new(Mutex::new(HashMap::<i64, u32>::new()));
    let running_now = Arc::new(Mutex::new(HashSet::<i64>::new()));
    let overlaps = Arc::new(Mutex::new(Vec::<i64>::new()));
    let mut fleet = Vec::new();
    for w in 0..FLEET_WORKERS {
        let (runs, running_now, overlaps) = (runs.clone(), running_now.clone(), overlaps.clone());
        let worker = quick(Worker::new(
            pool.clone(),
            format!("fleet-{w}"),
            move |job: Job, _ctx: JobContext| {
                let (runs, running_now, overlaps) =
                    (runs.clone(), running_now.clone(), overlaps.clone());
                async move {
                    if !running_now.lock().unwrap().insert(job.id) {
                        overlaps.lock().unwrap().push(job.id);
                    }
                    *runs.lock().unwrap().entry(job.id).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis((job.id % 4) as u64)).await;
                    running_now.lock().unwrap().remove(&job.id);
                    Ok::<_, String>(())
                }
            },
        ))
        .concurrency(HANDLERS)
        .batch(HANDLERS)
        // Not a test of resets: on a loaded machine SQLite's write lock can
        // starve one worker's heartbeats for seconds (its busy handler is not
        // fair), and a 2 s stall age would then hand its live jobs on.
        .stall_age(Duration::from_secs(20));
        fleet.push(spawn(worker));
    }
    eventually(
        "the fleet drains the queue",
        Duration::from_secs(60),
        || async {
            runs.lock().unwrap().len() == total
                && ExecutionJob::find()
                    .all(&pool)
                    .await
                    .unwrap()
                    .iter()
                    .all(|j| j.state == JobState::Completed)
        },
    )
    .await;
    let mut reports = Vec::new();
    for (stop, running) in fleet {
        reports.push(stopped(stop, running).await);
    }
    let completed: u64 = reports.iter().map(|r| r.completed).sum();
    let twice: Vec<(i64, u32)> = runs
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(j, n)| (*j, *n))
        .collect();
    assert_eq!(
        completed as usize, total,
        "{reports:?}, run twice: {twice:?}"
    );
    assert!(
        reports
            .iter()
            .all(|r| r.failed + r.retried + r.canceled + r.abandoned == 0),
        "{reports:?}, run twice: {twice:?}"
    );
    assert!(overlaps.lock().unwrap().is_empty(), "run twice at once");
    {
        let runs = runs.lock().unwrap();
        assert_eq!(runs.len(), total);
        assert!(runs.values().all(|&n| n == 1), "a job ran twice");
    }

    // The claims, in the order they were made: start times strictly increase
    // with each claim. A user's k-th job may go out only once every user
    // still waiting (with jobs not yet handed out) has had k - 1.
    let mut jobs = ExecutionJob::find().all(&pool).await.unwrap();
    jobs.sort_by_key(|j| (j.started_at, j.id));
    let totals: BTreeMap<i64, usize> = jobs.iter().fold(BTreeMap::new(), |mut t, j| {
        *t.entry(j.user_id).or_default() += 1;
        t
    });
    let mut served: BTreeMap<i64, usize> = BTreeMap::new();
    for (n, j) in jobs.iter().enumerate() {
        let mine = served.get(&j.user_id).copied().unwrap_or(0);
        for (user, total) in &totals {
            let theirs = served.get(user).copied().unwrap_or(0);
            assert!(
                theirs == *total || theirs >= mine,
                "claim {n}: user {} got its job {} while user {user}, waiting, had {theirs}",
                j.user_id,
                mine + 1
            );
        }
        *served.entry(j.user_id).or_default() += 1;
    }
    let _ = pool.close().await;
}

backend_tests!(
    a_shutdown_with_jobs_in_flight_finishes_them_and_loses_none,
    a_shutdown_past_its_grace_abandons_the_job_to_reset_stalled,
    a_worker_killed_mid_job_has_its_job_run_once_by_another,
    a_canceled_jobs_handler_sees_the_cancellation,
    a_panicking_handler_fails_its_job_and_not_the_worker,
    a_failing_handler_is_retried_after_the_backoff_then_completes,
    a_handler_past_its_timeout_is_stopped_and_failed,
    bad_options_are_refused_before_anything_runs,
    workers_lists_who_holds_jobs_and_their_last_heartbeat,
    a_fleet_drains_a_skewed_queue_exactly_once_and_fairly,
);

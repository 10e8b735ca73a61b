//! Eight workers drain 5,000 jobs of 50 users at once, and jobs of 2,000
//! users (4,000 jobs; the 20,000 with `RECENTS_QUEUE_SOAK=1`), on
//! PostgreSQL and MariaDB, whose workers claim with `FOR UPDATE SKIP
//! LOCKED`: every job is
//! processed exactly once, and whenever a dequeue returns, no user is more
//! than one round ahead of another user, counting the other user's dequeues
//! that were under way at that moment (its next job was locked by a worker
//! claiming it, so it was not waiting).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use recents::UserId;
use recents::entity::prelude::*;
use recents::queue::{JobState, NewJob, complete, dequeue, enqueue_many};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectOptions, Database, EntityTrait};

const WORKERS: usize = 8;

#[derive(Debug)]
struct Served {
    job: i64,
    user: i64,
    /// Event numbers: when the dequeue call began, and when it returned.
    called: u64,
    returned: u64,
}

static EVENTS: AtomicU64 = AtomicU64::new(0);

async fn eight_workers_drain_the_queue_fairly_and_exactly_once(db: &TestDb) {
    drain_fairly(db, 50, 100).await;
}

/// 2,000 users, each with 2 jobs (10 with `RECENTS_QUEUE_SOAK=1`: 20,000 jobs).
async fn eight_workers_drain_two_thousand_users_fairly_and_exactly_once(db: &TestDb) {
    let per_user = if std::env::var_os("RECENTS_QUEUE_SOAK").is_some() {
        10
    } else {
        2
    };
    drain_fairly(db, 2_000, per_user).await;
}

async fn drain_fairly(db: &TestDb, users: i64, jobs_per_user: usize) {
    let mut options = ConnectOptions::new(db.url.clone());
    options
        .max_connections(WORKERS as u32 + 2)
        .sqlx_logging(false);
    let pool = Database::connect(options).await.unwrap();
    // Users' jobs interleaved in time, as arrivals would be.
    let new: Vec<NewJob> = (0..jobs_per_user)
        .flat_map(|i| {
            (0..users).map(move |u| NewJob::now(UserId(u), serde_json::json!({ "i": i })))
        })
        .collect();
    let ids = enqueue_many(&pool, &new).await.unwrap();
    assert_eq!(ids.len(), users as usize * jobs_per_user);

    let served = Arc::new(Mutex::new(Vec::<Served>::new()));
    let retries = Arc::new(Mutex::new(0u64));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let pool = pool.clone();
        let served = served.clone();
        let retries = retries.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("worker-{w}");
            let mut idle = 0;
            loop {
                let called = EVENTS.fetch_add(1, Ordering::SeqCst);
                let job = match dequeue(&pool, &name).await {
                    Ok(Some(job)) => job,
                    // Nothing claimable right now: the others may be
                    // claiming the last jobs; stop after a few empty looks.
                    Ok(None) => {
                        idle += 1;
                        if idle > 3 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(e) if e.is_retryable() => {
                        *retries.lock().unwrap() += 1;
                        continue;
                    }
                    Err(e) => panic!("{name}: {e}"),
                };
                let returned = EVENTS.fetch_add(1, Ordering::SeqCst);
                idle = 0;
                served.lock().unwrap().push(Served {
                    job: job.id,
                    user: job.user_id,
                    called,
                    returned,
                });
                loop {
                    match complete(&pool, &job).await {
                        Ok(()) => break,
                        Err(e) if e.is_retryable() => *retries.lock().unwrap() += 1,
                        Err(e) => panic!("{name}: complete {}: {e}", job.id),
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let mut served = Arc::try_unwrap(served).unwrap().into_inner().unwrap();

    // Exactly once: every job served once, and completed.
    let mut times: BTreeMap<i64, usize> = BTreeMap::new();
    for s in &served {
        *times.entry(s.job).or_default() += 1;
    }
    assert_eq!(times.len(), ids.len(), "some jobs were never served");
    assert!(times.values().all(|&n| n == 1), "a job was served twice");
    let rows = ExecutionJob::find().all(&pool).await.unwrap();
    assert!(rows.iter().all(|j| j.state == JobState::Completed));

    // Fairness: at each return, the user served has k jobs; every other
    // user must have had k - 1 dequeues returned or under way (all users
    // have jobs left until their last).
    served.sort_by_key(|s| s.returned);
    let mut calls: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for s in &served {
        calls.entry(s.user).or_default().push(s.called);
    }
    for c in calls.values_mut() {
        c.sort();
    }
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut worst = 0;
    for s in &served {
        let k = {
            let c = counts.entry(s.user).or_default();
            *c += 1;
            *c
        };
        for (user, called) in &calls {
            let begun = called.partition_point(|&c| c < s.returned);
            let returned = counts.get(user).copied().unwrap_or(0);
            worst = worst.max(k.saturating_sub(returned));
            assert!(
                begun + 1 >= k,
                "when user {} got its job {k}, user {user} had {begun} dequeues begun",
                s.user
            );
        }
    }
    eprintln!(
        "queue concurrency on {}: {} jobs, {WORKERS} workers, largest gap in returned dequeues {worst} (in-flight ones excepted: at most 1), {} retries",
        db.backend.name(),
        served.len(),
        retries.lock().unwrap()
    );
}

/// Four workers drain jobs of which most come due while they work: every
/// job is served once, none before it is due.
async fn jobs_coming_due_while_workers_drain_are_each_served_once(db: &TestDb) {
    let mut options = ConnectOptions::new(db.url.clone());
    options.max_connections(6).sqlx_logging(false);
    let pool = Database::connect(options).await.unwrap();
    let start = Utc::now();
    let new: Vec<NewJob> = (0..200)
        .map(|i| NewJob {
            process_after: (i % 4 != 0)
                .then(|| start + chrono::Duration::milliseconds(10 * (i % 100))),
            ..NewJob::now(UserId(i % 10), serde_json::json!({ "i": i }))
        })
        .collect();
    let ids = enqueue_many(&pool, &new).await.unwrap();
    let due: BTreeMap<i64, Option<chrono::DateTime<Utc>>> = ids
        .iter()
        .zip(&new)
        .map(|(id, job)| (id.0, job.process_after))
        .collect();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let pool = pool.clone();
        let served = served.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let mut idle = 0;
            while idle < 20 {
                match dequeue(&pool, &name).await {
                    Ok(Some(job)) => {
                        idle = 0;
                        served.lock().unwrap().push((job.id, job.started_at));
                        complete(&pool, &job).await.unwrap();
                    }
                    Ok(None) => {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) if e.is_retryable() => {}
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let served = served.lock().unwrap().clone();
    let mut once: BTreeMap<i64, usize> = BTreeMap::new();
    for (id, started) in &served {
        *once.entry(*id).or_default() += 1;
        if let (Some(after), Some(started)) = (due[id], started) {
            assert!(
                *started >= after,
                "job {id} started {started} before it was due {after}"
            );
        }
    }
    assert_eq!(once.len(), ids.len(), "some jobs were never served");
    assert!(once.values().all(|&n| n == 1), "a job was served twice");
    let heads = recents::queue::verify_queue_heads(&pool, 1000)
        .await
        .unwrap();
    assert!(heads.is_exact(), "queue heads drifted: {heads:#?}");
}

backend_tests!(
    servers: eight_workers_drain_the_queue_fairly_and_exactly_once,
    eight_workers_drain_two_thousand_users_fairly_and_exactly_once,
    jobs_coming_due_while_workers_drain_are_each_served_once
);

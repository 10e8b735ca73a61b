//! A queue worker process killed with SIGKILL while processing a job: while
//! it heartbeats its job is neither reset nor handed to anyone else; once it
//! is dead, `reset_stalled` puts the job back at its place; killed again past
//! `max_resets`, the job fails. Every other job is processed exactly once.
//! And on PostgreSQL, a claim canceled while it holds the claims' turn (a
//! session advisory lock inside the claim function) leaves the turn free.

mod support;

use std::io::Write;
use std::process::Child;
use std::time::Duration;

use recents::entity::prelude::*;
use recents::queue::{JobState, NewJob, complete, dequeue, enqueue_many, heartbeat, reset_stalled};
use recents::{JobId, UserId};
use recents_testkit::{Backend, TestDb, backend_tests, run_on};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DbBackend, EntityTrait, Statement, TransactionTrait,
};

const CHILD_URL: &str = "RECENTS_QUEUE_FAULT_CHILD_URL";

/// The killed worker: not a test of its own, a process the parent test
/// starts with `RECENTS_QUEUE_FAULT_CHILD_URL` set. It dequeues one job and
/// heartbeats it until it is killed.
#[tokio::test]
#[ignore = "the child process of a_worker_killed_while_processing_is_reset_then_failed"]
async fn queue_fault_child_worker() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).sqlx_logging(false);
    let conn = Database::connect(options).await.unwrap();
    let job = dequeue(&conn, "doomed-worker").await.unwrap().unwrap();
    println!("\ndequeued {}", job.id);
    std::io::stdout().flush().unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        heartbeat(&conn, "doomed-worker", &[JobId(job.id)])
            .await
            .unwrap();
    }
}

/// Starts the worker process; returns it and the job it dequeued.
async fn start_worker(db: &TestDb) -> (Child, i64) {
    let (child, line) = support::child_reporting(
        "queue_fault_child_worker",
        &[(CHILD_URL, db.url.clone())],
        "dequeued ",
    )
    .await;
    let id = line.rsplit(' ').next().unwrap().trim().parse().unwrap();
    (child, id)
}

async fn a_worker_killed_while_processing_is_reset_then_failed(db: &TestDb) {
    let c = &db.conn;
    let new: Vec<NewJob> = [1, 1, 1, 2, 2]
        .into_iter()
        .map(|u| NewJob::now(UserId(u), serde_json::json!({})))
        .collect();
    let ids = enqueue_many(c, &new).await.unwrap();

    let (mut worker, held) = start_worker(db).await;
    assert_eq!(held, ids[0].0, "the oldest job of the first user");
    // Alive and heartbeating: not stalled, and nobody else gets its job.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = reset_stalled(c, Duration::from_millis(300), 1)
        .await
        .unwrap();
    assert!(report.requeued.is_empty() && report.failed.is_empty());
    let other = dequeue(c, "parent").await.unwrap().unwrap();
    assert_ne!(other.id, held);
    assert_eq!(other.user_id, 2, "user 1's head is taken: user 2 next");
    complete(c, &other).await.unwrap();

    worker.kill().unwrap(); // SIGKILL while processing
    worker.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = reset_stalled(c, Duration::from_millis(300), 1)
        .await
        .unwrap();
    assert_eq!(report.requeued, vec![JobId(held)]);
    let job = ExecutionJob::find_by_id(held)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.state, job.num_resets), (JobState::Queued, 1));

    // User 1 was served before user 2: its requeued head goes first again.
    let (mut worker, again) = start_worker(db).await;
    assert_eq!(again, held);
    worker.kill().unwrap();
    worker.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = reset_stalled(c, Duration::from_millis(300), 1)
        .await
        .unwrap();
    assert_eq!(report.failed, vec![JobId(held)]);

    // Nothing lost: every other job is handed out once.
    let mut drained = vec![other.id];
    while let Some(job) = dequeue(c, "parent").await.unwrap() {
        complete(c, &job).await.unwrap();
        drained.push(job.id);
    }
    drained.sort();
    let mut others: Vec<i64> = ids.iter().map(|j| j.0).filter(|&j| j != held).collect();
    others.sort();
    assert_eq!(drained, others);
    let jobs = ExecutionJob::find().all(c).await.unwrap();
    for job in jobs {
        let expected = if job.id == held {
            JobState::Failed
        } else {
            JobState::Completed
        };
        assert_eq!(job.state, expected, "job {}", job.id);
    }
}

backend_tests!(a_worker_killed_while_processing_is_reset_then_failed);

/// The advisory locks the session of `conn` (one connection) holds.
async fn advisory_locks_held(conn: &sea_orm::DatabaseConnection) -> i64 {
    conn.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

/// The turn of PostgreSQL's claims (a session advisory lock inside the
/// claim function) is never left held: not by a claim canceled while it
/// waits for the turn, nor by one canceled inside it (its claim statement's
/// trigger waits on a last-dequeue row another transaction holds), nor by
/// one that fails inside it (a trigger of the test's raises during the
/// promotion), nor by one rolled back in a caller's transaction; and the
/// claims after each go ahead and hand out the job the failed one did not.
async fn a_claim_never_leaves_its_turn_held(db: &TestDb) {
    let c = &db.conn;
    let ids = enqueue_many(
        c,
        &[1, 1, 1].map(|u| NewJob::now(UserId(u), serde_json::json!({}))),
    )
    .await
    .unwrap();
    // A first dequeue, so that user 1 has a last-dequeue row to hold.
    let first = dequeue(c, "w0").await.unwrap().unwrap();
    complete(c, &first).await.unwrap();
    let worker = db.connect_again(1).await;
    worker
        .execute_unprepared("SET statement_timeout = '500ms'")
        .await
        .unwrap();

    // Canceled while it waits for the turn another session holds.
    let holder = db.connect_again(1).await;
    holder
        .execute_unprepared(
            "SELECT pg_advisory_lock('execution_dequeue_lock'::regclass::oid::bigint)",
        )
        .await
        .unwrap();
    let waited = dequeue(&worker, "w1").await;
    assert!(
        waited.is_err(),
        "the claim waits for the turn past its timeout: {waited:?}"
    );
    assert_eq!(
        advisory_locks_held(&worker).await,
        0,
        "nothing granted, nothing held"
    );
    holder
        .execute_unprepared(
            "SELECT pg_advisory_unlock('execution_dequeue_lock'::regclass::oid::bigint)",
        )
        .await
        .unwrap();

    // Canceled inside its turn, while its claim statement waits on a row.
    let blocker = c.begin().await.unwrap();
    blocker
        .execute_unprepared("SELECT * FROM execution_last_dequeues WHERE user_id = 1 FOR UPDATE")
        .await
        .unwrap();
    let canceled = dequeue(&worker, "w1").await;
    assert!(
        canceled.is_err(),
        "the claim waits past its timeout: {canceled:?}"
    );
    assert_eq!(
        advisory_locks_held(&worker).await,
        0,
        "the turn is released"
    );
    // Another connection's claim gets its turn while the row is still held
    // (it waits on the same row, then goes ahead once it is free).
    let other = tokio::spawn({
        let url = db.url.clone();
        async move {
            let conn = Database::connect(url).await.unwrap();
            dequeue(&conn, "w2").await.unwrap().unwrap().id
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    blocker.rollback().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(30), other)
        .await
        .expect("the other claim is not left waiting for the turn")
        .unwrap();
    assert_eq!(second, ids[1].0, "the canceled claim claimed nothing");
    // Failing inside the turn: a job that came due is promoted there, and
    // the test's trigger makes the promotion fail.
    let later = chrono::Utc::now() + chrono::Duration::milliseconds(200);
    let scheduled = recents::queue::enqueue(
        c,
        &NewJob {
            process_after: Some(later),
            ..NewJob::now(UserId(2), serde_json::json!({}))
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.execute_unprepared(
        "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
    )
    .await
    .unwrap();
    c.execute_unprepared(
        "CREATE TRIGGER test_refuse BEFORE UPDATE ON execution_queue_heads \
         FOR EACH ROW WHEN (OLD.user_id = 2) EXECUTE FUNCTION test_refuse()",
    )
    .await
    .unwrap();
    let failed = dequeue(&worker, "w1").await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("refused by the test")),
        "{failed:?}"
    );
    assert_eq!(
        advisory_locks_held(&worker).await,
        0,
        "released before the error"
    );
    c.execute_unprepared("DROP TRIGGER test_refuse ON execution_queue_heads")
        .await
        .unwrap();

    // User 2 was never served, so it comes first.
    let third = dequeue(c, "w2").await.unwrap().unwrap();
    assert_eq!(third.id, scheduled.0, "the failed claim claimed nothing");
    // Rolled back inside a caller's transaction: the job goes back, the
    // turn is free.
    let txn = worker.begin().await.unwrap();
    let fourth = dequeue(&txn, "w3").await.unwrap().unwrap();
    assert_eq!(fourth.id, ids[2].0);
    txn.rollback().await.unwrap();
    assert_eq!(advisory_locks_held(&worker).await, 0);
    let again = dequeue(&worker, "w4").await.unwrap().unwrap();
    assert_eq!(
        again.id, ids[2].0,
        "the rolled-back claim's job is claimed again"
    );
    assert_eq!(advisory_locks_held(&worker).await, 0);
    let heads = recents::verify_queue_heads(c, 100).await.unwrap();
    assert!(heads.is_exact(), "{heads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_claim_never_leaves_its_turn_held() {
    run_on(Backend::Postgres, a_claim_never_leaves_its_turn_held).await;
}

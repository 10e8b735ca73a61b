//! The fair queue, scenario by scenario, on every backend: each scenario
//! asserts the exact dequeue order, and before every drain the places of all
//! waiting jobs are compared with the fair order computed from the jobs alone.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use recents::entity::prelude::*;
use recents::queue::{
    self, Job, JobState, NewJob, QueueOptions, cancel, complete, dequeue, enqueue, fail,
    fair_order_from_history, heartbeat, next_in_line, place_in_queue, reset_stalled,
};
use recents::{Error, JobId, UserId};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, TransactionTrait};

async fn jobs<C>(conn: &C, user: i64, n: usize) -> Vec<JobId>
where
    C: ConnectionTrait + TransactionTrait,
{
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            enqueue(
                conn,
                &NewJob::now(UserId(user), serde_json::json!({ "n": i })),
            )
            .await
            .unwrap(),
        );
    }
    ids
}

/// Every waiting job's place from `place_in_queue` and `next_in_line`
/// equals the fair order computed from the jobs, and every per-user row of
/// `execution_queue_heads` its definition; returns that order.
async fn places_agree_with_history<C>(conn: &C) -> Vec<JobId>
where
    C: ConnectionTrait + TransactionTrait,
{
    let heads = queue::verify_queue_heads(conn, 1000).await.unwrap();
    assert!(heads.is_exact(), "queue heads drifted: {heads:#?}");
    let history = fair_order_from_history(conn, 1000).await.unwrap();
    let line = next_in_line(conn, 1000).await.unwrap();
    assert_eq!(line, history, "next_in_line differs from the fair order");
    for job in &history {
        assert_eq!(
            place_in_queue(conn, job.job_id).await.unwrap(),
            Some(job.place),
            "place of job {}",
            job.job_id
        );
    }
    history.iter().map(|j| j.job_id).collect()
}

/// Each user's latest dequeue, from the trigger-kept table and from the jobs.
async fn latest_dequeues<C: ConnectionTrait>(
    conn: &C,
) -> (BTreeMap<i64, DateTime<Utc>>, BTreeMap<i64, DateTime<Utc>>) {
    let table = ExecutionLastDequeue::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.user_id, r.latest_dequeue))
        .collect();
    let mut jobs: BTreeMap<i64, DateTime<Utc>> = BTreeMap::new();
    for job in ExecutionJob::find().all(conn).await.unwrap() {
        if let Some(at) = job.started_at {
            let e = jobs.entry(job.user_id).or_insert(at);
            *e = (*e).max(at);
        }
    }
    (table, jobs)
}

/// Dequeues and completes until the queue is empty; the order of jobs handed out.
async fn drain<C>(conn: &C) -> Vec<JobId>
where
    C: ConnectionTrait + TransactionTrait,
{
    let mut order = Vec::new();
    while let Some(job) = dequeue(conn, "worker-1").await.unwrap() {
        assert_eq!(job.state, JobState::Processing);
        assert_eq!(job.worker_hostname.as_deref(), Some("worker-1"));
        let (table, jobs) = latest_dequeues(conn).await;
        assert_eq!(table, jobs, "latest_dequeue after dequeuing {}", job.id);
        complete(conn, &job).await.unwrap();
        order.push(JobId(job.id));
    }
    order
}

async fn take<C>(conn: &C, n: usize) -> Vec<JobId>
where
    C: ConnectionTrait + TransactionTrait,
{
    let mut taken = Vec::new();
    for _ in 0..n {
        let job = dequeue(conn, "worker-1").await.unwrap().unwrap();
        complete(conn, &job).await.unwrap();
        taken.push(JobId(job.id));
    }
    taken
}

/// Sets `started_at` of a job with raw SQL, as code that bypasses the
/// service would.
async fn set_started_at<C: ConnectionTrait>(conn: &C, job: JobId, at: DateTime<Utc>) {
    let backend = conn.get_database_backend();
    conn.execute_raw(recents::admin::statement(
        backend,
        "UPDATE execution_jobs SET started_at = ? WHERE id = ?",
        vec![at.into(), job.0.into()],
    ))
    .await
    .unwrap();
}

async fn a_newcomer_is_served_before_a_user_with_many_jobs(db: &TestDb) {
    let c = &db.conn;
    let heavy = jobs(c, 1, 8).await;
    assert_eq!(take(c, 3).await, heavy[..3]);
    let newcomer = jobs(c, 2, 2).await;
    let predicted = places_agree_with_history(c).await;
    let expected = vec![
        newcomer[0],
        heavy[3],
        newcomer[1],
        heavy[4],
        heavy[5],
        heavy[6],
        heavy[7],
    ];
    assert_eq!(predicted, expected);
    assert_eq!(drain(c).await, expected);
}

async fn never_served_users_come_first_then_the_longest_waiting(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 10, 2).await;
    let b = jobs(c, 20, 2).await;
    assert_eq!(take(c, 2).await, vec![a[0], b[0]]);
    // Users 30 and 40 were never served; 40's job is older than 30's second
    // but 30 has waited longer (its oldest job is older).
    let c30 = jobs(c, 30, 1).await;
    let c40 = jobs(c, 40, 1).await;
    let c30b = jobs(c, 30, 1).await;
    let predicted = places_agree_with_history(c).await;
    let expected = vec![c30[0], c40[0], a[1], b[1], c30b[0]];
    assert_eq!(predicted, expected);
    assert_eq!(drain(c).await, expected);
}

async fn users_with_equal_latest_dequeue_are_ordered_by_their_oldest_job(db: &TestDb) {
    let c = &db.conn;
    let x = jobs(c, 1, 3).await;
    let y = jobs(c, 2, 3).await;
    let z = jobs(c, 3, 3).await;
    // Serve one job of each, then give all three the same latest dequeue.
    let served = take(c, 3).await;
    assert_eq!(served, vec![x[0], y[0], z[0]]);
    let same = support_at(3_600);
    for job in &served {
        set_started_at(c, *job, same).await;
    }
    // The triggers never move a latest dequeue back: empty the table and
    // start the jobs again at the equal time, as an operator's repair would.
    c.execute_unprepared("DELETE FROM execution_last_dequeues")
        .await
        .unwrap();
    for job in &served {
        set_started_at(c, *job, support_at(0)).await;
        set_started_at(c, *job, same).await;
    }
    let (table, _) = latest_dequeues(c).await;
    assert_eq!(table.values().collect::<Vec<_>>(), vec![&same; 3]);
    let predicted = places_agree_with_history(c).await;
    let expected = vec![x[1], y[1], z[1], x[2], y[2], z[2]];
    assert_eq!(predicted, expected);
    assert_eq!(drain(c).await, expected);
}

fn support_at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + seconds, 0).unwrap()
}

async fn a_job_not_due_yet_is_skipped(db: &TestDb) {
    let c = &db.conn;
    let later = enqueue(
        c,
        &NewJob {
            user_id: UserId(1),
            payload: serde_json::json!({}),
            process_after: Some(Utc::now() + chrono::Duration::hours(1)),
        },
    )
    .await
    .unwrap();
    let now = jobs(c, 1, 2).await;
    let other = jobs(c, 2, 1).await;
    assert_eq!(place_in_queue(c, later).await.unwrap(), None);
    let predicted = places_agree_with_history(c).await;
    let expected = vec![now[0], other[0], now[1]];
    assert_eq!(predicted, expected);
    assert_eq!(drain(c).await, expected);
    let job = ExecutionJob::find_by_id(later.0)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Queued);
}

async fn errored_jobs_are_retried_in_order_until_they_fail(db: &TestDb) {
    let c = &db.conn;
    let retry_at_once = QueueOptions {
        max_failures: 2,
        backoff: Duration::ZERO,
    };
    let a = jobs(c, 1, 2).await;
    let b = jobs(c, 2, 1).await;
    let first = dequeue(c, "w").await.unwrap().unwrap();
    assert_eq!(JobId(first.id), a[0]);
    assert_eq!(
        fail(c, &first, "boom", &retry_at_once).await.unwrap(),
        JobState::Errored
    );
    // a[0] keeps its place at the head of user 1's queue; user 1 was just
    // served, so user 2 goes first.
    let predicted = places_agree_with_history(c).await;
    assert_eq!(predicted, vec![b[0], a[0], a[1]]);
    assert_eq!(take(c, 2).await, vec![b[0], a[0]][..]);
    // The retry was completed by `take`; fail the next one twice.
    let job = dequeue(c, "w").await.unwrap().unwrap();
    assert_eq!(JobId(job.id), a[1]);
    assert_eq!(
        fail(c, &job, "boom", &retry_at_once).await.unwrap(),
        JobState::Errored
    );
    let job = dequeue(c, "w").await.unwrap().unwrap();
    assert_eq!(JobId(job.id), a[1]);
    assert_eq!(
        fail(c, &job, "boom again", &retry_at_once).await.unwrap(),
        JobState::Failed
    );
    assert!(dequeue(c, "w").await.unwrap().is_none());
    let failed = ExecutionJob::find_by_id(a[1].0)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.num_failures, 2);
    assert_eq!(failed.failure_message.as_deref(), Some("boom again"));
}

async fn a_canceled_job_is_never_dequeued(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 3).await;
    assert_eq!(cancel(c, a[1]).await.unwrap(), JobState::Canceled);
    assert_eq!(place_in_queue(c, a[1]).await.unwrap(), None);
    let predicted = places_agree_with_history(c).await;
    assert_eq!(predicted, vec![a[0], a[2]]);
    // A processing job keeps running; its worker learns of the cancel.
    let running = dequeue(c, "w").await.unwrap().unwrap();
    assert_eq!(cancel(c, a[0]).await.unwrap(), JobState::Processing);
    let beat = heartbeat(c, "w", &[JobId(running.id)]).await.unwrap();
    assert_eq!(beat.alive, vec![a[0]]);
    assert_eq!(beat.canceled, vec![a[0]]);
    complete(c, &running).await.unwrap();
    assert_eq!(drain(c).await, vec![a[2]]);
    assert!(matches!(
        cancel(c, a[1]).await,
        Err(Error::JobFinished {
            state: JobState::Canceled,
            ..
        })
    ));
    assert!(matches!(
        cancel(c, a[2]).await,
        Err(Error::JobFinished {
            state: JobState::Completed,
            ..
        })
    ));
}

/// A heartbeat of several jobs, given in any order and mixed with jobs the
/// worker does not hold, answers the held ones in id order, the canceled
/// among them apart; the same on a pool's connection (one statement) and in
/// a caller's transaction, and it stamps only the held ones.
async fn a_heartbeat_answers_only_the_jobs_its_worker_holds_in_id_order(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 3).await;
    let b = jobs(c, 2, 2).await;
    let mine = queue::dequeue_many(c, "w", 3).await.unwrap();
    let theirs = dequeue(c, "v").await.unwrap().unwrap();
    let mut held: Vec<JobId> = mine.iter().map(|j| JobId(j.id)).collect();
    held.sort();
    cancel(c, held[1]).await.unwrap();
    let before = ExecutionJob::find_by_id(theirs.id)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    let mut asked: Vec<JobId> = held.iter().rev().copied().collect();
    asked.push(JobId(theirs.id));
    asked.push(a[2]);
    asked.push(b[1]);
    asked.push(JobId(i64::MAX));
    for beat in [heartbeat(c, "w", &asked).await.unwrap(), {
        let txn = c.begin().await.unwrap();
        let beat = heartbeat(&txn, "w", &asked).await.unwrap();
        txn.commit().await.unwrap();
        beat
    }] {
        assert_eq!(beat.alive, held, "the held jobs, in id order");
        assert_eq!(beat.canceled, vec![held[1]]);
    }
    let after = ExecutionJob::find_by_id(theirs.id)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.last_heartbeat_at, before.last_heartbeat_at,
        "not its job"
    );
}

async fn the_order_survives_a_worker_crash_and_reset_stalled(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 2).await;
    let b = jobs(c, 2, 2).await;
    // The worker dies holding a[0]: no heartbeat, no completion.
    let lost = dequeue(c, "dead-worker").await.unwrap().unwrap();
    assert_eq!(JobId(lost.id), a[0]);
    assert_eq!(place_in_queue(c, a[0]).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let live = heartbeat(c, "other-worker", &[a[0]]).await.unwrap();
    assert!(live.alive.is_empty(), "another worker's job is not its own");
    let report = reset_stalled(c, Duration::from_millis(1), 1).await.unwrap();
    assert_eq!(report.requeued, vec![a[0]]);
    assert!(report.failed.is_empty());
    let job = ExecutionJob::find_by_id(a[0].0)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.state, job.num_resets), (JobState::Queued, 1));
    // a[0] is back at the head of user 1's queue; user 1 was served last.
    let predicted = places_agree_with_history(c).await;
    assert_eq!(predicted, vec![b[0], a[0], b[1], a[1]]);
    // Crash again on a[0]: past max_resets it fails instead.
    assert_eq!(take(c, 1).await, vec![b[0]]);
    let again = dequeue(c, "dead-worker").await.unwrap().unwrap();
    assert_eq!(JobId(again.id), a[0]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = reset_stalled(c, Duration::from_millis(1), 1).await.unwrap();
    assert_eq!(report.failed, vec![a[0]]);
    assert_eq!(drain(c).await, vec![b[1], a[1]]);
    let job = ExecutionJob::find_by_id(a[0].0)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Failed);
}

async fn latest_dequeue_follows_raw_sql_both_ways(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 3).await;
    set_started_at(c, a[0], support_at(100)).await;
    set_started_at(c, a[1], support_at(300)).await;
    let (table, from_jobs) = latest_dequeues(c).await;
    assert_eq!(table, from_jobs);
    assert_eq!(table[&1], support_at(300));
    // Moving the latest start back moves the latest dequeue back with it:
    // the row is the greatest start of the jobs as they are.
    set_started_at(c, a[1], support_at(200)).await;
    let (table, from_jobs) = latest_dequeues(c).await;
    assert_eq!(table, from_jobs);
    assert_eq!(table[&1], support_at(200));
    set_started_at(c, a[1], support_at(300)).await;
    // A bulk insert of started jobs (one statement, many users) is recorded.
    let backend = c.get_database_backend();
    c.execute_raw(recents::admin::statement(
        backend,
        "INSERT INTO execution_jobs (user_id, state, payload, created_at, started_at) VALUES \
         (7, 'completed', '{}', ?, ?), (7, 'completed', '{}', ?, ?), (8, 'processing', '{}', ?, ?)",
        vec![
            support_at(0).into(),
            support_at(500).into(),
            support_at(0).into(),
            support_at(400).into(),
            support_at(0).into(),
            support_at(50).into(),
        ],
    ))
    .await
    .unwrap();
    let (table, from_jobs) = latest_dequeues(c).await;
    assert_eq!(table[&1], support_at(300));
    assert_eq!(table[&7], from_jobs[&7]);
    assert_eq!(table[&8], from_jobs[&8]);
    assert_eq!(table[&7], support_at(500));
    assert_eq!(table[&8], support_at(50));
}

/// The ids of the jobs `stalled_jobs_as_of` lists at `at`, a minute's stall.
async fn stalled_as_of(
    recents: &recents::Recents,
    c: &DatabaseConnection,
    at: DateTime<Utc>,
) -> Vec<i64> {
    recents
        .stalled_jobs_as_of(c, at, Duration::from_secs(60), 100)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect()
}

/// `stalled_jobs_as_of` and `reset_stalled_as_of` judge heartbeats by the
/// time they are given, and agree with each other: what one lists at a time
/// is what the other resets at that time, and what it ends is stamped then.
async fn stalls_are_judged_as_of_the_time_given(db: &TestDb) {
    let c = &db.conn;
    let recents = recents::Recents::new(recents::Schema::default());
    jobs(c, 4, 2).await;
    let first = dequeue(c, "w1").await.unwrap().unwrap();
    let second = dequeue(c, "w2").await.unwrap().unwrap();
    heartbeat(c, "w2", &[JobId(second.id)]).await.unwrap();
    let rows = jobs_by_id(c).await;
    let beat = |id: i64| rows[&id].last_heartbeat_at.unwrap();
    assert!(beat(second.id) > beat(first.id), "w2 beat after w1's claim");
    let minute = Duration::from_secs(60);
    // Just after w1's heartbeat turned a minute old, before w2's did.
    let between =
        beat(first.id) + chrono::Duration::seconds(60) + chrono::Duration::microseconds(1);
    assert!(stalled_as_of(&recents, c, beat(first.id)).await.is_empty());
    assert_eq!(stalled_as_of(&recents, c, between).await, [first.id]);
    let report = recents
        .reset_stalled_as_of(c, between, minute, 0)
        .await
        .unwrap();
    assert_eq!(
        report.failed,
        [JobId(first.id)],
        "no resets allowed: it fails"
    );
    assert!(report.requeued.is_empty() && report.canceled.is_empty());
    let after = jobs_by_id(c).await;
    assert_eq!(after[&first.id].state, JobState::Failed);
    assert_eq!(after[&first.id].finished_at, Some(between));
    assert_eq!(after[&second.id].state, JobState::Processing);
    assert!(stalled_as_of(&recents, c, between).await.is_empty());
    // The throughput as of that time counts the failure it stamped.
    let t = recents.throughput_as_of(c, between, minute).await.unwrap();
    assert_eq!((t.completed, t.failed), (0, 1));
}

async fn bad_queue_input_is_a_typed_error_and_changes_nothing(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 1).await;
    let before = ExecutionJob::find().all(c).await.unwrap();
    assert!(matches!(
        dequeue(c, "").await,
        Err(Error::InvalidArgument { what: "worker", .. })
    ));
    assert!(matches!(
        dequeue(c, "bad\0worker").await,
        Err(Error::InvalidArgument { what: "worker", .. })
    ));
    assert!(matches!(
        dequeue(c, &"w".repeat(256)).await,
        Err(Error::InvalidArgument { what: "worker", .. })
    ));
    assert!(matches!(
        complete(
            c,
            &Job {
                id: 987_654,
                ..row(c, a[0]).await
            }
        )
        .await,
        Err(Error::JobNotFound(JobId(987_654)))
    ));
    assert!(matches!(
        complete(c, &row(c, a[0]).await).await,
        Err(Error::JobNotProcessing {
            state: JobState::Queued,
            ..
        })
    ));
    assert!(matches!(
        fail(c, &row(c, a[0]).await, "x", &QueueOptions::default()).await,
        Err(Error::JobNotProcessing { .. })
    ));
    assert!(matches!(
        fail(
            c,
            &row(c, a[0]).await,
            "x",
            &QueueOptions {
                max_failures: 0,
                backoff: Duration::ZERO
            }
        )
        .await,
        Err(Error::InvalidArgument {
            what: "max_failures",
            ..
        })
    ));
    assert!(matches!(
        cancel(c, JobId(-1)).await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(
        place_in_queue(c, JobId(i64::MAX)).await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(
        next_in_line(c, 0).await,
        Err(Error::InvalidLimit { .. })
    ));
    assert!(matches!(
        next_in_line(c, 1_000_000).await,
        Err(Error::InvalidLimit { .. })
    ));
    assert!(matches!(
        reset_stalled(c, Duration::from_secs(u64::MAX), 1).await,
        Err(Error::InvalidArgument {
            what: "max_age",
            ..
        })
    ));
    assert!(matches!(
        reset_stalled(c, Duration::ZERO, -1).await,
        Err(Error::InvalidArgument {
            what: "max_resets",
            ..
        })
    ));
    assert!(matches!(
        heartbeat(c, "w", &[JobId(1); 1001]).await,
        Err(Error::InvalidArgument { what: "jobs", .. })
    ));
    let far = NewJob {
        user_id: UserId(1),
        payload: serde_json::json!({}),
        process_after: Some(DateTime::from_timestamp(253_402_300_800, 0).unwrap()),
    };
    assert!(matches!(
        queue::enqueue_many(c, &[NewJob::now(UserId(1), serde_json::json!({})), far]).await,
        Err(Error::InvalidArgument {
            what: "process_after",
            ..
        })
    ));
    let after = ExecutionJob::find().all(c).await.unwrap();
    assert_eq!(before, after);
    assert!(
        ExecutionLastDequeue::find()
            .all(c)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn enqueue_many_returns_the_ids_in_order(db: &TestDb) {
    let c = &db.conn;
    let new: Vec<NewJob> = (0..2500)
        .map(|i| NewJob::now(UserId(i % 7), serde_json::json!({ "i": i })))
        .collect();
    let ids = queue::enqueue_many(c, &new).await.unwrap();
    assert_eq!(ids.len(), new.len());
    let rows = jobs_by_id(c).await;
    for (id, job) in ids.iter().zip(&new) {
        let row = &rows[&id.0];
        assert_eq!(row.user_id, job.user_id.0);
        assert_eq!(row.payload, job.payload);
        assert_eq!(row.state, JobState::Queued);
    }
    let stats = recents::admin::queue_stats(c).await.unwrap();
    assert_eq!(stats.len(), 7);
    assert_eq!(stats.iter().map(|s| s.queued).sum::<u64>(), 2500);
    let first = next_in_line(c, 7).await.unwrap();
    let users: Vec<i64> = first.iter().map(|j| j.user_id.0).collect();
    assert_eq!(users, vec![0, 1, 2, 3, 4, 5, 6]);
}

async fn a_deleted_latest_job_takes_its_dequeue_with_it(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 3).await;
    let b = jobs(c, 2, 2).await;
    assert_eq!(take(c, 3).await, vec![a[0], b[0], a[1]]);
    // Raw SQL deletes user 1's latest started job: user 1's latest dequeue is
    // its previous start again, and the order follows.
    c.execute_raw(recents::admin::statement(
        c.get_database_backend(),
        "DELETE FROM execution_jobs WHERE id = ?",
        vec![a[1].0.into()],
    ))
    .await
    .unwrap();
    let (table, from_jobs) = latest_dequeues(c).await;
    assert_eq!(table, from_jobs);
    assert_eq!(places_agree_with_history(c).await, vec![a[2], b[1]]);
    let report = recents::verify_last_dequeues(c, 1000).await.unwrap();
    assert!(report.is_exact(), "{report:?}");
    // Every job of user 2 gone: user 2 was never served.
    c.execute_raw(recents::admin::statement(
        c.get_database_backend(),
        "DELETE FROM execution_jobs WHERE user_id = ?",
        vec![2i64.into()],
    ))
    .await
    .unwrap();
    let (table, from_jobs) = latest_dequeues(c).await;
    assert_eq!(table, from_jobs);
    assert!(!table.contains_key(&2));
    // A job moved to another user takes its start along.
    c.execute_raw(recents::admin::statement(
        c.get_database_backend(),
        "UPDATE execution_jobs SET user_id = ? WHERE id = ?",
        vec![3i64.into(), a[0].0.into()],
    ))
    .await
    .unwrap();
    let (table, from_jobs) = latest_dequeues(c).await;
    assert_eq!(table, from_jobs);
    assert!(!table.contains_key(&1) && table.contains_key(&3));
    assert_eq!(places_agree_with_history(c).await, vec![a[2]]);
    assert!(
        recents::verify_last_dequeues(c, 1)
            .await
            .unwrap()
            .is_exact()
    );
}

async fn a_result_from_a_worker_that_lost_its_claim_is_refused(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 1).await;
    let stale = dequeue(c, "worker-a").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let reset = reset_stalled(c, Duration::from_millis(1), 3).await.unwrap();
    assert_eq!(reset.requeued, vec![a[0]]);
    let current = dequeue(c, "worker-b").await.unwrap().unwrap();
    assert_eq!(current.id, a[0].0);
    let before = row(c, a[0]).await;
    assert!(matches!(
        complete(c, &stale).await,
        Err(Error::JobNotHeld { job, ref worker }) if job == a[0] && worker == "worker-a"
    ));
    assert!(matches!(
        fail(c, &stale, "late", &QueueOptions::default()).await,
        Err(Error::JobNotHeld { .. })
    ));
    assert_eq!(
        row(c, a[0]).await,
        before,
        "a refused result changes nothing"
    );
    // Worker names are compared byte for byte: "WORKER-B" holds nothing.
    let beat = heartbeat(c, "WORKER-B", &[a[0]]).await.unwrap();
    assert!(beat.alive.is_empty());
    // The same worker name claiming again is a new attempt: the old claim
    // of that name is refused too.
    tokio::time::sleep(Duration::from_millis(5)).await;
    reset_stalled(c, Duration::from_millis(1), 3).await.unwrap();
    let again = dequeue(c, "worker-b").await.unwrap().unwrap();
    assert!(matches!(
        complete(c, &current).await,
        Err(Error::JobNotHeld { .. })
    ));
    complete(c, &again).await.unwrap();
    assert_eq!(row(c, a[0]).await.state, JobState::Completed);
}

async fn a_job_canceled_while_running_ends_canceled_when_its_worker_is_reset(db: &TestDb) {
    let c = &db.conn;
    let a = jobs(c, 1, 2).await;
    let running = dequeue(c, "worker-a").await.unwrap().unwrap();
    assert_eq!(cancel(c, a[0]).await.unwrap(), JobState::Processing);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = reset_stalled(c, Duration::from_millis(1), 3).await.unwrap();
    assert_eq!((report.canceled, report.requeued), (vec![a[0]], vec![]));
    let job = row(c, a[0]).await;
    assert_eq!(job.state, JobState::Canceled);
    assert!(job.finished_at.is_some());
    assert!(matches!(
        complete(c, &running).await,
        Err(Error::JobNotProcessing {
            state: JobState::Canceled,
            ..
        })
    ));
    assert_eq!(drain(c).await, vec![a[1]]);
}

async fn a_job_that_comes_due_is_handed_out_without_a_sweep(db: &TestDb) {
    let c = &db.conn;
    let due_at = Utc::now() + chrono::Duration::milliseconds(400);
    let id = enqueue(
        c,
        &NewJob {
            process_after: Some(due_at),
            ..NewJob::now(UserId(1), serde_json::json!({}))
        },
    )
    .await
    .unwrap();
    assert_eq!(dequeue(c, "w").await.unwrap(), None, "not due yet");
    assert!(places_agree_with_history(c).await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(Utc::now() > due_at);
    // The user's row still says "nothing due"; its next due time brings it
    // up to date in the claim itself.
    assert_eq!(places_agree_with_history(c).await, vec![id]);
    let claimed = dequeue(c, "w").await.unwrap();
    assert_eq!(claimed.map(|j| j.id), Some(id.0), "due when its turn came");
}

async fn a_failure_message_may_fill_the_smallest_backends_column(db: &TestDb) {
    let c = &db.conn;
    jobs(c, 1, 2).await;
    let largest = "é".repeat(queue::MAX_FAILURE_MESSAGE_BYTES / 2) + "x";
    assert_eq!(largest.len(), queue::MAX_FAILURE_MESSAGE_BYTES);
    let first = dequeue(c, "w").await.unwrap().unwrap();
    fail(c, &first, &largest, &QueueOptions::default())
        .await
        .unwrap();
    assert_eq!(
        row(c, JobId(first.id)).await.failure_message,
        Some(largest.clone())
    );
    let second = dequeue(c, "w").await.unwrap().unwrap();
    let before = row(c, JobId(second.id)).await;
    let too_long = largest + "x";
    assert!(matches!(
        fail(c, &second, &too_long, &QueueOptions::default()).await,
        Err(Error::InvalidArgument {
            what: "message",
            ..
        })
    ));
    assert_eq!(row(c, JobId(second.id)).await, before);
}

async fn a_batch_of_large_jobs_enqueues_whatever_the_servers_packet_limit(db: &TestDb) {
    let c = &db.conn;
    let filler = "p".repeat(17 * 1024);
    let new: Vec<NewJob> = (0..1_000)
        .map(|i| {
            NewJob::now(
                UserId(i % 7),
                serde_json::json!({ "i": i, "filler": filler }),
            )
        })
        .collect();
    let ids = queue::enqueue_many(c, &new).await.unwrap();
    assert_eq!(ids.len(), 1_000);
    let rows = jobs_by_id(c).await;
    assert_eq!(rows.len(), 1_000);
    for (id, job) in ids.iter().zip(&new) {
        assert_eq!(rows[&id.0].payload, job.payload, "job {id} in order");
    }
    if db.backend == recents_testkit::Backend::MySql {
        // One job larger than a statement may carry is refused before any row
        // is written.
        let packet: i64 = c
            .query_one_raw(recents::admin::statement(
                c.get_database_backend(),
                "SELECT CAST(@@max_allowed_packet AS SIGNED) AS packet",
                vec![],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "packet")
            .unwrap();
        let huge = NewJob::now(
            UserId(1),
            serde_json::json!({ "filler": "h".repeat(packet as usize) }),
        );
        assert!(matches!(
            queue::enqueue_many(c, &[NewJob::now(UserId(1), serde_json::json!({})), huge]).await,
            Err(Error::InvalidArgument {
                what: "payload",
                ..
            })
        ));
        assert_eq!(ExecutionJob::find().all(c).await.unwrap().len(), 1_000);
    }
}

backend_tests!(
    a_heartbeat_answers_only_the_jobs_its_worker_holds_in_id_order,
    a_newcomer_is_served_before_a_user_with_many_jobs,
    never_served_users_come_first_then_the_longest_waiting,
    users_with_equal_latest_dequeue_are_ordered_by_their_oldest_job,
    a_job_not_due_yet_is_skipped,
    errored_jobs_are_retried_in_order_until_they_fail,
    a_canceled_job_is_never_dequeued,
    the_order_survives_a_worker_crash_and_reset_stalled,
    latest_dequeue_follows_raw_sql_both_ways,
    a_deleted_latest_job_takes_its_dequeue_with_it,
    a_result_from_a_worker_that_lost_its_claim_is_refused,
    a_job_canceled_while_running_ends_canceled_when_its_worker_is_reset,
    a_job_that_comes_due_is_handed_out_without_a_sweep,
    a_failure_message_may_fill_the_smallest_backends_column,
    a_batch_of_large_jobs_enqueues_whatever_the_servers_packet_limit,
    bad_queue_input_is_a_typed_error_and_changes_nothing,
    stalls_are_judged_as_of_the_time_given,
    enqueue_many_returns_the_ids_in_order,
);

/// A job's row, as `complete` and `fail` take it.
async fn row(c: &DatabaseConnection, id: JobId) -> Job {
    ExecutionJob::find_by_id(id.0)
        .one(c)
        .await
        .unwrap()
        .unwrap()
}

/// Every job, by id.
async fn jobs_by_id(c: &DatabaseConnection) -> BTreeMap<i64, Job> {
    ExecutionJob::find()
        .all(c)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id, j))
        .collect()
}

//! The queue generator on every backend: the seed's shape, every user with a
//! latest dequeue recorded by the triggers, the demo's stalled jobs, and a
//! queue the service's dequeue serves in its fair order.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use recents_seed::queue::{self, JobShape};
use recents_service::admin::queue_stats;
use recents_service::queue::{dequeue, fair_order_from_history, next_in_line};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::ConnectionTrait;

async fn count<C: ConnectionTrait>(conn: &C, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn the_seed_queue_has_its_shape_and_every_user_a_latest_dequeue(db: &TestDb) {
    let c = &db.conn;
    let shape = JobShape::seed(0.01, 20);
    assert_eq!((shape.jobs, shape.waiting), (3_510, 240));
    let jobs = queue::insert_jobs(c, &shape).await.unwrap();
    assert_eq!(jobs.inserted, 3_510);
    assert!(
        (2..=20).contains(&jobs.waiting_users),
        "{}",
        jobs.waiting_users
    );
    assert_eq!(
        count(c, "SELECT COUNT(*) AS n FROM execution_last_dequeues").await,
        20
    );
    let stats = queue_stats(c).await.unwrap();
    let waiting: u64 = stats.iter().map(|s| s.queued + s.errored).sum();
    assert_eq!(waiting, 240);
    assert!(
        stats.iter().any(|s| s.errored > 0),
        "one in a hundred errored"
    );
    assert!(stats.iter().all(|s| s.processing == 0));
    // The trigger-kept latest dequeue is each user's greatest start.
    assert_eq!(
        count(
            c,
            "SELECT COUNT(*) AS n FROM execution_last_dequeues l WHERE l.latest_dequeue = \
             (SELECT MAX(j.started_at) FROM execution_jobs j WHERE j.user_id = l.user_id)"
        )
        .await,
        20
    );
    // The head is the same by definition and by the index; dequeue takes it.
    let line = next_in_line(c, 5).await.unwrap();
    assert_eq!(line, fair_order_from_history(c, 5).await.unwrap());
    let job = dequeue(c, "seed-test").await.unwrap().unwrap();
    assert_eq!(job.id, line[0].job_id.0);

    // Deterministic: cleared and made again, the same rows.
    queue::clear(c).await.unwrap();
    let again = queue::insert_jobs(c, &shape).await.unwrap();
    assert_eq!(again.waiting_users, jobs.waiting_users);
    let line_again = next_in_line(c, 5).await.unwrap();
    let ids = |l: &[recents_service::queue::InLine]| {
        l.iter()
            .map(|i| (i.user_id, i.created_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&line_again), ids(&line));
}

async fn the_demo_queue_has_stalled_and_live_jobs(db: &TestDb) {
    let c = &db.conn;
    let now = Utc::now();
    let made = recents_seed::demo::seed_jobs(c, now).await.unwrap();
    assert_eq!(made, recents_seed::DEMO_JOBS);
    let stats = queue_stats(c).await.unwrap();
    let processing: u64 = stats.iter().map(|s| s.processing).sum();
    assert_eq!(processing, recents_seed::demo::DEMO_PROCESSING);
    let stalled = recents_service::queue::stalled_jobs(c, Duration::from_secs(60), 1000)
        .await
        .unwrap();
    assert_eq!(
        stalled.len() as u64,
        recents_seed::demo::DEMO_PROCESSING / 2
    );
    assert_eq!(
        count(c, "SELECT COUNT(DISTINCT user_id) AS n FROM execution_jobs").await,
        recents_seed::DEMO_JOB_USERS as i64
    );
}

async fn a_shape_with_more_waiting_than_jobs_is_refused(db: &TestDb) {
    let shape = JobShape {
        jobs: 10,
        processing: 5,
        waiting: 6,
        users: 2,
        first_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    let refused = queue::insert_jobs(&db.conn, &shape).await;
    assert!(
        matches!(
            refused,
            Err(recents_service::Error::InvalidArgument { what: "jobs", .. })
        ),
        "{refused:?}"
    );
}

backend_tests!(
    the_seed_queue_has_its_shape_and_every_user_a_latest_dequeue,
    the_demo_queue_has_stalled_and_live_jobs,
    a_shape_with_more_waiting_than_jobs_is_refused,
);

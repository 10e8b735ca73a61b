//! `execution_queue_heads`, the per-user rows the fair queue's claims walk,
//! on every backend: kept exact by triggers whatever writes the jobs (raw
//! SQL included), made by the migration's fill for jobs already there,
//! rebuilt by repair, and read by `dequeue_many` in the fair order. After
//! every step the rows equal their definition from the jobs and the
//! queue's answers equal the fair order computed from the jobs alone.

use chrono::Utc;
use recents::migration::{MigrationTrait, SchemaManager};
use recents::queue::{
    self, NewJob, complete, dequeue, dequeue_many, enqueue_many, fair_order_from_history,
    next_in_line, place_in_queue, repair_queue_heads, verify_queue_heads,
};
use recents::{Error, JobId, Schema, UserId};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};

/// The rows equal their definition, and `next_in_line` and `place_in_queue`
/// the fair order from the jobs.
async fn exact<C>(conn: &C, when: &str)
where
    C: ConnectionTrait + TransactionTrait,
{
    let heads = verify_queue_heads(conn, 1000).await.unwrap();
    assert!(heads.is_exact(), "{when}: queue heads drifted: {heads:#?}");
    let history = fair_order_from_history(conn, 1000).await.unwrap();
    let line = next_in_line(conn, 1000).await.unwrap();
    assert_eq!(
        line, history,
        "{when}: next_in_line differs from the fair order"
    );
    for job in &history {
        assert_eq!(
            place_in_queue(conn, job.job_id).await.unwrap(),
            Some(job.place),
            "{when}: place of job {}",
            job.job_id
        );
    }
}

/// `true` spelled for the backend's boolean column.
fn yes(db: &TestDb) -> &'static str {
    match db.db_backend() {
        DbBackend::Postgres => "TRUE",
        _ => "1",
    }
}

/// A time `seconds` from now, as a literal of the backend.
fn at(db: &TestDb, seconds: i64) -> String {
    let t = Utc::now() + chrono::Duration::seconds(seconds);
    match db.db_backend() {
        DbBackend::Sqlite => format!(
            "'{}'",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        ),
        DbBackend::MySql => format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
        _ => format!("TIMESTAMPTZ '{}'", t.to_rfc3339()),
    }
}

async fn raw(db: &TestDb, sql: &str) {
    db.conn
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn raw_sql_writers_keep_the_per_user_rows_exact(db: &TestDb) {
    let c = &db.conn;
    let t = yes(db);
    let new: Vec<NewJob> = (0..12)
        .map(|i| NewJob::now(UserId(i % 3), serde_json::json!({ "i": i })))
        .collect();
    enqueue_many(c, &new).await.unwrap();
    exact(c, "after enqueue_many").await;

    // A multi-row INSERT … SELECT: a copy of user 0's jobs for user 7.
    raw(
        db,
        "INSERT INTO execution_jobs (user_id, state, payload, created_at, num_resets, \
         num_failures, cancel) SELECT 7, state, payload, created_at, 0, 0, cancel \
         FROM execution_jobs WHERE user_id = 0",
    )
    .await;
    exact(c, "after INSERT … SELECT").await;

    // An UPDATE moving many jobs between users (the heads of both change).
    raw(
        db,
        "UPDATE execution_jobs SET user_id = 1 WHERE user_id = 2 AND id % 2 = 0",
    )
    .await;
    exact(c, "after moving jobs between users").await;

    // Cancels and a claim, bypassing the service.
    raw(
        db,
        &format!("UPDATE execution_jobs SET cancel = {t} WHERE user_id = 7 AND id % 3 = 0"),
    )
    .await;
    exact(c, "after raw cancels").await;
    let first = c
        .query_one_raw(sea_orm::Statement::from_string(
            db.db_backend(),
            "SELECT MIN(id) AS id FROM execution_jobs WHERE user_id = 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "id")
        .unwrap();
    raw(
        db,
        &format!(
            "UPDATE execution_jobs SET state = 'processing', started_at = {now}, \
             worker_hostname = 'raw' WHERE id = {first}",
            now = at(db, 0)
        ),
    )
    .await;
    exact(c, "after a raw claim").await;

    // Jobs scheduled later, and one moved back into the past.
    raw(
        db,
        &format!(
            "UPDATE execution_jobs SET process_after = {} WHERE user_id = 0",
            at(db, 3600)
        ),
    )
    .await;
    exact(c, "after scheduling a user's jobs later").await;
    raw(
        db,
        &format!(
            "UPDATE execution_jobs SET process_after = {} WHERE user_id = 0 AND id % 2 = 1",
            at(db, -60)
        ),
    )
    .await;
    exact(c, "after making some due again").await;

    // Deletes: some of a user's jobs, then all of another's.
    raw(
        db,
        "DELETE FROM execution_jobs WHERE user_id = 1 AND id % 2 = 1",
    )
    .await;
    exact(c, "after deleting some jobs").await;
    raw(db, "DELETE FROM execution_jobs WHERE user_id = 7").await;
    exact(c, "after deleting a user's jobs").await;

    // And the service drains what is left, exactly in the fair order.
    let expected: Vec<JobId> = fair_order_from_history(c, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    let mut served = Vec::new();
    while let Some(job) = dequeue(c, "w").await.unwrap() {
        served.push(JobId(job.id));
        complete(c, &job).await.unwrap();
    }
    assert_eq!(served, expected, "drained out of the fair order");
    exact(c, "after the drain").await;
}

async fn dequeue_many_hands_out_the_first_of_the_fair_order(db: &TestDb) {
    let c = &db.conn;
    // Five users with 1 to 5 jobs, arrivals interleaved.
    let mut new = Vec::new();
    for round in 0..5 {
        for user in 0..5 {
            if round <= user {
                new.push(NewJob::now(UserId(user), serde_json::json!({ "r": round })));
            }
        }
    }
    enqueue_many(c, &new).await.unwrap();
    exact(c, "before").await;
    for (batch, count) in [(1, 3u32), (2, 4), (3, 10), (4, 100)] {
        let expected: Vec<i64> = fair_order_from_history(c, count)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.job_id.0)
            .collect();
        let got: Vec<i64> = dequeue_many(c, "batcher", count)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(
            sorted, want,
            "batch {batch} of {count}: not the first of the fair order"
        );
        exact(c, &format!("after batch {batch}")).await;
    }
    assert!(dequeue_many(c, "batcher", 5).await.unwrap().is_empty());
    for bad in [0, queue::MAX_DEQUEUE_BATCH + 1] {
        assert!(
            matches!(
                dequeue_many(c, "batcher", bad).await,
                Err(Error::InvalidLimit { .. })
            ),
            "count {bad}"
        );
    }
}

/// recents' migration of the per-user rows, found by name.
fn heads_migration() -> Box<dyn MigrationTrait> {
    recents::migration::migrations(&Schema::default())
        .into_iter()
        .find(|m| m.name() == "m20261202_000011_queue_heads")
        .expect("the queue heads migration")
}

async fn the_fill_makes_the_rows_of_jobs_already_there(db: &TestDb) {
    let c = &db.conn;
    let manager = SchemaManager::new(c);
    heads_migration().down(&manager).await.unwrap();
    // Jobs written while no trigger keeps the rows: due, scheduled, canceled.
    let mut new: Vec<NewJob> = (0..30)
        .map(|i| NewJob::now(UserId(i % 7 - 3), serde_json::json!({ "i": i })))
        .collect();
    new.push(NewJob {
        process_after: Some(Utc::now() + chrono::Duration::hours(1)),
        ..NewJob::now(UserId(i64::MAX), serde_json::json!({}))
    });
    new.push(NewJob::now(UserId(i64::MIN), serde_json::json!({})));
    enqueue_many(c, &new).await.unwrap();
    raw(
        db,
        &format!(
            "UPDATE execution_jobs SET cancel = {} WHERE id % 5 = 0",
            yes(db)
        ),
    )
    .await;
    heads_migration().up(&manager).await.unwrap();
    exact(c, "after the fill").await;
    // Running it again (a resumed fill) changes nothing.
    heads_migration().up(&manager).await.unwrap();
    exact(c, "after a second fill").await;
}

async fn repair_rebuilds_drifted_rows(db: &TestDb) {
    let c = &db.conn;
    let new: Vec<NewJob> = (0..20)
        .map(|i| NewJob::now(UserId(i % 4), serde_json::json!({ "i": i })))
        .collect();
    enqueue_many(c, &new).await.unwrap();
    exact(c, "before").await;
    raw(db, "DELETE FROM execution_queue_heads WHERE user_id = 0").await;
    raw(
        db,
        "UPDATE execution_queue_heads SET due_count = 99 WHERE user_id = 1",
    )
    .await;
    raw(db, "UPDATE execution_queue_heads SET head_job_id = NULL, head_created_at = NULL WHERE user_id = 2").await;
    raw(
        db,
        &format!(
            "INSERT INTO execution_queue_heads (user_id, due_count, as_of) VALUES (42, 1, {})",
            at(db, 0)
        ),
    )
    .await;
    let found = verify_queue_heads(c, 7).await.unwrap();
    assert_eq!(
        (found.missing, found.stale, found.extra),
        (1, 2, 1),
        "{found:#?}"
    );
    assert_eq!(found.repaired, 0);
    let repaired = repair_queue_heads(c, 7).await.unwrap();
    assert_eq!(repaired.repaired, 4);
    exact(c, "after repair").await;
    assert!(matches!(
        verify_queue_heads(c, 0).await,
        Err(Error::InvalidArgument { .. })
    ));
}

/// A claim inside the caller's transaction is the caller's: rolled back
/// with it. (On MySQL/MariaDB asking for READ COMMITTED inside a caller's
/// transaction once committed the caller's work.)
async fn a_claim_inside_a_callers_transaction_rolls_back_with_it(db: &TestDb) {
    let c = &db.conn;
    let new: Vec<NewJob> = (0..4)
        .map(|i| NewJob::now(UserId(i % 2), serde_json::json!({ "i": i })))
        .collect();
    enqueue_many(c, &new).await.unwrap();
    let before: Vec<JobId> = fair_order_from_history(c, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    let txn = recents::begin_write(c).await.unwrap();
    let claimed = dequeue_many(&txn, "inside", 2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    sea_orm::TransactionSession::rollback(txn).await.unwrap();
    let after: Vec<JobId> = fair_order_from_history(c, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(after, before, "the rolled-back claim left its mark");
    exact(c, "after the rollback").await;
}

backend_tests!(
    a_claim_inside_a_callers_transaction_rolls_back_with_it,
    raw_sql_writers_keep_the_per_user_rows_exact,
    dequeue_many_hands_out_the_first_of_the_fair_order,
    the_fill_makes_the_rows_of_jobs_already_there,
    repair_rebuilds_drifted_rows
);

//! `execution_last_dequeues` against its definition (each user's greatest
//! `started_at`) on every backend: the queue migration fills it from the jobs
//! already there, verify finds each kind of planted drift, repair removes it.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use recents::entity::prelude::*;
use recents::migration::{Migrator, MigratorTrait};
use recents::{DriftKind, UserId, repair_last_dequeues, verify_last_dequeues};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectionTrait, EntityTrait};
use support::{at, random_jobs};

async fn expected<C: ConnectionTrait>(conn: &C) -> BTreeMap<i64, DateTime<Utc>> {
    let mut latest: BTreeMap<i64, DateTime<Utc>> = BTreeMap::new();
    for job in ExecutionJob::find().all(conn).await.unwrap() {
        if let Some(started) = job.started_at {
            let e = latest.entry(job.user_id).or_insert(started);
            *e = (*e).max(started);
        }
    }
    latest
}

async fn actual<C: ConnectionTrait>(conn: &C) -> BTreeMap<i64, DateTime<Utc>> {
    ExecutionLastDequeue::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.user_id, r.latest_dequeue))
        .collect()
}

async fn the_queue_migration_fills_last_dequeues_from_existing_jobs(db: &TestDb) {
    let c = &db.conn;
    // Back to before the queue migration (the fifth) and the ones after it:
    // no triggers, an empty table.
    Migrator::down(c, Some(Migrator::migrations().len() as u32 - 4))
        .await
        .unwrap();
    random_jobs(c, 11, 400, 30).await;
    assert!(
        actual(c).await.is_empty(),
        "no trigger before the migration"
    );
    Migrator::up(c, None).await.unwrap();
    assert_eq!(actual(c).await, expected(c).await);
    let report = verify_last_dequeues(c, 37).await.unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.jobs, 400);
}

async fn verify_finds_planted_last_dequeue_drift_and_repair_removes_it(db: &TestDb) {
    let c = &db.conn;
    random_jobs(c, 12, 500, 40).await;
    let truth = expected(c).await;
    assert_eq!(actual(c).await, truth, "the triggers fill the table");
    let mut users = truth.keys().copied();
    let (missing, stale, too_high) = (
        users.next().unwrap(),
        users.next().unwrap(),
        users.next().unwrap(),
    );
    let extra = 1_000;
    let backend = c.get_database_backend();
    let run = |sql: &str, values: Vec<sea_orm::Value>| {
        c.execute_raw(recents::admin::statement(backend, sql, values))
    };
    run(
        "DELETE FROM execution_last_dequeues WHERE user_id = ?",
        vec![missing.into()],
    )
    .await
    .unwrap();
    run(
        "UPDATE execution_last_dequeues SET latest_dequeue = ? WHERE user_id = ?",
        vec![at(-10, 0).into(), stale.into()],
    )
    .await
    .unwrap();
    run(
        "UPDATE execution_last_dequeues SET latest_dequeue = ? WHERE user_id = ?",
        vec![at(99_999, 0).into(), too_high.into()],
    )
    .await
    .unwrap();
    run(
        "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) VALUES (?, ?)",
        vec![extra.into(), at(5, 0).into()],
    )
    .await
    .unwrap();

    let report = verify_last_dequeues(c, 23).await.unwrap();
    assert_eq!(
        (report.missing, report.stale, report.too_high, report.extra),
        (1, 1, 1, 1),
        "{report:?}"
    );
    let kinds: BTreeMap<i64, DriftKind> = report
        .samples
        .iter()
        .map(|d| (d.user_id.0, d.kind))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            (missing, DriftKind::Missing),
            (stale, DriftKind::Stale),
            (too_high, DriftKind::TooHigh),
            (extra, DriftKind::Extra),
        ])
    );
    let too_high_sample = report
        .samples
        .iter()
        .find(|d| d.user_id == UserId(too_high))
        .unwrap();
    assert_eq!(too_high_sample.history, Some(truth[&too_high]));

    let repaired = repair_last_dequeues(c, 23).await.unwrap();
    assert_eq!(repaired.repaired, 4);
    assert_eq!(actual(c).await, truth);
    assert!(verify_last_dequeues(c, 23).await.unwrap().is_exact());
    assert!(matches!(
        verify_last_dequeues(c, 0).await,
        Err(recents::Error::InvalidArgument { .. })
    ));
}

backend_tests!(
    the_queue_migration_fills_last_dequeues_from_existing_jobs,
    verify_finds_planted_last_dequeue_drift_and_repair_removes_it,
);

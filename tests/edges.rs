//! The edges of the contract, on every backend: times at both ends of the
//! documented range and on both sides of 2038, sub-microsecond times written
//! by a backend's own code, ids at both ends of i64 in every batched walk,
//! the empty uid in history, uids that differ only by trailing spaces, and a
//! freshness window longer than the calendar.

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use recents::admin::statement;
use recents::entity::prelude::*;
use recents::entity::saved_run;
use recents::queue::{self, NewJob};
use recents::{
    BackfillOptions, BackfillScope, RunSave, SaveOptions, Scope, UserId, VerifyOptions,
    VerifyScope, VersionId, WorkspaceId, backfill, delete_saved_run, recent_workflows,
    recent_workflows_from_history, repair, repair_last_dequeues, repair_queue_heads, save_run,
    touch, verify, verify_last_dequeues, verify_queue_heads,
};
use recents_migration::{Migrator, MigratorTrait, SchemaManager, summary_migration};
use recents_testkit::{Backend, TestDb, backend_tests};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Value};
use support::{
    actual_summary, at, ended_in_window, expected_summary, new_run as run, published_run, version,
    workspace,
};

/// The documented range's ends and the instants around 1970 and 2038 where
/// MySQL's TIMESTAMP type ends.
fn edge_times() -> Vec<DateTime<Utc>> {
    let utc = |y, mo, d, h, mi, s, micros: i64| {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + chrono::Duration::microseconds(micros)
    };
    vec![
        utc(1000, 1, 1, 0, 0, 0, 0),
        utc(1969, 12, 31, 23, 59, 59, 999_999),
        utc(1970, 1, 1, 0, 0, 0, 0),
        utc(1970, 1, 1, 0, 0, 1, 0),
        utc(2038, 1, 19, 3, 14, 7, 0),
        utc(2038, 1, 19, 3, 14, 8, 0),
        utc(2038, 1, 19, 3, 14, 8, 1),
        utc(9999, 12, 31, 23, 59, 59, 999_999),
    ]
}

fn latest_time() -> DateTime<Utc> {
    *edge_times().last().unwrap()
}

async fn execute(c: &impl ConnectionTrait, sql: &str, values: Vec<Value>) {
    c.execute_raw(statement(c.get_database_backend(), sql, values))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The summary equals the in-memory oracle, and verify finds it exact.
async fn assert_exact(c: &DatabaseConnection) {
    assert_eq!(actual_summary(c).await, expected_summary(c).await);
    let report = verify(c, &VerifyScope::All, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_exact(), "{report:?}");
}

async fn job(c: &DatabaseConnection, id: i64) -> queue::Job {
    ExecutionJob::find_by_id(id).one(c).await.unwrap().unwrap()
}

async fn every_time_we_write_keeps_both_ends_of_the_range_and_both_sides_of_2038(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let pr = published_run(c, ws, "A").await;
    let v = version(c, pr).await;
    for (n, &t) in edge_times().iter().enumerate() {
        let uid = format!("u{n}");
        let saved = save_run(c, &run(ws, &uid, v, t), &SaveOptions::exact())
            .await
            .unwrap_or_else(|e| panic!("save at {t}: {e}"));
        let stored = SavedRun::find_by_id(saved.id.0)
            .one(c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.created_at, stored.updated_at),
            (t, t),
            "saved run at {t}"
        );
        let member = Scope::Member(uid.clone());
        let read = recent_workflows(c, ws, &member, 1).await.unwrap();
        assert_eq!(read[0].last_used_at, t, "summary at {t}");
        assert_eq!(
            read,
            recent_workflows_from_history(c, ws, &member, 1)
                .await
                .unwrap()
        );
        // An update moving the run to the other end of the range and back.
        for moved in [edge_times()[0], t] {
            let update = RunSave {
                id: Some(saved.id),
                ..run(ws, &uid, v, moved)
            };
            save_run(c, &update, &SaveOptions::exact()).await.unwrap();
            let read = recent_workflows(c, ws, &member, 1).await.unwrap();
            assert_eq!(read[0].last_used_at, moved);
        }
    }
    assert_exact(c).await;

    // A job waits until its process_after, whatever side of 2038 it is on.
    let now = Utc::now();
    let mut due = Vec::new();
    for (n, &t) in edge_times().iter().enumerate() {
        let id = queue::enqueue(
            c,
            &NewJob {
                process_after: Some(t),
                ..NewJob::now(UserId(n as i64 + 1), serde_json::json!({}))
            },
        )
        .await
        .unwrap();
        assert_eq!(
            job(c, id.0).await.process_after,
            Some(t),
            "process_after {t}"
        );
        if t <= now {
            due.push(id.0);
        }
    }
    // The per-user rows hold heads and next due times at every edge.
    let heads = verify_queue_heads(c, 1).await.unwrap();
    assert!(heads.is_exact(), "{heads:?}");
    assert_eq!(heads.rows, edge_times().len() as u64);
    let mut handed = Vec::new();
    while let Some(j) = queue::dequeue(c, "w").await.unwrap() {
        queue::complete(c, &j).await.unwrap();
        handed.push(j.id);
    }
    handed.sort();
    assert_eq!(handed, due, "only jobs due now are handed out");
    let heads = verify_queue_heads(c, 1).await.unwrap();
    assert!(heads.is_exact(), "{heads:?}");
    assert_eq!(
        heads.rows,
        (edge_times().len() - due.len()) as u64,
        "a row for each user whose job is not due yet"
    );

    // A failure whose retry lands after 2038 keeps its retry time.
    let retried = queue::enqueue(c, &NewJob::now(UserId(50), serde_json::json!({})))
        .await
        .unwrap();
    let claim = queue::dequeue(c, "w").await.unwrap().unwrap();
    assert_eq!(claim.id, retried.0);
    let after_2038 = edge_times()[5] + chrono::Duration::days(1);
    let backoff = (after_2038 - Utc::now()).to_std().unwrap();
    let options = queue::QueueOptions {
        max_failures: 3,
        backoff,
    };
    queue::fail(c, &claim, "later", &options).await.unwrap();
    let failed = job(c, retried.0).await;
    assert!(
        failed.process_after.unwrap() > edge_times()[5],
        "{failed:?}"
    );
    assert!(queue::dequeue(c, "w").await.unwrap().is_none());

    // Start times after 2038: the next dequeue starts after the latest one.
    let in_2040 = Utc.with_ymd_and_hms(2040, 6, 1, 0, 0, 0).unwrap();
    execute(
        c,
        "INSERT INTO execution_jobs (user_id, state, payload, created_at, started_at, finished_at) \
         VALUES (?, 'completed', ?, ?, ?, ?)",
        vec![
            60i64.into(),
            serde_json::json!({}).into(),
            at(0, 0).into(),
            in_2040.into(),
            in_2040.into(),
        ],
    )
    .await;
    queue::enqueue(c, &NewJob::now(UserId(61), serde_json::json!({})))
        .await
        .unwrap();
    let started = queue::dequeue(c, "w").await.unwrap().unwrap();
    assert_eq!(
        started.started_at,
        Some(in_2040 + chrono::Duration::microseconds(1))
    );
    queue::complete(c, &started).await.unwrap();
    assert!(job(c, started.id).await.finished_at.is_some());
    let report = verify_last_dequeues(c, 1000).await.unwrap();
    assert!(report.is_exact(), "{report:?}");
}

/// Start times never leave the documented range: at its end they tie, and
/// the users are told apart by their oldest job.
async fn start_times_stay_inside_the_range_after_a_start_at_its_end(db: &TestDb) {
    let c = &db.conn;
    let end = latest_time();
    execute(
        c,
        "INSERT INTO execution_jobs (user_id, state, payload, created_at, started_at) \
         VALUES (?, 'completed', ?, ?, ?)",
        vec![
            1i64.into(),
            serde_json::json!({}).into(),
            at(0, 0).into(),
            end.into(),
        ],
    )
    .await;
    let ids = queue::enqueue_many(
        c,
        &[2, 3, 2, 3].map(|u| NewJob::now(UserId(u), serde_json::json!({}))),
    )
    .await
    .unwrap();
    let mut order = Vec::new();
    while let Some(j) = queue::dequeue(c, "w").await.unwrap() {
        assert_eq!(
            j.started_at,
            Some(end),
            "job {} started outside the range",
            j.id
        );
        order.push(j.id);
    }
    // Users 2 and 3 tie on their latest dequeue after round 1, so each round
    // serves them by their oldest job: 2, 3, 2, 3.
    assert_eq!(order, ids.iter().map(|i| i.0).collect::<Vec<_>>());
    let report = verify_last_dequeues(c, 1000).await.unwrap();
    assert!(report.is_exact(), "{report:?}");
}

/// The ids of every walk's ends and their neighbours.
const ENDS: [i64; 4] = [i64::MIN, -1, 0, i64::MAX];

/// A connection on which the test may write id 0 (MySQL otherwise numbers a
/// 0 written to an auto-increment column).
async fn raw_writer(db: &TestDb) -> DatabaseConnection {
    let c = db.connect_again(1).await;
    if db.backend == Backend::MySql {
        c.execute_unprepared("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")
            .await
            .unwrap();
    }
    c
}

/// A workspace `id` written as the backend's own code would.
async fn raw_workspace(c: &DatabaseConnection, id: i64, name: &str) {
    execute(
        c,
        "INSERT INTO workspaces (id, name, is_personal, created_at) VALUES (?, ?, ?, ?)",
        vec![id.into(), name.into(), false.into(), at(0, 0).into()],
    )
    .await;
}

/// A workflow (published run) `id` of workspace `ws`, with one version
/// numbered `id` too, written as the backend's own code would.
async fn raw_workflow(c: &DatabaseConnection, id: i64, ws: i64) {
    execute(
        c,
        "INSERT INTO published_runs (id, workspace_id, title, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?)",
        vec![
            id.into(),
            ws.into(),
            "A".into(),
            at(0, 0).into(),
            at(0, 0).into(),
        ],
    )
    .await;
    execute(
        c,
        "INSERT INTO published_run_versions (id, published_run_id, created_at) VALUES (?, ?, ?)",
        vec![id.into(), id.into(), at(0, 0).into()],
    )
    .await;
}

async fn every_batched_walk_covers_both_ends_of_the_id_range(db: &TestDb) {
    tokio::time::timeout(Duration::from_secs(180), walks_cover_the_ends(db))
        .await
        .expect("every walk ends");
}

async fn walks_cover_the_ends(db: &TestDb) {
    let c = &raw_writer(db).await;
    for (n, &id) in ENDS.iter().enumerate() {
        raw_workspace(c, id, &format!("w{n}")).await;
        raw_workflow(c, id, id).await;
        execute(
            c,
            "INSERT INTO saved_runs (id, workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
             VALUES (?, ?, 'ann', ?, 'done', ?, ?)",
            vec![id.into(), id.into(), id.into(), at(n as i64, 0).into(), at(n as i64, 0).into()],
        )
        .await;
        execute(
            c,
            "INSERT INTO execution_jobs (id, user_id, state, payload, created_at, started_at) \
             VALUES (?, ?, 'completed', ?, ?, ?)",
            vec![
                id.into(),
                id.into(),
                serde_json::json!({}).into(),
                at(0, 0).into(),
                at(n as i64, 0).into(),
            ],
        )
        .await;
    }
    let expected = expected_summary(c).await;
    assert_eq!(
        expected.len(),
        8,
        "a member and a workspace row per workspace"
    );
    for batch_rows in [1, 2, 1000] {
        c.execute_unprepared("DELETE FROM workspace_recent_workflows")
            .await
            .unwrap();
        c.execute_unprepared("DELETE FROM recents_backfill_checkpoints")
            .await
            .unwrap();
        let options = BackfillOptions {
            batch_rows,
            ..BackfillOptions::default()
        };
        let report = backfill(c, &BackfillScope::RecentWorkflows, &options, |_| {})
            .await
            .unwrap();
        assert!(report.finished);
        assert_eq!(report.rows_scanned, 4, "batch of {batch_rows}");
        assert_eq!(
            actual_summary(c).await,
            expected,
            "backfill in batches of {batch_rows}"
        );
        let report = verify(c, &VerifyScope::All, &VerifyOptions { batch_rows })
            .await
            .unwrap();
        assert!(report.is_exact(), "{report:?}");
        assert_eq!((report.history_rows, report.summary_rows), (4, 8));
    }
    for &id in &ENDS {
        let scope = VerifyScope::Workspace(WorkspaceId(id));
        let report = verify(c, &scope, &VerifyOptions::default()).await.unwrap();
        assert_eq!(
            (report.history_rows, report.summary_rows),
            (1, 2),
            "workspace {id}"
        );
        assert!(report.is_exact());
        let scope = BackfillScope::RecentWorkflowsOf(WorkspaceId(id));
        let options = BackfillOptions {
            batch_rows: 1,
            ..BackfillOptions::default()
        };
        assert!(
            backfill(c, &scope, &options, |_| {})
                .await
                .unwrap()
                .finished
        );
    }
    // Drift planted in every workspace is found and repaired.
    c.execute_unprepared("DELETE FROM workspace_recent_workflows")
        .await
        .unwrap();
    let found = repair(c, &VerifyScope::All, &VerifyOptions { batch_rows: 1 })
        .await
        .unwrap();
    assert_eq!((found.found.missing, found.repaired), (8, 8));
    assert_eq!(actual_summary(c).await, expected);

    // Last dequeues: users at both ends, verified, repaired and backfilled.
    let exact = verify_last_dequeues(c, 1).await.unwrap();
    assert!(exact.is_exact(), "{exact:?}");
    assert_eq!((exact.jobs, exact.rows), (4, 4));
    c.execute_unprepared("DELETE FROM execution_last_dequeues")
        .await
        .unwrap();
    let found = repair_last_dequeues(c, 1).await.unwrap();
    assert_eq!((found.missing, found.repaired), (4, 4));
    c.execute_unprepared("DELETE FROM execution_last_dequeues")
        .await
        .unwrap();
    let options = BackfillOptions {
        batch_rows: 1,
        ..BackfillOptions::default()
    };
    let report = backfill(c, &BackfillScope::LastDequeues, &options, |_| {})
        .await
        .unwrap();
    assert_eq!(report.rows_scanned, 4);
    assert!(verify_last_dequeues(c, 1).await.unwrap().is_exact());

    // Queue heads: a waiting job of each user at both ends, its id next to
    // the ends too; verified and repaired in batches of one user.
    for (n, &user) in ENDS.iter().enumerate() {
        let id = match user {
            i64::MIN => i64::MIN + 1,
            i64::MAX => i64::MAX - 1,
            other => other + 7,
        };
        execute(
            c,
            "INSERT INTO execution_jobs (id, user_id, state, payload, created_at) \
             VALUES (?, ?, 'queued', ?, ?)",
            vec![
                id.into(),
                user.into(),
                serde_json::json!({}).into(),
                at(10 + n as i64, 0).into(),
            ],
        )
        .await;
    }
    let heads = verify_queue_heads(c, 1).await.unwrap();
    assert!(heads.is_exact(), "{heads:?}");
    assert_eq!(heads.rows, 4);
    c.execute_unprepared("DELETE FROM execution_queue_heads")
        .await
        .unwrap();
    let found = repair_queue_heads(c, 1).await.unwrap();
    assert_eq!((found.missing, found.repaired), (4, 4));
    assert!(verify_queue_heads(c, 1).await.unwrap().is_exact());
    let line = queue::next_in_line(c, 10).await.unwrap();
    assert_eq!(line.len(), 4, "{line:?}");
    assert_eq!(
        line,
        queue::fair_order_from_history(c, 10).await.unwrap(),
        "the heads' order is the history's"
    );

    // The migrations' fills of both summaries, from history alone.
    // Back to before the summary's migration (the second): both fills run again.
    Migrator::down(c, Some(Migrator::migrations().len() as u32 - 1))
        .await
        .unwrap();
    Migrator::up(c, None).await.unwrap();
    assert_eq!(actual_summary(c).await, expected, "the migration's fill");
    let exact = verify_last_dequeues(c, 1).await.unwrap();
    assert!(exact.is_exact() && exact.rows == 4, "{exact:?}");
    let heads = verify_queue_heads(c, 1).await.unwrap();
    assert!(heads.is_exact() && heads.rows == 4, "{heads:?}");

    // The claim (PostgreSQL's claim function), heartbeat and complete hand
    // out and end those jobs, ids and users at both ends, in the order
    // `next_in_line` predicted.
    let predicted: Vec<i64> = queue::next_in_line(c, 10)
        .await
        .unwrap()
        .iter()
        .map(|l| l.job_id.0)
        .collect();
    let mut handed = Vec::new();
    while let Some(j) = queue::dequeue(c, "w").await.unwrap() {
        let beat = queue::heartbeat(c, "w", &[recents::JobId(j.id)])
            .await
            .unwrap();
        assert_eq!(beat.alive, [recents::JobId(j.id)]);
        queue::complete(c, &j).await.unwrap();
        handed.push(j.id);
    }
    assert_eq!(handed, predicted);
    assert!(verify_queue_heads(c, 1).await.unwrap().is_exact());
}

/// The migration's fill, in batches of one run and up, over runs whose ids
/// sit at both ends of i64 and whose times sit at both ends of the range and
/// around 2038, with the newest run of a group at a low id so that the
/// newest-first walk meets it last: the summary equals the history's.
async fn the_migrations_fill_in_batches_covers_both_ends_of_ids_and_times(db: &TestDb) {
    let c = &raw_writer(db).await;
    let all = Migrator::migrations().len() as u32;
    Migrator::down(c, Some(all - 1)).await.unwrap();
    let times = edge_times();
    for (n, &id) in [i64::MIN, i64::MAX].iter().enumerate() {
        raw_workspace(c, id, &format!("w{n}")).await;
    }
    // Two workflows in the first workspace, one in the second; each with
    // one version, numbered at the ends too.
    for (id, ws) in [(i64::MIN, i64::MIN), (0, i64::MIN), (i64::MAX, i64::MAX)] {
        raw_workflow(c, id, ws).await;
    }
    // (run id, workspace, version, uid, time): ids from both ends, the
    // latest times on the lowest ids.
    let runs = [
        (i64::MIN, i64::MIN, i64::MIN, "ann", times[7]),
        (i64::MIN + 1, i64::MIN, 0, "ann", times[6]),
        (-1, i64::MIN, i64::MIN, "bob", times[5]),
        (0, i64::MIN, 0, "", times[4]),
        (1, i64::MIN, i64::MIN, "ann", times[0]),
        (2, i64::MIN, 0, "bob", times[1]),
        (i64::MAX - 2, i64::MAX, i64::MAX, "ann", times[2]),
        (i64::MAX - 1, i64::MAX, i64::MAX, "ann", times[5]),
        (i64::MAX, i64::MIN, 0, "bob", times[3]),
    ];
    for (id, ws, v, uid, t) in runs {
        execute(
            c,
            "INSERT INTO saved_runs (id, workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 'done', ?, ?)",
            vec![id.into(), ws.into(), uid.into(), v.into(), t.into(), t.into()],
        )
        .await;
    }
    let expected = expected_summary(c).await;
    for batch in [1, 2, 3, 1_000] {
        let summary = summary_migration(&recents::Schema::default(), Some(batch));
        let manager = SchemaManager::new(c);
        summary.up(&manager).await.unwrap();
        assert_eq!(
            actual_summary(c).await,
            expected,
            "the fill in batches of {batch}"
        );
        summary.down(&manager).await.unwrap();
    }
    Migrator::up(c, None).await.unwrap();
    assert_exact(c).await;
}

/// What `stalled_jobs_as_of` lists at `as_of`: every `processing` job whose
/// heartbeat is older than `as_of - max_age` or missing, stalest first, by
/// chrono's arithmetic (it reaches before year 1000 where SQL cannot).
fn stalled_by_definition(jobs: &[queue::Job], as_of: DateTime<Utc>, max_age: Duration) -> Vec<i64> {
    let cutoff = as_of - chrono::Duration::from_std(max_age).unwrap();
    let mut stalled: Vec<&queue::Job> = jobs
        .iter()
        .filter(|j| j.state == recents::entity::execution_job::JobState::Processing)
        .filter(|j| j.last_heartbeat_at.is_none_or(|beat| beat < cutoff))
        .collect();
    stalled.sort_by_key(|j| (j.last_heartbeat_at.is_some(), j.last_heartbeat_at, j.id));
    stalled.iter().map(|j| j.id).collect()
}

/// Heartbeats and ends at both ends of the range and around 2038: the
/// stalled list, the reset and the throughput agree with their definitions
/// at every instant next to them, for windows that stay in the range and
/// ones that reach back before its start.
async fn stalls_and_throughput_hold_at_both_ends_of_the_range_and_around_2038(db: &TestDb) {
    let c = &db.conn;
    let recents = recents::Recents::new(recents::Schema::default());
    let times = edge_times();
    for (n, &t) in times.iter().enumerate() {
        execute(
            c,
            "INSERT INTO execution_jobs (user_id, state, payload, created_at, started_at, last_heartbeat_at, worker_hostname) \
             VALUES (?, 'processing', ?, ?, ?, ?, 'w')",
            vec![
                (n as i64).into(),
                serde_json::json!({}).into(),
                times[0].into(),
                t.into(),
                t.into(),
            ],
        )
        .await;
        execute(
            c,
            "INSERT INTO execution_jobs (user_id, state, payload, created_at, started_at, finished_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                (100 + n as i64).into(),
                if n % 2 == 0 { "completed" } else { "failed" }.into(),
                serde_json::json!({}).into(),
                times[0].into(),
                times[0].into(),
                t.into(),
            ],
        )
        .await;
    }
    // A run that never beat: stalled at any time.
    execute(
        c,
        "INSERT INTO execution_jobs (user_id, state, payload, created_at, started_at, worker_hostname) \
         VALUES (?, 'processing', ?, ?, ?, 'w')",
        vec![
            200i64.into(),
            serde_json::json!({}).into(),
            times[0].into(),
            times[0].into(),
        ],
    )
    .await;
    let jobs = ExecutionJob::find().all(c).await.unwrap();
    let micro = chrono::Duration::microseconds(1);
    let ages = [0, 1, 60, 86_400, 1 << 40].map(Duration::from_secs);
    for &t in &times {
        for as_of in [
            t - micro,
            t,
            t + micro,
            t + chrono::Duration::seconds(60) + micro,
        ] {
            if as_of < times[0] || as_of > latest_time() {
                continue;
            }
            for max_age in ages {
                let listed: Vec<i64> = recents
                    .stalled_jobs_as_of(c, as_of, max_age, 1000)
                    .await
                    .unwrap_or_else(|e| panic!("stalled as of {as_of}, {max_age:?}: {e}"))
                    .iter()
                    .map(|j| j.id)
                    .collect();
                assert_eq!(
                    listed,
                    stalled_by_definition(&jobs, as_of, max_age),
                    "stalled as of {as_of}, {max_age:?}"
                );
                let t = recents
                    .throughput_as_of(c, as_of, max_age)
                    .await
                    .unwrap_or_else(|e| panic!("throughput until {as_of}, {max_age:?}: {e}"));
                assert_eq!(
                    (t.completed, t.failed),
                    ended_in_window(&jobs, as_of, max_age),
                    "throughput until {as_of}, {max_age:?}"
                );
            }
        }
    }
    // The reset at the range's end ends what the list shows, stamped then.
    let end = latest_time();
    let minute = Duration::from_secs(60);
    let listed = stalled_by_definition(&jobs, end, minute);
    assert_eq!(
        listed.len(),
        times.len(),
        "all but the last beat, and the one that never beat"
    );
    let report = recents
        .reset_stalled_as_of(c, end, minute, 0)
        .await
        .unwrap();
    let mut failed: Vec<i64> = report.failed.iter().map(|j| j.0).collect();
    failed.sort();
    let mut expected = listed.clone();
    expected.sort();
    assert_eq!(failed, expected);
    let after = ExecutionJob::find().all(c).await.unwrap();
    for j in after.iter().filter(|j| listed.contains(&j.id)) {
        assert_eq!(j.finished_at, Some(end), "job {} stamped at the end", j.id);
    }
    let t = recents.throughput_as_of(c, end, minute).await.unwrap();
    assert_eq!(
        (t.completed, t.failed),
        ended_in_window(&after, end, minute)
    );
    assert_eq!(
        t.failed,
        listed.len() as u64 + 1,
        "the resets and the failure ended at the end"
    );
    assert!(stalled_by_definition(&after, end, minute).is_empty());
}

/// Inserts a saved run as the backend's own code would, returning its id.
async fn insert_run(
    c: &DatabaseConnection,
    ws: WorkspaceId,
    uid: &str,
    v: VersionId,
    t: DateTime<Utc>,
) -> i64 {
    execute(
        c,
        "INSERT INTO saved_runs (workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
         VALUES (?, ?, ?, 'done', ?, ?)",
        vec![ws.0.into(), uid.into(), v.0.into(), t.into(), t.into()],
    )
    .await;
    newest_run(c).await.id
}

async fn newest_run(c: &DatabaseConnection) -> saved_run::Model {
    use sea_orm::QueryOrder;
    SavedRun::find()
        .order_by_desc(saved_run::Column::Id)
        .one(c)
        .await
        .unwrap()
        .unwrap()
}

async fn a_history_run_with_an_empty_uid_counts_for_its_workspace_only(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let a = published_run(c, ws, "A").await;
    let b = published_run(c, ws, "B").await;
    let (va, vb) = (version(c, a).await, version(c, b).await);
    insert_run(c, ws, "", va, at(5, 0)).await;
    insert_run(c, ws, "ann", va, at(3, 0)).await;
    insert_run(c, ws, "", vb, at(1, 0)).await;
    insert_run(c, ws, "bob", vb, at(7, 0)).await;
    let report = backfill(
        c,
        &BackfillScope::RecentWorkflows,
        &BackfillOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.finished);
    assert_exact(c).await;
    let workspace_rows = recent_workflows(c, ws, &Scope::Workspace, 10)
        .await
        .unwrap();
    assert_eq!(
        workspace_rows,
        recent_workflows_from_history(c, ws, &Scope::Workspace, 10)
            .await
            .unwrap()
    );
    assert_eq!(workspace_rows[0].last_used_at, at(7, 0));
    assert_eq!(
        workspace_rows[1].last_used_at,
        at(5, 0),
        "the '' run counts for A"
    );

    // The backend's own write of a '' run, kept by touch, then deleted.
    let id = insert_run(c, ws, "", va, at(9, 0)).await;
    let written = newest_run(c).await;
    touch(c, &(&written).into(), &SaveOptions::exact())
        .await
        .unwrap();
    assert_exact(c).await;
    assert_eq!(
        recent_workflows(c, ws, &Scope::Workspace, 1).await.unwrap()[0].last_used_at,
        at(9, 0)
    );
    delete_saved_run(c, ws, recents::SavedRunId(id))
        .await
        .unwrap();
    assert_exact(c).await;

    // The migration's fill, from history alone.
    // Back to before the summary's migration (the second): both fills run again.
    Migrator::down(c, Some(Migrator::migrations().len() as u32 - 1))
        .await
        .unwrap();
    Migrator::up(c, None).await.unwrap();
    assert_exact(c).await;
}

async fn uids_that_differ_by_trailing_spaces_or_case_are_different_members(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let uids = ["ann", "ann ", "ann  ", "Ann", " ann"];
    for (n, uid) in uids.iter().enumerate() {
        let pr = published_run(c, ws, &format!("W{n}")).await;
        let v = version(c, pr).await;
        save_run(c, &run(ws, uid, v, at(n as i64, 0)), &SaveOptions::exact())
            .await
            .unwrap();
    }
    assert_exact(c).await;
    for (n, uid) in uids.iter().enumerate() {
        let scope = Scope::Member((*uid).to_owned());
        let read = recent_workflows(c, ws, &scope, 10).await.unwrap();
        assert_eq!(read.len(), 1, "{uid:?} has one workflow of its own");
        assert_eq!(read[0].title, format!("W{n}"));
        assert_eq!(
            read,
            recent_workflows_from_history(c, ws, &scope, 10)
                .await
                .unwrap()
        );
    }
}

/// Writes a run with a time of more than six fractional digits as SQL text,
/// the way a backend's own code might; each database stores it its own way.
async fn insert_run_at_text(c: &DatabaseConnection, ws: WorkspaceId, v: VersionId, text: &str) {
    let sql = format!(
        "INSERT INTO saved_runs (workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
         VALUES (?, 'ann', ?, 'done', '{text}', '{text}')"
    );
    execute(c, &sql, vec![ws.0.into(), v.0.into()]).await;
}

async fn touch_holds_the_time_the_database_stored_not_the_one_it_was_given(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let pr = published_run(c, ws, "A").await;
    let v = version(c, pr).await;
    let written = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
        + chrono::Duration::nanoseconds(999_999_600);
    let text = match db.db_backend() {
        DbBackend::Postgres => "2026-03-01 10:00:00.9999996+00",
        DbBackend::MySql => "2026-03-01 10:00:00.9999996",
        _ => "2026-03-01T10:00:00.9999996+00:00",
    };
    insert_run_at_text(c, ws, v, text).await;
    let stored = newest_run(c).await;
    // What the backend holds in memory: the time it wrote, to the nanosecond.
    let in_memory = saved_run::Model {
        updated_at: written,
        ..stored.clone()
    };
    touch(c, &(&in_memory).into(), &SaveOptions::exact())
        .await
        .unwrap();
    let read = recent_workflows(c, ws, &Scope::Member("ann".into()), 1)
        .await
        .unwrap();
    assert_eq!(
        read[0].last_used_at, stored.updated_at,
        "as stored, not as given"
    );
    assert_exact(c).await;
}

async fn a_freshness_window_longer_than_the_calendar_answers_and_keeps_the_guarantee(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let pr = published_run(c, ws, "A").await;
    let v = version(c, pr).await;
    let ann = Scope::Member("ann".into());
    for (n, window) in [
        Duration::from_secs(u64::MAX),
        Duration::from_secs(5_000 * 365 * 86_400),
        Duration::MAX,
    ]
    .into_iter()
    .enumerate()
    {
        let uid = format!("first{n}");
        let options = SaveOptions::with_freshness_window(window);
        let first = tokio::time::timeout(
            Duration::from_secs(20),
            save_run(c, &run(ws, &uid, v, at(10, 0)), &options),
        )
        .await
        .expect("a save with a long window answers")
        .unwrap();
        // Nothing was fresh in the new member's group: its row was written.
        let member = Scope::Member(uid);
        assert_eq!(
            recent_workflows(c, ws, &member, 1).await.unwrap()[0].last_saved_run_id,
            first.id
        );
        let later = tokio::time::timeout(
            Duration::from_secs(20),
            save_run(c, &run(ws, "ann", v, at(20 + n as i64, 0)), &options),
        )
        .await
        .expect("a save with a long window answers")
        .unwrap();
        // ann's row: written by the first save in its group, fresh after.
        let row = recent_workflows(c, ws, &ann, 1).await.unwrap()[0].clone();
        let truth = recent_workflows_from_history(c, ws, &ann, 1).await.unwrap()[0].clone();
        assert!(
            row.last_used_at <= truth.last_used_at,
            "never above the truth"
        );
        if n > 0 {
            assert_ne!(
                row.last_saved_run_id.0, later.id.0,
                "a fresh row is skipped"
            );
        }
    }
    // verify finds the lag; repair brings it back.
    repair(c, &VerifyScope::All, &VerifyOptions::default())
        .await
        .unwrap();
    assert_exact(c).await;
}

backend_tests!(
    every_time_we_write_keeps_both_ends_of_the_range_and_both_sides_of_2038,
    start_times_stay_inside_the_range_after_a_start_at_its_end,
    every_batched_walk_covers_both_ends_of_the_id_range,
    the_migrations_fill_in_batches_covers_both_ends_of_ids_and_times,
    stalls_and_throughput_hold_at_both_ends_of_the_range_and_around_2038,
    a_history_run_with_an_empty_uid_counts_for_its_workspace_only,
    uids_that_differ_by_trailing_spaces_or_case_are_different_members,
    touch_holds_the_time_the_database_stored_not_the_one_it_was_given,
    a_freshness_window_longer_than_the_calendar_answers_and_keeps_the_guarantee,
);

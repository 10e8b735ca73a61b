//! Backfill, verify and repair, scenario by scenario, on every backend: the
//! summary they leave is compared with the in-memory oracle over all runs,
//! and verify must agree with it.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recents::entity::prelude::*;
use recents::migration::{Migrator, MigratorTrait, SchemaManager, summary_migration};
use recents::{
    BackfillOptions, BackfillScope, CancelToken, DriftKind, Error, RunSave, SaveOptions,
    SavedRunId, Schema, VerifyOptions, VerifyScope, WorkspaceId, backfill, checkpoint,
    delete_saved_run, repair, save_run, verify,
};
use recents_testkit::{Backend, TestDb, backend_tests};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement,
    TransactionTrait,
};
use support::{
    History, actual_summary, at, expected_summary, history_shape, insert_random_runs,
    published_run, version, workspace,
};

fn options(batch_rows: u32) -> BackfillOptions {
    BackfillOptions {
        batch_rows,
        ..BackfillOptions::default()
    }
}

fn small_batches() -> VerifyOptions {
    VerifyOptions { batch_rows: 50 }
}

async fn backfill_all<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    batch_rows: u32,
) -> recents::BackfillReport {
    backfill(
        conn,
        &BackfillScope::RecentWorkflows,
        &options(batch_rows),
        |_| {},
    )
    .await
    .unwrap()
}

async fn assert_exact<C: ConnectionTrait + TransactionTrait>(conn: &C) {
    assert_eq!(actual_summary(conn).await, expected_summary(conn).await);
    let report = verify(conn, &VerifyScope::All, &small_batches())
        .await
        .unwrap();
    assert!(report.is_exact(), "verify disagrees: {report:?}");
}

async fn backfill_of_random_histories_equals_the_oracle(db: &TestDb) {
    let c = &db.conn;
    let history = history_shape(c).await;
    let mut rng = StdRng::seed_from_u64(4);
    for (round, batch_rows) in [1, 7, 64, 10_000].into_iter().enumerate() {
        insert_random_runs(c, &history, &mut rng, 150).await;
        // One workspace alone first: exactly its rows, nobody else's.
        let ws = history.workspaces[round % history.workspaces.len()];
        let report = backfill(
            c,
            &BackfillScope::RecentWorkflowsOf(ws),
            &options(batch_rows),
            |_| {},
        )
        .await
        .unwrap();
        assert!(report.finished);
        let expected = expected_summary(c).await;
        let of_ws = |rows: &support::SummaryRows| {
            rows.iter()
                .filter(|((w, _, _), _)| *w == ws.0)
                .map(|(k, v)| (k.clone(), *v))
                .collect::<Vec<_>>()
        };
        assert_eq!(of_ws(&actual_summary(c).await), of_ws(&expected));
        let report = backfill_all(c, batch_rows).await;
        assert!(report.finished && !report.resumed);
        assert_eq!(report.rows_scanned, 150 * (round as u64 + 1));
        assert_exact(c).await;
    }
}

async fn backfill_twice_is_a_no_op(db: &TestDb) {
    let c = &db.conn;
    let history = history_shape(c).await;
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(2), 300).await;
    let first = backfill_all(c, 40).await;
    let after_first = actual_summary(c).await;
    let second = backfill_all(c, 40).await;
    assert_eq!(actual_summary(c).await, after_first);
    assert_eq!((first.rows_scanned, second.rows_scanned), (300, 300));
    assert!(
        !second.resumed,
        "a finished pass is not resumed: a new one starts"
    );
    assert_exact(c).await;
}

/// Eight writers save, re-save, move and delete runs through the library
/// while a backfill walks the history that was there before them.
async fn backfill_while_eight_writers_save_runs_ends_without_drift(db: &TestDb) {
    let c = &db.conn;
    let history = Arc::new(history_shape(c).await);
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(8), 1500).await;
    let writers: Vec<_> = (0..8u64)
        .map(|writer| {
            let history = history.clone();
            let url = db.url.clone();
            tokio::spawn(async move {
                let conn = recents_testkit_connect(&url).await;
                write_randomly(&conn, &history, writer, 40).await;
            })
        })
        .collect();
    let backfill_conn = recents_testkit_connect(&db.url).await;
    let report = backfill(
        &backfill_conn,
        &BackfillScope::RecentWorkflows,
        &BackfillOptions {
            batch_rows: 60,
            pause: Duration::from_millis(2),
            ..BackfillOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(report.finished && report.batches > 10);
    assert_exact(c).await;
}

async fn recents_testkit_connect(url: &str) -> DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(url);
    options.max_connections(2).sqlx_logging(false);
    sea_orm::Database::connect(options).await.unwrap()
}

/// Saves new runs, re-saves them later, moves them to other workflows and
/// deletes some, retrying what the database aborted as a deadlock.
async fn write_randomly(conn: &DatabaseConnection, history: &History, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(100 + seed);
    let mut mine: Vec<RunSave> = Vec::new();
    for _ in 0..steps {
        let pick = rng.random_range(0..10);
        let (workspace_id, version) = history.versions[rng.random_range(0..history.versions.len())];
        let later = at(300 + rng.random_range(0..300), 0);
        let save = if pick < 5 || mine.is_empty() {
            RunSave {
                id: None,
                workspace_id,
                uid: history.users[rng.random_range(0..history.users.len())].into(),
                parent_version_id: Some(version),
                run_status: "running".into(),
                updated_at: later,
            }
        } else {
            let i = rng.random_range(0..mine.len());
            if pick == 9 {
                let gone = mine.swap_remove(i);
                retry(|| delete_saved_run(conn, gone.workspace_id, gone.id.unwrap())).await;
                continue;
            }
            let mut again = mine[i].clone();
            again.updated_at = later;
            if pick >= 7 {
                // A move, possibly back in time.
                again.workspace_id = workspace_id;
                again.parent_version_id = Some(version);
            }
            again
        };
        let exact = SaveOptions::exact();
        let saved = retry(|| save_run(conn, &save, &exact)).await;
        let mut save = save;
        save.id = Some(saved.id);
        match mine.iter_mut().find(|r| r.id == save.id) {
            Some(kept) => *kept = save,
            None => mine.push(save),
        }
    }
}

async fn retry<T, Fut: Future<Output = Result<T, Error>>>(mut step: impl FnMut() -> Fut) -> T {
    for _ in 0..20 {
        match step().await {
            Ok(done) => return done,
            Err(err) if err.is_retryable() => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(err) => panic!("write failed: {err}"),
        }
    }
    panic!("write kept losing deadlocks")
}

const CHILD_URL: &str = "RECENTS_BACKFILL_CHILD_URL";

/// The backfill runs in a child process (this test binary again, told by an
/// environment variable to play the child); the parent kills it with SIGKILL
/// once a few batches are committed, then resumes it.
async fn a_backfill_killed_with_sigkill_resumes_from_its_checkpoint(db: &TestDb) {
    if let Ok(url) = std::env::var(CHILD_URL) {
        // The child: slow batches, until killed.
        let conn = recents_testkit_connect(&url).await;
        let slow = BackfillOptions {
            batch_rows: 25,
            pause: Duration::from_millis(10),
            ..BackfillOptions::default()
        };
        backfill(&conn, &BackfillScope::RecentWorkflows, &slow, |_| {})
            .await
            .unwrap();
        return;
    }
    let c = &db.conn;
    let history = history_shape(c).await;
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(9), 2000).await;
    let test = format!(
        "{}::a_backfill_killed_with_sigkill_resumes_from_its_checkpoint",
        db.backend.name()
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &test, "--nocapture", "--test-threads=1"])
        .env(CHILD_URL, &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let scope = BackfillScope::RecentWorkflows;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let at = checkpoint(c, &scope).await.unwrap();
        if at.is_some_and(|cp| cp.rows_scanned >= 250) {
            break;
        }
        assert!(Instant::now() < deadline, "the child made no progress");
        assert!(child.try_wait().unwrap().is_none(), "the child exited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop_databases_of(db, child.id()).await;

    let killed = checkpoint(c, &scope).await.unwrap().unwrap();
    assert!(killed.finished_at.is_none());
    assert!(killed.rows_scanned >= 250 && killed.rows_scanned < 2000);
    assert_eq!(killed.rows_total, 2000);
    let resumed = backfill_all(c, 100).await;
    assert!(resumed.resumed && resumed.finished);
    assert_eq!(
        resumed.rows_scanned,
        2000 - killed.rows_scanned,
        "the resumed pass merges exactly the rows the killed one had not committed"
    );
    assert_exact(c).await;
}

/// The killed child's own test database (every test makes one before it
/// runs) is left behind: drop it.
async fn drop_databases_of(db: &TestDb, pid: u32) {
    let prefix = format!("recents_t_{pid}_");
    match db.backend {
        Backend::Sqlite => {
            for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Backend::Postgres | Backend::MySql => {
            let list = match db.backend {
                Backend::Postgres => "SELECT datname AS name FROM pg_database",
                _ => "SELECT schema_name AS name FROM information_schema.schemata",
            };
            let rows = db
                .conn
                .query_all_raw(sea_orm::Statement::from_string(db.db_backend(), list))
                .await
                .unwrap();
            for row in rows {
                let name: String = row.try_get("", "name").unwrap();
                if name.starts_with(&prefix) {
                    let force = if db.backend == Backend::Postgres {
                        " WITH (FORCE)"
                    } else {
                        ""
                    };
                    db.conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}{force}"))
                        .await
                        .unwrap();
                }
            }
        }
    }
}

async fn a_cancelled_backfill_leaves_a_checkpoint_a_second_run_finishes(db: &TestDb) {
    let c = &db.conn;
    let history = history_shape(c).await;
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(6), 500).await;
    let cancel = CancelToken::new();
    let mut seen = Vec::new();
    let stopped = backfill(
        c,
        &BackfillScope::RecentWorkflows,
        &BackfillOptions {
            batch_rows: 100,
            cancel: cancel.clone(),
            ..BackfillOptions::default()
        },
        |progress| {
            seen.push(progress.clone());
            if seen.len() == 2 {
                cancel.cancel();
            }
        },
    )
    .await
    .unwrap();
    assert!(!stopped.finished);
    assert_eq!((stopped.batches, stopped.rows_scanned), (2, 200));
    let last = seen.last().unwrap();
    assert_eq!((last.rows_scanned, last.rows_total), (200, 500));
    assert!(last.eta.is_some() && last.rows_per_second > 0.0 && !last.finished);
    let at = checkpoint(c, &BackfillScope::RecentWorkflows)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (at.rows_scanned, at.resume_at_id, at.finished_at),
        (200, last.resume_at_id, None)
    );

    let rest = backfill_all(c, 100).await;
    assert!(rest.resumed && rest.finished);
    assert_eq!(rest.rows_scanned, 300);
    assert_exact(c).await;
}

/// A run moved while the backfill's batch would read it from an older
/// snapshot: the batch must wait for the move (on PostgreSQL through the
/// lowering lock, on MySQL/MariaDB through the runs' row locks, on SQLite
/// through the one writer), or it would write the run's old use back.
async fn a_run_moved_during_a_batch_is_not_written_back(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let (a, b) = (
        published_run(c, ws, "A").await,
        published_run(c, ws, "B").await,
    );
    let (va, vb) = (version(c, a).await, version(c, b).await);
    let history = History {
        workspaces: vec![ws],
        versions: vec![(ws, va)],
        users: vec!["ann"],
    };
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(1), 20).await;
    let newest = SavedRun::find().all(c).await.unwrap();
    let moving = newest
        .iter()
        .filter(|r| r.parent_version_id.is_some())
        .max_by_key(|r| (r.updated_at, r.id))
        .unwrap();

    let txn = c.begin().await.unwrap();
    save_run(
        &txn,
        &RunSave {
            id: Some(SavedRunId(moving.id)),
            workspace_id: ws,
            uid: moving.uid.clone(),
            parent_version_id: Some(vb),
            run_status: "completed".into(),
            updated_at: moving.updated_at,
        },
        &SaveOptions::exact(),
    )
    .await
    .unwrap();
    let other = recents_testkit_connect(&db.url).await;
    let running = tokio::spawn(async move { backfill_all(&other, 1000).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !running.is_finished(),
        "the backfill must wait for the move"
    );
    txn.commit().await.unwrap();
    assert!(running.await.unwrap().finished);
    assert_exact(c).await;
    let rows = actual_summary(c).await;
    assert_eq!(rows[&(ws.0, String::new(), b.0)].1, moving.id);
}

async fn verify_finds_planted_drift_of_each_kind_and_repair_removes_it(db: &TestDb) {
    let c = &db.conn;
    let history = history_shape(c).await;
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(3), 400).await;
    backfill_all(c, 1000).await;
    assert_exact(c).await;
    let rows: Vec<_> = actual_summary(c).await.into_iter().collect();
    let key = |i: usize| rows[i].0.clone();
    let ((missing_ws, missing_uid, missing_pr), _) = rows[0].clone();
    let stale = key(rows.len() / 3);
    let too_high = key(rows.len() / 2);
    let (extra_ws, extra_pr) = {
        // A workflow of the first workspace with no runs at all.
        let pr = published_run(c, history.workspaces[0], "unused").await;
        (history.workspaces[0], pr)
    };
    let run = |sql: String| async move { c.execute_unprepared(&sql).await.unwrap() };
    let row_where = |(ws, uid, pr): &(i64, String, i64)| {
        format!("workspace_id = {ws} AND uid = '{uid}' AND published_run_id = {pr}")
    };
    run(format!(
        "DELETE FROM workspace_recent_workflows WHERE {}",
        row_where(&(missing_ws, missing_uid.clone(), missing_pr))
    ))
    .await;
    // Stale: an older run of nobody's, at the dawn of time.
    let (dawn, late) = (
        timestamp_literal(db, at(-100_000, 0)),
        timestamp_literal(db, at(900_000, 0)),
    );
    run(format!(
        "UPDATE workspace_recent_workflows SET last_used_at = {dawn} WHERE {}",
        row_where(&stale)
    ))
    .await;
    run(format!(
        "UPDATE workspace_recent_workflows SET last_used_at = {late} WHERE {}",
        row_where(&too_high)
    ))
    .await;
    run(format!(
        "INSERT INTO workspace_recent_workflows \
         (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at) \
         VALUES ({}, 'ghost', {}, 1, {late})",
        extra_ws.0, extra_pr.0
    ))
    .await;
    // Keep the oracle's view of what the planted rows should be.
    let expected = expected_summary(c).await;

    let found = verify(c, &VerifyScope::All, &small_batches())
        .await
        .unwrap();
    let kinds = [
        DriftKind::Missing,
        DriftKind::Stale,
        DriftKind::TooHigh,
        DriftKind::Extra,
    ];
    for kind in kinds {
        assert_eq!(found.count(kind), 1, "{kind:?} in {found:?}");
    }
    let sample = |kind| found.samples.iter().find(|d| d.kind == kind).unwrap();
    let as_key = |d: &recents::Drift| (d.workspace_id.0, d.uid.clone(), d.published_run_id.0);
    assert_eq!(
        as_key(sample(DriftKind::Missing)),
        (missing_ws, missing_uid.clone(), missing_pr)
    );
    assert_eq!(as_key(sample(DriftKind::Stale)), stale);
    assert_eq!(as_key(sample(DriftKind::TooHigh)), too_high);
    assert_eq!(
        as_key(sample(DriftKind::Extra)),
        (extra_ws.0, "ghost".into(), extra_pr.0)
    );
    let missing = sample(DriftKind::Missing);
    assert_eq!(
        (missing.summary, missing.history.map(|(id, at)| (at, id.0))),
        (None, expected.get(&as_key(missing)).copied())
    );
    assert_eq!(found.history_rows, 400);
    assert_eq!(found.summary_rows, rows.len() as u64);

    // One workspace's verify sees only its own drift.
    let ws_only = verify(
        c,
        &VerifyScope::Workspace(extra_ws),
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert!(ws_only.samples.iter().all(|d| d.workspace_id == extra_ws));
    assert!(ws_only.extra == 1 && ws_only.drifted() < found.drifted() + 1);

    let repaired = repair(c, &VerifyScope::All, &small_batches())
        .await
        .unwrap();
    assert_eq!(repaired.repaired, 4);
    assert_eq!(repaired.found.drifted(), 4);
    assert_exact(c).await;
    assert_eq!(actual_summary(c).await, expected);
}

/// A literal of `t` as this backend stores it, for SQL planted by hand.
fn timestamp_literal(db: &TestDb, t: DateTime<Utc>) -> String {
    match db.backend {
        // sqlx's text form, so that text order stays time order.
        Backend::Sqlite => format!("'{}'", t.to_rfc3339()),
        Backend::Postgres => format!("'{}'::timestamptz", t.to_rfc3339()),
        Backend::MySql => format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
    }
}

async fn last_dequeues_are_backfilled_from_jobs_and_never_lowered(db: &TestDb) {
    let c = &db.conn;
    support::random_jobs(c, 5, 300, 12).await;
    // User 1 dequeued later than any job left shows (its jobs were purged):
    // a backfill never lowers a row.
    let ahead = at(5000, 0);
    ExecutionLastDequeue::insert(recents::entity::execution_last_dequeue::ActiveModel {
        user_id: Set(1),
        latest_dequeue: Set(ahead),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(
            recents::entity::execution_last_dequeue::Column::UserId,
        )
        .update_column(recents::entity::execution_last_dequeue::Column::LatestDequeue)
        .to_owned(),
    )
    .exec_without_returning(c)
    .await
    .unwrap();

    let mut expected: BTreeMap<i64, DateTime<Utc>> = BTreeMap::new();
    for job in ExecutionJob::find().all(c).await.unwrap() {
        if let Some(started) = job.started_at {
            let e = expected.entry(job.user_id).or_insert(started);
            *e = (*e).max(started);
        }
    }
    expected.insert(1, ahead);
    for _ in 0..2 {
        let report = backfill(c, &BackfillScope::LastDequeues, &options(32), |_| {})
            .await
            .unwrap();
        assert!(report.finished && report.rows_scanned == 300);
        let actual: BTreeMap<i64, DateTime<Utc>> = ExecutionLastDequeue::find()
            .all(c)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.user_id, r.latest_dequeue))
            .collect();
        assert_eq!(actual, expected);
    }
}

/// `migrate up` over a database that already has history leaves an exact
/// summary, whatever the batches' boundaries.
async fn the_summary_migration_fills_from_existing_history(db: &TestDb) {
    let c = &db.conn;
    let all = Migrator::migrations().len() as u32;
    Migrator::down(c, Some(all - 1)).await.unwrap();
    assert_eq!(Migrator::get_applied_migrations(c).await.unwrap().len(), 1);
    let history = history_shape(c).await;
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(7), 600).await;
    Migrator::up(c, None).await.unwrap();
    assert_exact(c).await;
}

/// The migration's fill stopped between two of its batches (its task
/// dropped mid-statement, as a killed process drops its connections) goes on
/// where it stopped at the next `up`, and a workspace and a workflow deleted
/// meanwhile leave no row behind (PostgreSQL adds its foreign keys only after
/// the fill, so rows staged before the delete reach the summary first).
async fn a_summary_migration_stopped_mid_fill_resumes_exact(db: &TestDb) {
    let c = &db.conn;
    let all = Migrator::migrations().len() as u32;
    Migrator::down(c, Some(all - 1)).await.unwrap();
    let history = history_shape(c).await;
    insert_random_runs(c, &history, &mut StdRng::seed_from_u64(11), 3000).await;
    let postgres = db.backend == Backend::Postgres;
    // What the fill has written so far: staged member rows on PostgreSQL,
    // summary rows elsewhere.
    let progress = if postgres {
        "SELECT COUNT(*) AS n FROM workspace_recent_workflows_fill"
    } else {
        "SELECT COUNT(*) AS n FROM workspace_recent_workflows"
    };
    let url = db.url.clone();
    let fill = tokio::spawn(async move {
        let conn = recents_testkit_connect(&url).await;
        let summary = summary_migration(&Schema::default(), Some(3));
        summary.up(&SchemaManager::new(&conn)).await
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = match c
            .query_one_raw(Statement::from_string(c.get_database_backend(), progress))
            .await
        {
            Ok(Some(row)) => row.try_get::<i64>("", "n").unwrap(),
            // Not created yet.
            _ => 0,
        };
        // The history has a few dozen summary keys, and each batch of three
        // runs stages up to three rows: both are a few batches in.
        if written >= 20 {
            break;
        }
        if fill.is_finished() {
            panic!(
                "the fill ended before it could be stopped: {:?}",
                fill.await
            );
        }
        assert!(Instant::now() < deadline, "the fill made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    fill.abort();
    assert!(fill.await.unwrap_err().is_cancelled());
    if postgres {
        let summary_rows = c
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT COUNT(*) AS n FROM workspace_recent_workflows",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(
            summary_rows, 0,
            "the summary is written only once every batch is staged"
        );
    }
    let (deleted_workspace, _) = history.versions[0];
    let (_, version_of_deleted_workflow) = history.versions[history.versions.len() - 1];
    let b = c.get_database_backend();
    c.execute_raw(recents::admin::statement(
        b,
        "DELETE FROM workspaces WHERE id = ?",
        vec![deleted_workspace.0.into()],
    ))
    .await
    .unwrap();
    c.execute_raw(recents::admin::statement(
        b,
        "DELETE FROM published_runs WHERE id = \
         (SELECT published_run_id FROM published_run_versions WHERE id = ?)",
        vec![version_of_deleted_workflow.0.into()],
    ))
    .await
    .unwrap();
    Migrator::up(c, None).await.unwrap();
    assert_exact(c).await;
    if postgres {
        let staging = c
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT to_regclass('workspace_recent_workflows_fill') IS NULL AS gone",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<bool>("", "gone")
            .unwrap();
        assert!(staging, "the staging table is dropped with the reduce");
    }
}

async fn bad_backfill_and_verify_input_is_a_typed_error(db: &TestDb) {
    let c = &db.conn;
    for batch_rows in [0, 1_000_001] {
        assert!(matches!(
            backfill(
                c,
                &BackfillScope::RecentWorkflows,
                &options(batch_rows),
                |_| {}
            )
            .await,
            Err(Error::InvalidArgument {
                what: "batch_rows",
                ..
            })
        ));
    }
    let nowhere = WorkspaceId(424_242);
    assert!(matches!(
        backfill(c, &BackfillScope::RecentWorkflowsOf(nowhere), &options(10), |_| {}).await,
        Err(Error::WorkspaceNotFound(w)) if w == nowhere
    ));
    assert!(matches!(
        verify(
            c,
            &VerifyScope::Workspace(nowhere),
            &VerifyOptions::default()
        )
        .await,
        Err(Error::WorkspaceNotFound(_))
    ));
    assert!(matches!(
        verify(c, &VerifyScope::All, &VerifyOptions { batch_rows: 0 }).await,
        Err(Error::InvalidArgument { .. })
    ));
    // Nothing was started: no checkpoint.
    assert_eq!(
        checkpoint(c, &BackfillScope::RecentWorkflows)
            .await
            .unwrap(),
        None
    );
    // An empty history is a pass done as it starts, and says so once.
    let mut events = Vec::new();
    let empty = backfill(c, &BackfillScope::RecentWorkflows, &options(10), |p| {
        events.push(p.clone())
    })
    .await
    .unwrap();
    assert!(empty.finished && empty.rows_scanned == 0 && empty.batches == 0);
    assert_eq!(events.len(), 1);
    assert!(events[0].finished && events[0].rows_total == 0);
}

backend_tests!(
    backfill_of_random_histories_equals_the_oracle,
    backfill_twice_is_a_no_op,
    backfill_while_eight_writers_save_runs_ends_without_drift,
    a_backfill_killed_with_sigkill_resumes_from_its_checkpoint,
    a_cancelled_backfill_leaves_a_checkpoint_a_second_run_finishes,
    a_run_moved_during_a_batch_is_not_written_back,
    verify_finds_planted_drift_of_each_kind_and_repair_removes_it,
    last_dequeues_are_backfilled_from_jobs_and_never_lowered,
    the_summary_migration_fills_from_existing_history,
    a_summary_migration_stopped_mid_fill_resumes_exact,
    bad_backfill_and_verify_input_is_a_typed_error,
);

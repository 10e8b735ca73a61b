//! Concurrent writers on real connections: transactions committing in any
//! order leave every summary row equal to its history aggregate, with the
//! summary kept by the service and by the triggers; and with a freshness
//! window, writers on one hot workflow do not queue behind its row.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recents::{
    RunSave, SaveOptions, SavedRunId, Scope, VersionId, WorkspaceId, recent_workflows,
    recent_workflows_from_history, save_run,
};
use recents_testkit::{Backend, TestDb, backend_tests};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use support::{Mode, keep_in};
use support::{actual_summary, at, expected_summary, published_run, version, workspace};

const USERS: [&str; 4] = ["ann", "bob", "cy", "dee"];

/// 16 tasks × 500 saves (inserts, updates and moves, random `updated_at`),
/// each in its own transaction held open a random moment so commits
/// interleave out of order. SQLite serialises writers, so it runs a smaller
/// version of the same story.
async fn out_of_order_commits(db: &TestDb, mode: Mode) {
    let recents = keep_in(&db.conn, mode).await;
    let (tasks, saves) = match db.backend {
        Backend::Sqlite => (4, 100),
        _ => (16, 500),
    };
    let c = &db.conn;
    let workspaces = [
        workspace(c, "a", true).await,
        workspace(c, "b", false).await,
    ];
    let mut versions = Vec::new();
    for title in ["A", "B", "C"] {
        let pr = published_run(c, workspaces[0], title).await;
        versions.push(version(c, pr).await);
    }
    let pool = db.connect_again(tasks as u32 + 1).await;
    let retries = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (pool, versions, retries) = (pool.clone(), versions.clone(), retries.clone());
        let recents = recents.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task);
            let mut mine: Vec<SavedRunId> = Vec::new();
            for _ in 0..saves {
                let save = RunSave {
                    id: (!mine.is_empty() && rng.random_bool(0.4))
                        .then(|| mine[rng.random_range(0..mine.len())]),
                    workspace_id: workspaces[rng.random_range(0..2)],
                    uid: USERS[rng.random_range(0..USERS.len())].into(),
                    parent_version_id: rng
                        .random_bool(0.95)
                        .then(|| versions[rng.random_range(0..versions.len())]),
                    run_status: "done".into(),
                    updated_at: at(rng.random_range(0..60), rng.random_range(0..1_000_000)),
                };
                let hold = Duration::from_micros(rng.random_range(0..2_000));
                loop {
                    let txn = run_save_transaction(&pool).await;
                    match recents.save_run(&txn, &save, &SaveOptions::exact()).await {
                        Ok(run) => {
                            tokio::time::sleep(hold).await;
                            txn.commit().await.unwrap();
                            if save.id.is_none() {
                                mine.push(run.id);
                            }
                            break;
                        }
                        // A deadlock between moves is the database's answer;
                        // the caller runs the transaction again.
                        Err(e) if e.is_retryable() => {
                            retries.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("save failed: {e}"),
                    }
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    eprintln!(
        "{} ({mode:?}): {tasks}×{saves} saves, {} retried transactions",
        db.backend.name(),
        retries.load(Ordering::Relaxed)
    );
    assert_eq!(actual_summary(c).await, expected_summary(c).await);
    for ws in workspaces {
        for scope in [
            Scope::Workspace,
            Scope::Member("ann".into()),
            Scope::Member("dee".into()),
        ] {
            assert_eq!(
                recent_workflows(c, ws, &scope, 10).await.unwrap(),
                recent_workflows_from_history(c, ws, &scope, 10)
                    .await
                    .unwrap()
            );
        }
    }
    pool.close().await.unwrap();
}

async fn out_of_order_commits_end_exact(db: &TestDb) {
    out_of_order_commits(db, Mode::Service).await;
}

async fn out_of_order_commits_end_exact_in_trigger_mode(db: &TestDb) {
    out_of_order_commits(db, Mode::Triggers).await;
}

/// The backend's run-save transaction. On SQLite it takes the write lock up
/// front: a deferred transaction that reads before it writes can be refused
/// the lock (SQLITE_BUSY) instead of waiting for it.
async fn run_save_transaction(pool: &DatabaseConnection) -> DatabaseTransaction {
    pool.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// How many connections of this database wait on a lock right now. MariaDB's
/// INNODB_TRX does not list these waiters; its processlist shows them inside
/// the summary upsert, which without a lock wait lasts microseconds.
async fn lock_waiters(monitor: &DatabaseConnection, backend: Backend) -> u64 {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database()"
        }
        _ => {
            "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST \
             WHERE db = DATABASE() AND info LIKE 'INSERT INTO `workspace_recent_workflows`%'"
        }
    };
    let row = monitor
        .query_one_raw(Statement::from_string(monitor.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() as u64
}

struct HotRun {
    peak_waiters: u64,
    sampled_waits: u64,
}

/// 32 writers save runs of one workflow, each inside a run-save transaction
/// that stays open a few milliseconds after the save (as a backend's does),
/// while a monitor samples how many connections wait on a lock.
async fn hot_workflow(db: &TestDb, options: SaveOptions, ws: WorkspaceId, v: VersionId) -> HotRun {
    const WRITERS: u64 = 32;
    const SAVES: u64 = 15;
    let pool = db.connect_again(WRITERS as u32 + 1).await;
    let monitor = db.connect_again(1).await;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        let backend = db.backend;
        tokio::spawn(async move {
            let (mut peak, mut sum) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                let n = lock_waiters(&monitor, backend).await;
                peak = peak.max(n);
                sum += n;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (peak, sum)
        })
    };
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..SAVES {
                let save = RunSave {
                    id: None,
                    workspace_id: ws,
                    uid: format!("member-{writer}"),
                    parent_version_id: Some(v),
                    run_status: "streaming".into(),
                    updated_at: chrono::Utc::now(),
                };
                let txn = run_save_transaction(&pool).await;
                save_run(&txn, &save, &options).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                txn.commit().await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let (peak_waiters, sampled_waits) = sampler.await.unwrap();
    pool.close().await.unwrap();
    HotRun {
        peak_waiters,
        sampled_waits,
    }
}

/// The seed's heaviest workspace: one workflow, everyone on it. Exact saves
/// all take the workspace row's lock and queue behind each other; with a
/// freshness window almost every save only reads the row, and the guarantee
/// (within one window below the true latest use, never above) holds.
async fn a_freshness_window_keeps_hot_writers_from_queueing(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "heavy", false).await;
    let pr = published_run(c, ws, "the one workflow").await;
    let v = version(c, pr).await;

    let exact = hot_workflow(db, SaveOptions::exact(), ws, v).await;
    assert_eq!(actual_summary(c).await, expected_summary(c).await);

    let window = Duration::from_secs(2);
    let windowed = hot_workflow(db, SaveOptions::with_freshness_window(window), ws, v).await;
    eprintln!(
        "{}: lock waiters, exact: peak {} (samples {}); window {:?}: peak {} (samples {})",
        db.backend.name(),
        exact.peak_waiters,
        exact.sampled_waits,
        window,
        windowed.peak_waiters,
        windowed.sampled_waits
    );
    assert!(
        exact.peak_waiters >= 8,
        "the exact run should show the queue the window avoids (peak {})",
        exact.peak_waiters
    );
    assert!(
        windowed.sampled_waits * 4 < exact.sampled_waits,
        "waits with the window ({}) should be a small fraction of exact ({})",
        windowed.sampled_waits,
        exact.sampled_waits
    );

    // The guarantee: each row within one window below its true value, never above.
    let expected = expected_summary(c).await;
    let actual = actual_summary(c).await;
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, (truth, _)) in &expected {
        let (stored, run) = actual[key];
        assert!(stored <= *truth, "{key:?} above the truth");
        assert!(
            *truth - stored <= chrono::Duration::from_std(window).unwrap(),
            "{key:?} lags past the window"
        );
        let run_time: chrono::DateTime<chrono::Utc> = c
            .query_one_raw(Statement::from_string(
                c.get_database_backend(),
                format!("SELECT updated_at FROM saved_runs WHERE id = {run}"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "updated_at")
            .unwrap();
        assert_eq!(
            run_time, stored,
            "{key:?} names a run with exactly its time"
        );
    }
}

backend_tests!(
    out_of_order_commits_end_exact,
    out_of_order_commits_end_exact_in_trigger_mode,
);

// SQLite has one writer at a time by design: no row lock to queue on.
mod hot_row {
    use super::*;
    backend_tests!(servers: a_freshness_window_keeps_hot_writers_from_queueing);
}

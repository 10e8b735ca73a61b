//! Every path that lowers a summary row, raced against a save that is still
//! open when it starts: the lowering path waits for the save's locks, and
//! once both committed the summary equals history. On the servers, where two
//! transactions really run at once (SQLite has one writer).

mod support;

use std::time::Duration;

use recents::{
    Error, RunSave, SaveOptions, Scope, VerifyOptions, VerifyScope, VersionId, WorkspaceId,
    delete_published_run, delete_saved_run, delete_version, recent_workflows,
    recent_workflows_from_history, save_run, verify,
};
use recents_testkit::{Backend, TestDb, backend_tests};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, TransactionTrait};
use support::{actual_summary, at, expected_summary, published_run, version, workspace};

fn run(ws: WorkspaceId, uid: &str, v: VersionId, seconds: i64) -> RunSave {
    support::new_run(ws, uid, v, at(seconds, 0))
}

async fn assert_exact(c: &DatabaseConnection, ws: WorkspaceId) {
    assert_eq!(actual_summary(c).await, expected_summary(c).await);
    let report = verify(c, &VerifyScope::All, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_exact(), "{report:?}");
    for scope in [
        Scope::Workspace,
        Scope::Member("ann".into()),
        Scope::Member("bob".into()),
    ] {
        assert_eq!(
            recent_workflows(c, ws, &scope, 10).await.unwrap(),
            recent_workflows_from_history(c, ws, &scope, 10)
                .await
                .unwrap(),
            "{scope:?}"
        );
    }
}

/// How long the second transaction is given to reach the first one's locks.
const WAIT: Duration = Duration::from_millis(400);

/// Runs `lower` on a pool of its own while `open` (a transaction that already
/// saved) stays open, checks that it waits, then commits `open`.
async fn race<T: Send + 'static>(
    open: sea_orm::DatabaseTransaction,
    lower: tokio::task::JoinHandle<T>,
) -> T {
    tokio::time::sleep(WAIT).await;
    assert!(
        !lower.is_finished(),
        "the lowering path waits for the open save"
    );
    open.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), lower)
        .await
        .expect("the lowering path ends once the save commits")
        .unwrap()
}

struct Fixture {
    ws: WorkspaceId,
    /// Two versions of workflow A, one of workflow B.
    a1: VersionId,
    a2: VersionId,
    b1: VersionId,
}

async fn fixture(c: &DatabaseConnection) -> Fixture {
    let ws = workspace(c, "team", false).await;
    let a = published_run(c, ws, "A").await;
    let b = published_run(c, ws, "B").await;
    let f = Fixture {
        ws,
        a1: version(c, a).await,
        a2: version(c, a).await,
        b1: version(c, b).await,
    };
    for (uid, v, seconds) in [("bob", f.a2, 1), ("bob", f.b1, 2), ("ann", f.b1, 3)] {
        save_run(c, &run(ws, uid, v, seconds), &SaveOptions::exact())
            .await
            .unwrap();
    }
    f
}

async fn delete_version_racing_a_save_forgets_the_saved_member(db: &TestDb) {
    let c = &db.conn;
    let f = fixture(c).await;
    let open = c.begin().await.unwrap();
    save_run(&open, &run(f.ws, "ann", f.a1, 9), &SaveOptions::exact())
        .await
        .unwrap();
    let other = db.connect_again(2).await;
    let a1 = f.a1;
    let lower = tokio::spawn(async move { delete_version(&other, a1).await });
    race(open, lower).await.unwrap();
    assert_exact(c, f.ws).await;
}

async fn delete_published_run_racing_a_save_leaves_no_row_of_it(db: &TestDb) {
    let c = &db.conn;
    let f = fixture(c).await;
    let open = c.begin().await.unwrap();
    save_run(&open, &run(f.ws, "ann", f.a1, 9), &SaveOptions::exact())
        .await
        .unwrap();
    let other = db.connect_again(2).await;
    let a = recents::PublishedRunId(
        recents::entity::prelude::PublishedRunVersion::find_by_id(f.a1.0)
            .one(c)
            .await
            .unwrap()
            .unwrap()
            .published_run_id,
    );
    let lower = tokio::spawn(async move { delete_published_run(&other, a).await });
    race(open, lower).await.unwrap();
    assert_exact(c, f.ws).await;
}

async fn delete_saved_run_racing_a_save_in_its_group_keeps_the_group_exact(db: &TestDb) {
    let c = &db.conn;
    let f = fixture(c).await;
    // The deleted run is the group's latest; the racing save is older (the
    // group falls back to it) or newer (it stays the latest).
    for (latest_at, racing_at) in [(20, 10), (30, 40)] {
        let latest = save_run(c, &run(f.ws, "ann", f.a1, latest_at), &SaveOptions::exact())
            .await
            .unwrap();
        let open = c.begin().await.unwrap();
        save_run(
            &open,
            &run(f.ws, "ann", f.a2, racing_at),
            &SaveOptions::exact(),
        )
        .await
        .unwrap();
        let other = db.connect_again(2).await;
        let lower = tokio::spawn(async move { delete_saved_run(&other, f.ws, latest.id).await });
        race(open, lower).await.unwrap();
        assert_exact(c, f.ws).await;
    }
}

async fn a_move_racing_a_delete_of_the_version_it_moves_into_stays_exact(db: &TestDb) {
    let c = &db.conn;
    let f = fixture(c).await;
    let moved = save_run(c, &run(f.ws, "ann", f.b1, 9), &SaveOptions::exact())
        .await
        .unwrap();
    let open = c.begin().await.unwrap();
    let to_a = RunSave {
        id: Some(moved.id),
        ..run(f.ws, "ann", f.a1, 10)
    };
    save_run(&open, &to_a, &SaveOptions::exact()).await.unwrap();
    let other = db.connect_again(2).await;
    let a1 = f.a1;
    let lower = tokio::spawn(async move { delete_version(&other, a1).await });
    race(open, lower).await.unwrap();
    assert_exact(c, f.ws).await;
}

async fn a_move_racing_a_delete_of_the_version_it_leaves_stays_exact(db: &TestDb) {
    let c = &db.conn;
    let f = fixture(c).await;
    let moved = save_run(c, &run(f.ws, "ann", f.a1, 9), &SaveOptions::exact())
        .await
        .unwrap();
    save_run(c, &run(f.ws, "ann", f.a1, 5), &SaveOptions::exact())
        .await
        .unwrap();
    let open = c.begin().await.unwrap();
    let to_b = RunSave {
        id: Some(moved.id),
        ..run(f.ws, "ann", f.b1, 10)
    };
    save_run(&open, &to_b, &SaveOptions::exact()).await.unwrap();
    let other = db.connect_again(2).await;
    let a1 = f.a1;
    let lower = tokio::spawn(async move { delete_version(&other, a1).await });
    // The move holds the run's row lock, which the version's cascade needs.
    race(open, lower).await.unwrap();
    assert_exact(c, f.ws).await;
}

async fn a_save_into_a_version_deleted_while_it_waits_is_version_not_found(db: &TestDb) {
    let c = &db.conn;
    let f = fixture(c).await;
    let deleting = c.begin().await.unwrap();
    delete_version(&deleting, f.a1).await.unwrap();
    let other = db.connect_again(2).await;
    let (ws, a1) = (f.ws, f.a1);
    let save = tokio::spawn(async move {
        let txn = other.begin().await.unwrap();
        // A read first, as a caller's transaction would: on MySQL/MariaDB it
        // fixes the transaction's snapshot before the version's delete commits.
        txn.execute_unprepared("SELECT COUNT(*) FROM published_run_versions")
            .await
            .unwrap();
        let saved = save_run(&txn, &run(ws, "ann", a1, 9), &SaveOptions::exact()).await;
        // The caller's transaction is still usable, as when the version was
        // already missing.
        let usable = txn.execute_unprepared("SELECT 1").await.is_ok();
        txn.commit().await.unwrap();
        (saved.map(|r| r.id), usable)
    });
    let (saved, usable) = race(deleting, save).await;
    assert!(
        matches!(saved, Err(Error::VersionNotFound(v)) if v == f.a1),
        "{saved:?}"
    );
    assert!(usable, "the caller's transaction survives");
    assert_exact(c, f.ws).await;
}

/// MariaDB rolls the whole transaction back on some errors whose codes are
/// not deadlocks: with `innodb_snapshot_isolation`, a write to a row changed
/// after the transaction's snapshot is one. The caller learns to run it again.
async fn an_error_after_which_mariadb_rolled_the_transaction_back_is_retryable(db: &TestDb) {
    if db.backend != Backend::MySql {
        return;
    }
    let c = &db.conn;
    let f = fixture(c).await;
    let caller = db.connect_again(1).await;
    caller
        .execute_unprepared("SET SESSION innodb_snapshot_isolation = ON")
        .await
        .unwrap();
    let txn = caller.begin().await.unwrap();
    txn.execute_unprepared(
        "INSERT INTO workspaces (name, is_personal, created_at) VALUES ('marker', false, NOW())",
    )
    .await
    .unwrap();
    txn.execute_unprepared("SELECT * FROM workspace_recent_workflows")
        .await
        .unwrap();
    // Another writer changes ann's row of B after the caller's snapshot.
    save_run(c, &run(f.ws, "ann", f.b1, 20), &SaveOptions::exact())
        .await
        .unwrap();
    let err = save_run(&txn, &run(f.ws, "ann", f.b1, 30), &SaveOptions::exact())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(matches!(err, Error::TransactionRolledBack(_)), "{err:?}");
    drop(txn);
    let marker = c
        .query_one_raw(recents::admin::statement(
            c.get_database_backend(),
            "SELECT COUNT(*) AS n FROM workspaces WHERE name = 'marker'",
            vec![],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(marker, 0, "the caller's earlier work was rolled back too");
    assert_exact(c, f.ws).await;
}

/// A save that waited too long for a row lock (MySQL/MariaDB 1205, whose
/// SQLSTATE says nothing) lost a race: run it again.
async fn a_lock_wait_timeout_is_retryable(db: &TestDb) {
    if db.backend != Backend::MySql {
        return;
    }
    let c = &db.conn;
    let f = fixture(c).await;
    let holder = c.begin().await.unwrap();
    save_run(&holder, &run(f.ws, "ann", f.b1, 20), &SaveOptions::exact())
        .await
        .unwrap();
    let impatient = db.connect_again(1).await;
    impatient
        .execute_unprepared("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    let err = save_run(
        &impatient,
        &run(f.ws, "ann", f.b1, 30),
        &SaveOptions::exact(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    holder.commit().await.unwrap();
    assert_exact(c, f.ws).await;
}

backend_tests!(
    servers: a_lock_wait_timeout_is_retryable,
    delete_version_racing_a_save_forgets_the_saved_member,
    delete_published_run_racing_a_save_leaves_no_row_of_it,
    delete_saved_run_racing_a_save_in_its_group_keeps_the_group_exact,
    a_move_racing_a_delete_of_the_version_it_moves_into_stays_exact,
    a_move_racing_a_delete_of_the_version_it_leaves_stays_exact,
    a_save_into_a_version_deleted_while_it_waits_is_version_not_found,
    an_error_after_which_mariadb_rolled_the_transaction_back_is_retryable,
);

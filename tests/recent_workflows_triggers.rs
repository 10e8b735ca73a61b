//! Trigger mode (`[recent_workflows] maintained_by = "triggers"`): writers
//! that never call recents (raw SQL in bulk, moves, deletes, cascades) leave
//! the summary exact; a caller that makes the constraints immediate too; a
//! rollback leaves nothing; the write path writes no summary of its own; a
//! backend switches modes by a migration and `verify` stays exact.

mod support;

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use recents::migration::{Migrator, MigratorTrait};
use recents::{
    Error, PublishedRunId, Recents, SaveOptions, SavedRun, SavedRunId, Scope, VerifyOptions,
    VerifyScope, VersionId,
};
use recents_testkit::{Backend, TestDb, backend_tests};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};
use support::{
    Mode, actual_summary, at, expected_summary, history_shape, insert_random_runs, keep_in,
    new_run, published_run, schema_in, version, workspace,
};

/// A raw statement, `?` placeholders on every backend.
async fn exec<C: ConnectionTrait>(c: &C, sql: &str, values: Vec<Value>) -> u64 {
    c.execute_raw(recents::admin::statement(
        c.get_database_backend(),
        sql,
        values,
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .rows_affected()
}

async fn assert_exact<C: ConnectionTrait>(c: &C, after: &str) {
    assert_eq!(
        actual_summary(c).await,
        expected_summary(c).await,
        "after {after}"
    );
}

async fn assert_verified(c: &DatabaseConnection, recents: &Recents) {
    let report = recents
        .verify(c, &VerifyScope::All, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_exact(), "{report:?}");
}

const INSERT_RUN: &str = "INSERT INTO saved_runs \
    (workspace_id, uid, parent_version_id, run_status, created_at, updated_at) ";

async fn raw_sql_writers_keep_the_summary_exact(db: &TestDb) {
    let c = &db.conn;
    let recents = keep_in(c, Mode::Triggers).await;
    let h = history_shape(c).await;
    insert_random_runs(c, &h, &mut StdRng::seed_from_u64(7), 400).await;
    assert_exact(c, "multi-row inserts").await;

    let copied = exec(
        c,
        &format!(
            "{INSERT_RUN}SELECT workspace_id, 'copy', parent_version_id, run_status, created_at, \
             updated_at FROM saved_runs WHERE uid = 'ann'"
        ),
        vec![],
    )
    .await;
    assert!(copied > 0);
    assert_exact(c, "INSERT … SELECT").await;

    // Many runs move from one workflow's version to another workflow's.
    let (from, to) = (h.versions[0].1, h.versions[3].1);
    let moved = exec(
        c,
        "UPDATE saved_runs SET parent_version_id = ? WHERE parent_version_id = ?",
        vec![to.0.into(), from.0.into()],
    )
    .await;
    assert!(moved > 0);
    assert_exact(c, "an UPDATE between versions").await;

    exec(
        c,
        "UPDATE saved_runs SET uid = 'cy', workspace_id = ? WHERE uid = 'bob'",
        vec![h.workspaces[1].0.into()],
    )
    .await;
    assert_exact(c, "an UPDATE between users and workspaces").await;
    exec(
        c,
        "UPDATE saved_runs SET updated_at = ? WHERE uid = 'cy' AND parent_version_id IS NOT NULL",
        vec![at(1, 0).into()],
    )
    .await;
    assert_exact(c, "an UPDATE back in time").await;
    exec(
        c,
        "UPDATE saved_runs SET parent_version_id = NULL WHERE uid = 'copy'",
        vec![],
    )
    .await;
    assert_exact(c, "an UPDATE detaching runs").await;
    exec(c, "UPDATE saved_runs SET run_status = 'archived'", vec![]).await;
    assert_exact(c, "an UPDATE of nothing the summary reads").await;

    let deleted = exec(
        c,
        "DELETE FROM saved_runs WHERE parent_version_id = ?",
        vec![to.0.into()],
    )
    .await;
    assert!(deleted > 0);
    assert_exact(c, "a DELETE of a version's runs").await;

    exec(
        c,
        "DELETE FROM published_run_versions WHERE id = ?",
        vec![h.versions[5].1.0.into()],
    )
    .await;
    assert_exact(c, "a DELETE of a version (its runs detached)").await;
    let published = published_run_of(c, h.versions[7].1).await;
    exec(
        c,
        "DELETE FROM published_runs WHERE id = ?",
        vec![published.0.into()],
    )
    .await;
    assert_exact(c, "a DELETE of a published run (its versions cascade)").await;
    exec(c, "DELETE FROM saved_runs WHERE uid = 'Ann'", vec![]).await;
    assert_exact(c, "a DELETE of a user's runs").await;
    exec(
        c,
        "DELETE FROM workspaces WHERE id = ?",
        vec![h.workspaces[2].0.into()],
    )
    .await;
    assert_exact(c, "a DELETE of a workspace").await;
    assert_verified(c, &recents).await;
}

async fn published_run_of(c: &DatabaseConnection, v: VersionId) -> PublishedRunId {
    use sea_orm::EntityTrait;
    PublishedRunId(
        recents::entity::prelude::PublishedRunVersion::find_by_id(v.0)
            .one(c)
            .await
            .unwrap()
            .unwrap()
            .published_run_id,
    )
}

/// The caller's transaction runs `SET CONSTRAINTS ALL IMMEDIATE` first
/// (PostgreSQL; the row triggers of the other backends are immediate
/// anyway): the summary is then exact after every statement, inside the
/// transaction.
async fn a_caller_that_sets_constraints_immediate_stays_exact(db: &TestDb) {
    let c = &db.conn;
    keep_in(c, Mode::Triggers).await;
    let h = history_shape(c).await;
    insert_random_runs(c, &h, &mut StdRng::seed_from_u64(3), 100).await;
    let txn = c.begin().await.unwrap();
    if db.backend == Backend::Postgres {
        txn.execute_unprepared("SET CONSTRAINTS ALL IMMEDIATE")
            .await
            .unwrap();
    }
    insert_random_runs(&txn, &h, &mut StdRng::seed_from_u64(4), 100).await;
    assert_exact(&txn, "inserts, inside the transaction").await;
    exec(
        &txn,
        "UPDATE saved_runs SET parent_version_id = ? WHERE parent_version_id = ?",
        vec![h.versions[2].1.0.into(), h.versions[1].1.0.into()],
    )
    .await;
    assert_exact(&txn, "a move, inside the transaction").await;
    exec(&txn, "DELETE FROM saved_runs WHERE uid = 'ann'", vec![]).await;
    assert_exact(&txn, "a delete, inside the transaction").await;
    exec(
        &txn,
        "DELETE FROM published_run_versions WHERE id = ?",
        vec![h.versions[2].1.0.into()],
    )
    .await;
    assert_exact(&txn, "a version's delete, inside the transaction").await;
    txn.commit().await.unwrap();
    assert_exact(c, "the commit").await;
}

/// On PostgreSQL the summary is written at commit: inside the saving
/// transaction it has not moved yet, and once committed it is exact.
async fn on_postgres_the_summary_is_written_at_commit(db: &TestDb) {
    let c = &db.conn;
    keep_in(c, Mode::Triggers).await;
    let h = history_shape(c).await;
    let txn = c.begin().await.unwrap();
    insert_random_runs(&txn, &h, &mut StdRng::seed_from_u64(5), 50).await;
    if db.backend == Backend::Postgres {
        assert!(actual_summary(&txn).await.is_empty(), "not before commit");
    }
    txn.commit().await.unwrap();
    assert!(!actual_summary(c).await.is_empty());
    assert_exact(c, "the commit").await;
}

async fn a_rollback_leaves_nothing(db: &TestDb) {
    let c = &db.conn;
    let recents = keep_in(c, Mode::Triggers).await;
    let h = history_shape(c).await;
    insert_random_runs(c, &h, &mut StdRng::seed_from_u64(8), 150).await;
    let before = actual_summary(c).await;
    let txn = c.begin().await.unwrap();
    insert_random_runs(&txn, &h, &mut StdRng::seed_from_u64(9), 100).await;
    exec(&txn, "DELETE FROM saved_runs WHERE uid = 'bob'", vec![]).await;
    recents
        .save_run(
            &txn,
            &new_run(h.workspaces[0], "dee", h.versions[0].1, at(999, 0)),
            &SaveOptions::exact(),
        )
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(actual_summary(c).await, before);

    // A savepoint rolled back inside a transaction that commits.
    let txn = c.begin().await.unwrap();
    insert_random_runs(&txn, &h, &mut StdRng::seed_from_u64(10), 30).await;
    let savepoint = txn.begin().await.unwrap();
    exec(
        &savepoint,
        "DELETE FROM saved_runs WHERE uid = 'ann'",
        vec![],
    )
    .await;
    insert_random_runs(&savepoint, &h, &mut StdRng::seed_from_u64(11), 30).await;
    savepoint.rollback().await.unwrap();
    txn.commit().await.unwrap();
    assert_exact(c, "a savepoint rolled back").await;
    assert_verified(c, &recents).await;
}

/// A database without the triggers, a handle in trigger mode: every
/// operation writes history only, so in trigger mode nothing writes the
/// summary twice.
async fn in_trigger_mode_the_write_path_leaves_the_summary_to_the_triggers(db: &TestDb) {
    let c = &db.conn;
    keep_in(c, Mode::Service).await;
    let recents = Recents::new(schema_in(Mode::Triggers));
    assert!(recents.summary_kept_by_triggers());
    let ws = workspace(c, "team", false).await;
    let pr = published_run(c, ws, "A").await;
    let (v1, v2) = (version(c, pr).await, version(c, pr).await);
    let exact = SaveOptions::exact();
    let run = recents
        .save_run(c, &new_run(ws, "ann", v1, at(5, 0)), &exact)
        .await
        .unwrap();
    let mut moved = new_run(ws, "bob", v2, at(6, 0));
    moved.id = Some(run.id);
    let run = recents.save_run(c, &moved, &exact).await.unwrap();
    recents.touch(c, &run, &exact).await.unwrap();
    recents.retract(c, &run).await.unwrap();
    let missing = SavedRun {
        id: SavedRunId(run.id.0 + 1000),
        ..run.clone()
    };
    assert!(matches!(
        recents.touch(c, &missing, &exact).await,
        Err(Error::SavedRunNotFound(_))
    ));
    assert!(actual_summary(c).await.is_empty());
    recents.delete_saved_run(c, ws, run.id).await.unwrap();
    recents.delete_version(c, v1).await.unwrap();
    assert!(matches!(
        recents.delete_version(c, v1).await,
        Err(Error::VersionNotFound(_))
    ));
    assert!(actual_summary(c).await.is_empty());
}

/// Service mode, then triggers, then service again, each switch a run of the
/// mode's migration; writes in between by recents and by raw SQL. Rolling
/// the migration back and up again leaves the default (service) mode.
async fn switching_modes_keeps_verify_exact(db: &TestDb) {
    let c = &db.conn;
    let service = keep_in(c, Mode::Service).await;
    let h = history_shape(c).await;
    let exact = SaveOptions::exact();
    let mut runs = Vec::new();
    for i in 0..40 {
        let (ws, v) = h.versions[i % h.versions.len()];
        let run = service
            .save_run(c, &new_run(ws, h.users[i % 4], v, at(i as i64, 0)), &exact)
            .await
            .unwrap();
        runs.push(run);
    }
    assert_verified(c, &service).await;

    let triggers = keep_in(c, Mode::Triggers).await;
    assert_verified(c, &triggers).await;
    insert_random_runs(c, &h, &mut StdRng::seed_from_u64(12), 100).await;
    triggers
        .delete_saved_run(c, runs[0].workspace_id, runs[0].id)
        .await
        .unwrap();
    exec(c, "DELETE FROM saved_runs WHERE uid = 'bob'", vec![]).await;
    assert_exact(c, "trigger-mode writes").await;
    assert_verified(c, &triggers).await;

    let service = keep_in(c, Mode::Service).await;
    for run in runs[1..12].iter().filter(|r| r.uid != "bob") {
        service
            .delete_saved_run(c, run.workspace_id, run.id)
            .await
            .unwrap();
    }
    service
        .save_run(
            c,
            &new_run(h.workspaces[1], "ann", h.versions[4].1, at(500, 0)),
            &exact,
        )
        .await
        .unwrap();
    assert_verified(c, &service).await;

    let triggers = keep_in(c, Mode::Triggers).await;
    // Down to before the summary triggers' migration (whatever came after
    // it), and up again under recents' own mapping: service mode.
    let migrations = Migrator::migrations();
    let triggers_at = migrations
        .iter()
        .position(|m| m.name() == "m20261202_000012_summary_triggers")
        .expect("the summary triggers' migration is listed");
    let after = (migrations.len() - triggers_at) as u32;
    Migrator::down(c, Some(after)).await.unwrap();
    Migrator::up(c, None).await.unwrap();
    // Back in service mode: a raw insert is no longer recorded.
    exec(
        c,
        &format!("{INSERT_RUN}VALUES (?, 'eve', ?, 'done', ?, ?)"),
        vec![
            h.workspaces[0].0.into(),
            h.versions[0].1.0.into(),
            at(900, 0).into(),
            at(900, 0).into(),
        ],
    )
    .await;
    assert_ne!(actual_summary(c).await, expected_summary(c).await);
    assert!(triggers.summary_kept_by_triggers());
}

/// `Recents::connect` refuses a trigger-mode mapping over a database without
/// the triggers (nobody would write the summary), and accepts one with them;
/// a service-mode handle over installed triggers is the middle of a switch
/// of modes and is accepted: the summary is then kept twice and stays exact.
async fn connect_refuses_a_trigger_mode_mapping_without_the_triggers(db: &TestDb) {
    let c = &db.conn;
    keep_in(c, Mode::Service).await;
    let h = history_shape(c).await;
    let before = actual_summary(c).await;
    match Recents::connect(c, schema_in(Mode::Triggers)).await {
        Err(err @ Error::SummaryModeMismatch { .. }) => {
            assert_eq!(err.kind(), "summary_mode_mismatch");
            let message = err.to_string();
            assert!(
                message.contains("kept by triggers") && message.contains("kept by service"),
                "{message}"
            );
        }
        other => panic!("expected SummaryModeMismatch, got {:?}", other.map(|_| ())),
    }
    assert_eq!(actual_summary(c).await, before, "nothing written");
    let service = Recents::connect(c, schema_in(Mode::Service)).await.unwrap();
    assert!(!service.summary_kept_by_triggers());

    keep_in(c, Mode::Triggers).await;
    let triggers = Recents::connect(c, schema_in(Mode::Triggers))
        .await
        .unwrap();
    assert!(triggers.summary_kept_by_triggers());
    // Mid-switch: a service handle over the triggers writes the summary too.
    let both = Recents::connect(c, schema_in(Mode::Service)).await.unwrap();
    let (ws, v) = h.versions[0];
    both.save_run(c, &new_run(ws, "ann", v, at(700, 0)), &SaveOptions::exact())
        .await
        .unwrap();
    assert_exact(c, "a save kept by both").await;
    assert_verified(c, &both).await;
}

async fn the_freshness_window_applies_in_trigger_mode(db: &TestDb) {
    let c = &db.conn;
    let recents = keep_in(c, Mode::Triggers).await;
    assert_eq!(recents.freshness_window(c).await.unwrap(), Duration::ZERO);
    let ws = workspace(c, "team", false).await;
    let pr = published_run(c, ws, "A").await;
    let v = version(c, pr).await;
    recents
        .set_freshness_window(c, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        recents.freshness_window(c).await.unwrap(),
        Duration::from_secs(3600)
    );
    let exact = SaveOptions::exact();
    let first = recents
        .save_run(c, &new_run(ws, "ann", v, at(10, 0)), &exact)
        .await
        .unwrap();
    recents
        .save_run(c, &new_run(ws, "ann", v, at(20, 0)), &exact)
        .await
        .unwrap();
    let rows = actual_summary(c).await;
    assert!(
        rows.values()
            .all(|&(t, id)| (t, id) == (at(10, 0), first.id.0)),
        "a row fresh within the window is left alone: {rows:?}"
    );
    let late = recents
        .save_run(c, &new_run(ws, "ann", v, at(5000, 0)), &exact)
        .await
        .unwrap();
    let rows = actual_summary(c).await;
    assert!(
        rows.values()
            .all(|&(t, id)| (t, id) == (at(5000, 0), late.id.0)),
        "a row older than the window is raised: {rows:?}"
    );
    recents
        .set_freshness_window(c, Duration::ZERO)
        .await
        .unwrap();
    recents
        .save_run(c, &new_run(ws, "ann", v, at(5001, 0)), &exact)
        .await
        .unwrap();
    assert_exact(c, "the window set back to zero").await;
    let scope = Scope::Member("ann".into());
    assert_eq!(
        recents.recent_workflows(c, ws, &scope, 4).await.unwrap(),
        recents
            .recent_workflows_from_history(c, ws, &scope, 4)
            .await
            .unwrap()
    );
}

/// Each lowering path (a delete of the group's latest run, a version's
/// delete, a published run's delete, a move out of the group) raced against
/// a save still open in the same group, committed after it or before it.
async fn lowering_paths_racing_an_open_save_stay_exact(db: &TestDb) {
    for lowering in 0..4 {
        for save_commits_first in [false, true] {
            let c = &db.conn;
            support::clear(c).await;
            let recents = keep_in(c, Mode::Triggers).await;
            let ws = workspace(c, "team", false).await;
            let a = published_run(c, ws, "A").await;
            let b = published_run(c, ws, "B").await;
            let (a1, a2, b1) = (
                version(c, a).await,
                version(c, a).await,
                version(c, b).await,
            );
            let exact = SaveOptions::exact();
            let mut runs = Vec::new();
            for (uid, v, s) in [("bob", a2, 1), ("ann", a1, 3), ("ann", b1, 2)] {
                let run = recents
                    .save_run(c, &new_run(ws, uid, v, at(s, 0)), &exact)
                    .await
                    .unwrap();
                runs.push(run);
            }
            let other = db.connect_again(2).await;
            let open = support_begin(c, db.backend).await;
            recents
                .save_run(&open, &new_run(ws, "ann", a2, at(2, 0)), &exact)
                .await
                .unwrap();
            // The latest run of both of the open save's groups (ann's and the
            // workspace's in A).
            let first_run = runs[1].clone();
            let handle = recents.clone();
            let lower = tokio::spawn(async move {
                match lowering {
                    0 => handle
                        .delete_saved_run(&other, ws, first_run.id)
                        .await
                        .map(|_| ()),
                    1 => handle.delete_version(&other, a2).await,
                    2 => handle.delete_published_run(&other, a).await,
                    _ => {
                        let mut away = new_run(ws, "cy", b1, at(9, 0));
                        away.id = Some(first_run.id);
                        handle.save_run(&other, &away, &exact).await.map(|_| ())
                    }
                }
            });
            if !save_commits_first {
                // The lowering path runs (or waits for the save's locks) first.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            open.commit().await.unwrap();
            lower.await.unwrap().unwrap();
            assert_exact(c, &format!("lowering path {lowering}")).await;
            assert_verified(c, &recents).await;
        }
    }
}

/// 8 writers, each transaction inserting runs of four workflows in a random
/// order by raw SQL and committing after a pause. On PostgreSQL every
/// transaction's summary rows are upserted at commit in one canonical order,
/// so none of them deadlocks; MySQL/MariaDB's row triggers lock in statement
/// order, so a deadlock there is retried, as a caller would.
async fn multi_row_transactions_in_opposite_orders_do_not_deadlock(db: &TestDb) {
    use rand::Rng;
    use rand::seq::SliceRandom;
    let c = &db.conn;
    keep_in(c, Mode::Triggers).await;
    let ws = workspace(c, "team", false).await;
    let mut versions = Vec::new();
    for title in ["A", "B", "C", "D"] {
        versions.push(version(c, published_run(c, ws, title).await).await);
    }
    let pool = db.connect_again(9).await;
    let mut writers = Vec::new();
    for writer in 0..8u64 {
        let (pool, mut versions) = (pool.clone(), versions.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(writer);
            let mut deadlocks = 0;
            for i in 0..40i64 {
                versions.shuffle(&mut rng);
                loop {
                    let txn = pool.begin().await.unwrap();
                    let mut failed = false;
                    for v in &versions {
                        let done = txn
                            .execute_raw(recents::admin::statement(
                                txn.get_database_backend(),
                                &format!("{INSERT_RUN}VALUES (?, ?, ?, 'done', ?, ?)"),
                                vec![
                                    ws.0.into(),
                                    ["ann", "bob"][rng.random_range(0..2)].into(),
                                    v.0.into(),
                                    at(i, 0).into(),
                                    at(i, 0).into(),
                                ],
                            ))
                            .await;
                        if done.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..3))).await;
                    if !failed && txn.commit().await.is_ok() {
                        break;
                    }
                    deadlocks += 1;
                }
            }
            deadlocks
        }));
    }
    let mut deadlocks = 0;
    for writer in writers {
        deadlocks += writer.await.unwrap();
    }
    eprintln!("{}: {deadlocks} transactions run again", db.backend.name());
    if db.backend == Backend::Postgres {
        assert_eq!(deadlocks, 0, "canonical order at commit");
    }
    assert_exact(c, "the writers").await;
}

async fn support_begin(c: &DatabaseConnection, backend: Backend) -> sea_orm::DatabaseTransaction {
    match backend {
        Backend::Sqlite => recents::begin_write(c).await.unwrap(),
        _ => c.begin().await.unwrap(),
    }
}

backend_tests!(
    raw_sql_writers_keep_the_summary_exact,
    a_caller_that_sets_constraints_immediate_stays_exact,
    on_postgres_the_summary_is_written_at_commit,
    a_rollback_leaves_nothing,
    in_trigger_mode_the_write_path_leaves_the_summary_to_the_triggers,
    switching_modes_keeps_verify_exact,
    connect_refuses_a_trigger_mode_mapping_without_the_triggers,
    the_freshness_window_applies_in_trigger_mode,
);
// SQLite has one writer: no save is open while another path runs.
mod races {
    use super::*;
    backend_tests!(
        servers: lowering_paths_racing_an_open_save_stay_exact,
        multi_row_transactions_in_opposite_orders_do_not_deadlock,
    );
}

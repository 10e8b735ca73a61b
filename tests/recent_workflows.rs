//! Recent workflows, scenario by scenario, on every backend: each read is
//! compared with the history query and the whole summary with the in-memory
//! oracle.

mod support;

use recents::entity::prelude::*;
use recents::{
    Error, RunSave, SaveOptions, SavedRunId, Scope, VersionId, WorkspaceId, delete_published_run,
    delete_saved_run, delete_version, home_recent_workflows, recent_workflows,
    recent_workflows_from_history, save_run,
};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, TransactionTrait};
use support::{actual_summary, at, expected_summary, published_run, version, workspace};

fn run(workspace_id: WorkspaceId, uid: &str, version: Option<VersionId>, seconds: i64) -> RunSave {
    RunSave {
        id: None,
        workspace_id,
        uid: uid.into(),
        parent_version_id: version,
        run_status: "completed".into(),
        updated_at: at(seconds, 0),
    }
}

async fn save<C: ConnectionTrait + TransactionTrait>(conn: &C, save: RunSave) -> SavedRunId {
    save_run(conn, &save, &SaveOptions::exact())
        .await
        .unwrap()
        .id
}

async fn assert_exact<C: ConnectionTrait>(conn: &C, workspace_id: WorkspaceId, scopes: &[Scope]) {
    assert_eq!(actual_summary(conn).await, expected_summary(conn).await);
    for scope in scopes {
        for limit in 1..=5 {
            assert_eq!(
                recent_workflows(conn, workspace_id, scope, limit)
                    .await
                    .unwrap(),
                recent_workflows_from_history(conn, workspace_id, scope, limit)
                    .await
                    .unwrap(),
                "{scope:?} limit {limit}"
            );
        }
    }
}

async fn newest_distinct_workflows_first_in_both_scopes(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let (a, b, d) = (
        published_run(c, ws, "A").await,
        published_run(c, ws, "B").await,
        published_run(c, ws, "D").await,
    );
    let (va, vb, vd) = (
        version(c, a).await,
        version(c, b).await,
        version(c, d).await,
    );
    save(c, run(ws, "ann", Some(va), 10)).await;
    save(c, run(ws, "ann", Some(vb), 20)).await;
    let latest = save(c, run(ws, "bob", Some(va), 30)).await;
    save(c, run(ws, "bob", Some(vd), 5)).await;
    save(c, run(ws, "bob", None, 99)).await; // no version: counts for nothing

    let all = recent_workflows(c, ws, &Scope::Workspace, 4).await.unwrap();
    let order: Vec<_> = all
        .iter()
        .map(|w| (w.title.as_str(), w.last_used_at))
        .collect();
    assert_eq!(order, [("A", at(30, 0)), ("B", at(20, 0)), ("D", at(5, 0))]);
    assert_eq!(all[0].last_saved_run_id, latest);
    let ann = recent_workflows(c, ws, &Scope::Member("ann".into()), 4)
        .await
        .unwrap();
    let order: Vec<_> = ann.iter().map(|w| w.title.as_str()).collect();
    assert_eq!(order, ["B", "A"]);
    assert_exact(
        c,
        ws,
        &[
            Scope::Workspace,
            Scope::Member("ann".into()),
            Scope::Member("bob".into()),
        ],
    )
    .await;
}

async fn ties_go_to_the_higher_run_id_and_the_higher_workflow_id(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "p", true).await;
    let a = published_run(c, ws, "A").await;
    let b = published_run(c, ws, "B").await;
    let (va, vb) = (version(c, a).await, version(c, b).await);
    save(c, run(ws, "ann", Some(va), 7)).await;
    let second = save(c, run(ws, "ann", Some(va), 7)).await;
    save(c, run(ws, "ann", Some(vb), 7)).await;
    let read = recent_workflows(c, ws, &Scope::Workspace, 2).await.unwrap();
    assert_eq!(
        read[0].published_run_id, b,
        "equal times: higher workflow id first"
    );
    assert_eq!(
        read[1].last_saved_run_id, second,
        "equal times: higher run id wins"
    );
    assert_exact(c, ws, &[Scope::Workspace, Scope::Member("ann".into())]).await;
}

async fn every_streaming_save_keeps_the_row_exact(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "p", true).await;
    let a = published_run(c, ws, "A").await;
    let va = version(c, a).await;
    let mut saving = run(ws, "ann", Some(va), 1);
    let id = save(c, saving.clone()).await;
    saving.id = Some(id);
    for step in 0..5 {
        saving.updated_at = at(1, step * 250_000 + 1);
        save_run(c, &saving, &SaveOptions::exact()).await.unwrap();
        let read = recent_workflows(c, ws, &Scope::Workspace, 1).await.unwrap();
        assert_eq!(read[0].last_used_at, saving.updated_at);
    }
    assert_exact(c, ws, &[Scope::Workspace]).await;
}

async fn moving_a_run_recomputes_the_group_it_left(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let a = published_run(c, ws, "A").await;
    let b = published_run(c, ws, "B").await;
    let (va, vb) = (version(c, a).await, version(c, b).await);
    let older = save(c, run(ws, "ann", Some(va), 10)).await;
    let moving = save(c, run(ws, "ann", Some(va), 20)).await;
    let mut moved = run(ws, "ann", Some(vb), 21);
    moved.id = Some(moving);
    save_run(c, &moved, &SaveOptions::exact()).await.unwrap();
    let read = recent_workflows(c, ws, &Scope::Workspace, 5).await.unwrap();
    assert_eq!(read[1].published_run_id, a);
    assert_eq!(
        read[1].last_saved_run_id, older,
        "A falls back to its remaining run"
    );
    // Back in time within the same group: the row is lowered, not kept.
    moved.updated_at = at(1, 0);
    save_run(c, &moved, &SaveOptions::exact()).await.unwrap();
    assert_exact(c, ws, &[Scope::Workspace, Scope::Member("ann".into())]).await;
    let read = recent_workflows(c, ws, &Scope::Workspace, 5).await.unwrap();
    assert_eq!(read.last().unwrap().last_used_at, at(1, 0));
}

async fn deleting_runs_falls_back_then_removes_the_row(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let a = published_run(c, ws, "A").await;
    let va = version(c, a).await;
    let first = save(c, run(ws, "ann", Some(va), 10)).await;
    let second = save(c, run(ws, "bob", Some(va), 20)).await;
    delete_saved_run(c, ws, second).await.unwrap();
    let read = recent_workflows(c, ws, &Scope::Workspace, 5).await.unwrap();
    assert_eq!(read[0].last_saved_run_id, first);
    assert!(
        recent_workflows(c, ws, &Scope::Member("bob".into()), 5)
            .await
            .unwrap()
            .is_empty()
    );
    delete_saved_run(c, ws, first).await.unwrap();
    assert!(
        WorkspaceRecentWorkflow::find()
            .all(c)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        delete_saved_run(c, ws, first).await,
        Err(Error::SavedRunNotFound(id)) if id == first
    ));
}

async fn deleting_a_version_or_a_published_run_updates_the_summary(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let a = published_run(c, ws, "A").await;
    let b = published_run(c, ws, "B").await;
    let (va1, va2, vb) = (
        version(c, a).await,
        version(c, a).await,
        version(c, b).await,
    );
    save(c, run(ws, "ann", Some(va1), 10)).await;
    save(c, run(ws, "bob", Some(va2), 30)).await;
    save(c, run(ws, "bob", Some(va1), 40)).await;
    save(c, run(ws, "ann", Some(vb), 20)).await;
    let scopes = [
        Scope::Workspace,
        Scope::Member("ann".into()),
        Scope::Member("bob".into()),
    ];
    delete_version(c, va1).await.unwrap();
    assert_exact(c, ws, &scopes).await;
    let read = recent_workflows(c, ws, &Scope::Workspace, 5).await.unwrap();
    assert_eq!(
        (read[0].published_run_id, read[0].last_used_at),
        (a, at(30, 0))
    );
    delete_published_run(c, a).await.unwrap();
    assert_exact(c, ws, &scopes).await;
    assert_eq!(WorkspaceRecentWorkflow::find().count(c).await.unwrap(), 2);
    assert!(matches!(
        delete_version(c, va1).await,
        Err(Error::VersionNotFound(_))
    ));
    assert!(matches!(
        delete_published_run(c, a).await,
        Err(Error::PublishedRunNotFound(_))
    ));
}

async fn a_rolled_back_save_leaves_neither_run_nor_summary(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "p", true).await;
    let a = published_run(c, ws, "A").await;
    let va = version(c, a).await;
    let txn = c.begin().await.unwrap();
    save(&txn, run(ws, "ann", Some(va), 10)).await;
    assert_eq!(
        WorkspaceRecentWorkflow::find().count(&txn).await.unwrap(),
        2
    );
    txn.rollback().await.unwrap();
    assert_eq!(SavedRun::find().count(c).await.unwrap(), 0);
    assert_eq!(WorkspaceRecentWorkflow::find().count(c).await.unwrap(), 0);
}

async fn the_home_page_uses_the_workspace_kind(db: &TestDb) {
    let c = &db.conn;
    let personal = workspace(c, "mine", true).await;
    let team = workspace(c, "ours", false).await;
    let a = published_run(c, personal, "A").await;
    let b = published_run(c, team, "B").await;
    let (va, vb) = (version(c, a).await, version(c, b).await);
    save(c, run(personal, "ann", Some(va), 1)).await;
    save(c, run(team, "bob", Some(vb), 2)).await;
    let mine = home_recent_workflows(c, personal, "someone", 4)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1, "personal: every run of the workspace");
    assert!(
        home_recent_workflows(c, team, "ann", 4)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        home_recent_workflows(c, team, "bob", 4)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn bad_input_is_a_typed_error_and_writes_nothing(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "p", true).await;
    let a = published_run(c, ws, "A").await;
    let va = version(c, a).await;
    save(c, run(ws, "ann", Some(va), 1)).await;
    let before = (
        actual_summary(c).await,
        SavedRun::find().all(c).await.unwrap(),
    );

    for limit in [0, 1001, u32::MAX] {
        assert!(matches!(
            recent_workflows(c, ws, &Scope::Workspace, limit).await,
            Err(Error::InvalidLimit { .. })
        ));
    }
    for uid in [String::new(), "x".repeat(10_000), "nul\0byte".into()] {
        assert!(matches!(
            recent_workflows(c, ws, &Scope::Member(uid.clone()), 4).await,
            Err(Error::InvalidUid(_))
        ));
        assert!(matches!(
            save_run(c, &run(ws, &uid, Some(va), 2), &SaveOptions::exact()).await,
            Err(Error::InvalidUid(_))
        ));
    }
    let nowhere = WorkspaceId(9_999_999);
    assert!(matches!(
        recent_workflows(c, nowhere, &Scope::Workspace, 4).await,
        Err(Error::WorkspaceNotFound(w)) if w == nowhere
    ));
    assert!(matches!(
        save_run(c, &run(nowhere, "ann", Some(va), 2), &SaveOptions::exact()).await,
        Err(Error::WorkspaceNotFound(_))
    ));
    assert!(matches!(
        save_run(
            c,
            &run(ws, "ann", Some(VersionId(424_242)), 2),
            &SaveOptions::exact()
        )
        .await,
        Err(Error::VersionNotFound(_))
    ));
    let mut missing = run(ws, "ann", Some(va), 2);
    missing.id = Some(SavedRunId(777_777));
    assert!(matches!(
        save_run(c, &missing, &SaveOptions::exact()).await,
        Err(Error::SavedRunNotFound(_))
    ));
    let mut far = run(ws, "ann", Some(va), 0);
    far.updated_at = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    assert!(matches!(
        save_run(c, &far, &SaveOptions::exact()).await,
        Err(Error::InvalidArgument {
            what: "updated_at",
            ..
        })
    ));
    // SQL-looking uids are plain data.
    let sneaky = "'); DROP TABLE saved_runs; --";
    let sneaky_run = save(c, run(ws, sneaky, Some(va), 3)).await;
    assert_eq!(
        recent_workflows(c, ws, &Scope::Member(sneaky.into()), 4)
            .await
            .unwrap()
            .len(),
        1
    );
    delete_saved_run(c, ws, sneaky_run).await.unwrap();
    assert_eq!(
        before,
        (
            actual_summary(c).await,
            SavedRun::find().all(c).await.unwrap()
        )
    );

    // A soft-deleted workspace reads as such and takes no runs.
    c.execute_unprepared(&format!(
        "UPDATE workspaces SET deleted_at = created_at WHERE id = {}",
        ws.0
    ))
    .await
    .unwrap();
    assert!(matches!(
        recent_workflows(c, ws, &Scope::Workspace, 4).await,
        Err(Error::WorkspaceDeleted(_))
    ));
    assert!(matches!(
        home_recent_workflows(c, ws, "ann", 4).await,
        Err(Error::WorkspaceDeleted(_))
    ));
    assert!(matches!(
        save_run(c, &run(ws, "ann", Some(va), 9), &SaveOptions::exact()).await,
        Err(Error::WorkspaceDeleted(_))
    ));
    assert_eq!(before.1, SavedRun::find().all(c).await.unwrap());
}

backend_tests!(
    newest_distinct_workflows_first_in_both_scopes,
    ties_go_to_the_higher_run_id_and_the_higher_workflow_id,
    every_streaming_save_keeps_the_row_exact,
    moving_a_run_recomputes_the_group_it_left,
    deleting_runs_falls_back_then_removes_the_row,
    deleting_a_version_or_a_published_run_updates_the_summary,
    a_rolled_back_save_leaves_neither_run_nor_summary,
    the_home_page_uses_the_workspace_kind,
    bad_input_is_a_typed_error_and_writes_nothing,
);

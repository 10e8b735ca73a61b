//! The demo seed on every backend: what it makes reads back exactly through
//! the service, and it refuses a database that already has data.

use chrono::{DateTime, Duration, TimeZone, Utc};
use recents_seed::bulk::{self, RunBatch};
use recents_seed::{DemoOptions, HEAVY_WORKSPACE, seed_demo};
use recents_service::admin::{
    WorkspaceListing, list_workspaces, workspace_members, workspace_overview,
};
use recents_service::{Error, Scope, recent_workflows, recent_workflows_from_history};
use recents_testkit::{TestDb, backend_tests};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

async fn demo_summary_equals_its_history_in_every_scope(db: &TestDb) {
    let c = &db.conn;
    let report = seed_demo(
        c,
        &DemoOptions {
            heavy_runs: 1_500,
            now: now(),
        },
    )
    .await
    .unwrap();
    assert_eq!(report.workspaces.len(), 7);
    assert_eq!(report.jobs, recents_seed::DEMO_JOBS);
    let page = list_workspaces(c, &WorkspaceListing::default())
        .await
        .unwrap();
    assert_eq!(page.workspaces.len(), 7);
    let total: u64 = page.workspaces.iter().map(|w| w.history_runs).sum();
    assert_eq!(total, report.runs);
    let summary: u64 = page.workspaces.iter().map(|w| w.summary_rows).sum();
    assert_eq!(summary, report.summary_rows);

    for overview in page.workspaces.iter().filter(|w| w.deleted_at.is_none()) {
        let members = workspace_members(c, overview.id, None, 100).await.unwrap();
        assert!(!members.is_empty(), "{}", overview.name);
        let scopes =
            std::iter::once(Scope::Workspace).chain(members.into_iter().map(Scope::Member));
        for scope in scopes {
            assert_eq!(
                recent_workflows(c, overview.id, &scope, 10).await.unwrap(),
                recent_workflows_from_history(c, overview.id, &scope, 10)
                    .await
                    .unwrap(),
                "{} {scope:?}",
                overview.name
            );
        }
    }

    let heavy = workspace_overview(c, report.heavy_workspace).await.unwrap();
    assert_eq!(heavy.name, HEAVY_WORKSPACE);
    assert_eq!(heavy.history_runs, 1_500);
    // Runs are one second apart and end one second before `now`; 40 members
    // and the workspace-wide row on one workflow.
    assert_eq!(heavy.last_used_at, Some(now() - Duration::seconds(1)));
    assert_eq!(heavy.summary_rows, 41);
}

async fn demo_refuses_a_database_with_workspaces(db: &TestDb) {
    let options = DemoOptions {
        heavy_runs: 10,
        now: now(),
    };
    seed_demo(&db.conn, &options).await.unwrap();
    let again = seed_demo(&db.conn, &options).await;
    assert!(
        matches!(again, Err(Error::DatabaseNotEmpty { workspaces: 7, .. })),
        "{again:?}"
    );
}

async fn bulk_runs_cross_batches_without_gaps(db: &TestDb) {
    let c = &db.conn;
    seed_demo(
        c,
        &DemoOptions {
            heavy_runs: 0,
            now: now(),
        },
    )
    .await
    .unwrap();
    let page = list_workspaces(c, &WorkspaceListing::default())
        .await
        .unwrap();
    let ws = page.workspaces.iter().find(|w| w.name == "ada").unwrap().id;
    let before = workspace_overview(c, ws).await.unwrap().history_runs;
    let count = bulk::BATCH_ROWS + 3;
    let first_at = now() + Duration::days(1);
    let version = recents_service::VersionId(1);
    let inserted = bulk::insert_runs(
        c,
        &RunBatch {
            workspace_id: ws,
            version_id: version,
            uids: vec!["ada".into(), "zed".into()],
            count,
            first_at,
            run_status: "completed".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(inserted, count);
    assert_eq!(
        workspace_overview(c, ws).await.unwrap().history_runs,
        before + count
    );
    // The newest history run is the last generated one: count - 1 seconds
    // after the first, saved by uids[(count - 1) % 2].
    let latest = recent_workflows_from_history(c, ws, &Scope::Member("ada".into()), 1)
        .await
        .unwrap();
    assert_eq!(
        latest[0].last_used_at,
        first_at + Duration::seconds(count as i64 - 1)
    );
    let zed = recent_workflows_from_history(c, ws, &Scope::Member("zed".into()), 1)
        .await
        .unwrap();
    assert_eq!(
        zed[0].last_used_at,
        first_at + Duration::seconds(count as i64 - 2)
    );
}

backend_tests!(
    demo_summary_equals_its_history_in_every_scope,
    demo_refuses_a_database_with_workspaces,
    bulk_runs_cross_batches_without_gaps,
);

//! The exactness invariant, by property: after every step of a random history
//! of saves, updates, moves, deletes and rollbacks, the summary equals the
//! in-memory oracle and every read equals the history query, on every backend,
//! with the summary kept by the service and by the triggers.

mod support;

use proptest::prelude::*;
use recents::{
    Error, PublishedRunId, Recents, RunSave, SaveOptions, SavedRunId, Scope, VersionId,
    WorkspaceId, recent_workflows, recent_workflows_from_history,
};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{DatabaseConnection, EntityTrait, TransactionTrait};
use support::{
    Mode, actual_summary, at, clear, expected_summary, keep_in, published_run, version, workspace,
};

const USERS: [&str; 3] = ["ann", "bob", "Ann"];
const WORKSPACES: usize = 2;
const VERSIONS: usize = 6; // two per published run

#[derive(Clone, Debug)]
enum Op {
    Insert {
        ws: usize,
        user: usize,
        version: Option<usize>,
        t: i64,
    },
    Update {
        run: usize,
        ws: usize,
        user: usize,
        version: Option<usize>,
        t: i64,
    },
    Delete {
        run: usize,
    },
    RolledBack {
        ws: usize,
        user: usize,
        version: Option<usize>,
        t: i64,
    },
    DeleteVersion {
        version: usize,
    },
    DeletePublishedRun {
        published_run: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Times over a small range, with a sub-second part only sometimes, so
    // equal times (and so the id tie-break) are common.
    let t = prop_oneof![0i64..12, (0i64..12, 1i64..4).prop_map(|(s, f)| s * 4 + f)];
    let version = prop::option::weighted(0.85, 0..VERSIONS);
    prop_oneof![
        6 => (0..WORKSPACES, 0..USERS.len(), version.clone(), t.clone())
            .prop_map(|(ws, user, version, t)| Op::Insert { ws, user, version, t }),
        4 => (any::<usize>(), 0..WORKSPACES, 0..USERS.len(), version.clone(), t.clone())
            .prop_map(|(run, ws, user, version, t)| Op::Update { run, ws, user, version, t }),
        2 => any::<usize>().prop_map(|run| Op::Delete { run }),
        1 => (0..WORKSPACES, 0..USERS.len(), version, t)
            .prop_map(|(ws, user, version, t)| Op::RolledBack { ws, user, version, t }),
        1 => (0..VERSIONS).prop_map(|version| Op::DeleteVersion { version }),
        1 => (0..VERSIONS / 2).prop_map(|published_run| Op::DeletePublishedRun { published_run }),
    ]
}

struct World {
    workspaces: Vec<WorkspaceId>,
    published_runs: Vec<PublishedRunId>,
    versions: Vec<VersionId>,
    dead_versions: Vec<VersionId>,
    runs: Vec<SavedRunId>,
}

impl World {
    fn version(&self, index: Option<usize>) -> Option<VersionId> {
        index.map(|i| self.versions[i])
    }

    fn is_dead(&self, version: Option<VersionId>) -> bool {
        version.is_some_and(|v| self.dead_versions.contains(&v))
    }
}

async fn build_world(conn: &DatabaseConnection) -> World {
    clear(conn).await;
    let workspaces = vec![
        workspace(conn, "personal", true).await,
        workspace(conn, "team", false).await,
    ];
    let mut published_runs = Vec::new();
    let mut versions = Vec::new();
    for (i, title) in ["A", "B", "C"].into_iter().enumerate() {
        // Workflows may be published in another workspace than the runs using them.
        let pr = published_run(conn, workspaces[i % WORKSPACES], title).await;
        published_runs.push(pr);
        versions.push(version(conn, pr).await);
        versions.push(version(conn, pr).await);
    }
    World {
        workspaces,
        published_runs,
        versions,
        dead_versions: Vec::new(),
        runs: Vec::new(),
    }
}

fn saving(
    world: &World,
    id: Option<SavedRunId>,
    ws: usize,
    user: usize,
    version: Option<usize>,
    t: i64,
) -> RunSave {
    RunSave {
        id,
        workspace_id: world.workspaces[ws],
        uid: USERS[user].into(),
        parent_version_id: world.version(version),
        run_status: "done".into(),
        updated_at: at(t / 4, (t % 4) * 250_000),
    }
}

async fn apply(
    conn: &DatabaseConnection,
    recents: &Recents,
    world: &mut World,
    op: &Op,
) -> Result<(), String> {
    let exact = SaveOptions::exact();
    match *op {
        Op::Insert {
            ws,
            user,
            version,
            t,
        } => {
            let save = saving(world, None, ws, user, version, t);
            match recents.save_run(conn, &save, &exact).await {
                Ok(run) => world.runs.push(run.id),
                Err(Error::VersionNotFound(_)) if world.is_dead(save.parent_version_id) => {}
                Err(e) => return Err(format!("insert: {e}")),
            }
        }
        Op::Update {
            run,
            ws,
            user,
            version,
            t,
        } => {
            if world.runs.is_empty() {
                return Ok(());
            }
            let id = world.runs[run % world.runs.len()];
            let save = saving(world, Some(id), ws, user, version, t);
            match recents.save_run(conn, &save, &exact).await {
                Ok(_) => {}
                Err(Error::VersionNotFound(_)) if world.is_dead(save.parent_version_id) => {}
                Err(e) => return Err(format!("update: {e}")),
            }
        }
        Op::Delete { run } => {
            if world.runs.is_empty() {
                return Ok(());
            }
            let id = world.runs.remove(run % world.runs.len());
            // The backend knows the workspace a run is in: it deletes from the page it shows.
            let workspace = recents::entity::prelude::SavedRun::find_by_id(id.0)
                .one(conn)
                .await
                .map_err(|e| e.to_string())?
                .map(|r| recents::WorkspaceId(r.workspace_id))
                .ok_or("the run to delete is gone")?;
            recents
                .delete_saved_run(conn, workspace, id)
                .await
                .map_err(|e| format!("delete: {e}"))?;
        }
        Op::RolledBack {
            ws,
            user,
            version,
            t,
        } => {
            let save = saving(world, None, ws, user, version, t);
            let txn = conn.begin().await.map_err(|e| e.to_string())?;
            let _ = recents.save_run(&txn, &save, &exact).await;
            txn.rollback().await.map_err(|e| e.to_string())?;
        }
        Op::DeleteVersion { version } => {
            let id = world.versions[version];
            match recents.delete_version(conn, id).await {
                Ok(()) => world.dead_versions.push(id),
                Err(Error::VersionNotFound(_)) if world.dead_versions.contains(&id) => {}
                Err(e) => return Err(format!("delete version: {e}")),
            }
        }
        Op::DeletePublishedRun { published_run } => {
            let id = world.published_runs[published_run];
            let versions = [
                world.versions[published_run * 2],
                world.versions[published_run * 2 + 1],
            ];
            match recents.delete_published_run(conn, id).await {
                Ok(()) => world.dead_versions.extend(versions),
                Err(Error::PublishedRunNotFound(_)) => {}
                Err(e) => return Err(format!("delete published run: {e}")),
            }
        }
    }
    Ok(())
}

fn scopes() -> Vec<Scope> {
    let mut scopes = vec![Scope::Workspace];
    scopes.extend(USERS.iter().map(|u| Scope::Member((*u).into())));
    scopes
}

async fn check(conn: &DatabaseConnection, world: &World, limits: &[u32]) -> Result<(), String> {
    let (actual, expected) = (actual_summary(conn).await, expected_summary(conn).await);
    if actual != expected {
        return Err(format!(
            "summary differs:\n actual   {actual:?}\n expected {expected:?}"
        ));
    }
    for &ws in &world.workspaces {
        for scope in scopes() {
            for &limit in limits {
                let fast = recent_workflows(conn, ws, &scope, limit)
                    .await
                    .map_err(|e| e.to_string())?;
                let slow = recent_workflows_from_history(conn, ws, &scope, limit)
                    .await
                    .map_err(|e| e.to_string())?;
                if fast != slow {
                    return Err(format!(
                        "{ws:?} {scope:?} limit {limit}:\n fast {fast:?}\n slow {slow:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

async fn run_case(conn: &DatabaseConnection, recents: &Recents, ops: &[Op]) -> Result<(), String> {
    let mut world = build_world(conn).await;
    for (step, op) in ops.iter().enumerate() {
        apply(conn, recents, &mut world, op).await?;
        check(conn, &world, &[10])
            .await
            .map_err(|e| format!("after step {step} ({op:?}): {e}"))?;
    }
    // Every limit from 1 past the number of workflows.
    check(conn, &world, &[1, 2, 3, 4]).await
}

async fn property(db: &TestDb, mode: Mode) {
    let recents = keep_in(&db.conn, mode).await;
    let recents = &recents;
    support::run_property(
        db,
        &format!("exactness ({mode:?})"),
        24,
        prop::collection::vec(op(), 1..30),
        |ops| async move { run_case(&db.conn, recents, &ops).await },
    );
}

async fn random_histories_read_exactly_as_the_history_query(db: &TestDb) {
    property(db, Mode::Service).await;
}

async fn random_histories_read_exactly_as_the_history_query_in_trigger_mode(db: &TestDb) {
    property(db, Mode::Triggers).await;
}

backend_tests!(
    random_histories_read_exactly_as_the_history_query,
    random_histories_read_exactly_as_the_history_query_in_trigger_mode,
);

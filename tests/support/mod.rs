//! History fixtures and the in-memory oracle the summary is checked against.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use recents::entity::prelude::*;
use recents::entity::{published_run, published_run_version, workspace, workspace_recent_workflow};
use recents::{PublishedRunId, VersionId, WorkspaceId};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, NotSet};

/// A time `seconds` after a fixed origin, with `micros` on top.
pub fn at(seconds: i64, micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(1_767_225_600_000_000 + seconds * 1_000_000 + micros)
        .unwrap()
}

/// A new saved run of `uid` in `ws` from version `v` at `updated_at`, for `save_run`.
pub fn new_run(
    ws: WorkspaceId,
    uid: &str,
    v: VersionId,
    updated_at: DateTime<Utc>,
) -> recents::RunSave {
    recents::RunSave {
        id: None,
        workspace_id: ws,
        uid: uid.into(),
        parent_version_id: Some(v),
        run_status: "done".into(),
        updated_at,
    }
}

pub async fn workspace<C: ConnectionTrait>(conn: &C, name: &str, personal: bool) -> WorkspaceId {
    WorkspaceId(
        Workspace::insert(workspace::ActiveModel {
            id: NotSet,
            name: Set(name.into()),
            is_personal: Set(personal),
            created_at: Set(at(0, 0)),
            deleted_at: Set(None),
        })
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id,
    )
}

pub async fn published_run<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    title: &str,
) -> PublishedRunId {
    PublishedRunId(
        PublishedRun::insert(published_run::ActiveModel {
            id: NotSet,
            workspace_id: Set(workspace_id.0),
            title: Set(title.into()),
            created_at: Set(at(0, 0)),
            updated_at: Set(at(0, 0)),
        })
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id,
    )
}

pub async fn version<C: ConnectionTrait>(conn: &C, published_run_id: PublishedRunId) -> VersionId {
    VersionId(
        PublishedRunVersion::insert(published_run_version::ActiveModel {
            id: NotSet,
            published_run_id: Set(published_run_id.0),
            created_at: Set(at(0, 0)),
        })
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id,
    )
}

/// (workspace, uid, published run) → (last_used_at, last_saved_run_id).
pub type SummaryRows = BTreeMap<(i64, String, i64), (DateTime<Utc>, i64)>;

/// What `workspace_recent_workflows` must hold, computed in memory from
/// every saved run and version: independent of any SQL of the crate.
pub async fn expected_summary<C: ConnectionTrait>(conn: &C) -> SummaryRows {
    let versions: BTreeMap<i64, i64> = PublishedRunVersion::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.id, v.published_run_id))
        .collect();
    let mut rows = SummaryRows::new();
    for run in SavedRun::find().all(conn).await.unwrap() {
        let Some(pr) = run.parent_version_id.and_then(|v| versions.get(&v)) else {
            continue;
        };
        for uid in [run.uid.clone(), String::new()] {
            let entry = rows
                .entry((run.workspace_id, uid, *pr))
                .or_insert((run.updated_at, run.id));
            if (run.updated_at, run.id) > *entry {
                *entry = (run.updated_at, run.id);
            }
        }
    }
    rows
}

/// What `workspace_recent_workflows` holds.
pub async fn actual_summary<C: ConnectionTrait>(conn: &C) -> SummaryRows {
    WorkspaceRecentWorkflow::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r: workspace_recent_workflow::Model| {
            (
                (r.workspace_id, r.uid, r.published_run_id),
                (r.last_used_at, r.last_saved_run_id),
            )
        })
        .collect()
}

/// Empties every table, children first.
pub async fn clear<C: ConnectionTrait>(conn: &C) {
    for table in [
        "workspace_recent_workflows",
        "saved_runs",
        "published_run_versions",
        "published_runs",
        "workspaces",
    ] {
        conn.execute_unprepared(&format!("DELETE FROM {table}"))
            .await
            .unwrap();
    }
}

/// The workspaces, users and versions a random history draws from.
pub struct History {
    pub workspaces: Vec<WorkspaceId>,
    pub versions: Vec<(WorkspaceId, VersionId)>,
    pub users: Vec<&'static str>,
}

/// Three workspaces (one personal), each with three workflows of two
/// versions; no runs yet.
pub async fn history_shape<C: ConnectionTrait>(conn: &C) -> History {
    let mut workspaces = Vec::new();
    let mut versions = Vec::new();
    for (name, personal) in [("mine", true), ("team", false), ("other", false)] {
        let ws = workspace(conn, name, personal).await;
        workspaces.push(ws);
        for title in ["A", "B", "C"] {
            let pr = published_run(conn, ws, title).await;
            for _ in 0..2 {
                versions.push((ws, version(conn, pr).await));
            }
        }
    }
    History {
        workspaces,
        versions,
        users: vec!["ann", "bob", "cy", "Ann"],
    }
}

/// Inserts `runs` random saved runs straight into `saved_runs`, as a
/// backend that does not keep the summary would: times drawn from a small
/// range so that ties happen, one run in ten without a version.
pub async fn insert_random_runs<C: ConnectionTrait>(
    conn: &C,
    history: &History,
    rng: &mut impl rand::Rng,
    runs: usize,
) {
    use recents::entity::saved_run;
    let mut batch = Vec::new();
    for n in 0..runs {
        let (workspace_id, version) = history.versions[rng.random_range(0..history.versions.len())];
        let version = (rng.random_range(0..10) != 0).then_some(version.0);
        let updated_at = at(rng.random_range(0..300), rng.random_range(0..2) * 500_000);
        batch.push(saved_run::ActiveModel {
            id: NotSet,
            workspace_id: Set(workspace_id.0),
            uid: Set(history.users[rng.random_range(0..history.users.len())].into()),
            parent_version_id: Set(version),
            run_status: Set("completed".into()),
            created_at: Set(updated_at),
            updated_at: Set(updated_at),
        });
        if batch.len() == 200 || n + 1 == runs {
            SavedRun::insert_many(std::mem::take(&mut batch))
                .exec_without_returning(conn)
                .await
                .unwrap();
        }
    }
}

/// `n` execution jobs of users 1..=`users`, three in four started at a
/// random time (the rest queued), in one multi-row insert.
pub async fn random_jobs<C: ConnectionTrait>(conn: &C, seed: u64, n: usize, users: i64) {
    use rand::{Rng, SeedableRng};
    use recents::entity::execution_job::{self, JobState};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let jobs: Vec<execution_job::ActiveModel> = (0..n)
        .map(|_| {
            let started = rng.random_range(0..4) != 0;
            execution_job::ActiveModel {
                id: NotSet,
                user_id: Set(rng.random_range(1..=users)),
                state: Set(if started {
                    JobState::Completed
                } else {
                    JobState::Queued
                }),
                payload: Set(serde_json::json!({})),
                created_at: Set(at(0, 0)),
                started_at: Set(
                    started.then(|| at(rng.random_range(0..1000), rng.random_range(0..1_000_000)))
                ),
                finished_at: Set(None),
                process_after: Set(None),
                num_resets: Set(0),
                num_failures: Set(0),
                failure_message: Set(None),
                worker_hostname: Set(None),
                last_heartbeat_at: Set(None),
                cancel: Set(false),
            }
        })
        .collect();
    ExecutionJob::insert_many(jobs)
        .exec_without_returning(conn)
        .await
        .unwrap();
}

/// Runs this test binary again as a child process that runs only the
/// ignored test `name`, with `env` set, and waits up to a minute for the line
/// of its output holding `needle` (libtest prints "test name ... " without a
/// newline first, so the line may start with that).
pub async fn child_reporting(
    name: &str,
    env: &[(&str, String)],
    needle: &'static str,
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains(needle))
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), line)
        .await
        .expect("the child reported within a minute")
        .unwrap()
        .expect("the child reports before it ends");
    (child, line)
}

/// Runs a proptest over `strategy` on the test's database: `default_cases`
/// cases, or `RECENTS_PROPTEST_CASES` (the fuzz run sets it high). Panics
/// with the shrunk failing case.
pub fn run_property<S, F, Fut>(
    db: &recents_testkit::TestDb,
    what: &str,
    default_cases: u32,
    strategy: S,
    case: F,
) where
    S: proptest::strategy::Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let cases = std::env::var("RECENTS_PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |value| {
            handle.block_on(case(value)).map_err(TestCaseError::fail)
        })
    });
    if let Err(failure) = result {
        panic!("{what} on {}: {failure}", db.backend.name());
    }
}

/// Saves a run in a transaction of its own, as a backend's run-save
/// endpoint does; the saved run's id once committed.
pub async fn save_committed(
    conn: &sea_orm::DatabaseConnection,
    save: &recents::RunSave,
) -> Result<i64, recents::Error> {
    use sea_orm::TransactionTrait;
    let txn = conn.begin().await?;
    let saved = recents::save_run(&txn, save, &recents::SaveOptions::exact()).await?;
    txn.commit().await?;
    Ok(saved.id.0)
}

/// Who keeps the summary in a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// recents' write path.
    Service,
    /// The triggers of `maintained_by = "triggers"`.
    Triggers,
}

/// recents' own names, with the summary kept in `mode`.
pub fn schema_in(mode: Mode) -> recents::Schema {
    let word = match mode {
        Mode::Service => "service",
        Mode::Triggers => "triggers",
    };
    recents::Schema::from_toml(&format!("[recent_workflows]\nmaintained_by = \"{word}\""))
        .expect("a valid mapping")
}

/// Brings the test's database to `mode` (installs or removes the summary's
/// triggers, as a team's migration would) and returns the handle for it.
pub async fn keep_in(conn: &sea_orm::DatabaseConnection, mode: Mode) -> recents::Recents {
    let schema = schema_in(mode);
    recents::migration::apply_summary_mode(&recents::migration::SchemaManager::new(conn), &schema)
        .await
        .expect("the mode's migration runs");
    recents::Recents::new(schema)
}

/// The queue's throughput by its definition, over every job row: runs ended
/// in `(until - window, until]`, `completed` apart from `errored` or
/// `failed`, in chrono's arithmetic (a window may reach back before year
/// 1000, where SQL cannot).
pub fn ended_in_window(
    jobs: &[recents::queue::Job],
    until: DateTime<Utc>,
    window: std::time::Duration,
) -> (u64, u64) {
    use recents::entity::execution_job::JobState;
    let since = until - chrono::Duration::from_std(window).unwrap();
    let ended = |states: &[JobState]| {
        jobs.iter()
            .filter(|j| states.contains(&j.state))
            .filter(|j| j.finished_at.is_some_and(|at| at > since && at <= until))
            .count() as u64
    };
    (
        ended(&[JobState::Completed]),
        ended(&[JobState::Errored, JobState::Failed]),
    )
}

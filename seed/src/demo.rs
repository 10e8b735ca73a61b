//! The demo data set the console opens on: shaped like production's seeds,
//! small enough to make in seconds.
//!
//! A few personal and team workspaces whose runs go through
//! [`recents_service::save_run`] (the real write path), one soft-deleted team
//! workspace, and one heavy team workspace: a few hundred thousand runs on a
//! single workflow, bulk-loaded set-based with its summary filled from the
//! history, like the seed's workspace 5 (1.78M runs, one workflow).

use chrono::{DateTime, Duration, SubsecRound, Utc};
use recents_entity::{published_run, published_run_version, workspace};
use recents_service::{
    Error, PublishedRunId, RunSave, SaveOptions, VersionId, WorkspaceId, save_run,
};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, NotSet};

use recents_service::admin::statement;

use crate::bulk::{self, RunBatch};
use crate::queue::{self, JobShape};

/// Runs in the heavy workspace by default.
pub const DEFAULT_HEAVY_RUNS: u64 = 300_000;

/// The name of the heavy workspace.
pub const HEAVY_WORKSPACE: &str = "nightly-imports";

/// How big a demo to make, and when "now" is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Runs of the heavy workspace's one workflow.
    pub heavy_runs: u64,
    /// The demo's present: every run is at or before it. Fix it for a
    /// reproducible data set.
    pub now: DateTime<Utc>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            heavy_runs: DEFAULT_HEAVY_RUNS,
            now: Utc::now(),
        }
    }
}

/// What [`seed_demo`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// Every workspace made, with its name, in id order.
    pub workspaces: Vec<(WorkspaceId, String)>,
    /// The heavy workspace.
    pub heavy_workspace: WorkspaceId,
    /// Saved runs written, all workspaces together.
    pub runs: u64,
    /// `workspace_recent_workflows` rows written.
    pub summary_rows: u64,
    /// Execution jobs made (see [`seed_jobs`]).
    pub jobs: u64,
}

struct Team {
    name: &'static str,
    personal: bool,
    members: &'static [&'static str],
    workflows: &'static [&'static str],
    runs: u32,
}

const SMALL: &[Team] = &[
    Team {
        name: "ada",
        personal: true,
        members: &["ada"],
        workflows: &["Invoice OCR", "Weekly report", "Resize images"],
        runs: 18,
    },
    Team {
        name: "grace",
        personal: true,
        members: &["grace"],
        workflows: &["Compile COBOL", "Backup mainframe"],
        runs: 12,
    },
    Team {
        name: "linus",
        personal: true,
        members: &["linus"],
        workflows: &[
            "Kernel bisect",
            "Mail patches",
            "Build docs",
            "Fuzz drivers",
        ],
        runs: 24,
    },
    Team {
        name: "platform-team",
        personal: false,
        members: &["ada", "bob", "carol", "dave", "erin"],
        workflows: &[
            "Deploy preview",
            "Lint & test",
            "Release notes",
            "Rotate secrets",
            "Scale workers",
            "Backup database",
        ],
        runs: 60,
    },
    Team {
        name: "data-team",
        personal: false,
        members: &[
            "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
        ],
        workflows: &[
            "Train model",
            "Clean dataset",
            "Export to warehouse",
            "Score leads",
        ],
        runs: 48,
    },
];

/// Fills an empty database with the demo data set, in one transaction.
///
/// # Errors
/// [`Error::DatabaseNotEmpty`] when any workspace exists (nothing is
/// written); [`Error::Database`].
pub async fn seed_demo(
    conn: &DatabaseConnection,
    options: &DemoOptions,
) -> Result<DemoReport, Error> {
    seed_demo_with_progress(conn, options, |_| {}).await
}

/// [`seed_demo`], telling `progress` which step starts (the heavy
/// workspace's runs take most of the time), so a front can show it.
///
/// # Errors
/// As [`seed_demo`].
pub async fn seed_demo_with_progress(
    conn: &DatabaseConnection,
    options: &DemoOptions,
    mut progress: impl FnMut(&str),
) -> Result<DemoReport, Error> {
    let txn = recents_service::begin_write(conn).await?;
    let existing = txn
        .query_one_raw(statement(
            txn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM workspaces",
            vec![],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    if existing > 0 {
        return Err(Error::DatabaseNotEmpty {
            what: "the demo seed",
            workspaces: existing as u64,
        });
    }
    let now = options.now.trunc_subsecs(0);
    let mut report = DemoReport {
        workspaces: Vec::new(),
        heavy_workspace: WorkspaceId(0),
        runs: 0,
        summary_rows: 0,
        jobs: 0,
    };
    let mut noise = Noise(0x5eed);
    progress("personal and team workspaces and their runs");
    for team in SMALL {
        let ws = insert_workspace(&txn, team.name, team.personal, now, None).await?;
        report.workspaces.push((ws, team.name.to_owned()));
        let mut versions = Vec::new();
        for title in team.workflows {
            let pr = insert_published_run(&txn, ws, title, now).await?;
            versions.push(insert_version(&txn, pr, now).await?);
        }
        for _ in 0..team.runs {
            let version = versions[noise.below(versions.len() as u64) as usize];
            let uid = team.members[noise.below(team.members.len() as u64) as usize];
            let ago = Duration::seconds(noise.below(30 * 24 * 3600) as i64 + 1);
            save_run(
                &txn,
                &RunSave {
                    id: None,
                    workspace_id: ws,
                    uid: uid.to_owned(),
                    parent_version_id: Some(version),
                    run_status: "completed".into(),
                    updated_at: now - ago,
                },
                &SaveOptions::exact(),
            )
            .await?;
            report.runs += 1;
        }
    }

    // A soft-deleted workspace: listed, but its reads fail with WorkspaceDeleted.
    let archived = insert_workspace(&txn, "archived-team", false, now, Some(now)).await?;
    report
        .workspaces
        .push((archived, "archived-team".to_owned()));

    let heavy = insert_workspace(&txn, HEAVY_WORKSPACE, false, now, None).await?;
    report.workspaces.push((heavy, HEAVY_WORKSPACE.to_owned()));
    report.heavy_workspace = heavy;
    let workflow = insert_published_run(&txn, heavy, "Nightly import", now).await?;
    let version = insert_version(&txn, workflow, now).await?;
    progress(&format!(
        "the heavy workspace: {} runs of one workflow",
        options.heavy_runs
    ));
    let uids: Vec<String> = (0..40).map(|k| format!("importer-{k:02}")).collect();
    report.runs += bulk::insert_runs(
        &txn,
        &RunBatch {
            workspace_id: heavy,
            version_id: version,
            uids,
            count: options.heavy_runs,
            first_at: now - Duration::seconds(options.heavy_runs as i64),
            run_status: "completed".into(),
        },
    )
    .await?;
    progress("the heavy workspace's summary rows");
    bulk::fill_summary(&txn, heavy).await?;

    progress("the queue's jobs");
    report.jobs = seed_jobs(&txn, now).await?;
    let summary = txn
        .query_one_raw(statement(
            txn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM workspace_recent_workflows",
            vec![],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    report.summary_rows = summary as u64;
    progress("committing, then the planner's statistics");
    txn.commit().await?;
    bulk::analyze(conn).await?;
    Ok(report)
}

/// Jobs in the demo's queue.
pub const DEMO_JOBS: u64 = 3_000;
/// Users the demo's jobs belong to.
pub const DEMO_JOB_USERS: u64 = 36;
/// Demo jobs `processing`: half with a heartbeat as old as their start (a
/// worker died: the console shows them stalled), half with one at `now`.
pub const DEMO_PROCESSING: u64 = 24;
/// Demo jobs waiting (queued, one in a hundred errored and due again).
pub const DEMO_WAITING: u64 = 900;

/// The demo's queue: [`DEMO_JOBS`] jobs of [`DEMO_JOB_USERS`] users made in
/// the hour before `now`, the oldest finished (completed, one in twenty
/// failed), then [`DEMO_PROCESSING`] processing, then [`DEMO_WAITING`]
/// waiting, skewed towards a few heavy users; set-based (a few
/// milliseconds on SQLite). Returns the number of jobs made.
///
/// # Errors
/// [`Error::Database`].
pub async fn seed_jobs<C: ConnectionTrait>(conn: &C, now: DateTime<Utc>) -> Result<u64, Error> {
    let jobs = queue::insert_jobs(
        conn,
        &JobShape {
            jobs: DEMO_JOBS,
            processing: DEMO_PROCESSING,
            waiting: DEMO_WAITING,
            users: DEMO_JOB_USERS,
            first_at: now - Duration::seconds(DEMO_JOBS as i64),
        },
    )
    .await?;
    Ok(jobs.inserted)
}

async fn insert_workspace<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    personal: bool,
    now: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
) -> Result<WorkspaceId, Error> {
    let done = workspace::Entity::insert(workspace::ActiveModel {
        id: NotSet,
        name: Set(name.to_owned()),
        is_personal: Set(personal),
        created_at: Set(now - Duration::days(90)),
        deleted_at: Set(deleted_at),
    })
    .exec(conn)
    .await?;
    Ok(WorkspaceId(done.last_insert_id))
}

async fn insert_published_run<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    title: &str,
    now: DateTime<Utc>,
) -> Result<PublishedRunId, Error> {
    let done = published_run::Entity::insert(published_run::ActiveModel {
        id: NotSet,
        workspace_id: Set(workspace_id.0),
        title: Set(title.to_owned()),
        created_at: Set(now - Duration::days(60)),
        updated_at: Set(now - Duration::days(60)),
    })
    .exec(conn)
    .await?;
    Ok(PublishedRunId(done.last_insert_id))
}

async fn insert_version<C: ConnectionTrait>(
    conn: &C,
    published_run_id: PublishedRunId,
    now: DateTime<Utc>,
) -> Result<VersionId, Error> {
    let done = published_run_version::Entity::insert(published_run_version::ActiveModel {
        id: NotSet,
        published_run_id: Set(published_run_id.0),
        created_at: Set(now - Duration::days(60)),
    })
    .exec(conn)
    .await?;
    Ok(VersionId(done.last_insert_id))
}

/// A fixed-seed generator (xorshift), so the demo is the same every time for
/// the same `now`.
struct Noise(u64);

impl Noise {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

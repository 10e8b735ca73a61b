//! The console on a backend's own tables (a schema mapping, as `--schema
//! FILE` or `RECENTS_SCHEMA` gives it), on every backend: the demo's history
//! under other table names and with the jobs' `finished_at` renamed,
//! recents' own migrations applied by the console over the mapping, then
//! each screen (Workspaces, Workspace, Backfill/verify, Queue) compared with
//! what the mapped tables hold, read back by plain SQL.

mod support;

use std::collections::BTreeMap;

use chrono::Duration;
use crossterm::event::KeyCode;
use recents_entity::execution_job::{self, JobState};
use recents_entity::{saved_run, workspace};
use recents_migration::{Migrator, MigratorTrait, Schema};
use recents_seed::{DemoOptions, seed_demo};
use recents_service::Recents;
use recents_service::admin::{Migrate, Tables};
use recents_testkit::{TestDb, backend_tests};
use recents_tui::console::screens::backfill::Coverage;
use recents_tui::console::{Link, Tab};
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use support::{Console, TEAM_TABLES, now, rename_history_tables};

/// The team's tables, and the jobs' `finished_at` under another name.
fn mapping() -> String {
    format!("{TEAM_TABLES}\n[columns.execution_jobs]\nfinished_at = \"ended_at\"\n")
}

/// The demo's history moved under the mapping's names, recents' own tables
/// and triggers gone: a backend that has never run recents.
async fn mapped_demo(db: &TestDb) -> Schema {
    let c = &db.conn;
    seed_demo(
        c,
        &DemoOptions {
            heavy_runs: 300,
            now: now(),
        },
    )
    .await
    .unwrap();
    // Everything but the history migration rolled back; the rows stay.
    Migrator::down(c, Some(Migrator::migrations().len() as u32 - 1))
        .await
        .unwrap();
    rename_history_tables(c).await;
    c.execute_unprepared("ALTER TABLE team_jobs RENAME COLUMN finished_at TO ended_at")
        .await
        .unwrap();
    Schema::from_toml(&mapping()).unwrap()
}

/// Rows of a mapped table, decoded by the entity of recents' own name.
async fn rows<E: EntityTrait>(db: &TestDb, select: &str) -> Vec<E::Model> {
    E::find()
        .from_raw_sql(Statement::from_string(db.db_backend(), select))
        .all(&db.conn)
        .await
        .unwrap()
}

async fn jobs(db: &TestDb) -> Vec<execution_job::Model> {
    rows::<execution_job::Entity>(
        db,
        "SELECT id, user_id, state, payload, created_at, started_at, ended_at AS finished_at, \
         process_after, num_resets, num_failures, failure_message, worker_hostname, \
         last_heartbeat_at, cancel FROM team_jobs",
    )
    .await
}

/// A count as the console writes it: `1 780` for 1780.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

async fn the_console_reads_every_screen_from_mapped_tables(db: &TestDb) {
    let schema = mapped_demo(db).await;
    let mut console = Console::open_tables(
        &db.url,
        Migrate::Pending,
        Tables::Mapped(Box::new(schema.clone())),
    )
    .await;
    assert_eq!(console.app.link, Link::Connected, "{:?}", console.app.link);

    // Workspaces: the first page, each with its runs in team_runs.
    let workspaces = rows::<workspace::Entity>(db, "SELECT * FROM team_workspaces").await;
    let runs = rows::<saved_run::Entity>(db, "SELECT * FROM team_runs").await;
    assert!(!runs.is_empty());
    let page = console.app.workspaces.page.clone().expect("a page");
    assert_eq!(page.workspaces.len(), workspaces.len().min(50));
    let screen = console.screen(120, 40);
    for shown in &page.workspaces {
        let row = workspaces.iter().find(|w| w.id == shown.id.0).unwrap();
        assert_eq!(shown.name, row.name);
        let in_history = runs.iter().filter(|r| r.workspace_id == row.id).count() as u64;
        assert_eq!(shown.history_runs, in_history, "workspace {}", row.name);
        assert!(
            screen.contains(&row.name),
            "{} not shown: {screen}",
            row.name
        );
    }

    // Workspace: the summary the migration filled from team_runs answers as
    // the history query does, for the whole workspace and for a member.
    let index = page
        .workspaces
        .iter()
        .position(|w| w.name == "data-team")
        .expect("the demo's data-team");
    let data_team = page.workspaces[index].clone();
    console.app.workspaces.table.select(Some(index));
    console.press(KeyCode::Enter).await;
    assert_eq!(console.app.tab, Tab::Workspace);
    for scope in 0..2 {
        console.press(KeyCode::Char('h')).await;
        let comparison = console
            .app
            .workspace
            .as_ref()
            .and_then(|w| w.comparison.clone())
            .expect("compared")
            .unwrap();
        assert_eq!(comparison.first_difference(), None, "scope {scope}");
        assert!(!comparison.summary.value.is_empty(), "scope {scope}");
        let screen = console.screen(100, 18);
        assert!(screen.contains("✓ agree"), "{screen}");
        // The table may cut a long title; its start is there.
        let title: String = comparison.summary.value[0].title.chars().take(12).collect();
        assert!(screen.contains(&title), "{title}: {screen}");
        console.press(KeyCode::Down).await;
    }
    let overview = console
        .app
        .workspace
        .as_ref()
        .and_then(|w| w.overview.clone())
        .unwrap();
    assert_eq!(overview.history_runs, data_team.history_runs);
    assert!(
        console
            .screen(100, 18)
            .contains(&format!("{} history runs", data_team.history_runs))
    );

    // Backfill and verify: exact against team_runs, then a summary row
    // lost, found, and repaired.
    console.press(KeyCode::Char('3')).await;
    assert_eq!(console.app.backfill.target, Coverage::All);
    console.press(KeyCode::Char('b')).await;
    let report = console
        .app
        .backfill
        .last
        .clone()
        .expect("backfilled")
        .unwrap();
    assert_eq!(report.rows_scanned, runs.len() as u64);
    console.press(KeyCode::Char('v')).await;
    let checked = console.app.backfill.drift.clone().unwrap().unwrap();
    assert!(checked.summary.is_exact(), "{:?}", checked.summary);
    assert!(console.screen(100, 20).contains("exact:"));
    db.conn
        .execute_unprepared(&format!(
            "DELETE FROM workspace_recent_workflows WHERE workspace_id = {}",
            data_team.id.0
        ))
        .await
        .unwrap();
    console.press(KeyCode::Char('v')).await;
    let checked = console.app.backfill.drift.clone().unwrap().unwrap();
    assert_eq!(checked.summary.missing, data_team.summary_rows);
    console.press(KeyCode::Char('x')).await;
    console.press(KeyCode::Char('x')).await;
    console.press(KeyCode::Char('v')).await;
    let checked = console.app.backfill.drift.clone().unwrap().unwrap();
    assert!(checked.summary.is_exact(), "{:?}", checked.summary);

    // Queue: counts, fair order, workers, stalled jobs and throughput, each
    // from team_jobs as of the console's 09:00.
    console.press(KeyCode::Char('4')).await;
    let snapshot = console.app.queue.snapshot.clone().expect("read");
    let jobs = jobs(db).await;
    let mut users: BTreeMap<i64, [u64; 4]> = BTreeMap::new();
    for j in &jobs {
        let slot = match j.state {
            JobState::Queued if !j.cancel => 0,
            JobState::Errored if !j.cancel => 1,
            JobState::Processing => 2,
            JobState::Failed => 3,
            _ => continue,
        };
        users.entry(j.user_id).or_default()[slot] += 1;
    }
    let shown: BTreeMap<i64, [u64; 4]> = snapshot
        .users
        .iter()
        .map(|u| (u.user_id.0, [u.queued, u.errored, u.processing, u.failed]))
        .collect();
    assert_eq!(shown, users);
    for u in &snapshot.users {
        let latest = jobs
            .iter()
            .filter(|j| j.user_id == u.user_id.0)
            .filter_map(|j| j.started_at)
            .max();
        assert_eq!(u.latest_dequeue, latest, "user {}", u.user_id);
    }
    let fair = Recents::new(schema.clone())
        .fair_order_from_history(&db.conn, 20)
        .await
        .unwrap();
    assert_eq!(snapshot.next, fair);

    let mut workers: BTreeMap<&str, (u64, Option<chrono::DateTime<chrono::Utc>>)> = BTreeMap::new();
    for j in jobs.iter().filter(|j| j.state == JobState::Processing) {
        if let Some(name) = &j.worker_hostname {
            let w = workers.entry(name).or_default();
            w.0 += 1;
            w.1 = w.1.max(j.last_heartbeat_at);
        }
    }
    let seen: BTreeMap<&str, (u64, Option<chrono::DateTime<chrono::Utc>>)> = snapshot
        .workers
        .iter()
        .map(|w| (w.name.as_str(), (w.in_flight, w.last_heartbeat)))
        .collect();
    assert_eq!(seen, workers);
    assert!(!workers.is_empty(), "the demo has jobs running");

    let cutoff = now() - Duration::seconds(60);
    let mut stalled: Vec<i64> = jobs
        .iter()
        .filter(|j| j.state == JobState::Processing)
        .filter(|j| j.last_heartbeat_at.is_none_or(|at| at < cutoff))
        .map(|j| j.id)
        .collect();
    stalled.sort();
    let mut listed: Vec<i64> = snapshot.stalled.iter().map(|j| j.id).collect();
    listed.sort();
    assert_eq!(listed, stalled);
    assert!(!stalled.is_empty(), "the demo has stalled jobs");

    let in_window = |states: &[JobState]| {
        jobs.iter()
            .filter(|j| states.contains(&j.state))
            .filter(|j| j.finished_at.is_some_and(|at| at > cutoff && at <= now()))
            .count() as u64
    };
    assert_eq!(
        (snapshot.throughput.completed, snapshot.throughput.failed),
        (
            in_window(&[JobState::Completed]),
            in_window(&[JobState::Errored, JobState::Failed])
        )
    );
    assert!(
        snapshot.throughput.completed + snapshot.throughput.failed > 0,
        "the demo ends a run in the minute before 09:00"
    );
    let screen = console.screen(100, 32);
    let queued: u64 = users.values().map(|u| u[0]).sum();
    assert!(
        screen.contains(&format!("{} queued", grouped(queued))),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("{} stalled", snapshot.stalled.len())),
        "{screen}"
    );
    assert!(screen.contains("jobs/s"), "{screen}");
    for name in workers.keys() {
        assert!(screen.contains(name), "worker {name}: {screen}");
    }
    // Nothing was read from recents' own names: they are not there.
    assert!(
        db.conn
            .execute_unprepared("SELECT 1 FROM execution_jobs")
            .await
            .is_err()
    );
}

backend_tests!(the_console_reads_every_screen_from_mapped_tables);

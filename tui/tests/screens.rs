//! Every console screen rendered through ratatui's `TestBackend` and pinned
//! by insta snapshots, with real data from a test database (SQLite). The
//! console is driven as in the terminal: keys into `App::handle_key`, the
//! requests answered by the worker's `Database`, answers into `App::apply`.
//! Timestamps are fixed (the demo's `now`) and query timings come from a
//! fixed stopwatch, so every run renders the same screen.

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use recents_migration::{Migrator, MigratorTrait};
use recents_seed::{DemoOptions, seed_demo};
use recents_service::admin::Migrate;
use recents_service::{Scope, WorkspaceId};
use recents_testkit::{Backend, TestDb};
use recents_tui::console::worker::FailureKind;
use recents_tui::console::{Link, Request, Tab};
use sea_orm::{ActiveValue::Set, EntityTrait, NotSet};

mod support;

use support::{Console, now};

async fn demo_db() -> TestDb {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .expect("SQLite always runs");
    seed_demo(
        &db.conn,
        &DemoOptions {
            heavy_runs: 1_200,
            now: now(),
        },
    )
    .await
    .unwrap();
    db
}

async fn open_workspace(console: &mut Console, name: &str) {
    let page = console.app.workspaces.page.clone().unwrap();
    let index = page.workspaces.iter().position(|w| w.name == name).unwrap();
    console.app.workspaces.table.select(Some(index));
    console.press(KeyCode::Enter).await;
    assert_eq!(console.app.tab, Tab::Workspace);
}

#[tokio::test]
async fn workspaces_on_an_empty_database_say_how_to_seed() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut console = Console::open(&db.url, Migrate::Never).await;
    assert_eq!(console.app.link, Link::Connected);
    insta::assert_snapshot!("workspaces_empty", console.screen(80, 12));
    insta::assert_snapshot!("workspaces_empty_40x12", console.screen(40, 12));
    db.drop_database().await;
}

#[tokio::test]
async fn workspaces_list_the_demo_with_counts() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    insta::assert_snapshot!("workspaces_demo", console.screen(100, 16));
    insta::assert_snapshot!("workspaces_demo_40x12", console.screen(40, 12));
    db.drop_database().await;
}

#[tokio::test]
async fn workspaces_filter_while_typing_then_on_enter() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('/')).await;
    console.type_text("TEAM").await;
    insta::assert_snapshot!("workspaces_filter_typing", console.screen(100, 16));
    console.press(KeyCode::Enter).await;
    insta::assert_snapshot!("workspaces_filtered", console.screen(100, 16));
    console.press(KeyCode::Esc).await;
    assert_eq!(
        console
            .app
            .workspaces
            .page
            .as_ref()
            .unwrap()
            .workspaces
            .len(),
        7
    );
    db.drop_database().await;
}

#[tokio::test]
async fn workspaces_sort_by_name_descending_on_the_third_s() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    for _ in 0..3 {
        console.press(KeyCode::Char('s')).await;
    }
    insta::assert_snapshot!("workspaces_by_name_descending", console.screen(100, 16));
    db.drop_database().await;
}

#[tokio::test]
async fn workspaces_page_forward_and_back_by_keyset() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    for n in 1..=57 {
        recents_entity::workspace::Entity::insert(recents_entity::workspace::ActiveModel {
            id: NotSet,
            name: Set(format!("ws-{n:03}")),
            is_personal: Set(n % 2 == 0),
            created_at: Set(now()),
            deleted_at: Set(None),
        })
        .exec(&db.conn)
        .await
        .unwrap();
    }
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('n')).await;
    assert_eq!(console.app.workspaces.page_number, 1);
    insta::assert_snapshot!("workspaces_second_page", console.screen(80, 14));
    console.press(KeyCode::Char('n')).await; // no third page: stays
    assert_eq!(console.app.workspaces.page_number, 1);
    console.press(KeyCode::Char('p')).await;
    let first = console.app.workspaces.page.as_ref().unwrap();
    assert_eq!(first.workspaces[0].id, WorkspaceId(1));
    assert_eq!(first.workspaces.len(), 50);
    db.drop_database().await;
}

#[tokio::test]
async fn workspace_shows_recent_workflows_per_scope_and_against_history() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    open_workspace(&mut console, "platform-team").await;
    insta::assert_snapshot!("workspace_whole", console.screen(100, 18));
    console.press(KeyCode::Down).await; // the first member
    insta::assert_snapshot!("workspace_member", console.screen(100, 18));
    console.press(KeyCode::Char('h')).await;
    let comparison = console
        .app
        .workspace
        .as_ref()
        .and_then(|ws| ws.comparison.clone())
        .unwrap()
        .unwrap();
    assert_eq!(comparison.first_difference(), None);
    insta::assert_snapshot!("workspace_compared", console.screen(100, 18));
    insta::assert_snapshot!("workspace_compared_40x12", console.screen(40, 12));
    console.press(KeyCode::Esc).await;
    assert_eq!(console.app.tab, Tab::Workspaces);
    db.drop_database().await;
}

#[tokio::test]
async fn a_late_answer_for_a_scope_no_longer_shown_is_dropped() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    open_workspace(&mut console, "platform-team").await;
    let id = console.app.workspace.as_ref().unwrap().id;
    // The whole workspace's answer, fetched but not yet delivered...
    let late = console
        .database
        .answer(Request::Recent(id, Scope::Workspace))
        .await;
    console.press(KeyCode::Down).await; // ...when the operator moves to ada.
    let ada = console.app.workspace.as_ref().unwrap().recent.clone();
    assert!(matches!(&ada, Some(Ok(rows)) if rows.len() == 4), "{ada:?}");
    assert!(console.app.apply(late).is_empty());
    let ws = console.app.workspace.as_ref().unwrap();
    assert_eq!(ws.scope(), Scope::Member("ada".into()));
    assert_eq!(ws.recent, ada, "ada's answer stays on screen");
    db.drop_database().await;
}

#[tokio::test]
async fn workspace_heavy_compares_the_single_workflow() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    open_workspace(&mut console, "nightly-imports").await;
    console.press(KeyCode::Char('h')).await;
    insta::assert_snapshot!("workspace_heavy_compared", console.screen(100, 12));
    db.drop_database().await;
}

#[tokio::test]
async fn workspace_deleted_says_so_instead_of_reading() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    open_workspace(&mut console, "archived-team").await;
    console.press(KeyCode::Char('h')).await; // nothing to compare
    insta::assert_snapshot!("workspace_deleted", console.screen(80, 10));
    db.drop_database().await;
}

#[tokio::test]
async fn help_overlays_the_screen_and_closes_on_esc() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('?')).await;
    insta::assert_snapshot!("help", console.screen(80, 24));
    insta::assert_snapshot!("help_40x12", console.screen(40, 12));
    console.press(KeyCode::Esc).await;
    assert!(!console.app.help);
    console.press(KeyCode::Char('q')).await;
    assert!(console.app.quit);
    db.drop_database().await;
}

#[tokio::test]
async fn a_database_that_does_not_answer_shows_a_banner_and_retries() {
    let mut console = Console::open(
        "sqlite:///nonexistent-recents-dir/recents.db?mode=rwc",
        Migrate::IfNew,
    )
    .await;
    let Link::Failed { failure, retry_in } = &console.app.link else {
        panic!("{:?}", console.app.link);
    };
    assert_eq!(failure.kind, FailureKind::Unavailable);
    assert_eq!(*retry_in, Some(5));
    insta::assert_snapshot!("banner_unavailable", console.screen(100, 10));
    insta::assert_snapshot!("banner_unavailable_40x12", console.screen(40, 12));
    // The countdown reaches zero and asks to connect again.
    for _ in 0..4 {
        assert!(console.app.tick().is_empty());
    }
    assert_eq!(console.app.tick(), vec![Request::Connect]);
    assert_eq!(console.app.link, Link::Connecting);
}

#[tokio::test]
async fn a_schema_behind_shows_a_banner_until_migrated() {
    let db = demo_db().await;
    Migrator::down(&db.conn, Some(1)).await.unwrap();
    let mut console = Console::open(&db.url, Migrate::IfNew).await;
    insta::assert_snapshot!("banner_behind", console.screen(100, 10));
    Migrator::up(&db.conn, None).await.unwrap();
    console.press(KeyCode::Char('r')).await; // retry now
    assert_eq!(console.app.link, Link::Connected);
    assert_eq!(
        console
            .app
            .workspaces
            .page
            .as_ref()
            .unwrap()
            .workspaces
            .len(),
        7
    );
    db.drop_database().await;
}

#[tokio::test]
async fn backfill_runs_with_progress_then_verify_finds_and_repairs_drift() {
    use recents_tui::console::Response;
    use sea_orm::ConnectionTrait;

    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.database = console.database.clone().with_backfill_batch_rows(500);
    console.press(KeyCode::Char('3')).await;
    assert_eq!(console.app.tab, Tab::Backfill);
    insta::assert_snapshot!("backfill_idle", console.screen(100, 20));
    insta::assert_snapshot!("backfill_idle_40x12", console.screen(40, 12));

    // Start from an empty summary, as a team adopting recents does.
    db.conn
        .execute_unprepared("DELETE FROM workspace_recent_workflows")
        .await
        .unwrap();
    let requests = console
        .app
        .handle_key(KeyEvent::new(KeyCode::Char('b'), KeyModifiers::NONE));
    assert_eq!(requests.len(), 1);
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let done = console
        .database
        .answer_with_progress(requests[0].clone(), Some(events))
        .await;
    let mut progress = Vec::new();
    while let Ok(event) = received.try_recv() {
        assert!(matches!(event, Response::BackfillProgress(_)));
        progress.push(event);
    }
    assert!(progress.len() >= 3, "1,362 runs in batches of 500");
    // Mid-run: the first batch on screen, the backfill still running.
    console.app.apply(progress.remove(0));
    insta::assert_snapshot!("backfill_running", console.screen(100, 20));
    for event in progress {
        console.app.apply(event);
    }
    console.app.apply(done);
    assert!(!console.app.backfill.running);
    insta::assert_snapshot!("backfill_done", console.screen(100, 20));

    console.press(KeyCode::Char('v')).await;
    insta::assert_snapshot!("backfill_verified_exact", console.screen(100, 20));

    db.conn
        .execute_unprepared(
            "UPDATE workspace_recent_workflows SET last_saved_run_id = last_saved_run_id + 1000 \
             WHERE workspace_id = 1 AND uid = ''",
        )
        .await
        .unwrap();
    console.press(KeyCode::Char('v')).await;
    insta::assert_snapshot!("backfill_verified_drift", console.screen(100, 20));
    // x asks, a second x confirms.
    console.press(KeyCode::Char('x')).await;
    console.press(KeyCode::Char('x')).await;
    insta::assert_snapshot!("backfill_repaired", console.screen(100, 20));
    console.press(KeyCode::Char('v')).await;
    let exact = console
        .app
        .backfill
        .drift
        .as_ref()
        .unwrap()
        .as_ref()
        .unwrap();
    assert!(exact.summary.is_exact(), "{:?}", exact.summary);
    assert!(
        exact.last_dequeues.as_ref().is_some_and(|l| l.is_exact()),
        "{exact:?}"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn esc_cancels_a_running_backfill_and_b_resumes_it() {
    use recents_tui::console::Response;
    use recents_tui::console::screens::backfill::Coverage;
    use sea_orm::ConnectionTrait;

    let db = demo_db().await;
    db.conn
        .execute_unprepared("DELETE FROM workspace_recent_workflows")
        .await
        .unwrap();
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.database = console.database.clone().with_backfill_batch_rows(100);
    console.press(KeyCode::Char('3')).await;
    let requests = console
        .app
        .handle_key(KeyEvent::new(KeyCode::Char('b'), KeyModifiers::NONE));
    assert_eq!(requests, vec![Request::Backfill(Coverage::All)]);

    // The backfill runs in a task, as in the terminal; Esc on its first
    // progress event stops it after that batch.
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let running = {
        let database = console.database.clone();
        let request = requests[0].clone();
        tokio::spawn(async move { database.answer_with_progress(request, Some(events)).await })
    };
    let first = received.recv().await.expect("a first batch");
    console.app.apply(first);
    let cancel = console
        .app
        .handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(cancel, vec![Request::CancelBackfill]);
    assert!(
        console
            .app
            .handle_key(KeyEvent::new(KeyCode::Char('v'), KeyModifiers::NONE))
            .is_empty(),
        "no other work starts while a backfill runs"
    );
    console.settle(cancel).await;
    insta::assert_snapshot!("backfill_cancelling", console.screen(100, 20));
    let done = running.await.unwrap();
    let Response::BackfillDone(Ok(report)) = &done else {
        panic!("{done:?}");
    };
    assert!(!report.finished, "cancelled before the last batch");
    while let Ok(event) = received.try_recv() {
        console.app.apply(event);
    }
    console.app.apply(done);
    // How many batches ran before the cancel landed is a race: no snapshot.
    let screen = console.screen(100, 20);
    assert!(
        screen.contains("cancelled after") && screen.contains("the checkpoint is kept, b resumes"),
        "{screen}"
    );

    console.press(KeyCode::Char('b')).await;
    let Some(Ok(resumed)) = &console.app.backfill.last else {
        panic!("{:?}", console.app.backfill.last);
    };
    assert!(resumed.resumed && resumed.finished, "{resumed:?}");
    console.press(KeyCode::Char('v')).await;
    let report = console
        .app
        .backfill
        .drift
        .as_ref()
        .unwrap()
        .as_ref()
        .unwrap();
    assert!(report.summary.is_exact(), "{:?}", report.summary);
    db.drop_database().await;
}

/// 09:00 on the demo's day, give or take: the queue fixture's clock.
fn at(hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour, minute, second)
        .unwrap()
}

/// One `execution_jobs` row with fixed times, so the screen is the same on
/// every run; the triggers keep each user's latest dequeue as the queue's
/// own writes would.
struct JobRow {
    user_id: i64,
    state: recents_entity::execution_job::JobState,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    last_heartbeat_at: Option<DateTime<Utc>>,
    /// When a finished job ended; `None`: at its start.
    finished_at: Option<DateTime<Utc>>,
    worker: Option<&'static str>,
    num_resets: i32,
    num_failures: i32,
}

impl JobRow {
    fn queued(user_id: i64, created_at: DateTime<Utc>) -> Self {
        JobRow {
            user_id,
            state: recents_entity::execution_job::JobState::Queued,
            created_at,
            started_at: None,
            last_heartbeat_at: None,
            finished_at: None,
            worker: None,
            num_resets: 0,
            num_failures: 0,
        }
    }

    async fn insert(self, conn: &sea_orm::DatabaseConnection) -> i64 {
        use recents_entity::execution_job::{ActiveModel, Entity, JobState};
        let finished =
            matches!(self.state, JobState::Completed | JobState::Failed).then_some(self.created_at);
        Entity::insert(ActiveModel {
            id: NotSet,
            user_id: Set(self.user_id),
            state: Set(self.state),
            payload: Set(serde_json::json!({ "user": self.user_id })),
            created_at: Set(self.created_at),
            started_at: Set(self.started_at),
            finished_at: Set(finished.and(self.finished_at.or(self.started_at))),
            process_after: Set(None),
            num_resets: Set(self.num_resets),
            num_failures: Set(self.num_failures),
            failure_message: Set(None),
            worker_hostname: Set(self.worker.map(str::to_owned)),
            last_heartbeat_at: Set(self.last_heartbeat_at),
            cancel: Set(false),
        })
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id
    }
}

/// A queue mid-morning: user 7 served twice and holding six jobs, user 12
/// never served, user 31 with an errored, a failed and two stalled jobs
/// (one already reset three times), user 45 served once, user 52 with two
/// runs ended in the minute before 09:00. worker-a heartbeat at 08:59:50;
/// worker-b and worker-c stopped at 08:41 and 08:43. Returns the ids of the
/// two stalled jobs.
async fn queue_fixture(conn: &sea_orm::DatabaseConnection) -> (i64, i64) {
    use recents_entity::execution_job::JobState;
    JobRow {
        state: JobState::Completed,
        started_at: Some(at(8, 30, 0)),
        ..JobRow::queued(7, at(7, 50, 0))
    }
    .insert(conn)
    .await;
    // Alive: it heartbeat ten seconds before the console's 09:00.
    JobRow {
        state: JobState::Processing,
        started_at: Some(at(8, 50, 0)),
        last_heartbeat_at: Some(at(8, 59, 50)),
        worker: Some("worker-a"),
        ..JobRow::queued(7, at(7, 51, 0))
    }
    .insert(conn)
    .await;
    for k in 0..6 {
        JobRow::queued(7, at(8, 0, k)).insert(conn).await;
    }
    JobRow::queued(12, at(8, 10, 0)).insert(conn).await;
    JobRow::queued(12, at(8, 10, 30)).insert(conn).await;
    JobRow {
        state: JobState::Errored,
        num_failures: 1,
        ..JobRow::queued(31, at(7, 0, 0))
    }
    .insert(conn)
    .await;
    JobRow {
        state: JobState::Failed,
        started_at: Some(at(7, 10, 0)),
        num_failures: 3,
        ..JobRow::queued(31, at(7, 5, 0))
    }
    .insert(conn)
    .await;
    let stalled = JobRow {
        state: JobState::Processing,
        started_at: Some(at(8, 40, 0)),
        last_heartbeat_at: Some(at(8, 41, 0)),
        worker: Some("worker-b"),
        ..JobRow::queued(31, at(7, 30, 0))
    }
    .insert(conn)
    .await;
    let worn_out = JobRow {
        state: JobState::Processing,
        started_at: Some(at(8, 42, 0)),
        last_heartbeat_at: Some(at(8, 43, 0)),
        worker: Some("worker-c"),
        num_resets: 3,
        ..JobRow::queued(31, at(7, 31, 0))
    }
    .insert(conn)
    .await;
    JobRow {
        state: JobState::Completed,
        started_at: Some(at(8, 20, 0)),
        ..JobRow::queued(45, at(8, 5, 0))
    }
    .insert(conn)
    .await;
    JobRow::queued(45, at(8, 15, 0)).insert(conn).await;
    // The last minute's throughput: two runs ended after 08:59:00, one
    // (user 7's first, above) long before. User 52 has nothing else, so
    // the users' table and the fair order do not show it.
    for (started, finished) in [
        (at(8, 58, 50), at(8, 59, 30)),
        (at(8, 59, 20), at(8, 59, 45)),
    ] {
        JobRow {
            state: JobState::Completed,
            started_at: Some(started),
            finished_at: Some(finished),
            ..JobRow::queued(52, at(8, 58, 0))
        }
        .insert(conn)
        .await;
    }
    (stalled, worn_out)
}

#[tokio::test]
async fn queue_on_an_empty_database_says_nobody_waits() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('4')).await;
    assert_eq!(console.app.tab, Tab::Queue);
    insta::assert_snapshot!("queue_empty", console.screen(80, 14));
    insta::assert_snapshot!("queue_empty_40x12", console.screen(40, 12));
    db.drop_database().await;
}

#[tokio::test]
async fn queue_shows_counts_the_fair_order_and_stalled_jobs_and_resets_them() {
    use recents_service::JobId;
    use recents_service::queue::ResetReport;

    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let (stalled, worn_out) = queue_fixture(&db.conn).await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    // From the Backfill screen, Tab moves on to the Queue.
    console.press(KeyCode::Char('3')).await;
    console.press(KeyCode::Tab).await;
    assert_eq!(console.app.tab, Tab::Queue);
    insta::assert_snapshot!("queue", console.screen(100, 32));
    insta::assert_snapshot!("queue_40x12", console.screen(40, 12));
    insta::assert_snapshot!("queue_80x20", console.screen(80, 20));
    // Room for each worker's heartbeat time beside its age.
    insta::assert_snapshot!("queue_120x32", console.screen(120, 32));
    // Narrow but tall: the workers under the fair order.
    insta::assert_snapshot!("queue_60x30", console.screen(60, 30));
    let snapshot = console.app.queue.snapshot.as_ref().unwrap();
    assert_eq!(snapshot.read_at, now());
    assert_eq!(
        (snapshot.throughput.completed, snapshot.throughput.failed),
        (2, 0),
        "user 52's two runs ended in the last minute; user 7's and 45's long before"
    );
    let workers: Vec<_> = snapshot
        .workers
        .iter()
        .map(|w| (w.name.as_str(), w.in_flight, w.last_heartbeat))
        .collect();
    assert_eq!(
        workers,
        [
            ("worker-a", 1, Some(at(8, 59, 50))),
            ("worker-b", 1, Some(at(8, 41, 0))),
            ("worker-c", 1, Some(at(8, 43, 0))),
        ]
    );

    // Refreshed every second, but never two refreshes at once.
    let refresh = console.app.tick();
    assert_eq!(refresh.len(), 1);
    assert!(matches!(refresh[0], Request::Queue { .. }), "{refresh:?}");
    assert!(
        console.app.tick().is_empty(),
        "the last refresh is under way"
    );
    console.settle(refresh).await;

    console.press(KeyCode::Char('x')).await;
    // The first x only asks; nothing is reset until the second.
    assert!(console.app.confirming.is_some() && !console.app.queue.resetting);
    assert!(
        console
            .screen(100, 32)
            .contains("x again resets the stalled jobs")
    );
    console.press(KeyCode::Char('x')).await;
    let Some(Ok(report)) = &console.app.queue.last_reset else {
        panic!("{:?}", console.app.queue.last_reset);
    };
    assert_eq!(
        report,
        &ResetReport {
            requeued: vec![JobId(stalled)],
            failed: vec![JobId(worn_out)],
            canceled: vec![],
        }
    );
    insta::assert_snapshot!("queue_after_reset", console.screen(100, 32));
    let snapshot = console.app.queue.snapshot.as_ref().unwrap();
    assert!(snapshot.stalled.is_empty());
    // The worn-out job failed at the console's 09:00: a run ended in the window.
    assert_eq!(
        (snapshot.throughput.completed, snapshot.throughput.failed),
        (2, 1)
    );
    let names: Vec<_> = snapshot.workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        ["worker-a"],
        "the reset took the stalled workers' jobs"
    );
    let user_31 = snapshot.users.iter().find(|u| u.user_id.0 == 31).unwrap();
    assert_eq!(
        (
            user_31.queued,
            user_31.errored,
            user_31.processing,
            user_31.failed
        ),
        (1, 1, 0, 2)
    );

    // A second reset finds nothing.
    // x asks, a second x confirms.
    console.press(KeyCode::Char('x')).await;
    console.press(KeyCode::Char('x')).await;
    let screen = console.screen(100, 32);
    assert!(
        screen.contains("reset: no job was stalled for 60 s"),
        "{screen}"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn queue_help_lists_its_keys() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    queue_fixture(&db.conn).await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('4')).await;
    console.press(KeyCode::Char('?')).await;
    insta::assert_snapshot!("help_queue", console.screen(80, 24));
    db.drop_database().await;
}

#[tokio::test]
async fn queue_keeps_its_last_refresh_when_a_read_fails_and_recovers() {
    use sea_orm::ConnectionTrait;

    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    queue_fixture(&db.conn).await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('4')).await;
    assert!(console.app.queue.snapshot.is_some());
    db.conn
        .execute_unprepared("ALTER TABLE execution_jobs RENAME TO execution_jobs_away")
        .await
        .unwrap();
    let refresh = console.app.tick();
    console.settle(refresh).await;
    assert_eq!(
        console.app.link,
        Link::Connected,
        "a failed read is not a lost link"
    );
    let error = console
        .app
        .queue
        .error
        .clone()
        .expect("the failure is kept");
    assert!(error.contains("execution_jobs"), "{error}");
    let screen = console.screen(100, 32);
    assert!(screen.contains("refresh failed"), "{screen}");
    assert!(
        screen.contains("Next in line"),
        "the last refresh stays: {screen}"
    );
    // x asks, a second x confirms.
    console.press(KeyCode::Char('x')).await;
    console.press(KeyCode::Char('x')).await;
    assert!(
        matches!(&console.app.queue.last_reset, Some(Err(_))),
        "{:?}",
        console.app.queue.last_reset
    );
    assert!(console.screen(100, 32).contains("reset failed"));

    db.conn
        .execute_unprepared("ALTER TABLE execution_jobs_away RENAME TO execution_jobs")
        .await
        .unwrap();
    let refresh = console.app.tick();
    console.settle(refresh).await;
    assert_eq!(console.app.queue.error, None);
    db.drop_database().await;
}

#[tokio::test]
async fn the_queue_scrolls_through_every_user() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('4')).await;
    let users = console.app.queue.snapshot.as_ref().unwrap().users.clone();
    assert_eq!(users.len(), 36, "the demo's users");
    let screen = console.screen(100, 32);
    assert!(screen.contains("Users 1-7 of 36 · ↑↓"), "{screen}");
    for _ in 0..5 {
        console.press(KeyCode::Down).await;
    }
    let screen = console.screen(100, 32);
    assert!(screen.contains("Users 6-12 of 36"), "{screen}");
    let sixth = format!("│{:<10}", users[5].user_id.0);
    assert!(
        screen.contains(&sixth),
        "user {} first: {screen}",
        users[5].user_id.0
    );
    insta::assert_snapshot!("queue_scrolled", screen);
    // Past the end: the last seven users, and Up comes back one at a time.
    for _ in 0..100 {
        console.press(KeyCode::Char('j')).await;
    }
    assert!(console.screen(100, 32).contains("Users 30-36 of 36"));
    console.press(KeyCode::Up).await;
    assert!(console.screen(100, 32).contains("Users 29-35 of 36"));
}

#[tokio::test]
async fn switching_the_backfill_target_drops_the_other_targets_results() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    open_workspace(&mut console, "data-team").await;
    console.press(KeyCode::Char('3')).await;
    console.press(KeyCode::Char('b')).await;
    assert!(console.app.backfill.last.is_some());
    console.press(KeyCode::Char('v')).await;
    assert!(console.app.backfill.drift.is_some());
    let all = console.screen(100, 20);
    assert!(all.contains("history rows"), "{all}");
    console.press(KeyCode::Char('t')).await;
    let backfill = &console.app.backfill;
    assert!(
        backfill.progress.is_none() && backfill.last.is_none() && backfill.drift.is_none(),
        "{backfill:?}"
    );
    insta::assert_snapshot!("backfill_retargeted", console.screen(100, 20));
}

#[tokio::test]
async fn the_selection_stays_on_its_workspace_when_the_filter_changes() {
    let db = demo_db().await;
    let mut console = Console::open(&db.url, Migrate::Never).await;
    let page = console.app.workspaces.page.clone().unwrap();
    let index = page
        .workspaces
        .iter()
        .position(|w| w.name == "data-team")
        .unwrap();
    console.app.workspaces.table.select(Some(index));
    console.press(KeyCode::Char('/')).await;
    console.type_text("team").await;
    console.press(KeyCode::Enter).await;
    let selected = console.app.workspaces.selected().unwrap();
    assert_eq!(selected.name, "data-team");
    // A filter that leaves it out selects the first row.
    console.press(KeyCode::Char('/')).await;
    for _ in 0.."team".len() {
        console.press(KeyCode::Backspace).await;
    }
    console.type_text("ada").await;
    console.press(KeyCode::Enter).await;
    assert_eq!(console.app.workspaces.table.selected(), Some(0));
    assert_eq!(console.app.workspaces.selected().unwrap().name, "ada");
}

#[tokio::test]
async fn the_consoles_verify_checks_latest_dequeues_as_the_subcommand_does() {
    use sea_orm::ConnectionTrait;
    let db = demo_db().await;
    // A latest dequeue for a user without any started job: extra.
    db.conn
        .execute_unprepared(
            "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) \
             VALUES (999, '2026-11-23T08:00:00+00:00')",
        )
        .await
        .unwrap();
    let mut console = Console::open(&db.url, Migrate::Never).await;
    console.press(KeyCode::Char('3')).await;
    console.press(KeyCode::Char('v')).await;
    let screen = console.screen(100, 20);
    assert!(
        screen.contains("latest dequeues: 0 missing, 0 stale, 0 too high, 1 extra"),
        "{screen}"
    );
    console.press(KeyCode::Char('x')).await;
    console.press(KeyCode::Char('x')).await;
    assert!(
        console
            .screen(100, 20)
            .contains("latest dequeues: 1 drifted, 1 repaired")
    );
    console.press(KeyCode::Char('v')).await;
    assert!(console.screen(100, 20).contains("latest dequeues exact"));
}

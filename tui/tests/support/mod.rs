//! The console driven without a terminal, as in the terminal: keys into
//! `App::handle_key`, the requests answered by the worker's `Database`,
//! answers into `App::apply`; screens drawn on ratatui's `TestBackend`.
//! Shared by the screen tests on recents' own tables and on mapped ones,
//! with the renaming that turns the test kit's history tables into a
//! backend's own (the subcommands' tests use that too).
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use recents_service::admin::{Migrate, Tables};
use recents_tui::console::{App, Clock, Database, Request, Stopwatch, render};
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// What the tab bar calls the database: fixed, so that every backend's
/// screens read the same.
const LABEL: &str = "sqlite://test.db";

/// The demo's and the fixtures' `now`: 09:00 on 2026-11-23.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

/// The `[tables]` of a mapping naming the tables [`rename_history_tables`] leaves.
pub const TEAM_TABLES: &str = "[tables]\nworkspaces = \"team_workspaces\"\n\
    published_runs = \"team_workflows\"\nversions = \"team_workflow_versions\"\n\
    saved_runs = \"team_runs\"\nexecution_jobs = \"team_jobs\"\n";

/// Renames the history tables under recents' names to a team's own, as
/// [`TEAM_TABLES`] maps them; their rows stay.
pub async fn rename_history_tables(c: &DatabaseConnection) {
    for (from, to) in [
        ("workspaces", "team_workspaces"),
        ("published_runs", "team_workflows"),
        ("published_run_versions", "team_workflow_versions"),
        ("saved_runs", "team_runs"),
        ("execution_jobs", "team_jobs"),
    ] {
        c.execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .await
            .unwrap();
    }
}

/// The console on a database, driven without a terminal.
pub struct Console {
    pub app: App,
    pub database: Database,
}

impl Console {
    /// The console on `url`, recents' own tables.
    pub async fn open(url: &str, migrate: Migrate) -> Console {
        Console::open_tables(url, migrate, Tables::default()).await
    }

    /// The console on `url`, on the tables `tables` names.
    pub async fn open_tables(url: &str, migrate: Migrate, tables: Tables) -> Console {
        let mut console = Console {
            app: App::new(LABEL.into()),
            // The queue is read as of the fixtures' 09:00, whatever the
            // wall clock says: heartbeat ages and stalls are the same every run.
            database: Database::new(
                url.into(),
                migrate,
                Stopwatch::Fixed(Duration::from_micros(1_250)),
            )
            .with_clock(Clock::Fixed(now()))
            .with_tables(tables),
        };
        let requests = console.app.start();
        console.settle(requests).await;
        console
    }

    /// Answers requests, and the requests the answers lead to, until none is left.
    pub async fn settle(&mut self, mut requests: Vec<Request>) {
        while !requests.is_empty() {
            let request = requests.remove(0);
            let response = self.database.answer(request).await;
            self.database.observe(&response);
            requests.extend(self.app.apply(response));
        }
    }

    /// Presses one key and answers what it asks.
    pub async fn press(&mut self, code: KeyCode) {
        let requests = self.app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
        self.settle(requests).await;
    }

    /// Types `text`, a key a character.
    pub async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.press(KeyCode::Char(c)).await;
        }
    }

    /// The screen as drawn at `width` x `height`.
    pub fn screen(&mut self, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| render(&mut self.app, frame)).unwrap();
        terminal.backend().to_string()
    }
}

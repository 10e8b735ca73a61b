//! The operator console: an [`App`] that owns the state, a loop that draws
//! and then handles one event (a key, a database answer, a tick), database
//! work in tokio tasks reporting over mpsc ([`worker`]), and the terminal
//! set up by `ratatui::init()` and put back by `ratatui::restore()`, on a
//! panic too.

pub mod app;
pub mod chrome;
pub mod format;
pub mod screens;
pub mod worker;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, bail};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use ratatui::layout::{Constraint, Layout};
use ratatui::{DefaultTerminal, Frame};
use tokio::sync::mpsc;

pub use app::{App, Link, Tab};
pub use worker::{Clock, Database, Request, Response, Stopwatch, Worker};

use crate::Target;

/// Draws the whole console for `app` into `frame`.
pub fn render(app: &mut App, frame: &mut Frame) {
    let banner = chrome::banner_text(app);
    let banner_height = banner
        .as_deref()
        .map_or(0, |text| chrome::banner_height(text, frame.area().width));
    let status_height = u16::from(app.status.is_some());
    let [tabs, banner_area, body, status_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_height),
        Constraint::Min(0),
        Constraint::Length(status_height),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    chrome::tab_bar(app, frame, tabs);
    if let Some(banner) = &banner {
        chrome::banner(banner, frame, banner_area);
    }
    let keys = match (app.tab, app.workspace.as_mut()) {
        (Tab::Backfill, ws) => {
            let name = ws.and_then(|ws| ws.overview.as_ref().map(|o| o.name.clone()));
            screens::backfill::render(&app.backfill, name.as_deref(), frame, body);
            screens::backfill::keys(&app.backfill)
        }
        (Tab::Queue, _) => {
            screens::queue::render(&mut app.queue, frame, body);
            screens::queue::keys()
        }
        (Tab::Workspace, Some(ws)) => {
            screens::workspace::render(ws, frame, body);
            screens::workspace::keys()
        }
        _ => {
            screens::workspaces::render(&mut app.workspaces, frame, body);
            screens::workspaces::keys(&app.workspaces)
        }
    };
    if let Some(status) = &app.status {
        chrome::status(status, frame, status_area);
    }
    chrome::footer(keys, frame, footer);
    if app.help {
        chrome::help(app.tab, app.help_scroll, frame, frame.area());
    }
}

/// Seeds the demo into `target` when it holds no workspace (migrating it
/// first), for `recents --demo`. A database with data is left alone.
///
/// # Errors
/// An unreachable database or a schema ahead of this version.
pub async fn seed_demo_if_empty(target: &Target) -> anyhow::Result<()> {
    let conn = recents_service::admin::connect_and_migrate(&target.url).await?;
    let started = std::time::Instant::now();
    let options = recents_seed::DemoOptions::default();
    let seeded = recents_seed::seed_demo_with_progress(&conn, &options, |step| {
        eprintln!("seeding the demo: {step}…");
    })
    .await;
    match seeded {
        Ok(report) => {
            eprintln!(
                "{}",
                crate::commands::seed::summary(&report, started.elapsed().as_secs_f64())
            );
            Ok(())
        }
        Err(recents_service::Error::DatabaseNotEmpty { workspaces, .. }) => {
            eprintln!(
                "{} already holds {workspaces} workspaces: opening it as it is",
                target.redacted()
            );
            Ok(())
        }
        Err(err) => Err(err).context("seeding the demo"),
    }
}

/// Opens the console on `target` until the user quits.
///
/// # Errors
/// No terminal on stdin/stdout, or the terminal failing. Database trouble
/// is not an error here: the console shows it and retries.
pub async fn run(target: &Target) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal; for scripts use a subcommand (`recents --help`)");
    }
    let (sender, responses) = mpsc::unbounded_channel();
    let database = Database::new(
        target.url.clone(),
        target.console_migrate(),
        Stopwatch::Real,
    )
    .with_tables(target.tables.clone());
    let worker = Worker::new(database, sender);
    let mut app = App::new(target.redacted());
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let result = event_loop(&mut terminal, &mut app, worker, responses).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    mut worker: Worker,
    mut responses: mpsc::UnboundedReceiver<Response>,
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    for request in app.start() {
        worker.submit(request);
    }
    while !app.quit {
        terminal.draw(|frame| render(app, frame))?;
        let requests = tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => app.handle_key(key),
                Some(Ok(_)) => Vec::new(),
                Some(Err(err)) => return Err(err).context("reading the terminal"),
                None => {
                    app.quit = true;
                    Vec::new()
                }
            },
            Some(response) = responses.recv() => {
                worker.observe(&response);
                app.apply(response)
            }
            _ = ticks.tick() => app.tick(),
        };
        for request in requests {
            worker.submit(request);
        }
    }
    Ok(())
}

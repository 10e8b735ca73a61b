//! `recents`: the operator console (no subcommand) and its headless
//! subcommands. Parses arguments and dispatches; everything else lives in
//! the `recents_tui` library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use recents_tui::Target;
use recents_tui::commands::{self, migrate::MigrateAction};
use recents_tui::console;

/// Inspect recent-workflow summaries on SQLite, PostgreSQL or MySQL/MariaDB.
///
/// Works on `DATABASE_URL`, or on the embedded `sqlite://recents.db?mode=rwc`
/// when it is not set. Without a subcommand, opens the console.
#[derive(Debug, Parser)]
#[command(name = "recents", version)]
struct Cli {
    /// Seed the demo data set first when the database is empty, then open the console.
    #[arg(long)]
    demo: bool,
    /// A schema mapping (TOML): the backend's own table and column names.
    /// recents' own names without one.
    #[arg(long, global = true, value_name = "FILE", env = "RECENTS_SCHEMA")]
    schema: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bring the schema up to date (`up`, the default) or show where it stands (`status`).
    Migrate {
        /// What to do.
        #[arg(value_enum, default_value_t = MigrateAction::Up)]
        action: MigrateAction,
        /// Also create the history tables (workspaces, published runs,
        /// versions, saved runs, jobs) under recents' names, for a database
        /// that has none; they are the backend's afterwards.
        #[arg(long)]
        with_history: bool,
        /// Print one line of JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fill an empty database with a data set: the demo or the benchmark's history.
    #[command(group(clap::ArgGroup::new("data_set").required(true).args(["demo", "scale"])))]
    Seed {
        /// The demo: personal and team workspaces and one heavy workspace.
        #[arg(long)]
        demo: bool,
        /// The benchmark's history at scale factor S (1 = production's 7.4M
        /// saved runs, at most 10), its summary backfilled.
        #[arg(long, value_name = "S")]
        scale: Option<f64>,
        /// Runs in the demo's heavy workspace [default: 300000].
        // An Option, defaulted in `dispatch`: the default is the demo's, and
        // `--scale S --heavy-runs N` is refused rather than ignored.
        #[arg(long, conflicts_with = "scale")]
        heavy_runs: Option<u64>,
        /// Print one line of JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build the recent-workflows summary from history (resumes an unfinished pass).
    Backfill {
        /// Only this workspace; everything otherwise.
        #[arg(long)]
        workspace: Option<i64>,
        /// History rows per batch (one short transaction each), 1 to 1000000.
        #[arg(long, default_value_t = 50_000,
              value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        batch_rows: u32,
        /// Print one line of JSON at the end instead of progress.
        #[arg(long)]
        json: bool,
    },
    /// Compare every summary row with history; exit 1 on drift (unless repaired).
    Verify {
        /// Only this workspace; everything otherwise.
        #[arg(long)]
        workspace: Option<i64>,
        /// Fix exactly the drift found.
        #[arg(long)]
        repair: bool,
        /// Print one line of JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect the fair execution queue.
    Queue {
        /// What to show.
        #[command(subcommand)]
        action: QueueAction,
    },
    /// Print a workspace's most recently used workflows, from the summary.
    Recent {
        /// The workspace id.
        #[arg(long)]
        workspace: i64,
        /// Only this member's runs (member scope); the whole workspace otherwise.
        #[arg(long)]
        uid: Option<String>,
        /// How many workflows, 1 to 1000.
        #[arg(long, default_value_t = 4, allow_negative_numbers = true)]
        limit: i64,
        /// Print one line of JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum QueueAction {
    /// Per-user counts and latest dequeue, and the next jobs in fair order.
    Status {
        /// How many jobs in line, 1 to 1000.
        #[arg(long, default_value_t = commands::queue::DEFAULT_NEXT_IN_LINE.into(),
              allow_negative_numbers = true)]
        limit: i64,
        /// Print one line of JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors exit 2; with --json, as one JSON object on stderr.
        Err(err) if err.use_stderr() && std::env::args().any(|a| a == "--json") => {
            print_json_error("usage", &usage_message(&err.to_string()));
            return ExitCode::from(2);
        }
        Err(err) => err.exit(),
    };
    let json = cli.command.as_ref().is_some_and(Command::json);
    let target = match Target::from_env().with_schema(cli.schema.as_deref()) {
        Ok(target) => target,
        Err(err) => return fail(&err.into(), json),
    };
    // A subcommand that fails on an embedded database it created leaves no
    // file behind.
    let created = target.embedded_file().filter(|file| !file.exists());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err.into(), json),
    };
    match runtime.block_on(dispatch(cli, &target)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(file) = created {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
            }
            fail(&err, json)
        }
    }
}

impl Command {
    /// Whether the subcommand was asked for JSON.
    fn json(&self) -> bool {
        match self {
            Command::Migrate { json, .. }
            | Command::Seed { json, .. }
            | Command::Backfill { json, .. }
            | Command::Verify { json, .. }
            | Command::Recent { json, .. } => *json,
            Command::Queue {
                action: QueueAction::Status { json, .. },
            } => *json,
        }
    }
}

async fn dispatch(cli: Cli, target: &Target) -> anyhow::Result<()> {
    let target = target.clone();
    match cli.command {
        Some(Command::Migrate {
            action,
            with_history,
            json,
        }) => commands::migrate::run(&target, action, with_history, json).await,
        Some(Command::Seed { .. })
            if matches!(target.tables, recents_service::admin::Tables::Mapped(_)) =>
        {
            anyhow::bail!(
                "the demo and the benchmark data sets are written under recents' own table names: \
                 seed a database without a schema mapping"
            )
        }
        Some(Command::Seed {
            scale: Some(scale),
            json,
            ..
        }) => commands::seed::scale(&target, scale, json).await,
        Some(Command::Seed {
            heavy_runs, json, ..
        }) => {
            let heavy_runs = heavy_runs.unwrap_or(recents_seed::DEFAULT_HEAVY_RUNS);
            commands::seed::demo(&target, heavy_runs, json).await
        }
        Some(Command::Backfill {
            workspace,
            batch_rows,
            json,
        }) => commands::backfill::run(&target, workspace, batch_rows, json).await,
        Some(Command::Verify {
            workspace,
            repair,
            json,
        }) => commands::verify::run(&target, workspace, repair, json).await,
        Some(Command::Queue {
            action: QueueAction::Status { limit, json },
        }) => commands::queue::status(&target, commands::limit(limit)?, json).await,
        Some(Command::Recent {
            workspace,
            uid,
            limit,
            json,
        }) => commands::recent::run(&target, workspace, uid, commands::limit(limit)?, json).await,
        None => {
            if cli.demo && matches!(target.tables, recents_service::admin::Tables::Mapped(_)) {
                anyhow::bail!("--demo seeds recents' own tables: leave out the schema mapping");
            }
            if cli.demo {
                console::seed_demo_if_empty(&target).await?;
            }
            console::run(&target).await
        }
    }
}

/// One clear line on stderr (with `--json`, one JSON object with a stable
/// `error` kind), exit code 1 (130 for an interrupted run). Causes that the
/// message before them already quotes (thiserror errors print their source)
/// are left out.
fn fail(err: &anyhow::Error, json: bool) -> ExitCode {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    let mut line = line.replace('\n', " ");
    if err.chain().any(|cause| {
        matches!(
            cause.downcast_ref(),
            Some(recents_service::Error::MigrationsBehind(_))
        )
    }) {
        line.push_str(" (run `recents migrate up`)");
    }
    let (kind, code) = match (
        err.downcast_ref::<commands::Failure>(),
        err.chain()
            .find_map(|cause| cause.downcast_ref::<recents_service::Error>()),
    ) {
        (Some(failure), _) => (failure.kind, failure.exit_code),
        (None, Some(error)) => (error.kind(), 1),
        (None, None) => ("error", 1),
    };
    if json {
        print_json_error(kind, &line);
    } else {
        eprintln!("recents: {line}");
    }
    ExitCode::from(code)
}

fn print_json_error(kind: &str, message: &str) {
    eprintln!(
        "{}",
        serde_json::json!({ "error": kind, "message": message })
    );
}

/// clap's message on one line: what is wrong, without the usage and help
/// hints that follow it.
fn usage_message(text: &str) -> String {
    text.lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

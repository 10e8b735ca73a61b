//! `cargo run --release -p recents-bench -- [--backend postgres] [--scale 1] [--figures 4 --explain]`
//! (`--backend mysql --figures 5`: Galera beside the single MariaDB server;
//! `--figures 4,6`: the queue and its worker runtime)

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use recents_bench::{Options, figure};
use sea_orm::{ConnectOptions, ConnectionTrait, Database};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// Measures recents beside the seeds' baselines on generated data.
#[derive(Parser, Debug)]
struct Args {
    /// The database engine; PostgreSQL is the headline.
    #[arg(long, value_enum, default_value = "postgres")]
    backend: Backend,
    /// Where to build the benchmark's database (its schema is rebuilt).
    /// Default: a `recents_bench` database on this machine's server.
    #[arg(long)]
    database_url: Option<String>,
    /// 1 is production size: 7.4M saved runs.
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
    /// Repetitions of each fast read.
    #[arg(long, default_value_t = 500)]
    repetitions: usize,
    /// Saves per writer (8 writers) in the throughput figures; per client
    /// (6 clients) in figure 5.
    #[arg(long, default_value_t = 250)]
    saves_per_writer: u64,
    /// Which figures to measure: 1 reads, 2 saves, 3 backfill/verify, 4 the
    /// queue's dequeue, 5 saves and a queue drain on a three-node Galera
    /// cluster started on this machine beside the single MariaDB server
    /// (needs --backend mysql; not in the default), 6 the worker runtime's
    /// wake-up latency and drain throughput (not in the default).
    #[arg(long, value_delimiter = ',', default_values_t = recents_bench::ALL_FIGURES)]
    figures: Vec<u32>,
    /// Jobs 8 workers dequeue and complete in figure 4's throughput (at
    /// most the jobs waiting), jobs of each of figure 5's drains, and of
    /// each of figure 6's.
    #[arg(long, default_value_t = 4_000)]
    drain_jobs: u64,
    /// Print EXPLAIN ANALYZE of the dequeue's claim statement at the seed's
    /// queue size (PostgreSQL, through auto_explain).
    #[arg(long)]
    explain: bool,
    /// Figure 3 alone over the history an earlier run left in the
    /// database, its summaries emptied first (no schema rebuild, no load).
    #[arg(long)]
    reuse_history: bool,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write SVG plots into this folder.
    #[arg(long)]
    plots: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let url = match (&args.database_url, args.backend) {
        (Some(url), _) => url.clone(),
        (None, Backend::Sqlite) => "sqlite://recents-bench.db?mode=rwc".into(),
        (None, Backend::Postgres) => {
            create_database("postgres://postgres@127.0.0.1:5432/postgres").await?;
            "postgres://postgres@127.0.0.1:5432/recents_bench".into()
        }
        (None, Backend::Mysql) => {
            create_database("mysql://root@127.0.0.1:3306/test").await?;
            "mysql://root@127.0.0.1:3306/recents_bench".into()
        }
    };
    let mut options = ConnectOptions::new(&url);
    options
        .max_connections(16)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let conn = Database::connect(options).await.with_context(|| {
        format!(
            "cannot connect to the {:?} benchmark database",
            args.backend
        )
    })?;
    let report = recents_bench::run(
        &conn,
        &Options {
            scale: args.scale,
            repetitions: args.repetitions,
            saves_per_writer: args.saves_per_writer,
            figures: args.figures.clone(),
            drain_jobs: args.drain_jobs,
            explain: args.explain,
            reuse_history: args.reuse_history,
        },
    )
    .await?;
    for why in &report.skipped {
        eprintln!("recents-bench: {why}");
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    match &report.history {
        Some(history) => println!(
            "recents-bench: {:?}, scale {}, {} saved runs loaded in {:.1} s, {cores} cores\n",
            args.backend, args.scale, history.runs, history.load_seconds,
        ),
        None => println!(
            "recents-bench: {:?}, scale {}, figures {:?}, {cores} cores\n",
            args.backend, args.scale, args.figures
        ),
    }
    print!("{}", figure::markdown(&report.figures));
    for note in &report.notes {
        println!("\n{note}");
    }
    for (at, plan) in &report.plans {
        println!("\nEXPLAIN ANALYZE of the dequeue's claim, {at}:\n{plan}");
    }
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report.figures)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(dir) = args.plots {
        for path in recents_bench::write_plots(&report, &dir)
            .with_context(|| format!("cannot write plots into {}", dir.display()))?
        {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

async fn create_database(admin_url: &str) -> Result<()> {
    let admin = Database::connect(admin_url)
        .await
        .with_context(|| format!("cannot reach the database server at {admin_url}"))?;
    let exists = admin
        .execute_unprepared("CREATE DATABASE recents_bench")
        .await;
    if let Err(e) = exists
        && !e.to_string().contains("exists")
    {
        return Err(e).context("cannot create the recents_bench database");
    }
    Ok(())
}

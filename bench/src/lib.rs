//! The benchmark of `recents`: the seeds' workloads, each figure measured in
//! one process on the same data beside its baseline.

pub mod backfill;
pub mod figure;
pub mod plot;
pub mod reads;
pub mod saves;

use anyhow::Result;
use recents::migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

pub use figure::Figure;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// 1.0 is production size (7.4M saved runs).
    pub scale: f64,
    /// Repetitions of each fast read.
    pub repetitions: usize,
    /// Saves per writer in the throughput figures.
    pub saves_per_writer: u64,
}

/// Everything one run measured.
#[derive(Debug)]
pub struct Report {
    pub history: recents_seed::scale::History,
    pub figures: Vec<Figure>,
    pub reads: Vec<reads::ReadSample>,
}

/// Rebuilds the schema on `conn`, generates the data and measures every figure.
pub async fn run(conn: &DatabaseConnection, options: &Options) -> Result<Report> {
    // `fresh` turns SQLite foreign keys off on one pooled connection and drops
    // tables over others; our own `down`s drop children first on any pool.
    Migrator::refresh(conn).await?;
    let history = recents_seed::scale::generate(conn, options.scale).await?;
    recents_seed::scale::analyze_all(conn).await?;
    let mut figures = backfill::measure(conn).await?;
    recents_seed::scale::analyze_all(conn).await?;
    let (read_figures, reads) = reads::measure(conn, &history, options.repetitions).await?;
    figures.extend(read_figures);
    figures.extend(saves::measure(conn, &history, options.saves_per_writer).await?);
    Ok(Report {
        history,
        figures,
        reads,
    })
}

/// Writes the benchmark's plots into `dir`: `reads.svg`, the latency of both
/// reads (p50) by the size of the workspace, in each scope.
///
/// # Errors
/// When `dir` cannot be created or written.
pub fn write_plots(
    report: &Report,
    dir: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let series = |scope: &str, slow: bool| -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = report
            .reads
            .iter()
            .filter(|r| r.scope == scope)
            .map(|r| {
                let took = if slow { r.history_p50 } else { r.recents_p50 };
                (r.runs as f64, took.as_secs_f64() * 1000.0)
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    let svg = plot::log_log(
        "Recent workflows: p50 latency by workspace size",
        "saved runs in the workspace",
        "ms",
        &[
            plot::Series {
                name: "history, workspace",
                colour: "#d62728",
                points: series("workspace", true),
            },
            plot::Series {
                name: "history, member",
                colour: "#ff9896",
                points: series("member", true),
            },
            plot::Series {
                name: "recents, workspace",
                colour: "#1f77b4",
                points: series("workspace", false),
            },
            plot::Series {
                name: "recents, member",
                colour: "#aec7e8",
                points: series("member", false),
            },
        ],
    );
    let path = dir.join("reads.svg");
    std::fs::write(&path, svg)?;
    Ok(vec![path])
}

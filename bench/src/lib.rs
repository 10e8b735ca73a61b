//! The benchmark of `recents`: the seeds' workloads, each figure measured in
//! one process on the same data beside its baseline.

pub mod backfill;
pub mod figure;
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

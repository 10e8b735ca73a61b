//! The benchmark of `recents`: the seeds' workloads, each figure measured in
//! one process on the same data beside its baseline.

pub mod backfill;
pub mod explain;
pub mod figure;
pub mod galera;
pub mod plot;
pub mod queue;
pub mod reads;
pub mod saves;
pub mod worker;

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
    /// Which figures to measure (1 reads, 2 saves, 3 backfill/verify, 4 the
    /// queue, 5 Galera, 6 the worker runtime); figure 1 needs figure 3's backfill, which then runs
    /// unreported.
    pub figures: Vec<u32>,
    /// Jobs 8 workers dequeue and complete in figure 4's throughput, and
    /// jobs of each of figure 5's drains.
    pub drain_jobs: u64,
    /// Capture EXPLAIN ANALYZE of our dequeue's claim (PostgreSQL only).
    pub explain: bool,
    /// Figure 3 alone over the history an earlier run left, its summaries
    /// emptied first: no rebuild of the schema, no load.
    pub reuse_history: bool,
}

impl Options {
    fn wants(&self, figure: u32) -> bool {
        self.figures.contains(&figure)
    }
}

/// Every figure measured on the benchmark's database alone: the default.
/// Figure 5 ([`galera::FIGURE`]) starts a three-node cluster of its own and
/// runs only when asked for.
pub const ALL_FIGURES: [u32; 4] = [1, 2, 3, 4];

/// Everything one run measured.
#[derive(Debug)]
pub struct Report {
    /// The history of figures 1–3, when one of them ran.
    pub history: Option<recents_seed::scale::History>,
    pub figures: Vec<Figure>,
    pub reads: Vec<reads::ReadSample>,
    /// Figure 4's points, for the plot.
    pub dequeues: Vec<queue::DequeueSample>,
    /// (what, plan) of our dequeue's claim statement, with `explain`.
    pub plans: Vec<(String, String)>,
    /// What each figure that ran measured, in words.
    pub notes: Vec<String>,
    /// Why a figure asked for did not run (Galera not installed), one line
    /// each.
    pub skipped: Vec<String>,
}

/// Rebuilds the schema on `conn`, generates the data and measures the
/// figures asked for.
pub async fn run(conn: &DatabaseConnection, options: &Options) -> Result<Report> {
    let mut report = Report {
        history: None,
        figures: Vec::new(),
        reads: Vec::new(),
        dequeues: Vec::new(),
        plans: Vec::new(),
        notes: Vec::new(),
        skipped: Vec::new(),
    };
    if options.reuse_history {
        if options.figures != [3] {
            anyhow::bail!("--reuse-history measures figure 3 alone");
        }
        backfill::empty_summary(conn).await?;
        report.figures.extend(backfill::measure(conn, true).await?);
        return Ok(report);
    }
    // `fresh` turns SQLite foreign keys off on one pooled connection and drops
    // tables over others; our own `down`s drop children first on any pool.
    Migrator::refresh(conn).await?;
    // Figure 5 runs first, on the freshly migrated database: its single
    // server then holds what each cluster database holds, and the history of
    // figures 1–3 is generated into an empty database after it.
    let mut galera_figures = Vec::new();
    if options.wants(galera::FIGURE) {
        match galera::measure(conn, options.saves_per_writer, options.drain_jobs).await? {
            galera::Outcome::Measured { figures, note } => {
                galera_figures = figures;
                report.notes.push(note);
            }
            galera::Outcome::Skipped(why) => report.skipped.push(why),
        }
        if options.figures.iter().any(|f| *f != galera::FIGURE) {
            Migrator::refresh(conn).await?;
        }
    }
    if [1, 2, 3].iter().any(|f| options.wants(*f)) {
        let history = recents_seed::scale::generate(conn, options.scale).await?;
        recents_seed::scale::analyze_all(conn).await?;
        if options.wants(1) || options.wants(3) {
            let figures = backfill::measure(conn, options.wants(3)).await?;
            if options.wants(3) {
                report.figures.extend(figures);
            }
            recents_seed::scale::analyze_all(conn).await?;
        }
        if options.wants(1) {
            let (read_figures, reads) = reads::measure(conn, &history, options.repetitions).await?;
            report.figures.extend(read_figures);
            report.reads = reads;
        }
        if options.wants(2) {
            report
                .figures
                .extend(saves::measure(conn, &history, options.saves_per_writer).await?);
        }
        report.history = Some(history);
    }
    if options.wants(4) {
        let measured = queue::measure(
            conn,
            options.scale,
            options.repetitions,
            options.drain_jobs,
            options.explain,
        )
        .await?;
        report.figures.extend(measured.figures);
        report.dequeues = measured.samples;
        report.plans = measured.plans;
        report.notes.push(queue::MEASURED.into());
    }
    if options.wants(worker::FIGURE) {
        let measured =
            worker::measure(conn, options.scale, options.repetitions, options.drain_jobs).await?;
        report.figures.extend(measured.figures);
        report.notes.extend(measured.notes);
        report.skipped.extend(measured.skipped);
    }
    report.figures.extend(galera_figures);
    Ok(report)
}

/// Writes the benchmark's plots into `dir`, for the figures that ran:
/// `reads.svg`, the latency of both reads (p50) by the size of the
/// workspace, in each scope; `dequeue.svg`, the latency of the three
/// dequeues (p50) by the number of waiting jobs, for each user count.
///
/// # Errors
/// When `dir` cannot be created or written.
pub fn write_plots(
    report: &Report,
    dir: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    if !report.reads.is_empty() {
        let path = dir.join("reads.svg");
        std::fs::write(&path, reads_plot(report))?;
        written.push(path);
    }
    if !report.dequeues.is_empty() {
        let path = dir.join("dequeue.svg");
        std::fs::write(&path, dequeue_plot(report))?;
        written.push(path);
    }
    Ok(written)
}

fn reads_plot(report: &Report) -> String {
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
    plot::log_log(
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
    )
}

fn dequeue_plot(report: &Report) -> String {
    let series = |pick: fn(&queue::DequeueSample) -> std::time::Duration| {
        let mut points: Vec<(f64, f64)> = report
            .dequeues
            .iter()
            .map(|d| (d.users as f64, pick(d).as_secs_f64() * 1000.0))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    plot::log_log(
        "Dequeue: p50 latency by users, at the seed's waiting jobs",
        "users",
        "ms",
        &[
            plot::Series {
                name: "seed before",
                colour: "#d62728",
                points: series(|d| d.before_p50),
            },
            plot::Series {
                name: "seed after",
                colour: "#ff7f0e",
                points: series(|d| d.after_p50),
            },
            plot::Series {
                name: "recents",
                colour: "#1f77b4",
                points: series(|d| d.recents_p50),
            },
        ],
    )
}

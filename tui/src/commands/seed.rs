//! `recents seed --demo`: fill an empty database with the demo data set.

use std::time::Instant;

use recents_seed::{DemoOptions, DemoReport, seed_demo};
use serde::Serialize;

use crate::Target;

#[derive(Serialize)]
struct Report {
    database: String,
    workspaces: usize,
    heavy_workspace: i64,
    runs: u64,
    summary_rows: u64,
    jobs: u64,
    seconds: f64,
}

/// Migrates `target` if needed and seeds the demo with `heavy_runs` runs
/// in its heavy workspace.
///
/// # Errors
/// An unreachable database, a schema ahead, or a database that already
/// holds workspaces.
pub async fn demo(target: &Target, heavy_runs: u64, json: bool) -> anyhow::Result<()> {
    let conn = recents_service::connect_and_migrate(&target.url).await?;
    let started = Instant::now();
    let report = seed_demo(
        &conn,
        &DemoOptions {
            heavy_runs,
            ..DemoOptions::default()
        },
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        return super::print_json(&Report {
            database: target.redacted(),
            workspaces: report.workspaces.len(),
            heavy_workspace: report.heavy_workspace.0,
            runs: report.runs,
            summary_rows: report.summary_rows,
            jobs: report.jobs,
            seconds,
        });
    }
    println!("{}", summary(&report, seconds));
    for (id, name) in &report.workspaces {
        println!("  workspace {id:>4}  {name}");
    }
    println!("  jobs: none yet (the demo queues jobs once the queue lands)");
    Ok(())
}

/// One line on what a demo seed made.
pub fn summary(report: &DemoReport, seconds: f64) -> String {
    format!(
        "seeded the demo: {} workspaces, {} runs, {} summary rows in {seconds:.1} s \
         (heavy workspace: {} {})",
        report.workspaces.len(),
        report.runs,
        report.summary_rows,
        report.heavy_workspace,
        report
            .workspaces
            .iter()
            .find(|(id, _)| *id == report.heavy_workspace)
            .map(|(_, name)| name.as_str())
            .unwrap_or("?"),
    )
}

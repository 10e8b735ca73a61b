//! `recents seed --demo | --scale S`: fill an empty database with the demo
//! data set, or with the benchmark's history at a scale factor.

use std::time::Instant;

use anyhow::{Context, bail};
use recents_seed::{DemoOptions, DemoReport};
use recents_service::admin::{WorkspaceListing, list_workspaces};
use recents_service::{BackfillOptions, BackfillScope, Progress, backfill};
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
    let conn = recents_service::admin::connect_and_migrate(&target.url).await?;
    let started = Instant::now();
    let report = recents_seed::seed_demo_with_progress(
        &conn,
        &DemoOptions {
            heavy_runs,
            ..DemoOptions::default()
        },
        |step| {
            if !json {
                eprintln!("seeding the demo: {step}…");
            }
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
    println!(
        "  jobs: {} in the queue's history (some waiting, some stalled)",
        report.jobs
    );
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

/// The largest `--scale`: ten times production (74M saved runs) is already
/// far beyond what the benchmark runs, and a typo should not fill the disk.
pub const MAX_SCALE: f64 = 10.0;

#[derive(Serialize)]
struct ScaleReport {
    database: String,
    scale: f64,
    workspaces: u64,
    heavy_workspaces: Vec<i64>,
    team_workspace: i64,
    runs: u64,
    load_seconds: f64,
    backfill_seconds: f64,
}

/// Migrates `target` if needed, generates the benchmark's history at
/// `scale` into it (see [`recents_seed::scale`]) and backfills its summary,
/// so the console and `recent` read it at once.
///
/// # Errors
/// A scale that is not a number in (0, [`MAX_SCALE`]]; an unreachable
/// database, a schema ahead, or a database that already holds workspaces.
pub async fn scale(target: &Target, scale: f64, json: bool) -> anyhow::Result<()> {
    if !(scale > 0.0 && scale <= MAX_SCALE) {
        bail!("--scale must be above 0 and at most {MAX_SCALE}, got {scale}");
    }
    let conn = recents_service::admin::connect_and_migrate(&target.url).await?;
    // The generator writes explicit ids: into a database with data it would
    // fail half-way on a duplicate key, so refuse before writing anything.
    let any = list_workspaces(
        &conn,
        &WorkspaceListing {
            limit: 1,
            ..WorkspaceListing::default()
        },
    )
    .await?;
    if !any.workspaces.is_empty() {
        bail!(
            "{} already holds workspaces: the scale seed needs an empty database",
            target.redacted()
        );
    }
    if !json {
        eprintln!("generating the history at scale {scale}…");
    }
    let history = recents_seed::scale::generate(&conn, scale)
        .await
        .context("generating the history")?;
    if !json {
        eprintln!(
            "{} saved runs in {:.1} s; backfilling the summary…",
            history.runs, history.load_seconds
        );
    }
    let backfilled = backfill(
        &conn,
        &BackfillScope::RecentWorkflows,
        &BackfillOptions::default(),
        |_: &Progress| {},
    )
    .await
    .context("backfilling the summary")?;
    recents_seed::scale::analyze_all(&conn).await?;
    let report = ScaleReport {
        database: target.redacted(),
        scale,
        workspaces: history.tail_workspaces + history.team as u64,
        heavy_workspaces: history.heavy.iter().map(|h| h.0).collect(),
        team_workspace: history.team,
        runs: history.runs,
        load_seconds: history.load_seconds,
        backfill_seconds: backfilled.elapsed.as_secs_f64(),
    };
    if json {
        return super::print_json(&report);
    }
    println!(
        "seeded scale {scale}: {} workspaces, {} saved runs in {:.1} s, summary backfilled in {:.1} s",
        report.workspaces, report.runs, report.load_seconds, report.backfill_seconds
    );
    println!(
        "  heavy workspaces {:?}, team workspace {}",
        report.heavy_workspaces, report.team_workspace
    );
    Ok(())
}

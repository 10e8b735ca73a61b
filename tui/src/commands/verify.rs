//! `recents verify [--workspace ID] [--repair]`: compares every summary row
//! with its history aggregate; exits non-zero on drift unless it repaired it.

use anyhow::bail;
use recents_service::{
    Drift, VerifyOptions, VerifyReport, VerifyScope, WorkspaceId, repair, verify,
};
use serde::Serialize;

use super::timestamp;
use crate::Target;

#[derive(Serialize)]
struct Found {
    history_rows: u64,
    summary_rows: u64,
    missing: u64,
    stale: u64,
    too_high: u64,
    extra: u64,
    repaired: Option<u64>,
}

/// Verifies (and with `repair`, repairs) the summary of everything or one workspace.
///
/// # Errors
/// Drift found and not repaired; an unreachable database or one whose schema
/// is not current.
pub async fn run(
    target: &Target,
    workspace: Option<i64>,
    fix: bool,
    json: bool,
) -> anyhow::Result<()> {
    let scope = match workspace {
        Some(id) => VerifyScope::Workspace(WorkspaceId(id)),
        None => VerifyScope::All,
    };
    let conn = recents_service::connect(&target.url).await?;
    let options = VerifyOptions::default();
    let (report, repaired) = if fix {
        let done = repair(&conn, &scope, &options).await?;
        (done.found, Some(done.repaired))
    } else {
        (verify(&conn, &scope, &options).await?, None)
    };
    if json {
        super::print_json(&found(&report, repaired))?;
    } else {
        print_report(&report, repaired);
    }
    if repaired.is_none() && !report.is_exact() {
        bail!(
            "drift in {} summary rows (run `recents verify --repair`)",
            report.drifted()
        );
    }
    Ok(())
}

fn found(report: &VerifyReport, repaired: Option<u64>) -> Found {
    Found {
        history_rows: report.history_rows,
        summary_rows: report.summary_rows,
        missing: report.missing,
        stale: report.stale,
        too_high: report.too_high,
        extra: report.extra,
        repaired,
    }
}

fn print_report(report: &VerifyReport, repaired: Option<u64>) {
    println!(
        "{} history rows, {} summary rows: {} missing, {} stale, {} too high, {} extra",
        report.history_rows,
        report.summary_rows,
        report.missing,
        report.stale,
        report.too_high,
        report.extra
    );
    for drift in &report.samples {
        println!("  {}", sample(drift));
    }
    if let Some(repaired) = repaired {
        println!("repaired {repaired} rows");
    }
}

fn sample(d: &Drift) -> String {
    let show = |v: &Option<(recents_service::SavedRunId, chrono::DateTime<chrono::Utc>)>| match v {
        Some((run, at)) => format!("run {} at {}", run.0, timestamp(*at)),
        None => "none".to_owned(),
    };
    let uid = if d.uid.is_empty() {
        "(workspace)"
    } else {
        &d.uid
    };
    format!(
        "{:?}: workspace {} uid {uid} workflow {}: summary {}, history {}",
        d.kind,
        d.workspace_id.0,
        d.published_run_id.0,
        show(&d.summary),
        show(&d.history)
    )
}

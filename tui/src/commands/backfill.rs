//! `recents backfill [--workspace ID]`: builds the recent-workflows summary
//! from history, resumably; a progress bar on a terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use recents_service::{BackfillOptions, BackfillScope, Progress, WorkspaceId};
use serde::Serialize;

use crate::Target;

#[derive(Serialize)]
struct Done {
    resumed: bool,
    rows_scanned: u64,
    batches: u64,
    finished: bool,
    seconds: f64,
}

/// Runs (or resumes) a backfill of the whole summary or of one workspace.
///
/// # Errors
/// An unknown workspace, an unreachable database or one whose schema is not current.
pub async fn run(
    target: &Target,
    workspace: Option<i64>,
    batch_rows: u32,
    json: bool,
) -> anyhow::Result<()> {
    let scope = match workspace {
        Some(id) => BackfillScope::RecentWorkflowsOf(WorkspaceId(id)),
        None => BackfillScope::RecentWorkflows,
    };
    let session = target.connect().await?;
    let terminal = std::io::stderr().is_terminal() && !json;
    let mut last_line = Instant::now() - Duration::from_secs(1);
    // Ctrl-C stops the backfill after its current batch, at a checkpoint.
    let options = BackfillOptions {
        batch_rows,
        ..BackfillOptions::default()
    };
    let cancel = options.cancel.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    let mut last_progress: Option<Progress> = None;
    let report = session
        .recents
        .backfill(&session.db, &scope, &options, |p: &Progress| {
            last_progress = Some(p.clone());
            if json
                || (!p.finished
                    && last_line.elapsed()
                        < Duration::from_millis(if terminal { 100 } else { 1000 }))
            {
                return;
            }
            last_line = Instant::now();
            let line = progress_line(p);
            let mut err = std::io::stderr();
            let _ = if terminal {
                write!(err, "\r{line}\x1b[K")
            } else {
                writeln!(err, "{line}")
            };
        })
        .await;
    interrupt.abort();
    let report = report?;
    if terminal {
        eprintln!();
    }
    if !report.finished && options.cancel.is_cancelled() {
        let (done, total) = last_progress
            .map(|p| (p.rows_scanned, p.rows_total))
            .unwrap_or_default();
        let again = match workspace {
            Some(id) => format!("recents backfill --workspace {id}"),
            None => "recents backfill".to_owned(),
        };
        return Err(super::Failure {
            kind: "interrupted",
            message: format!(
                "backfill stopped at its checkpoint after {done} of {total} history rows; \
                 run `{again}` again to resume from there"
            ),
            exit_code: 130,
        }
        .into());
    }
    let done = Done {
        resumed: report.resumed,
        rows_scanned: report.rows_scanned,
        batches: report.batches,
        finished: report.finished,
        seconds: report.elapsed.as_secs_f64(),
    };
    if json {
        return super::print_json(&done);
    }
    println!(
        "backfill {}: {} history rows in {} batches, {:.1} s{}",
        if done.finished { "done" } else { "stopped" },
        done.rows_scanned,
        done.batches,
        done.seconds,
        if done.resumed {
            " (resumed from its checkpoint)"
        } else {
            ""
        }
    );
    Ok(())
}

fn progress_line(p: &Progress) -> String {
    const WIDTH: usize = 30;
    let fraction = if p.rows_total == 0 {
        1.0
    } else {
        (p.rows_scanned as f64 / p.rows_total as f64).min(1.0)
    };
    let filled = (fraction * WIDTH as f64).round() as usize;
    let eta = p
        .eta
        .map(|eta| format!(", ETA {} s", eta.as_secs()))
        .unwrap_or_default();
    format!(
        "[{}{}] {:>5.1}% {}/{} rows, {:.0} rows/s{eta}",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled),
        fraction * 100.0,
        p.rows_scanned,
        p.rows_total,
        p.rows_per_second
    )
}

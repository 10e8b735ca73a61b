//! `recents verify [--workspace ID] [--repair]`: compares every summary row
//! with its history aggregate (and, for the whole database, every latest
//! dequeue with its jobs); exits non-zero on drift unless it repaired it.

use recents_service::{
    Drift, LastDequeueReport, QueueHeadReport, Recents, VerifyOptions, VerifyReport, VerifyScope,
    WorkspaceId,
};
use sea_orm::DatabaseConnection;
use serde::Serialize;

use super::timestamp;
use crate::Target;

#[derive(Serialize)]
struct Found {
    /// The summaries this run compared with their history, by table.
    checked: Vec<&'static str>,
    history_rows: u64,
    summary_rows: u64,
    missing: u64,
    stale: u64,
    too_high: u64,
    extra: u64,
    repaired: Option<u64>,
    /// `execution_last_dequeues` against the jobs (whole-database runs only).
    last_dequeues: Option<LastDequeuesFound>,
    /// `execution_queue_heads` against the jobs (whole-database runs only).
    queue_heads: Option<QueueHeadsFound>,
}

#[derive(Serialize)]
struct QueueHeadsFound {
    rows: u64,
    missing: u64,
    stale: u64,
    extra: u64,
    repaired: Option<u64>,
}

#[derive(Serialize)]
struct LastDequeuesFound {
    jobs: u64,
    rows: u64,
    missing: u64,
    stale: u64,
    too_high: u64,
    extra: u64,
    repaired: Option<u64>,
}

/// Jobs per batch of the last-dequeue pass.
const LAST_DEQUEUE_BATCH_JOBS: u32 = 100_000;

/// What a verify (or repair) found: the one policy of the subcommand and the
/// console alike. Both summaries are checked for the whole database; one
/// workspace has no latest dequeues of its own, so only its summary rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The recent-workflows summary against its history.
    pub summary: VerifyReport,
    /// Rows repaired, when asked to repair.
    pub repaired: Option<u64>,
    /// `execution_last_dequeues` against the jobs (whole-database runs only).
    pub last_dequeues: Option<LastDequeueReport>,
    /// `execution_queue_heads` against the jobs (whole-database runs only).
    pub queue_heads: Option<QueueHeadReport>,
}

impl Checked {
    /// Drift left after the run: none when it was repaired.
    pub fn drift_left(&self) -> u64 {
        if self.repaired.is_some() {
            return 0;
        }
        self.summary.drifted()
            + self
                .last_dequeues
                .as_ref()
                .map_or(0, LastDequeueReport::drifted)
            + self
                .queue_heads
                .as_ref()
                .map_or(0, QueueHeadReport::drifted)
    }
}

/// Verifies `scope` (and with `repair`, repairs what is found) by that policy.
///
/// # Errors
/// As [`verify`] and [`verify_last_dequeues`].
pub async fn check(
    recents: &Recents,
    conn: &DatabaseConnection,
    scope: &VerifyScope,
    repair: bool,
) -> recents_service::Result<Checked> {
    let options = VerifyOptions::default();
    let (summary, repaired) = if repair {
        let done = recents.repair(conn, scope, &options).await?;
        (done.found, Some(done.repaired))
    } else {
        (recents.verify(conn, scope, &options).await?, None)
    };
    let last_dequeues = match (scope, repair) {
        (VerifyScope::Workspace(_), _) => None,
        (VerifyScope::All, true) => Some(
            recents
                .repair_last_dequeues(conn, LAST_DEQUEUE_BATCH_JOBS)
                .await?,
        ),
        (VerifyScope::All, false) => Some(
            recents
                .verify_last_dequeues(conn, LAST_DEQUEUE_BATCH_JOBS)
                .await?,
        ),
    };
    let queue_heads = match (scope, repair) {
        (VerifyScope::Workspace(_), _) => None,
        (VerifyScope::All, true) => Some(
            recents
                .repair_queue_heads(conn, LAST_DEQUEUE_BATCH_JOBS)
                .await?,
        ),
        (VerifyScope::All, false) => Some(
            recents
                .verify_queue_heads(conn, LAST_DEQUEUE_BATCH_JOBS)
                .await?,
        ),
    };
    Ok(Checked {
        summary,
        repaired,
        last_dequeues,
        queue_heads,
    })
}

/// Verifies (and with `repair`, repairs) the summary of everything or one workspace.
///
/// # Errors
/// Drift found and not repaired; an unreachable database or one whose schema
/// is not current.
pub async fn run(
    target: &Target,
    workspace: Option<i64>,
    repair: bool,
    json: bool,
) -> anyhow::Result<()> {
    let scope = match workspace {
        Some(id) => VerifyScope::Workspace(WorkspaceId(id)),
        None => VerifyScope::All,
    };
    let session = target.connect().await?;
    let Checked {
        summary: report,
        repaired,
        last_dequeues,
        queue_heads,
    } = check(&session.recents, &session.db, &scope, repair).await?;
    if json {
        let mut out = found(&report, repaired);
        if let Some(l) = &last_dequeues {
            out.checked.push(LAST_DEQUEUES);
            out.last_dequeues = Some(last_dequeues_found(l, repair));
        }
        if let Some(h) = &queue_heads {
            out.checked.push(QUEUE_HEADS);
            out.queue_heads = Some(QueueHeadsFound {
                rows: h.rows,
                missing: h.missing,
                stale: h.stale,
                extra: h.extra,
                repaired: repair.then_some(h.repaired),
            });
        }
        super::print_json(&out)?;
    } else {
        print_report(&report, repaired);
        if let Some(l) = &last_dequeues {
            print_last_dequeues(l, repair);
        }
        if let Some(h) = &queue_heads {
            print_queue_heads(h, repair);
        }
        println!(
            "{}",
            checked_line(&scope, &report, last_dequeues.as_ref(), repair)
        );
    }
    if repaired.is_none() && !report.is_exact() {
        return Err(super::Failure::new(
            "drift",
            format!(
                "drift in {} summary rows (run `recents verify --repair`)",
                report.drifted()
            ),
        )
        .into());
    }
    if let Some(l) = last_dequeues.filter(|l| !repair && !l.is_exact()) {
        return Err(super::Failure::new(
            "drift",
            format!(
                "drift in {} latest dequeues (run `recents verify --repair`)",
                l.drifted()
            ),
        )
        .into());
    }
    if let Some(h) = queue_heads.filter(|h| !repair && !h.is_exact()) {
        return Err(super::Failure::new(
            "drift",
            format!(
                "drift in {} queue heads (run `recents verify --repair`)",
                h.drifted()
            ),
        )
        .into());
    }
    Ok(())
}

const QUEUE_HEADS: &str = "execution_queue_heads";

fn print_queue_heads(h: &QueueHeadReport, repair: bool) {
    println!(
        "{} queue heads: {} missing, {} stale, {} extra",
        h.rows, h.missing, h.stale, h.extra
    );
    for d in &h.samples {
        println!("  {:?}: user {}", d.kind, d.user_id.0);
    }
    if repair {
        println!("repaired {} queue heads", h.repaired);
    }
}

const RECENT_WORKFLOWS: &str = "workspace_recent_workflows";
const LAST_DEQUEUES: &str = "execution_last_dequeues";

/// The closing line: what was checked against what, and the drift left.
fn checked_line(
    scope: &VerifyScope,
    report: &VerifyReport,
    last_dequeues: Option<&LastDequeueReport>,
    repair: bool,
) -> String {
    let mut checked = format!(
        "checked {RECENT_WORKFLOWS} ({} rows against {} saved runs{})",
        report.summary_rows,
        report.history_rows,
        match scope {
            VerifyScope::All => String::new(),
            VerifyScope::Workspace(id) => format!(" of workspace {}", id.0),
        }
    );
    match last_dequeues {
        Some(l) => checked.push_str(&format!(
            " and {LAST_DEQUEUES} ({} rows against {} jobs)",
            l.rows, l.jobs
        )),
        None => checked.push_str(&format!(
            "; {LAST_DEQUEUES} is checked by whole-database runs only"
        )),
    }
    let drift = report.drifted() + last_dequeues.map_or(0, LastDequeueReport::drifted);
    let verdict = match (drift, repair) {
        (0, _) => "exact".to_owned(),
        (n, true) => format!("{n} drifted rows repaired"),
        (n, false) => format!(
            "drift in {} summary rows and {} latest dequeues",
            report.drifted(),
            n - report.drifted()
        ),
    };
    format!("{checked}: {verdict}")
}

fn found(report: &VerifyReport, repaired: Option<u64>) -> Found {
    Found {
        checked: vec![RECENT_WORKFLOWS],
        history_rows: report.history_rows,
        summary_rows: report.summary_rows,
        missing: report.missing,
        stale: report.stale,
        too_high: report.too_high,
        extra: report.extra,
        repaired,
        last_dequeues: None,
        queue_heads: None,
    }
}

fn last_dequeues_found(l: &LastDequeueReport, repair: bool) -> LastDequeuesFound {
    LastDequeuesFound {
        jobs: l.jobs,
        rows: l.rows,
        missing: l.missing,
        stale: l.stale,
        too_high: l.too_high,
        extra: l.extra,
        repaired: repair.then_some(l.repaired),
    }
}

fn print_last_dequeues(l: &LastDequeueReport, repair: bool) {
    println!(
        "{} jobs, {} latest dequeues: {} missing, {} stale, {} too high, {} extra",
        l.jobs, l.rows, l.missing, l.stale, l.too_high, l.extra
    );
    let show = |at: Option<chrono::DateTime<chrono::Utc>>| match at {
        Some(at) => timestamp(at),
        None => "none".to_owned(),
    };
    for d in &l.samples {
        println!(
            "  {:?}: user {}: latest dequeue {}, jobs' latest start {}",
            d.kind,
            d.user_id.0,
            show(d.summary),
            show(d.history)
        );
    }
    if repair {
        println!("repaired {} latest dequeues", l.repaired);
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

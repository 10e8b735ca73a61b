//! Figure 1: recent workflows of the heavy workspaces, both scopes: the
//! seed's history query against `recent_workflows`, on the same data.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use recents::{Scope, WorkspaceId, recent_workflows, recent_workflows_from_history};
use sea_orm::DatabaseConnection;

use crate::figure::{Figure, percentile};
use recents_seed::scale::History;

/// One read measured both ways, for the plots.
#[derive(Clone, Debug)]
pub struct ReadSample {
    pub runs: u64,
    pub scope: &'static str,
    pub history_p50: Duration,
    pub recents_p50: Duration,
}

const LIMIT: u32 = 4;
/// The history query on a million runs takes about a second: it gets this
/// much wall time per workspace and scope, and at least 5 repetitions.
const HISTORY_BUDGET: Duration = Duration::from_secs(8);

/// Measures p50/p99 of both reads for each heavy workspace in both scopes,
/// and fails if any answer differs.
pub async fn measure(
    conn: &DatabaseConnection,
    history: &History,
    repetitions: usize,
) -> Result<(Vec<Figure>, Vec<ReadSample>)> {
    let mut figures = Vec::new();
    let mut samples = Vec::new();
    for (rank, &(ws, runs, _)) in history.heavy.iter().enumerate() {
        for (label, scope) in [
            ("workspace", Scope::Workspace),
            ("member", Scope::Member("u0".into())),
        ] {
            let ws_id = WorkspaceId(ws);
            let fast = recent_workflows(conn, ws_id, &scope, LIMIT).await?;
            let slow = recent_workflows_from_history(conn, ws_id, &scope, LIMIT).await?;
            if fast != slow {
                bail!("workspace {ws} {label} scope: recents {fast:?} but history {slow:?}");
            }
            let mut recents_times = Vec::with_capacity(repetitions);
            for _ in 0..repetitions {
                let start = Instant::now();
                recent_workflows(conn, ws_id, &scope, LIMIT).await?;
                recents_times.push(start.elapsed());
            }
            let mut history_times = Vec::new();
            let budget = Instant::now();
            while history_times.len() < repetitions
                && (history_times.len() < 5 || budget.elapsed() < HISTORY_BUDGET)
            {
                let start = Instant::now();
                recent_workflows_from_history(conn, ws_id, &scope, LIMIT).await?;
                history_times.push(start.elapsed());
            }
            for p in [50.0, 99.0] {
                figures.push(Figure::latency(
                    format!("reads.heavy{}.{label}.p{p}", rank + 1),
                    format!(
                        "recent workflows, workspace {ws} ({runs} runs), {label} scope, p{p} (history n={}, recents n={})",
                        history_times.len(),
                        recents_times.len()
                    ),
                    percentile(&history_times, p),
                    percentile(&recents_times, p),
                ));
            }
            samples.push(ReadSample {
                runs,
                scope: label,
                history_p50: percentile(&history_times, 50.0),
                recents_p50: percentile(&recents_times, 50.0),
            });
        }
    }
    Ok((figures, samples))
}

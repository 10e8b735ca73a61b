//! Figure 3: the whole generated history summarized by `backfill` (into the
//! empty summary) and by the migration's fill (into a second summary under a
//! prefix), each checked by `verify`: history rows per second.

use std::time::Instant;

use anyhow::{Result, bail};
use recents::migration::{SchemaManager, migrations};
use recents::{
    BackfillOptions, BackfillScope, Recents, Schema, VerifyOptions, VerifyScope, backfill, verify,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// The prefix of the fill's own summary, beside the backfill's.
const FILL_PREFIX: &str = "fill_";

/// Empties the recent-workflows summary and forgets its backfill passes;
/// fails if there is no history to summarize (figure 4 and the others
/// rebuild the schema: run figure 3 without reusing first).
pub async fn empty_summary(conn: &DatabaseConnection) -> Result<()> {
    let any = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT 1 AS one FROM saved_runs LIMIT 1",
        ))
        .await?;
    if any.is_none() {
        bail!("no saved runs to reuse: run figure 3 once without --reuse-history");
    }
    conn.execute_unprepared("DELETE FROM workspace_recent_workflows")
        .await?;
    conn.execute_unprepared("DELETE FROM recents_backfill_checkpoints")
        .await?;
    Ok(())
}

/// Runs the summary's migration (its fill included) under [`FILL_PREFIX`],
/// as a team adopting recents over this history would, verifies what it
/// filled, and drops it; beside the backfill's `baseline` rate.
async fn measure_fill(conn: &DatabaseConnection, baseline: f64) -> Result<Figure> {
    let schema = Schema::from_toml(&format!("prefix = \"{FILL_PREFIX}\""))?;
    let summary = migrations(&schema)
        .into_iter()
        .next()
        .expect("the summary's migration is recents' first");
    let manager = SchemaManager::new(conn);
    summary.down(&manager).await?;
    let started = Instant::now();
    summary.up(&manager).await?;
    let seconds = started.elapsed().as_secs_f64();
    let verified = Recents::new(schema)
        .verify(conn, &VerifyScope::All, &VerifyOptions::default())
        .await?;
    summary.down(&manager).await?;
    if !verified.is_exact() {
        bail!("verify after the migration's fill found drift: {verified:?}");
    }
    eprintln!(
        "recents-bench: the migration's fill took {seconds:.1} s ({:.0} rows/s)",
        verified.history_rows as f64 / seconds
    );
    Ok(Figure::throughput(
        "fill",
        format!(
            "the migration's fill of the whole history ({} runs), beside the backfill",
            verified.history_rows
        ),
        "rows/s",
        Some(baseline),
        verified.history_rows as f64 / seconds,
    ))
}

use crate::figure::Figure;

/// Backfills the empty summary from history (the reads then run on it),
/// verifies it, and then (`with_fill`) measures the migration's fill of the
/// same history beside it; fails if verify finds any drift.
pub async fn measure(conn: &DatabaseConnection, with_fill: bool) -> Result<Vec<Figure>> {
    let started = Instant::now();
    let report = backfill(
        conn,
        &BackfillScope::RecentWorkflows,
        &BackfillOptions::default(),
        |_| {},
    )
    .await?;
    let backfill_rate = report.rows_scanned as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let verified = verify(conn, &VerifyScope::All, &VerifyOptions::default()).await?;
    let verify_rate = verified.history_rows as f64 / started.elapsed().as_secs_f64();
    if !verified.is_exact() {
        bail!("verify after the backfill found drift: {verified:?}");
    }
    let mut figures = Vec::new();
    if with_fill {
        figures.push(measure_fill(conn, backfill_rate).await?);
    }
    figures.extend([
        Figure::throughput(
            "backfill",
            format!(
                "backfill of the whole history ({} runs)",
                report.rows_scanned
            ),
            "rows/s",
            None,
            backfill_rate,
        ),
        Figure::throughput(
            "verify",
            format!(
                "verify of the whole summary ({} runs)",
                verified.history_rows
            ),
            "rows/s",
            None,
            verify_rate,
        ),
    ]);
    Ok(figures)
}

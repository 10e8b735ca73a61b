//! Figure 3: the whole generated history rebuilt into an empty summary by
//! `backfill`, then checked by `verify`: history rows per second.

use std::time::Instant;

use anyhow::{Result, bail};
use recents::{BackfillOptions, BackfillScope, VerifyOptions, VerifyScope, backfill, verify};
use sea_orm::DatabaseConnection;

use crate::figure::Figure;

/// Backfills the empty summary from history (the reads then run on it) and
/// verifies it; fails if verify finds any drift.
pub async fn measure(conn: &DatabaseConnection) -> Result<Vec<Figure>> {
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
    Ok(vec![
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
    ])
}

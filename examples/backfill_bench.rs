//! Measures the backfill and verify on PostgreSQL over generated history.
//!
//! ```sh
//! cargo run --release --example backfill_bench -- postgres://postgres@127.0.0.1:5432/bench --generate 3000000
//! ```
//!
//! `--batch-rows N` sets the backfill's batch size (default 50,000).
//!
//! With `--generate N` the history tables are emptied and refilled with N
//! saved runs shaped like the seed's: 2,000 workspaces with up to three
//! workflows each, one workspace holding a quarter of all runs on a single
//! workflow and 3,000 members; one run in twenty without a version. Without
//! it the history already there is used. Either way the summary is emptied
//! first, then built, built again (a pass that changes nothing), verified.

use std::time::Instant;

use recents::migration::{Migrator, MigratorTrait};
use recents::{BackfillOptions, BackfillScope, VerifyOptions, VerifyScope, backfill, verify};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend};

const GENERATE: &str = "
TRUNCATE workspace_recent_workflows, recents_backfill_checkpoints, saved_runs,
    published_run_versions, published_runs, workspaces RESTART IDENTITY CASCADE;
INSERT INTO workspaces (name, is_personal, created_at)
    SELECT 'ws' || i, i % 3 = 0, now() FROM generate_series(1, 2000) i;
INSERT INTO published_runs (workspace_id, title, created_at, updated_at)
    SELECT (i % 2000) + 1, 'wf' || i, now(), now() FROM generate_series(0, 5999) i;
INSERT INTO published_run_versions (published_run_id, created_at)
    SELECT (i % 6000) + 1, now() FROM generate_series(0, 11999) i;
INSERT INTO saved_runs (workspace_id, uid, parent_version_id, run_status, created_at, updated_at)
SELECT w, 'u' || w || '_' || (random() * CASE WHEN w = 6 THEN 3000 WHEN w % 3 = 0 THEN 0 ELSE 20 END)::int,
       CASE WHEN random() < 0.05 THEN NULL WHEN w = 6 THEN 6
            ELSE w + 2000 * (random() * 2)::int + 6000 * (random())::int END,
       'completed', t, t + (random() * 3600) * interval '1 second'
FROM (SELECT i, CASE WHEN random() < 0.25 THEN 6 ELSE 1 + (random() * 1999)::int END AS w,
             timestamptz '2024-01-01' + (i * interval '10 seconds')
                 + (random() * 100000) * interval '1 second' AS t
      FROM generate_series(1, RUNS) i) g;
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    const USAGE: &str = "usage: backfill_bench POSTGRES_URL [--generate RUNS] [--batch-rows N]";
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or_else(|| anyhow::anyhow!(USAGE))?;
    let (mut generate, mut batch_rows) = (None, BackfillOptions::default().batch_rows);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| anyhow::anyhow!(USAGE))?;
        match flag.as_str() {
            "--generate" => generate = Some(value.parse::<u64>()?),
            "--batch-rows" => batch_rows = value.parse()?,
            _ => anyhow::bail!(USAGE),
        }
    }
    let mut options = ConnectOptions::new(&url);
    options.max_connections(4).sqlx_logging(false);
    let db = Database::connect(options).await?;
    anyhow::ensure!(
        db.get_database_backend() == DbBackend::Postgres,
        "the benchmark generates its history with PostgreSQL's generate_series"
    );
    Migrator::up(&db, None).await?;
    if let Some(runs) = generate {
        let started = Instant::now();
        db.execute_unprepared(&GENERATE.replace("RUNS", &runs.to_string()))
            .await?;
        // Its own statement: VACUUM refuses to run in the multi-statement
        // string's implicit transaction.
        db.execute_unprepared("VACUUM ANALYZE").await?;
        println!("generated {runs} saved runs in {:.1?}", started.elapsed());
    }
    db.execute_unprepared("TRUNCATE workspace_recent_workflows, recents_backfill_checkpoints")
        .await?;

    for pass in [
        "backfill from an empty summary",
        "backfill again (no change)",
    ] {
        let mut shown = 0;
        let report = backfill(
            &db,
            &BackfillScope::RecentWorkflows,
            &BackfillOptions {
                batch_rows,
                ..BackfillOptions::default()
            },
            |p| {
                if p.finished || p.rows_scanned >= shown + 1_000_000 {
                    shown = p.rows_scanned;
                    println!(
                        "  {:>9} of {} rows, {:.0} rows/s, ETA {:.1?}",
                        p.rows_scanned,
                        p.rows_total,
                        p.rows_per_second,
                        p.eta.unwrap_or_default()
                    );
                }
            },
        )
        .await?;
        println!(
            "{pass}: {} rows in {:.2?}: {:.0} history rows/s",
            report.rows_scanned,
            report.elapsed,
            report.rows_scanned as f64 / report.elapsed.as_secs_f64()
        );
    }

    let started = Instant::now();
    let report = verify(&db, &VerifyScope::All, &VerifyOptions::default()).await?;
    let elapsed = started.elapsed();
    println!(
        "verify: {} history rows, {} summary rows, {} drifted, in {:.2?}: {:.0} history rows/s",
        report.history_rows,
        report.summary_rows,
        report.drifted(),
        elapsed,
        report.history_rows as f64 / elapsed.as_secs_f64()
    );
    anyhow::ensure!(report.is_exact(), "drift after a backfill: {report:?}");
    Ok(())
}

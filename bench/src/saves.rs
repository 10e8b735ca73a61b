//! Figure 2: run saves with 8 concurrent writers, a plain insert of the saved
//! run (the baseline) against recents' save with its summary rows; hot (every
//! save on the heaviest workspace's one workflow) and cold (spread over the
//! tail), exact and with a freshness window; each save autocommitted, and in
//! a caller's transaction that does 2 ms of its own work after the save
//! before committing; the summary kept by the service and by the triggers
//! (`maintained_by = "triggers"`), each against the plain insert done the
//! same way, in one run.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recents::migration::{SchemaManager, apply_summary_mode};
use recents::{Recents, RunSave, SaveOptions, Schema, VersionId, WorkspaceId};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use crate::figure::Figure;
use recents_seed::scale::History;

const WRITERS: u64 = 8;

/// The caller's own work inside its run-save transaction, after the save.
const CALLER_WORK: Duration = Duration::from_millis(2);

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Path {
    Plain,
    Recents(SaveOptions),
}

#[derive(Clone, Copy, PartialEq)]
enum Spread {
    Hot,
    Cold,
}

const SPREADS: [(Spread, &str, &str); 2] = [
    (Spread::Hot, "hot", "hot: one workflow"),
    (Spread::Cold, "cold", "cold: the tail"),
];

/// One way of saving, measured on both spreads.
struct Variant {
    /// The id's tail after `saves.{spread}.`.
    id: &'static str,
    label: &'static str,
    window: bool,
    work: Duration,
}

const fn variant(id: &'static str, label: &'static str, window: bool, work: Duration) -> Variant {
    Variant {
        id,
        label,
        window,
        work,
    }
}

const NO_WORK: Duration = Duration::ZERO;

const SERVICE: [Variant; 4] = [
    variant("exact", "exact summary", false, NO_WORK),
    variant("window_1s", "1 s freshness window", true, NO_WORK),
    variant(
        "exact.service_2ms",
        "exact summary, 2 ms of the caller's work before commit",
        false,
        CALLER_WORK,
    ),
    variant(
        "window_1s.service_2ms",
        "1 s freshness window, 2 ms of the caller's work before commit",
        true,
        CALLER_WORK,
    ),
];

const TRIGGERS: [Variant; 4] = [
    variant(
        "exact.trigger",
        "trigger-kept exact summary",
        false,
        NO_WORK,
    ),
    variant(
        "window_1s.trigger",
        "trigger-kept, 1 s freshness window",
        true,
        NO_WORK,
    ),
    variant(
        "exact.trigger_2ms",
        "trigger-kept exact summary, 2 ms of the caller's work before commit",
        false,
        CALLER_WORK,
    ),
    variant(
        "window_1s.trigger_2ms",
        "trigger-kept, 1 s freshness window, 2 ms of the caller's work before commit",
        true,
        CALLER_WORK,
    ),
];

/// The throughput figures, each against the plain insert on the same spread
/// with the same caller's work, measured just before it (this machine's load
/// drifts over a run). The triggers are installed for each trigger-kept
/// measurement and removed for the baselines, whose inserts then maintain
/// nothing.
pub async fn measure(
    conn: &DatabaseConnection,
    history: &History,
    saves_per_writer: u64,
) -> Result<Vec<Figure>> {
    let service = Recents::default();
    let schema = Schema::from_toml("[recent_workflows]\nmaintained_by = \"triggers\"")?;
    let triggers = Recents::new(schema);
    let mut figures = Vec::new();
    for (spread, key, label) in SPREADS {
        for (recents, variants) in [(&service, &SERVICE), (&triggers, &TRIGGERS)] {
            for v in variants {
                keep_summary(conn, &service).await?;
                let plain = throughput(
                    conn,
                    &service,
                    history,
                    spread,
                    Path::Plain,
                    v.work,
                    saves_per_writer,
                )
                .await?;
                keep_summary(conn, recents).await?;
                let window = if v.window { WINDOW } else { Duration::ZERO };
                // Trigger mode reads the window from its settings table; the
                // service takes it from each save's options.
                recents.set_freshness_window(conn, window).await?;
                let path = Path::Recents(SaveOptions::with_freshness_window(window));
                let measured = throughput(
                    conn,
                    recents,
                    history,
                    spread,
                    path,
                    v.work,
                    saves_per_writer,
                )
                .await;
                recents.set_freshness_window(conn, Duration::ZERO).await?;
                figures.push(Figure::throughput(
                    format!("saves.{key}.{}", v.id),
                    format!("run saves, 8 writers, {label}, {}", v.label),
                    "saves/s",
                    Some(plain),
                    measured?,
                ));
            }
        }
    }
    keep_summary(conn, &service).await?;
    Ok(figures)
}

/// Installs or removes the summary's triggers for `recents`' mode.
async fn keep_summary(conn: &DatabaseConnection, recents: &Recents) -> Result<()> {
    apply_summary_mode(&SchemaManager::new(conn), recents.schema()).await?;
    Ok(())
}

async fn throughput(
    conn: &DatabaseConnection,
    recents: &Recents,
    history: &History,
    spread: Spread,
    path: Path,
    work: Duration,
    saves_per_writer: u64,
) -> Result<f64> {
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let conn = conn.clone();
        let history = history.clone();
        let recents = recents.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(writer);
            for _ in 0..saves_per_writer {
                let (ws, version) = match spread {
                    // The heaviest workspace's one workflow has versions 1 and 2.
                    Spread::Hot => (history.heavy[0].0, rng.random_range(1..=2)),
                    Spread::Cold => {
                        let ws = history.first_tail
                            + rng.random_range(0..history.tail_workspaces as i64);
                        let pr =
                            history.first_catalogue + rng.random_range(0..history.catalogue as i64);
                        (ws, 2 * pr - 1)
                    }
                };
                let save = RunSave {
                    id: None,
                    workspace_id: WorkspaceId(ws),
                    uid: format!("u{}", rng.random_range(0..20)),
                    parent_version_id: Some(VersionId(version)),
                    run_status: "running".into(),
                    updated_at: chrono::Utc::now(),
                };
                loop {
                    match save_once(&conn, &recents, &save, path, work).await {
                        Ok(()) => break,
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => return Err(anyhow::Error::from(e)),
                    }
                }
            }
            Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    Ok((WRITERS * saves_per_writer) as f64 / started.elapsed().as_secs_f64())
}

/// One save: autocommitted without caller's work, else in the caller's
/// transaction, which then works for `work` before it commits.
async fn save_once(
    conn: &DatabaseConnection,
    recents: &Recents,
    save: &RunSave,
    path: Path,
    work: Duration,
) -> Result<(), recents::Error> {
    if work.is_zero() {
        return match path {
            Path::Plain => plain_insert(conn, save).await,
            Path::Recents(options) => recents.save_run(conn, save, &options).await.map(|_| ()),
        };
    }
    let txn = recents::begin_write(conn).await?;
    match path {
        Path::Plain => plain_insert(&txn, save).await?,
        Path::Recents(options) => {
            recents.save_run(&txn, save, &options).await?;
        }
    }
    tokio::time::sleep(work).await;
    txn.commit().await?;
    Ok(())
}

/// What a backend without recents does: one INSERT.
async fn plain_insert<C: ConnectionTrait>(conn: &C, save: &RunSave) -> Result<(), recents::Error> {
    let backend = conn.get_database_backend();
    let placeholders = match backend {
        sea_orm::DbBackend::Postgres => "$1, $2, $3, $4, $5, $5",
        _ => "?, ?, ?, ?, ?, ?",
    };
    let mut values: Vec<Value> = vec![
        save.workspace_id.0.into(),
        save.uid.clone().into(),
        save.parent_version_id.map(|v| v.0).into(),
        save.run_status.clone().into(),
        save.updated_at.into(),
    ];
    if backend != sea_orm::DbBackend::Postgres {
        values.push(save.updated_at.into());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO saved_runs (workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
             VALUES ({placeholders})"
        ),
        values,
    ))
    .await?;
    Ok(())
}

//! Figure 2: run saves with 8 concurrent writers, a plain insert of the saved
//! run (the baseline) against `save_run` with its summary rows, each in its
//! own transaction; hot (every save on the heaviest workspace's one workflow)
//! and cold (spread over the tail), exact and with a freshness window.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recents::{RunSave, SaveOptions, VersionId, WorkspaceId, save_run};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use crate::figure::Figure;
use recents_seed::scale::History;

const WRITERS: u64 = 8;

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

/// The throughput figures, each against the plain insert on the same spread.
pub async fn measure(
    conn: &DatabaseConnection,
    history: &History,
    saves_per_writer: u64,
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let window = SaveOptions::with_freshness_window(Duration::from_secs(1));
    for (spread, key, label) in [
        (Spread::Hot, "hot", "hot: one workflow"),
        (Spread::Cold, "cold", "cold: the tail"),
    ] {
        let plain = throughput(conn, history, spread, Path::Plain, saves_per_writer).await?;
        let exact = throughput(
            conn,
            history,
            spread,
            Path::Recents(SaveOptions::exact()),
            saves_per_writer,
        )
        .await?;
        let windowed = throughput(
            conn,
            history,
            spread,
            Path::Recents(window),
            saves_per_writer,
        )
        .await?;
        figures.push(Figure::throughput(
            format!("saves.{key}.exact"),
            format!("run saves, 8 writers, {label}, exact summary"),
            "saves/s",
            Some(plain),
            exact,
        ));
        figures.push(Figure::throughput(
            format!("saves.{key}.window_1s"),
            format!("run saves, 8 writers, {label}, 1 s freshness window"),
            "saves/s",
            Some(plain),
            windowed,
        ));
    }
    Ok(figures)
}

async fn throughput(
    conn: &DatabaseConnection,
    history: &History,
    spread: Spread,
    path: Path,
    saves_per_writer: u64,
) -> Result<f64> {
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let conn = conn.clone();
        let history = history.clone();
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
                    let done = match path {
                        Path::Plain => plain_insert(&conn, &save).await,
                        Path::Recents(options) => {
                            save_run(&conn, &save, &options).await.map(|_| ())
                        }
                    };
                    match done {
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

/// What a backend without recents does: one INSERT, autocommitted.
async fn plain_insert(conn: &DatabaseConnection, save: &RunSave) -> Result<(), recents::Error> {
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

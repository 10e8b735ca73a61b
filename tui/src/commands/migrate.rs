//! `recents migrate [up|status]`: bring the schema up to date, or say where it stands.

use anyhow::{Context, bail};
use recents_service::admin::Tables;
use serde::Serialize;

use crate::Target;

/// What `recents migrate` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateAction {
    /// Apply every pending migration (the default).
    #[default]
    Up,
    /// List recents' applied and pending migrations; change nothing.
    Status,
}

#[derive(Serialize)]
struct StatusReport<'a> {
    database: String,
    applied: &'a [String],
    pending: &'a [String],
    current: bool,
}

#[derive(Serialize)]
struct UpReport<'a> {
    database: String,
    applied_now: &'a [String],
}

/// Runs `recents migrate <action>` against `target`. Only recents' own
/// migrations are applied and reported (a team's in the same
/// `seaql_migrations` are left alone); `with_history` also creates the
/// history tables under recents' names, for a database that has none.
///
/// # Errors
/// An unreachable database, a mapping the database contradicts (nothing is
/// created then), or a failing migration.
pub async fn run(
    target: &Target,
    action: MigrateAction,
    with_history: bool,
    json: bool,
) -> anyhow::Result<()> {
    let conn = recents_service::admin::connect_unchecked(&target.url).await?;
    let tables = match &target.tables {
        Tables::Mapped(schema) => {
            if with_history {
                bail!(
                    "--with-history creates the history tables under recents' own names; \
                     with a schema mapping the backend's tables are its own: leave one of them out"
                );
            }
            Tables::Mapped(Box::new(
                schema
                    .check(&conn)
                    .await
                    .map_err(recents_service::Error::from)?,
            ))
        }
        Tables::Own { .. } => Tables::Own { with_history },
    };
    match action {
        MigrateAction::Status => {
            let status = recents_service::admin::tables_status(&conn, &tables).await?;
            if json {
                super::print_json(&StatusReport {
                    database: target.redacted(),
                    applied: &status.applied,
                    pending: &status.pending,
                    current: status.is_current(),
                })?;
                // Like every other subcommand, a schema that is not current
                // is a failure (exit 1), after the report.
                return Ok(status.check()?);
            }
            println!("database: {}", target.redacted());
            for name in &status.applied {
                println!("applied  {name}");
            }
            for name in &status.pending {
                println!("pending  {name}");
            }
            let verdict = if !status.pending.is_empty() {
                "behind: run `recents migrate up`"
            } else {
                "up to date"
            };
            println!("schema is {verdict}");
            status.check()?;
        }
        MigrateAction::Up => {
            let applied = tables
                .migrations()
                .up(&conn, None)
                .await
                .map_err(recents_service::Error::from)
                .context("migrate up")?;
            if json {
                return super::print_json(&UpReport {
                    database: target.redacted(),
                    applied_now: &applied,
                });
            }
            if applied.is_empty() {
                println!("schema of {} is up to date", target.redacted());
            } else {
                for name in &applied {
                    println!("applied  {name}");
                }
                println!(
                    "applied {} migration(s) to {}",
                    applied.len(),
                    target.redacted()
                );
            }
        }
    }
    Ok(())
}

//! `recents migrate [up|status]`: bring the schema up to date, or say where it stands.

use anyhow::Context;
use serde::Serialize;

use crate::Target;

/// What `recents migrate` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateAction {
    /// Apply every pending migration (the default).
    #[default]
    Up,
    /// List applied, pending and unknown migrations; change nothing.
    Status,
}

#[derive(Serialize)]
struct StatusReport<'a> {
    database: String,
    applied: &'a [String],
    pending: &'a [String],
    unknown: &'a [String],
    current: bool,
}

#[derive(Serialize)]
struct UpReport<'a> {
    database: String,
    applied_now: &'a [String],
}

/// Runs `recents migrate <action>` against `target`.
///
/// # Errors
/// An unreachable database, a schema ahead of this version (for `up`), or a
/// failing migration.
pub async fn run(target: &Target, action: MigrateAction, json: bool) -> anyhow::Result<()> {
    let conn = recents_service::connect_unchecked(&target.url).await?;
    match action {
        MigrateAction::Status => {
            let status = recents_service::schema_status(&conn).await?;
            if json {
                super::print_json(&StatusReport {
                    database: target.redacted(),
                    applied: &status.applied,
                    pending: &status.pending,
                    unknown: &status.unknown,
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
            for name in &status.unknown {
                println!("unknown  {name} (applied by a newer version)");
            }
            let verdict = if !status.unknown.is_empty() {
                "ahead of this version"
            } else if !status.pending.is_empty() {
                "behind: run `recents migrate up`"
            } else {
                "up to date"
            };
            println!("schema is {verdict}");
            status.check()?;
        }
        MigrateAction::Up => {
            let applied = recents_service::migrate_up(&conn)
                .await
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

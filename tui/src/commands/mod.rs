//! The headless subcommands, for scripts and cron: plain lines on stdout
//! (JSON with `--json`), one clear line on stderr and a non-zero exit on
//! failure.

pub mod backfill;
pub mod migrate;
pub mod queue;
pub mod recent;
pub mod seed;
pub mod verify;

use chrono::{DateTime, SecondsFormat, Utc};

/// A timestamp as the subcommands print it: RFC 3339 in UTC, microseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Prints `value` as one line of JSON.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

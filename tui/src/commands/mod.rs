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

/// A subcommand's failure that is not a library error, with a stable kind
/// for `--json` output (`drift`, `interrupted`, …).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Stable, machine-readable.
    pub kind: &'static str,
    /// One line for people.
    pub message: String,
    /// The exit code: 1 for a failure, 130 for an interrupted run.
    pub exit_code: u8,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            exit_code: 1,
        }
    }
}

/// A `--limit` as given (any whole number, negative or huge) as the
/// library's limit, or the library's own [`recents_service::Error::InvalidLimit`]
/// naming the valid range: one message for `-1`, `0` and `99999999999` alike.
pub fn limit(given: i64) -> Result<u32, recents_service::Error> {
    let max = recents_service::MAX_LIMIT;
    u32::try_from(given)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or(recents_service::Error::InvalidLimit { got: given, max })
}
/// A timestamp as the subcommands print it: RFC 3339 in UTC, microseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Prints `value` as one line of JSON.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

//! `recents-tui`: the `recents` operator console and its headless
//! subcommands. No SQL lives here: every answer comes from
//! `recents-service` (and the demo from `recents-seed`); this crate parses,
//! renders and reports.
//!
//! The binary's `main.rs` parses arguments and dispatches to [`commands`]
//! (`migrate`, `seed`, `backfill`, `verify`, `recent`, `queue`) or to [`console`] (no subcommand).

pub mod commands;
pub mod console;

use std::path::PathBuf;

use recents_service::{DEFAULT_DATABASE_URL, Migrate};
use sea_orm::DatabaseConnection;

/// The database the binary works on, and how the console treats its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL, as given (it may hold a password: show [`Target::redacted`] only).
    pub url: String,
    /// Whether it is the embedded default rather than `DATABASE_URL`.
    pub is_default: bool,
}

impl Target {
    /// `DATABASE_URL` when set and not empty, else [`DEFAULT_DATABASE_URL`].
    pub fn from_env() -> Self {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Self {
                url,
                is_default: false,
            },
            _ => Self {
                url: DEFAULT_DATABASE_URL.to_owned(),
                is_default: true,
            },
        }
    }

    /// The embedded database's file, when this is the embedded default.
    pub fn embedded_file(&self) -> Option<PathBuf> {
        self.is_default.then(|| PathBuf::from("recents.db"))
    }

    /// Connects for a subcommand: the embedded database is brought up to
    /// date (it is this binary's own); a database named by `DATABASE_URL`
    /// must already be current (`recents migrate up` migrates it).
    ///
    /// # Errors
    /// As [`recents_service::connect`].
    pub async fn connect(&self) -> recents_service::Result<DatabaseConnection> {
        if self.is_default {
            recents_service::connect_and_migrate(&self.url).await
        } else {
            recents_service::connect(&self.url).await
        }
    }

    /// The URL with its password hidden, for the screen and messages.
    pub fn redacted(&self) -> String {
        recents_service::redact(&self.url)
    }

    /// What the console does with the schema on connecting: the embedded
    /// database is brought up to date; a database named by `DATABASE_URL` is
    /// migrated only when new (one behind shows a banner instead: migrating a
    /// shared database is `recents migrate up`'s job).
    pub fn console_migrate(&self) -> Migrate {
        if self.is_default {
            Migrate::Pending
        } else {
            Migrate::IfNew
        }
    }
}

//! `recents-tui`: the `recents` operator console and its headless
//! subcommands. No SQL lives here: every answer comes from
//! `recents-service` (and the demo from `recents-seed`); this crate parses,
//! renders and reports.
//!
//! The binary's `main.rs` parses arguments and dispatches to [`commands`]
//! (`migrate`, `seed`, `backfill`, `verify`, `recent`, `queue`) or to [`console`] (no subcommand).

pub mod commands;
pub mod console;

use std::path::{Path, PathBuf};

use recents_service::admin::{DEFAULT_DATABASE_URL, Migrate, Tables};
use recents_service::{Recents, Schema};
use sea_orm::DatabaseConnection;

/// The database the binary works on, which tables, and how the console
/// treats its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL, as given (it may hold a password: show [`Target::redacted`] only).
    pub url: String,
    /// Whether it is the embedded default rather than `DATABASE_URL`.
    pub is_default: bool,
    /// recents' own tables, or the backend's under a schema mapping.
    pub tables: Tables,
}

/// A connection and the library over the target's tables.
#[derive(Clone, Debug)]
pub struct Session {
    /// The pool.
    pub db: DatabaseConnection,
    /// recents over the target's tables (its mapping checked).
    pub recents: Recents,
}

impl Target {
    /// `DATABASE_URL` when set and not empty, else [`DEFAULT_DATABASE_URL`];
    /// recents' own tables.
    pub fn from_env() -> Self {
        let tables = Tables::default();
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Self {
                url,
                is_default: false,
                tables,
            },
            _ => Self {
                url: DEFAULT_DATABASE_URL.to_owned(),
                is_default: true,
                tables,
            },
        }
    }

    /// The backend's tables as the mapping file `path` names them (else the
    /// file `RECENTS_SCHEMA` names, else recents' own tables).
    ///
    /// # Errors
    /// [`recents_service::Error::Schema`] for a file that cannot be read or
    /// is not a valid mapping.
    pub fn with_schema(mut self, path: Option<&Path>) -> recents_service::Result<Self> {
        let named = path.is_some()
            || std::env::var_os(recents_schema::SCHEMA_ENV).is_some_and(|v| !v.is_empty());
        if named {
            self.tables = Tables::Mapped(Box::new(Schema::from_file_or_env(path)?));
        }
        Ok(self)
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
    /// As [`recents_service::admin::connect`].
    pub async fn connect(&self) -> recents_service::Result<Session> {
        let migrate = if self.is_default {
            Migrate::Pending
        } else {
            Migrate::Never
        };
        self.open(migrate).await
    }

    /// Connects, checks the mapping, and treats the schema as `migrate` says.
    ///
    /// # Errors
    /// As [`recents_service::admin::open_tables`].
    pub async fn open(&self, migrate: Migrate) -> recents_service::Result<Session> {
        let (db, schema) =
            recents_service::admin::open_tables(&self.url, migrate, &self.tables).await?;
        Ok(Session {
            db,
            recents: Recents::new(schema),
        })
    }

    /// The URL with its password hidden, for the screen and messages.
    pub fn redacted(&self) -> String {
        recents_service::admin::redact(&self.url)
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

//! Reaching the database: one place that validates a URL and connects with a
//! pool sized for the console and the subcommands, so every front fails the
//! same clear way on a malformed URL, a server that does not answer or a
//! database that does not exist.
//!
//! A URL's password never leaves this module in a message: errors carry
//! [`redact`]ed URLs only.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr};

use recents_migration::reach::cause_of;
pub use recents_migration::reach::redact;

use crate::error::{Error, Result};

/// The embedded database the console and the subcommands use when
/// `DATABASE_URL` is not set: a SQLite file in the working directory,
/// created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://recents.db?mode=rwc";

/// Connections in the pool: the console runs a slow history query and a
/// page load at once, and SQLite's connector would otherwise keep one.
pub const POOL_SIZE: u32 = 8;

/// How long a database may take to answer a connection attempt before it
/// counts as unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which backend a database URL names, or [`Error::InvalidDatabaseUrl`] (with
/// the URL redacted) for one that is malformed, of another scheme, or of a
/// backend this build leaves out.
pub fn backend_of(url: &str) -> Result<DbBackend> {
    let invalid = |why: &str| Error::InvalidDatabaseUrl(format!("{why}: {}", redact(url)));
    let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    let backend = match parsed.scheme() {
        "sqlite" => DbBackend::Sqlite,
        "postgres" | "postgresql" => DbBackend::Postgres,
        "mysql" | "mariadb" => DbBackend::MySql,
        other => {
            return Err(invalid(&format!(
                "unsupported scheme `{other}` (use sqlite://, postgres:// or mysql://)"
            )));
        }
    };
    if !compiled_in(backend) {
        return Err(invalid("this build has no driver for it"));
    }
    match backend {
        DbBackend::Sqlite => {
            if parsed.host_str().unwrap_or("").is_empty() && parsed.path().is_empty() {
                return Err(invalid("no database file"));
            }
        }
        _ => {
            if parsed.host_str().unwrap_or("").is_empty() {
                return Err(invalid("no host"));
            }
        }
    }
    Ok(backend)
}

fn compiled_in(backend: DbBackend) -> bool {
    let drivers = [
        (DbBackend::Sqlite, cfg!(feature = "sqlite")),
        (DbBackend::Postgres, cfg!(feature = "postgres")),
        (DbBackend::MySql, cfg!(feature = "mysql")),
    ];
    drivers.iter().any(|&(b, on)| b == backend && on)
}

/// Connects to `url` without looking at its schema (for `recents migrate`).
///
/// # Errors
/// [`Error::InvalidDatabaseUrl`], [`Error::DatabaseUnavailable`].
pub async fn connect_unchecked(url: &str) -> Result<DatabaseConnection> {
    let backend = backend_of(url)?;
    match backend {
        DbBackend::Sqlite => sqlite_file_exists_or_may_be_created(url)?,
        _ => recents_migration::reach::someone_listens(url, CONNECT_TIMEOUT)
            .await
            .map_err(|why| Error::DatabaseUnavailable(DbErr::Conn(RuntimeErr::Internal(why))))?,
    }
    // An in-memory SQLite database exists once per connection: a pool of
    // several would show each caller a different, empty database.
    let in_memory =
        backend == DbBackend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(if in_memory { 1 } else { POOL_SIZE })
        .min_connections(0)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        // sqlx logs statements and connection attempts; keep URLs out of logs.
        .sqlx_logging(false);
    let unavailable = |err: DbErr| {
        if let Some(name) = missing_database(&err) {
            return Error::DatabaseNotFound(format!(
                "database `{name}` does not exist on the server of {}: create it, or fix DATABASE_URL",
                redact(url)
            ));
        }
        Error::DatabaseUnavailable(DbErr::Conn(RuntimeErr::Internal(format!(
            "{} did not answer: {}",
            redact(url),
            cause_of(&err)
        ))))
    };
    let conn = Database::connect(options).await.map_err(unavailable)?;
    // The pool connects lazily: make sure someone answers now.
    conn.ping().await.map_err(unavailable)?;
    Ok(conn)
}

/// A SQLite URL names a file that exists, or asks for it to be created
/// (`mode=rwc`); the driver's own "unable to open database file" says
/// neither which file nor what to do.
fn sqlite_file_exists_or_may_be_created(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    if in_memory || query.split('&').any(|pair| pair == "mode=rwc") {
        return Ok(());
    }
    if std::path::Path::new(path).exists() {
        return Ok(());
    }
    Err(Error::DatabaseNotFound(format!(
        "SQLite file {path} does not exist: add ?mode=rwc to the URL to create it"
    )))
}

/// The database name, when the server said the URL's database does not
/// exist (PostgreSQL 3D000, MySQL/MariaDB 1049).
fn missing_database(err: &DbErr) -> Option<String> {
    let sqlx = match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return None,
    };
    let db = sqlx.as_database_error()?;
    let missing = match db.code().as_deref() {
        Some("3D000") => true,
        // MySQL reports SQLSTATE 42000 for several errors; its number is 1049.
        Some("42000") => db.message().starts_with("Unknown database"),
        _ => false,
    };
    missing.then(|| {
        db.message()
            .split(['"', '\''])
            .nth(1)
            .unwrap_or(db.message())
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_urls_and_other_schemes_are_invalid_and_redacted() {
        for url in [
            "",
            "recents.db",
            "postgres://app:s3cret@db:notaport/x",
            "redis://app:s3cret@db/0",
            "postgres:///nohost",
        ] {
            match backend_of(url) {
                Err(Error::InvalidDatabaseUrl(message)) => {
                    assert!(!message.contains("s3cret"), "{message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        assert_eq!(
            backend_of("postgresql://u@h/db").unwrap(),
            DbBackend::Postgres
        );
        assert_eq!(backend_of("mysql://u@h/db").unwrap(), DbBackend::MySql);
        assert_eq!(backend_of(DEFAULT_DATABASE_URL).unwrap(), DbBackend::Sqlite);
        assert_eq!(backend_of("sqlite::memory:").unwrap(), DbBackend::Sqlite);
    }
}

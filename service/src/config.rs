//! Reaching the database: one place that validates a URL, connects with a
//! pool sized for the console and the subcommands, and checks (or applies)
//! the schema's migrations, so every front fails the same clear way.
//!
//! A URL's password never leaves this module in a message: errors carry
//! [`redact`]ed URLs only.

use std::time::Duration;

use recents_migration::OwnMigrations;
use recents_schema::Schema;
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

/// Where recents' migrations stand on a database. Only recents' own are
/// looked at: a team's migrations in the same `seaql_migrations` are neither
/// pending nor "ahead".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaStatus {
    /// recents' migrations the database has applied, oldest first.
    pub applied: Vec<String>,
    /// recents' migrations the database lacks, oldest first.
    pub pending: Vec<String>,
}

impl SchemaStatus {
    /// None of recents' migrations was ever applied.
    pub fn is_new(&self) -> bool {
        self.applied.is_empty()
    }

    /// Every one of recents' migrations applied.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }

    /// The schema as an error a caller can show: [`Error::MigrationsBehind`].
    pub fn check(&self) -> Result<()> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(Error::MigrationsBehind(self.pending.clone()))
        }
    }
}

/// Which tables recents works on: its own history tables under its own
/// names (the embedded default, the demo, the tests), or a backend's tables
/// named by a schema mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tables {
    /// recents' own names.
    Own {
        /// Whether migrating also creates the history tables (a database
        /// recents makes whole). Schema checks never count them.
        with_history: bool,
    },
    /// The backend's history tables, as the mapping names them; recents
    /// creates only what it owns, after checking the mapping.
    Mapped(Box<Schema>),
}

impl Default for Tables {
    fn default() -> Self {
        Tables::Own { with_history: true }
    }
}

impl Tables {
    /// The schema statements use.
    pub fn schema(&self) -> Schema {
        match self {
            Tables::Own { .. } => Schema::default(),
            Tables::Mapped(schema) => (**schema).clone(),
        }
    }

    /// recents' migrations for these tables, the history set included when
    /// it is to be created.
    pub fn migrations(&self) -> OwnMigrations {
        match self {
            Tables::Own { with_history } => {
                OwnMigrations::new(Schema::default()).with_history(*with_history)
            }
            Tables::Mapped(schema) => OwnMigrations::new((**schema).clone()),
        }
    }

    /// recents' own migrations only: what a schema check counts.
    fn owned(&self) -> OwnMigrations {
        OwnMigrations::new(self.schema())
    }
}

/// What [`open`] does with the schema after connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migrate {
    /// Only check: a schema behind or ahead is an error.
    Never,
    /// Migrate a new database (no migration ever applied); only check any other.
    IfNew,
    /// Apply every pending migration (a schema ahead is still an error).
    Pending,
}

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

/// Connects to `url` and checks that its schema is exactly this version's.
///
/// # Errors
/// [`Error::InvalidDatabaseUrl`] before any connection attempt;
/// [`Error::DatabaseUnavailable`] when the database does not answer within
/// [`CONNECT_TIMEOUT`]; [`Error::MigrationsBehind`] (run `recents migrate up`)
/// or [`Error::MigrationsAhead`].
pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    open(url, Migrate::Never).await
}

/// Connects to `url` and applies every pending migration: for the embedded
/// default ([`DEFAULT_DATABASE_URL`]), `recents migrate up` and the demo seed.
///
/// # Errors
/// As [`connect`], except that a schema behind is brought up to date;
/// [`Error::Database`] when a migration fails.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection> {
    open(url, Migrate::Pending).await
}

/// Connects to `url` and treats its schema as `migrate` says.
///
/// # Errors
/// As [`connect`] and [`connect_and_migrate`].
pub async fn open(url: &str, migrate: Migrate) -> Result<DatabaseConnection> {
    Ok(open_tables(url, migrate, &Tables::default()).await?.0)
}

/// Connects to `url`, checks a mapping against the database (nothing is
/// created when it is wrong), and treats recents' migrations as `migrate`
/// says. Returns the connection and the schema as found.
///
/// # Errors
/// As [`connect`]; [`Error::Schema`] for a mapping the database contradicts.
pub async fn open_tables(
    url: &str,
    migrate: Migrate,
    tables: &Tables,
) -> Result<(DatabaseConnection, Schema)> {
    let conn = connect_unchecked(url).await?;
    let (schema, tables) = match tables {
        Tables::Own { .. } => (Schema::default(), tables.clone()),
        Tables::Mapped(schema) => {
            let checked = schema.check(&conn).await?;
            (checked.clone(), Tables::Mapped(Box::new(checked)))
        }
    };
    let status = tables_status(&conn, &tables).await?;
    let apply = match migrate {
        Migrate::Never => false,
        Migrate::IfNew => status.is_new(),
        Migrate::Pending => true,
    };
    if apply && !status.pending.is_empty() {
        tables.migrations().up(&conn, None).await?;
    } else {
        status.check()?;
    }
    Ok((conn, schema))
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

/// Where recents' migrations stand on `conn` (recents' own names; the
/// optional history set is not counted). Reads only: a database that never saw a migration gets no
/// migration table from this.
///
/// # Errors
/// [`Error::Database`], or [`Error::DatabaseUnavailable`] when the connection is lost.
pub async fn schema_status(conn: &DatabaseConnection) -> Result<SchemaStatus> {
    tables_status(conn, &Tables::default()).await
}

/// Where recents' migrations for `tables` stand on `conn`.
///
/// # Errors
/// As [`schema_status`].
pub async fn tables_status(conn: &DatabaseConnection, tables: &Tables) -> Result<SchemaStatus> {
    let status = tables.owned().status(conn).await.map_err(lost)?;
    Ok(SchemaStatus {
        applied: status.applied,
        pending: status.pending,
    })
}

/// Applies every pending migration of recents (its own tables, history
/// included) and returns their names, oldest first.
///
/// # Errors
/// [`Error::Database`] when a migration fails.
pub async fn migrate_up(conn: &DatabaseConnection) -> Result<Vec<String>> {
    Ok(Tables::default().migrations().up(conn, None).await?)
}

fn lost(err: DbErr) -> Error {
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Error::DatabaseUnavailable(err),
        other => Error::Database(other),
    }
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

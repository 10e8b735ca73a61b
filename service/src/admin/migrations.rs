//! Where recents' migrations stand on a database, and opening one at the
//! schema this version needs: checked, or migrated when asked.

use recents_migration::OwnMigrations;
use recents_schema::Schema;
use sea_orm::{DatabaseConnection, DbErr};

use super::connection::connect_unchecked;
use crate::error::{Error, Result};

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

/// Connects to `url` and checks that its schema is exactly this version's.
///
/// # Errors
/// [`Error::InvalidDatabaseUrl`] before any connection attempt;
/// [`Error::DatabaseUnavailable`] when the database does not answer within
/// [`CONNECT_TIMEOUT`](super::CONNECT_TIMEOUT); [`Error::MigrationsBehind`]
/// when recents' migrations are behind (a team's own migrations in the same
/// table never count).
pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    open(url, Migrate::Never).await
}

/// Connects to `url` and applies every pending migration: for the embedded
/// default ([`DEFAULT_DATABASE_URL`](super::DEFAULT_DATABASE_URL)),
/// `recents migrate up` and the demo seed.
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

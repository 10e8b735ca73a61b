//! `recents-schema`: where recents finds the backend's history. A team's
//! tables keep their own names; a [`SchemaMapping`] says which is which, and
//! a [`Schema`] is that mapping checked (identifiers, then the live database)
//! and quoted for each backend, for every statement the migrations and the
//! service build.
//!
//! ```
//! use recents_schema::Schema;
//!
//! let schema = Schema::from_toml(r#"
//!     [tables]
//!     saved_runs = "bots_savedrun"
//!     [columns.saved_runs]
//!     version_id = "parent_version_id"
//! "#).unwrap();
//! let names = schema.names(sea_orm::DbBackend::Postgres);
//! assert_eq!(names.saved_runs.table, "\"bots_savedrun\"");
//!
//! // Nothing from a mapping is ever SQL.
//! assert!(Schema::from_toml("[tables]\nsaved_runs = \"x; DROP TABLE y\"").is_err());
//! ```

mod ident;
mod live;
mod mapping;
mod names;
mod queue_claim;
mod queue_heads;

use std::path::Path;

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

pub use ident::MAX_IDENTIFIER_BYTES;
pub use mapping::{
    ColumnNames, ExecutionJobColumns, Install, MaintainedBy, PublishedRunColumns,
    RecentWorkflowsSettings, SavedRunColumns, SchemaMapping, TableNames, VersionColumns,
    WorkspaceColumns,
};
pub use names::{JobsSql, Names, PublishedRunsSql, SavedRunsSql, VersionsSql, WorkspacesSql};
pub use queue_claim::{FRONT_SLACK, MAX_FRONT};

use live::{Kind, Wanted};

/// The environment variable naming a schema mapping file, for the command
/// lines (`recents --schema FILE` wins over it).
pub const SCHEMA_ENV: &str = "RECENTS_SCHEMA";

/// A mapping that is wrong, named by its key in the file (`tables.saved_runs`,
/// `columns.saved_runs.version_id`). Nothing has been created or run when one
/// is returned.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The mapping file could not be read.
    #[error("cannot read the schema mapping {path}: {message}")]
    Read { path: String, message: String },
    /// Not TOML, or a key recents does not know.
    #[error("the schema mapping is not valid: {message}")]
    Parse { message: String },
    /// A key whose value is not one of those it takes.
    #[error("schema mapping `{key}` = {value} is not valid: expected {expected}")]
    InvalidValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    /// A name that is not a plain identifier.
    #[error("schema mapping `{key}` = {value:?} is not a plain identifier: {reason}")]
    InvalidIdentifier {
        key: String,
        value: String,
        reason: String,
    },
    /// The database has no such table.
    #[error("schema mapping `{key}`: the database has no table `{table}`")]
    MissingTable { key: String, table: String },
    /// The table has no such column.
    #[error(
        "schema mapping `{key}`: table `{table}` has no column `{column}` (recents needs {needs} there)"
    )]
    MissingColumn {
        key: String,
        table: String,
        column: String,
        needs: &'static str,
    },
    /// The column's type is not one recents can read and write.
    #[error(
        "schema mapping `{key}`: column `{table}`.`{column}` is {found}, recents needs {needs}"
    )]
    WrongType {
        key: String,
        table: String,
        column: String,
        found: String,
        needs: &'static str,
    },
    /// The catalog could not be read.
    #[error("reading the database's catalog: {0}")]
    Database(#[source] DbErr),
}

/// A checked [`SchemaMapping`], with every name quoted for each backend.
/// [`Schema::default`] is recents' own tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    mapping: SchemaMapping,
    is_personal: Option<String>,
    deleted_at: Option<String>,
    postgres: Names,
    mysql: Names,
    sqlite: Names,
}

impl Default for Schema {
    fn default() -> Self {
        Self::new(SchemaMapping::default()).expect("recents' own names are identifiers")
    }
}

impl Schema {
    /// Checks every identifier of `mapping` (not yet against a database:
    /// see [`Schema::check`]).
    ///
    /// # Errors
    /// [`SchemaError::InvalidIdentifier`], naming the key.
    pub fn new(mapping: SchemaMapping) -> Result<Self, SchemaError> {
        for (key, value) in identifiers(&mapping) {
            ident::check(&key, value)?;
        }
        if !mapping.prefix.is_empty() {
            ident::check("prefix", &mapping.prefix)?;
            // The longest own name must still fit.
            ident::check(
                "prefix",
                &format!("{}recents_forget_lowered_dequeues", mapping.prefix),
            )?;
        }
        let w = &mapping.columns.workspaces;
        let is_personal = Some(
            w.is_personal
                .clone()
                .unwrap_or_else(|| "is_personal".into()),
        );
        let deleted_at = Some(w.deleted_at.clone().unwrap_or_else(|| "deleted_at".into()));
        Ok(Self::resolved(mapping, is_personal, deleted_at))
    }

    fn resolved(
        mapping: SchemaMapping,
        is_personal: Option<String>,
        deleted_at: Option<String>,
    ) -> Self {
        let names = |backend| {
            Names::new(
                backend,
                &mapping,
                is_personal.as_deref(),
                deleted_at.as_deref(),
            )
        };
        Self {
            postgres: names(DbBackend::Postgres),
            mysql: names(DbBackend::MySql),
            sqlite: names(DbBackend::Sqlite),
            mapping,
            is_personal,
            deleted_at,
        }
    }

    /// Reads a mapping from TOML text (every key optional; an unknown key is
    /// an error).
    ///
    /// # Errors
    /// [`SchemaError::Parse`], [`SchemaError::InvalidValue`],
    /// [`SchemaError::InvalidIdentifier`].
    pub fn from_toml(text: &str) -> Result<Self, SchemaError> {
        check_values(text)?;
        let mapping: SchemaMapping = toml::from_str(text).map_err(|err| SchemaError::Parse {
            message: err.message().to_owned(),
        })?;
        Self::new(mapping)
    }

    /// Reads a mapping from a TOML file.
    ///
    /// # Errors
    /// [`SchemaError::Read`], and those of [`Schema::from_toml`].
    pub fn from_file(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|err| SchemaError::Read {
            path: path.display().to_string(),
            message: err.to_string(),
        })?;
        Self::from_toml(&text).map_err(|err| match err {
            SchemaError::Parse { message } => SchemaError::Parse {
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// The mapping file named by `path`, else by [`SCHEMA_ENV`], else recents' own names.
    ///
    /// # Errors
    /// Those of [`Schema::from_file`].
    pub fn from_file_or_env(path: Option<&Path>) -> Result<Self, SchemaError> {
        match path {
            Some(path) => Self::from_file(path),
            None => match std::env::var_os(SCHEMA_ENV) {
                Some(path) if !path.is_empty() => Self::from_file(Path::new(&path)),
                _ => Ok(Self::default()),
            },
        }
    }

    /// The mapping this schema was made from.
    pub fn mapping(&self) -> &SchemaMapping {
        &self.mapping
    }

    /// Which parts are installed.
    pub fn install(&self) -> Install {
        self.mapping.install
    }

    /// Who keeps the recent-workflows summary.
    pub fn maintained_by(&self) -> MaintainedBy {
        self.mapping.recent_workflows.maintained_by
    }

    /// Every name, quoted for `backend`.
    pub fn names(&self, backend: DbBackend) -> &Names {
        match backend {
            DbBackend::Postgres => &self.postgres,
            DbBackend::MySql => &self.mysql,
            _ => &self.sqlite,
        }
    }

    /// Checks the mapping against the database `conn` reaches: every table
    /// of an installed part exists, and every mapped column, with a type
    /// recents can use. Returns the schema as found: a workspace column left
    /// out of the mapping (`is_personal`, `deleted_at`) whose default is not
    /// in the table is then left out of every statement.
    ///
    /// # Errors
    /// [`SchemaError::MissingTable`], [`SchemaError::MissingColumn`],
    /// [`SchemaError::WrongType`], each naming its key;
    /// [`SchemaError::Database`].
    pub async fn check<C: ConnectionTrait>(&self, conn: &C) -> Result<Schema, SchemaError> {
        let backend = conn.get_database_backend();
        let m = &self.mapping;
        let c = &m.columns;
        let mut is_personal = self.is_personal.clone();
        let mut deleted_at = self.deleted_at.clone();
        if m.install.recent_workflows {
            let w = &c.workspaces;
            let wanted = [
                want("columns.workspaces.id", &w.id, Kind::Integer),
                want("columns.workspaces.name", &w.name, Kind::Text),
                Wanted {
                    optional: w.is_personal.is_none(),
                    ..want(
                        "columns.workspaces.is_personal",
                        is_personal.as_deref().unwrap_or("is_personal"),
                        Kind::Boolean,
                    )
                },
                Wanted {
                    optional: w.deleted_at.is_none(),
                    ..want(
                        "columns.workspaces.deleted_at",
                        deleted_at.as_deref().unwrap_or("deleted_at"),
                        Kind::Timestamp,
                    )
                },
            ];
            let found = live::columns(conn, &m.tables.workspaces).await?;
            let present = live::check_table(
                backend,
                "tables.workspaces",
                &m.tables.workspaces,
                &found,
                &wanted,
            )?;
            if !present[2] {
                is_personal = None;
            }
            if !present[3] {
                deleted_at = None;
            }
            let p = &c.published_runs;
            self.check_one(
                conn,
                "published_runs",
                &m.tables.published_runs,
                &[
                    want("columns.published_runs.id", &p.id, Kind::Integer),
                    want(
                        "columns.published_runs.workspace_id",
                        &p.workspace_id,
                        Kind::Integer,
                    ),
                    want("columns.published_runs.title", &p.title, Kind::Text),
                ],
            )
            .await?;
            let v = &c.versions;
            self.check_one(
                conn,
                "versions",
                &m.tables.versions,
                &[
                    want("columns.versions.id", &v.id, Kind::Integer),
                    want(
                        "columns.versions.published_run_id",
                        &v.published_run_id,
                        Kind::Integer,
                    ),
                ],
            )
            .await?;
            let s = &c.saved_runs;
            self.check_one(
                conn,
                "saved_runs",
                &m.tables.saved_runs,
                &[
                    want("columns.saved_runs.id", &s.id, Kind::Integer),
                    want(
                        "columns.saved_runs.workspace_id",
                        &s.workspace_id,
                        Kind::Integer,
                    ),
                    want("columns.saved_runs.uid", &s.uid, Kind::Text),
                    want(
                        "columns.saved_runs.version_id",
                        &s.version_id,
                        Kind::Integer,
                    ),
                    want("columns.saved_runs.run_status", &s.run_status, Kind::Text),
                    want(
                        "columns.saved_runs.created_at",
                        &s.created_at,
                        Kind::Timestamp,
                    ),
                    want(
                        "columns.saved_runs.updated_at",
                        &s.updated_at,
                        Kind::Timestamp,
                    ),
                ],
            )
            .await?;
        }
        if m.install.fair_queue {
            let j = &c.execution_jobs;
            let key = |col: &str| format!("columns.execution_jobs.{col}");
            let wanted: Vec<Wanted<'_>> = [
                ("id", &j.id, Kind::Integer),
                ("user_id", &j.user_id, Kind::Integer),
                ("state", &j.state, Kind::Text),
                ("payload", &j.payload, Kind::Json),
                ("created_at", &j.created_at, Kind::Timestamp),
                ("started_at", &j.started_at, Kind::Timestamp),
                ("finished_at", &j.finished_at, Kind::Timestamp),
                ("process_after", &j.process_after, Kind::Timestamp),
                ("num_resets", &j.num_resets, Kind::Integer),
                ("num_failures", &j.num_failures, Kind::Integer),
                ("failure_message", &j.failure_message, Kind::Text),
                ("worker_hostname", &j.worker_hostname, Kind::Text),
                ("last_heartbeat_at", &j.last_heartbeat_at, Kind::Timestamp),
                ("cancel", &j.cancel, Kind::Boolean),
            ]
            .into_iter()
            .map(|(name, column, kind)| Wanted {
                key: key(name),
                column,
                kind,
                optional: false,
            })
            .collect();
            self.check_one(conn, "execution_jobs", &m.tables.execution_jobs, &wanted)
                .await?;
        }
        Ok(Self::resolved(
            self.mapping.clone(),
            is_personal,
            deleted_at,
        ))
    }

    async fn check_one<C: ConnectionTrait>(
        &self,
        conn: &C,
        table_key: &str,
        table: &str,
        wanted: &[Wanted<'_>],
    ) -> Result<(), SchemaError> {
        let found = live::columns(conn, table).await?;
        live::check_table(
            conn.get_database_backend(),
            &format!("tables.{table_key}"),
            table,
            &found,
            wanted,
        )?;
        Ok(())
    }
}

fn want<'a>(key: &str, column: &'a str, kind: Kind) -> Wanted<'a> {
    Wanted {
        key: key.to_owned(),
        column,
        kind,
        optional: false,
    }
}

/// Every identifier of a mapping, under its key.
fn identifiers(m: &SchemaMapping) -> Vec<(String, &str)> {
    let t = &m.tables;
    let c = &m.columns;
    let mut all: Vec<(String, &str)> = vec![
        ("tables.workspaces".into(), &t.workspaces),
        ("tables.published_runs".into(), &t.published_runs),
        ("tables.versions".into(), &t.versions),
        ("tables.saved_runs".into(), &t.saved_runs),
        ("tables.execution_jobs".into(), &t.execution_jobs),
        ("columns.workspaces.id".into(), &c.workspaces.id),
        ("columns.workspaces.name".into(), &c.workspaces.name),
        ("columns.published_runs.id".into(), &c.published_runs.id),
        (
            "columns.published_runs.workspace_id".into(),
            &c.published_runs.workspace_id,
        ),
        (
            "columns.published_runs.title".into(),
            &c.published_runs.title,
        ),
        ("columns.versions.id".into(), &c.versions.id),
        (
            "columns.versions.published_run_id".into(),
            &c.versions.published_run_id,
        ),
    ];
    if let Some(col) = &c.workspaces.is_personal {
        all.push(("columns.workspaces.is_personal".into(), col));
    }
    if let Some(col) = &c.workspaces.deleted_at {
        all.push(("columns.workspaces.deleted_at".into(), col));
    }
    let s = &c.saved_runs;
    for (name, col) in [
        ("id", &s.id),
        ("workspace_id", &s.workspace_id),
        ("uid", &s.uid),
        ("version_id", &s.version_id),
        ("run_status", &s.run_status),
        ("created_at", &s.created_at),
        ("updated_at", &s.updated_at),
    ] {
        all.push((format!("columns.saved_runs.{name}"), col));
    }
    let j = &c.execution_jobs;
    for (name, col) in [
        ("id", &j.id),
        ("user_id", &j.user_id),
        ("state", &j.state),
        ("payload", &j.payload),
        ("created_at", &j.created_at),
        ("started_at", &j.started_at),
        ("finished_at", &j.finished_at),
        ("process_after", &j.process_after),
        ("num_resets", &j.num_resets),
        ("num_failures", &j.num_failures),
        ("failure_message", &j.failure_message),
        ("worker_hostname", &j.worker_hostname),
        ("last_heartbeat_at", &j.last_heartbeat_at),
        ("cancel", &j.cancel),
    ] {
        all.push((format!("columns.execution_jobs.{name}"), col));
    }
    all
}

/// `sql` written with `?` placeholders, numbered `$1, $2, …` for PostgreSQL.
/// The SQL must not hold a `?` elsewhere. The one numbering of the
/// migrations and the service.
pub fn numbered(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The keys whose values are words from a list, checked before the mapping
/// is parsed, so that a wrong one is named with what it may be (serde would
/// only say "unknown variant").
fn check_values(text: &str) -> Result<(), SchemaError> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(()); // the parse proper reports it
    };
    let value = table
        .get("recent_workflows")
        .and_then(|section| section.get("maintained_by"));
    match value {
        None => Ok(()),
        Some(toml::Value::String(word)) if word == "service" || word == "triggers" => Ok(()),
        Some(other) => Err(SchemaError::InvalidValue {
            key: "recent_workflows.maintained_by".into(),
            value: match other {
                toml::Value::String(word) => format!("{word:?}"),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => "a table, array or date".into(),
            },
            expected: "\"service\" or \"triggers\"",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_kept_by_the_service_unless_the_mapping_says_triggers() {
        assert_eq!(Schema::default().maintained_by(), MaintainedBy::Service);
        let schema = Schema::from_toml("[recent_workflows]\nmaintained_by = \"triggers\"").unwrap();
        assert_eq!(schema.maintained_by(), MaintainedBy::Triggers);
        let schema = Schema::from_toml("[recent_workflows]\nmaintained_by = \"service\"").unwrap();
        assert_eq!(schema.maintained_by(), MaintainedBy::Service);
    }

    #[test]
    fn a_mode_that_is_not_service_or_triggers_is_refused_naming_its_key() {
        for bad in ["\"trigger\"", "\"\"", "1", "true"] {
            let err = Schema::from_toml(&format!("[recent_workflows]\nmaintained_by = {bad}"))
                .unwrap_err();
            assert!(
                matches!(&err, SchemaError::InvalidValue { key, .. } if key == "recent_workflows.maintained_by"),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("\"triggers\""), "{err}");
        }
        let err = Schema::from_toml("[recent_workflows]\nmaintaned_by = \"triggers\"").unwrap_err();
        assert!(err.to_string().contains("maintaned_by"), "{err}");
    }

    #[test]
    fn an_identifier_carrying_sql_is_refused_naming_its_key() {
        let err = Schema::from_toml("[tables]\nsaved_runs = \"x; DROP TABLE y\"").unwrap_err();
        assert!(
            matches!(&err, SchemaError::InvalidIdentifier { key, .. } if key == "tables.saved_runs"),
            "{err}"
        );
        for bad in ["", "1abc", "a b", "a\"b", "a`b", "a.b", "é"] {
            let mut m = SchemaMapping::default();
            m.columns.saved_runs.uid = bad.into();
            assert!(Schema::new(m).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it() {
        let err = Schema::from_toml("[tables]\nsaved_run = \"x\"").unwrap_err();
        assert!(err.to_string().contains("saved_run"), "{err}");
        let err = Schema::from_toml("[columns.saved_runs]\nversion = \"x\"").unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
    }

    #[test]
    fn names_are_quoted_per_backend_and_own_tables_take_the_prefix() {
        let schema =
            Schema::from_toml("prefix = \"rc_\"\n[tables]\nsaved_runs = \"bots_savedrun\"")
                .unwrap();
        let pg = schema.names(DbBackend::Postgres);
        assert_eq!(pg.saved_runs.table, "\"bots_savedrun\"");
        assert_eq!(pg.recent_workflows, "\"rc_workspace_recent_workflows\"");
        let my = schema.names(DbBackend::MySql);
        assert_eq!(my.saved_runs.version_id, "`parent_version_id`");
        assert_eq!(my.object("idx_x"), "`rc_idx_x`");
    }

    #[test]
    fn the_default_is_recents_own_names() {
        let names = Schema::default();
        let n = names.names(DbBackend::Sqlite);
        assert_eq!(n.saved_runs.table, "\"saved_runs\"");
        assert_eq!(n.workspaces.live("w"), "w.\"deleted_at\" IS NULL");
    }

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        assert_eq!(
            numbered(DbBackend::Postgres, "a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
        assert_eq!(numbered(DbBackend::MySql, "a = ?"), "a = ?");
    }
}

//! The mapping against the database as it is: every mapped table exists and
//! every mapped column exists with a type recents can read and write, before
//! anything is created or run.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::SchemaError;

/// What recents needs a column to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Integer,
    Text,
    Timestamp,
    Boolean,
    Json,
}

impl Kind {
    fn needs(self, backend: DbBackend) -> &'static str {
        match (self, backend) {
            (Kind::Integer, _) => "an integer (BIGINT)",
            (Kind::Text, _) => "text (VARCHAR or TEXT)",
            (Kind::Timestamp, DbBackend::Postgres) => "a timestamp with time zone (timestamptz)",
            (Kind::Timestamp, DbBackend::MySql) => "a DATETIME (DATETIME(6) keeps microseconds)",
            (Kind::Timestamp, _) => "a timestamp (declared as DATETIME or TIMESTAMP)",
            (Kind::Boolean, _) => "a boolean",
            (Kind::Json, _) => "JSON",
        }
    }

    /// Whether a column the catalog describes as `declared` holds this kind.
    fn accepts(self, backend: DbBackend, declared: &str) -> bool {
        let t = declared.to_ascii_lowercase();
        match backend {
            DbBackend::Postgres => match self {
                Kind::Integer => matches!(t.as_str(), "bigint" | "integer" | "smallint"),
                Kind::Text => matches!(t.as_str(), "text" | "character varying" | "character"),
                Kind::Timestamp => t == "timestamp with time zone",
                Kind::Boolean => t == "boolean",
                Kind::Json => matches!(t.as_str(), "json" | "jsonb"),
            },
            DbBackend::MySql => match self {
                Kind::Integer => matches!(t.as_str(), "bigint" | "int" | "mediumint" | "smallint"),
                Kind::Text => matches!(
                    t.as_str(),
                    "varchar" | "char" | "text" | "tinytext" | "mediumtext" | "longtext"
                ),
                Kind::Timestamp => t == "datetime",
                Kind::Boolean => matches!(t.as_str(), "tinyint" | "bool" | "boolean"),
                // MariaDB's JSON is LONGTEXT with a check.
                Kind::Json => matches!(t.as_str(), "json" | "longtext"),
            },
            // SQLite: the declared type's affinity, as SQLite itself reads it.
            _ => match self {
                Kind::Integer => t.contains("int"),
                Kind::Text => {
                    t.contains("char") || t.contains("text") || t.contains("clob") || t.is_empty()
                }
                Kind::Timestamp => {
                    (t.contains("time") || t.contains("date")) && !t.contains("int")
                        || t.starts_with("timestamp")
                }
                Kind::Boolean => t.contains("bool") || t.contains("int"),
                Kind::Json => t.contains("json") || t.contains("text"),
            },
        }
    }
}

/// One mapped column to look for: its key in the mapping, its name and kind.
pub(crate) struct Wanted<'a> {
    pub key: String,
    pub column: &'a str,
    pub kind: Kind,
    /// Absent is fine: the mapping left it out and the default is missing.
    pub optional: bool,
}

/// The columns of `table` and their declared types; empty when there is no such table.
pub(crate) async fn columns<C: ConnectionTrait>(
    conn: &C,
    table: &str,
) -> Result<HashMap<String, String>, SchemaError> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT column_name::text AS column_name, data_type::text AS data_type \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
        DbBackend::MySql => {
            "SELECT CAST(COLUMN_NAME AS CHAR) AS column_name, CAST(DATA_TYPE AS CHAR) AS data_type \
             FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ?"
        }
        _ => "SELECT name AS column_name, type AS data_type FROM pragma_table_info(?)",
    };
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .map_err(SchemaError::Database)?;
    let mut found = HashMap::new();
    for row in rows {
        let name: String = row
            .try_get("", "column_name")
            .map_err(SchemaError::Database)?;
        let declared: String = row
            .try_get("", "data_type")
            .map_err(SchemaError::Database)?;
        found.insert(name, declared);
    }
    Ok(found)
}

/// Checks `wanted` against `found` (the columns of `table`, mapped under
/// `table_key`); returns which optional columns are there.
pub(crate) fn check_table(
    backend: DbBackend,
    table_key: &str,
    table: &str,
    found: &HashMap<String, String>,
    wanted: &[Wanted<'_>],
) -> Result<Vec<bool>, SchemaError> {
    if found.is_empty() {
        return Err(SchemaError::MissingTable {
            key: table_key.to_owned(),
            table: table.to_owned(),
        });
    }
    let mut present = Vec::with_capacity(wanted.len());
    for w in wanted {
        match found.get(w.column) {
            None if w.optional => present.push(false),
            None => {
                return Err(SchemaError::MissingColumn {
                    key: w.key.clone(),
                    table: table.to_owned(),
                    column: w.column.to_owned(),
                    needs: w.kind.needs(backend),
                });
            }
            Some(declared) if !w.kind.accepts(backend, declared) => {
                return Err(SchemaError::WrongType {
                    key: w.key.clone(),
                    table: table.to_owned(),
                    column: w.column.to_owned(),
                    found: declared.clone(),
                    needs: w.kind.needs(backend),
                });
            }
            Some(_) => present.push(true),
        }
    }
    Ok(present)
}

//! Column types that must be spelled per backend to mean the same thing on all three.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// A timestamp that keeps microseconds: `timestamptz` on PostgreSQL,
/// `DATETIME(6)` on MySQL/MariaDB (plain `TIMESTAMP` drops the fraction and
/// ends in 2038), RFC 3339 text on SQLite (UTC only, so text order is time order).
pub fn timestamp<T: IntoIden>(backend: DbBackend, name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    match backend {
        DbBackend::MySql => column.custom(Alias::new("DATETIME(6)")),
        _ => column.timestamp_with_time_zone(),
    };
    column
}

/// A user id (or worker name) as text. MySQL/MariaDB compares strings case-
/// and trailing-space-insensitively by default; a NO PAD binary collation
/// (`collation`, from [`byte_collation`]) makes `Alice`, `alice` and
/// `alice ` three users there too, as on the other backends.
pub fn uid<T: IntoIden>(backend: DbBackend, name: T, collation: &str) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    match backend {
        DbBackend::MySql => column.custom(Alias::new(format!(
            "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {collation}"
        ))),
        _ => column.string_len(255),
    };
    column
}

/// The NO PAD binary collation of utf8mb4 (MariaDB and MySQL 8 name it
/// differently); `""` on the other backends, which compare bytes already.
pub async fn byte_collation(manager: &SchemaManager<'_>) -> Result<&'static str, DbErr> {
    if manager.get_database_backend() != DbBackend::MySql {
        return Ok("");
    }
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            "SELECT VERSION() AS version",
        ))
        .await?;
    let version: String = match row {
        Some(row) => row.try_get("", "version")?,
        None => String::new(),
    };
    Ok(if version.contains("MariaDB") {
        "utf8mb4_nopad_bin"
    } else {
        "utf8mb4_0900_bin"
    })
}

/// A `bigint` primary key that the database numbers.
pub fn id<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key();
    column
}

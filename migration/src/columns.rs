//! Column types that must be spelled per backend to mean the same thing on all three.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

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

/// A user id as text. MySQL/MariaDB compares strings case- and
/// trailing-space-insensitively by default; a binary collation makes `Alice`
/// and `alice` two users there too, as on the other backends.
pub fn uid<T: IntoIden>(backend: DbBackend, name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    match backend {
        DbBackend::MySql => column.custom(Alias::new(
            "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        )),
        _ => column.string_len(255),
    };
    column
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

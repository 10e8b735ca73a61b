//! Raw SQL with one placeholder style: migrations cannot use the service's
//! helper (the service depends on them), so they have this one.

use sea_orm_migration::sea_orm::DbBackend;

/// `sql` written with `?` placeholders, numbered `$1, $2, …` for PostgreSQL.
/// The SQL must not hold a `?` elsewhere.
pub fn numbered(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut n = 0;
    sql.chars()
        .map(|c| {
            if c == '?' {
                n += 1;
                format!("${n}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

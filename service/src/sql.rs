//! Raw statements with one placeholder style for all backends: what the
//! service's own SQL uses, public for backends (and the seed) writing theirs.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait, Value,
};

/// Builds a statement from SQL written with `?` placeholders, numbering them
/// `$1, $2, …` for PostgreSQL. The SQL must not hold a `?` elsewhere.
///
/// ```
/// use recents_service::sql::statement;
/// use sea_orm::DbBackend;
///
/// let stmt = statement(DbBackend::Postgres, "SELECT ? + ?", vec![1i64.into(), 2i64.into()]);
/// assert_eq!(stmt.sql, "SELECT $1 + $2");
/// ```
pub fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut numbered = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    numbered.push('$');
                    numbered.push_str(&n.to_string());
                } else {
                    numbered.push(c);
                }
            }
            numbered
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Now, as every backend stores a timestamp (microseconds).
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// ` FOR UPDATE` where the backend has row locks; SQLite's writers are
/// serialized by its write lock instead.
pub(crate) fn for_update(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Sqlite => "",
        _ => " FOR UPDATE",
    }
}

/// Starts a transaction (a savepoint inside the caller's), taking SQLite's
/// write lock up front: a deferred SQLite transaction that reads and then
/// writes can fail with `SQLITE_BUSY` instead of waiting. What a backend's
/// run-save transaction should use on SQLite.
pub async fn begin_write<C>(conn: &C) -> Result<C::Transaction, sea_orm::DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    match conn.get_database_backend() {
        DbBackend::Sqlite => {
            conn.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => conn.begin().await,
    }
}

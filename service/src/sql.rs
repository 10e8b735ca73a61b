//! Raw statements with one placeholder style for all backends, and the
//! transactions the library's writes run in. [`begin_write`] is public at
//! the crate root (a backend's run-save transaction uses it on SQLite) and
//! [`statement`] in [`crate::admin`] (tools writing their own SQL).

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionSession, TransactionTrait, Value,
};

use crate::error::{Error, Result};

/// Builds a statement from SQL written with `?` placeholders, numbering them
/// `$1, $2, …` for PostgreSQL. The SQL must not hold a `?` elsewhere.
///
/// On MySQL/MariaDB every UTC time is bound as a `DATETIME`: sqlx binds a
/// `DateTime<Utc>` as a `TIMESTAMP`, which the server turns into NULL outside
/// 1970-01-01 00:00:01 ..= 2038-01-19 03:14:07, while the columns (and the
/// documented range) run from year 1000 to 9999.
///
/// ```
/// use recents_service::admin::statement;
/// use sea_orm::DbBackend;
///
/// let stmt = statement(DbBackend::Postgres, "SELECT ? + ?", vec![1i64.into(), 2i64.into()]);
/// assert_eq!(stmt.sql, "SELECT $1 + $2");
/// ```
pub fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = recents_schema::numbered(backend, sql);
    let values = match backend {
        DbBackend::MySql => values.into_iter().map(as_datetime).collect(),
        _ => values,
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A UTC time as a zone-less `DATETIME` value (the columns hold UTC).
fn as_datetime(value: Value) -> Value {
    match value {
        Value::ChronoDateTimeUtc(at) => Value::ChronoDateTime(at.map(|at| at.naive_utc())),
        Value::ChronoDateTimeWithTimeZone(at) => Value::ChronoDateTime(at.map(|at| at.naive_utc())),
        Value::ChronoDateTimeLocal(at) => Value::ChronoDateTime(at.map(|at| at.naive_utc())),
        other => other,
    }
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

/// ` LOCK IN SHARE MODE` on MySQL/MariaDB, where a plain read answers from
/// the transaction's first snapshot and a locking read sees the latest
/// committed rows (what a read after a row lock, or after a wait, needs);
/// nothing elsewhere, where each statement already reads the latest commits
/// (PostgreSQL's READ COMMITTED) or there is one writer (SQLite).
pub(crate) fn latest_committed(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::MySql => " LOCK IN SHARE MODE",
        _ => "",
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

/// Whether `C` is a connection of the caller's pool rather than a
/// transaction the caller has open: on its own connection a statement is
/// its own transaction.
pub(crate) fn is_own_connection<C>() -> bool {
    std::any::type_name::<C>().ends_with("DatabaseConnection")
}

/// [`begin_write`], in READ COMMITTED on MySQL/MariaDB when it opens a
/// transaction of its own: the queue's triggers read a user's jobs after
/// locking the user's row, and under REPEATABLE READ those reads would
/// answer from the transaction's first snapshot. Inside a caller's
/// transaction (a savepoint) the caller's isolation stands.
pub(crate) async fn begin_read_committed<C>(conn: &C) -> Result<C::Transaction, sea_orm::DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    // Only a transaction of its own: asking for an isolation level inside a
    // caller's transaction made sqlx open a new transaction on MySQL, which
    // committed the caller's (found by the benchmark's rolled-back claims).
    if conn.get_database_backend() != DbBackend::MySql || !is_own_connection::<C>() {
        return begin_write(conn).await;
    }
    conn.begin_with_options(TransactionOptions {
        isolation_level: Some(sea_orm::IsolationLevel::ReadCommitted),
        ..Default::default()
    })
    .await
}

/// Ends a write begun with [`begin_write`]: commits `done` if it succeeded,
/// rolls it back if it failed.
///
/// A failure is classified by what the database did to the transaction, not
/// by its code: MySQL/MariaDB roll the whole transaction back on some errors
/// (a deadlock, an auto-increment value that could not be read under lock
/// contention, a snapshot conflict, …), savepoint and the caller's work
/// included. Such a failure comes back as [`Error::TransactionRolledBack`],
/// which is retryable: the caller must run its whole transaction again.
pub(crate) async fn finish<T, Txn>(txn: Txn, done: Result<T>) -> Result<T>
where
    Txn: ConnectionTrait + TransactionSession,
{
    let err = match done {
        Ok(value) => {
            txn.commit().await?;
            return Ok(value);
        }
        Err(err) => err,
    };
    let mysql = txn.get_database_backend() == DbBackend::MySql;
    let mut rolled_back = false;
    if mysql && matches!(err, Error::Database(_)) && !err.is_unavailable() {
        // MariaDB says whether a transaction is open; MySQL, which lacks
        // the variable, fails the query and is judged by the rollback below.
        if let Ok(Some(row)) = txn
            .query_one_raw(Statement::from_string(
                DbBackend::MySql,
                "SELECT CAST(@@in_transaction AS SIGNED) AS open",
            ))
            .await
        {
            rolled_back = matches!(row.try_get::<i64>("", "open"), Ok(0));
        }
    }
    // Rolling a savepoint back fails when the server already rolled back
    // the transaction that held it.
    let savepoint_gone = txn.rollback().await.is_err();
    let unavailable = err.is_unavailable();
    match err {
        Error::Database(db) if mysql && !unavailable && (rolled_back || savepoint_gone) => {
            Err(Error::TransactionRolledBack(db))
        }
        err => Err(err),
    }
}

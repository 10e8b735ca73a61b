//! The planner's statistics after a bulk load, so that every query is timed
//! (and every test runs) on the plan production would get.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use recents_service::Error;

/// Refreshes the statistics of `tables` (recents' own names, spelled as
/// they are: the seed writes only those). On PostgreSQL `VACUUM ANALYZE`,
/// which also sets the visibility map that index-only scans rely on; not
/// inside a transaction, which VACUUM refuses. SQLite analyzes the whole
/// file.
///
/// # Errors
/// [`Error::Database`].
pub async fn analyze<C: ConnectionTrait>(conn: &C, tables: &[&str]) -> Result<(), Error> {
    let backend = conn.get_database_backend();
    let list = tables.join(", ");
    let sql = match backend {
        DbBackend::Postgres => format!("VACUUM ANALYZE {list}"),
        DbBackend::MySql => format!("ANALYZE TABLE {list}"),
        _ => "ANALYZE".to_owned(),
    };
    // MySQL answers ANALYZE TABLE with a result set: read it as a query.
    conn.query_all_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(())
}

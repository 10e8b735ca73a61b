//! The workers the queue has seen at work: who holds `processing` jobs, and
//! when each last heartbeat. What an operator's console lists; read from
//! `execution_jobs` alone, so a worker that holds no job is not seen.

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::error::Result;
use crate::handle::Recents;
use crate::maintenance::count;
use crate::sql::statement;

/// A worker holding jobs, as [`workers`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSeen {
    /// Its name (`worker_hostname` of the jobs it claimed).
    pub name: String,
    /// Jobs it holds `processing`.
    pub in_flight: u64,
    /// Its latest heartbeat over those jobs (a claim counts as one); `None`
    /// if none was recorded.
    pub last_heartbeat: Option<DateTime<Utc>>,
}

// Through idx_execution_jobs_state: only `processing` rows are read.
fn workers_sql(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "SELECT {worker} AS name, COUNT(*) AS in_flight, MAX({beat}) AS last_heartbeat \
         FROM {table} WHERE {state} = 'processing' AND {worker} IS NOT NULL \
         GROUP BY {worker} ORDER BY {worker}",
        worker = j.worker_hostname,
        beat = j.last_heartbeat_at,
        table = j.table,
        state = j.state,
    )
}

#[derive(FromQueryResult)]
struct SeenRow {
    name: String,
    in_flight: i64,
    last_heartbeat: Option<DateTime<Utc>>,
}

/// Every worker holding `processing` jobs, by name: how many, and its
/// latest heartbeat. A worker whose latest heartbeat is older than the
/// fleet's stall age is probably dead: its jobs are what
/// [`reset_stalled`](super::reset_stalled) will hand on.
///
/// ```no_run
/// # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
/// for w in recents_service::queue::workers(db).await? {
///     println!("{}: {} jobs, last heartbeat {:?}", w.name, w.in_flight, w.last_heartbeat);
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`crate::Error::Database`].
pub async fn workers<C: ConnectionTrait>(conn: &C) -> Result<Vec<WorkerSeen>> {
    Recents::standard().workers(conn).await
}

impl Recents {
    /// [`workers`] of the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`workers`].
    pub async fn workers<C: ConnectionTrait>(&self, conn: &C) -> Result<Vec<WorkerSeen>> {
        let backend = conn.get_database_backend();
        let rows = conn
            .query_all_raw(statement(
                backend,
                &workers_sql(self.schema().names(backend)),
                vec![],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let row = SeenRow::from_query_result(row, "")?;
                Ok(WorkerSeen {
                    name: row.name,
                    in_flight: count(row.in_flight),
                    last_heartbeat: row.last_heartbeat,
                })
            })
            .collect()
    }
}

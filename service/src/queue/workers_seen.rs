//! The workers the queue has seen at work: who holds `processing` jobs, and
//! when each last heartbeat. What an operator's console lists; read from
//! `execution_jobs` alone, so a worker that holds no job is not seen.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use crate::error::Result;
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
const WORKERS: &str = "\
SELECT worker_hostname AS name, COUNT(*) AS in_flight, MAX(last_heartbeat_at) AS last_heartbeat \
FROM execution_jobs WHERE state = 'processing' AND worker_hostname IS NOT NULL \
GROUP BY worker_hostname ORDER BY worker_hostname";

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
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(statement(backend, WORKERS, vec![]))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(WorkerSeen {
                name: row.try_get("", "name")?,
                in_flight: row.try_get::<i64>("", "in_flight")?.max(0) as u64,
                last_heartbeat: row.try_get("", "last_heartbeat")?,
            })
        })
        .collect()
}

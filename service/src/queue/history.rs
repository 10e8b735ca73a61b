//! The fair order by its definition, from the jobs alone: what [`dequeue`],
//! [`place_in_queue`] and [`next_in_line`] are tested against.
//!
//! [`dequeue`]: super::dequeue
//! [`place_in_queue`]: super::place_in_queue
//! [`next_in_line`]: super::next_in_line

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use super::{InLine, Place};
use crate::error::Result;
use crate::ids::{JobId, UserId};
use crate::sql::{now, statement};
use crate::validate;

// Every eligible job ranked with window functions, each user's latest dequeue
// aggregated from all of its jobs: O(all jobs), like the seed's query before
// its last-dequeue table. A user's place within a round is its oldest
// eligible job's (see the module docs of `queue`).
const FAIR_ORDER: &str = "\
SELECT q.id, q.user_id, q.created_at, q.latest_dequeue, q.place_in_user_queue, \
    ROW_NUMBER() OVER (ORDER BY q.place_in_user_queue, q.latest_dequeue IS NOT NULL, \
        q.latest_dequeue, q.head_created_at, q.head_id) AS place_in_global_queue \
FROM (\
    SELECT j.id, j.user_id, j.created_at, d.latest_dequeue, \
        ROW_NUMBER() OVER (PARTITION BY j.user_id ORDER BY j.created_at, j.id) AS place_in_user_queue, \
        FIRST_VALUE(j.created_at) OVER (PARTITION BY j.user_id ORDER BY j.created_at, j.id) AS head_created_at, \
        FIRST_VALUE(j.id) OVER (PARTITION BY j.user_id ORDER BY j.created_at, j.id) AS head_id \
    FROM execution_jobs j LEFT JOIN (\
        SELECT user_id, MAX(started_at) AS latest_dequeue FROM execution_jobs GROUP BY user_id\
    ) d ON d.user_id = j.user_id \
    WHERE j.state IN ('queued', 'errored') AND NOT j.cancel \
        AND (j.process_after IS NULL OR j.process_after <= ?)\
) q \
ORDER BY place_in_global_queue LIMIT ?";

/// The first `limit` jobs of the fair order, computed from `execution_jobs`
/// alone: every eligible job ranked, each user's latest dequeue taken as the
/// greatest `started_at` of its jobs. O(all jobs): for tests and the
/// benchmark's baseline, not for the dequeue path.
///
/// # Errors
/// [`crate::Error::InvalidLimit`] unless `1 <= limit <= 1000`;
/// [`crate::Error::Database`].
pub async fn fair_order_from_history<C: ConnectionTrait>(
    conn: &C,
    limit: u32,
) -> Result<Vec<InLine>> {
    let limit = validate::limit(limit)?;
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(statement(
            backend,
            FAIR_ORDER,
            vec![now().into(), i64::from(limit).into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(InLine {
                job_id: JobId(row.try_get("", "id")?),
                user_id: UserId(row.try_get("", "user_id")?),
                created_at: row.try_get::<DateTime<Utc>>("", "created_at")?,
                latest_dequeue: row.try_get("", "latest_dequeue")?,
                place: Place {
                    place_in_user_queue: row.try_get::<i64>("", "place_in_user_queue")? as u64,
                    place_in_global_queue: row.try_get::<i64>("", "place_in_global_queue")? as u64,
                },
            })
        })
        .collect()
}

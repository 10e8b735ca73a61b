//! The fair order by its definition, from the jobs alone: what [`dequeue`],
//! [`place_in_queue`] and [`next_in_line`] are tested against.
//!
//! [`dequeue`]: super::dequeue
//! [`place_in_queue`]: super::place_in_queue
//! [`next_in_line`]: super::next_in_line

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{InLine, Place};
use crate::error::Result;
use crate::handle::Recents;
use crate::ids::{JobId, UserId};
use crate::maintenance::count;
use crate::sql::{now, statement};
use crate::validate;

// Every eligible job ranked with window functions, each user's latest dequeue
// aggregated from all of its jobs: O(all jobs), like the seed's query before
// its last-dequeue table. A user's place within a round is its oldest
// eligible job's (see the module docs of `queue`).
fn fair_order(n: &Names) -> String {
    let j = &n.jobs;
    format!(
        "SELECT q.id, q.user_id, q.created_at, q.latest_dequeue, q.place_in_user_queue, \
             ROW_NUMBER() OVER (ORDER BY q.place_in_user_queue, q.latest_dequeue IS NOT NULL, \
                 q.latest_dequeue, q.head_created_at, q.head_id) AS place_in_global_queue \
         FROM (\
             SELECT j.{id} AS id, j.{user} AS user_id, j.{created} AS created_at, d.latest_dequeue, \
                 ROW_NUMBER() OVER (PARTITION BY j.{user} ORDER BY j.{created}, j.{id}) AS place_in_user_queue, \
                 FIRST_VALUE(j.{created}) OVER (PARTITION BY j.{user} ORDER BY j.{created}, j.{id}) AS head_created_at, \
                 FIRST_VALUE(j.{id}) OVER (PARTITION BY j.{user} ORDER BY j.{created}, j.{id}) AS head_id \
             FROM {table} j LEFT JOIN (\
                 SELECT {user} AS user_id, MAX({started}) AS latest_dequeue FROM {table} GROUP BY {user}\
             ) d ON d.user_id = j.{user} \
             WHERE j.{state} IN ('queued', 'errored') AND NOT j.{cancel} \
                 AND (j.{after} IS NULL OR j.{after} <= ?)\
         ) q \
         ORDER BY place_in_global_queue LIMIT ?",
        id = j.id,
        user = j.user_id,
        created = j.created_at,
        started = j.started_at,
        table = j.table,
        state = j.state,
        cancel = j.cancel,
        after = j.process_after,
    )
}

#[derive(FromQueryResult)]
struct Ranked {
    id: JobId,
    user_id: UserId,
    created_at: DateTime<Utc>,
    latest_dequeue: Option<DateTime<Utc>>,
    place_in_user_queue: i64,
    place_in_global_queue: i64,
}

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
    Recents::standard()
        .fair_order_from_history(conn, limit)
        .await
}

impl Recents {
    /// [`fair_order_from_history`] of the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`fair_order_from_history`].
    pub async fn fair_order_from_history<C: ConnectionTrait>(
        &self,
        conn: &C,
        limit: u32,
    ) -> Result<Vec<InLine>> {
        let limit = validate::limit(limit)?;
        let backend = conn.get_database_backend();
        let rows = conn
            .query_all_raw(statement(
                backend,
                &fair_order(self.schema().names(backend)),
                vec![now().into(), i64::from(limit).into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let row = Ranked::from_query_result(row, "")?;
                Ok(InLine {
                    job_id: row.id,
                    user_id: row.user_id,
                    created_at: row.created_at,
                    latest_dequeue: row.latest_dequeue,
                    place: Place {
                        place_in_user_queue: count(row.place_in_user_queue),
                        place_in_global_queue: count(row.place_in_global_queue),
                    },
                })
            })
            .collect()
    }
}

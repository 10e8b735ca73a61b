//! What the operator console shows of the queue.

use std::time::Duration;

use recents_entity::execution_job;
use sea_orm::{ConnectionTrait, EntityTrait};

use super::lifecycle::before;
use super::sql::JOB_COLUMNS;
use super::{Job, UserQueueStats};
use crate::error::Result;
use crate::ids::UserId;
use crate::sql::{now, statement};
use crate::validate;

// Through idx_execution_jobs_state: the finished states are never read but
// `failed`, which operators want to see.
const STATS: &str = "\
SELECT s.user_id, s.queued, s.errored, s.processing, s.failed, l.latest_dequeue \
FROM (\
    SELECT user_id, \
        COUNT(CASE WHEN state = 'queued' AND NOT cancel THEN 1 END) AS queued, \
        COUNT(CASE WHEN state = 'errored' AND NOT cancel THEN 1 END) AS errored, \
        COUNT(CASE WHEN state = 'processing' THEN 1 END) AS processing, \
        COUNT(CASE WHEN state = 'failed' THEN 1 END) AS failed \
    FROM execution_jobs WHERE state IN ('queued', 'errored', 'processing', 'failed') \
    GROUP BY user_id\
) s LEFT JOIN execution_last_dequeues l ON l.user_id = s.user_id \
ORDER BY s.user_id";

/// Per user with queued, errored, processing or failed jobs: the counts and
/// the latest dequeue, by user id.
///
/// # Errors
/// [`crate::Error::Database`].
pub async fn queue_stats<C: ConnectionTrait>(conn: &C) -> Result<Vec<UserQueueStats>> {
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(statement(backend, STATS, vec![]))
        .await?;
    let count = |row: &sea_orm::QueryResult, col: &str| -> Result<u64, sea_orm::DbErr> {
        Ok(row.try_get::<i64>("", col)?.max(0) as u64)
    };
    rows.iter()
        .map(|row| {
            Ok(UserQueueStats {
                user_id: UserId(row.try_get("", "user_id")?),
                queued: count(row, "queued")?,
                errored: count(row, "errored")?,
                processing: count(row, "processing")?,
                failed: count(row, "failed")?,
                latest_dequeue: row.try_get("", "latest_dequeue")?,
            })
        })
        .collect()
}

/// `processing` jobs whose heartbeat is older than `max_age`, stalest first:
/// what [`reset_stalled`](super::reset_stalled) would act on.
///
/// # Errors
/// [`crate::Error::InvalidLimit`] unless `1 <= limit <= 1000`;
/// [`crate::Error::InvalidArgument`] for a `max_age` too large;
/// [`crate::Error::Database`].
pub async fn stalled_jobs<C: ConnectionTrait>(
    conn: &C,
    max_age: Duration,
    limit: u32,
) -> Result<Vec<Job>> {
    let limit = validate::limit(limit)?;
    let cutoff = before(now(), max_age, "max_age")?;
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM execution_jobs WHERE state = 'processing' \
         AND (last_heartbeat_at IS NULL OR last_heartbeat_at < ?) \
         ORDER BY last_heartbeat_at, id LIMIT ?"
    );
    Ok(execution_job::Entity::find()
        .from_raw_sql(statement(
            backend,
            &sql,
            vec![cutoff.into(), i64::from(limit).into()],
        ))
        .all(conn)
        .await?)
}

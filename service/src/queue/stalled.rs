//! The `processing` jobs whose worker stopped heartbeating: what
//! [`reset_stalled`](super::reset_stalled) would act on, for an operator to
//! look at before it does.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::Job;
use super::lifecycle::before;
use crate::error::Result;
use crate::handle::Recents;
use crate::sql::{now, statement};
use crate::validate;

/// `processing` jobs whose heartbeat is older than `max_age`, stalest first
/// (a job that never beat, then by heartbeat, then by id, on every backend):
/// what [`reset_stalled`](super::reset_stalled) would act on. A `max_age`
/// that reaches back before year 1000 leaves only the jobs that never beat.
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
    Recents::standard().stalled_jobs(conn, max_age, limit).await
}

impl Recents {
    /// [`stalled_jobs`] of the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`stalled_jobs`].
    pub async fn stalled_jobs<C: ConnectionTrait>(
        &self,
        conn: &C,
        max_age: Duration,
        limit: u32,
    ) -> Result<Vec<Job>> {
        self.stalled_jobs_as_of(conn, now(), max_age, limit).await
    }

    /// [`stalled_jobs`] as if the time were `as_of`: what
    /// [`reset_stalled_as_of`](Self::reset_stalled_as_of) with the same
    /// time would act on.
    ///
    /// # Errors
    /// As [`stalled_jobs`].
    pub async fn stalled_jobs_as_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        as_of: DateTime<Utc>,
        max_age: Duration,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let limit = validate::limit(limit)?;
        let cutoff = before(as_of, max_age, "max_age")?;
        let backend = conn.get_database_backend();
        let j = &self.schema().names(backend).jobs;
        let sql = format!(
            "SELECT {columns} FROM {table} j WHERE j.{state} = 'processing' \
             AND (j.{beat} IS NULL OR j.{beat} < ?) \
             ORDER BY CASE WHEN j.{beat} IS NULL THEN 0 ELSE 1 END, j.{beat}, j.{id} LIMIT ?",
            columns = j.all_as_recents("j"),
            table = j.table,
            state = j.state,
            beat = j.last_heartbeat_at,
            id = j.id,
        );
        let rows = conn
            .query_all_raw(statement(
                backend,
                &sql,
                vec![cutoff.into(), i64::from(limit).into()],
            ))
            .await?;
        Ok(rows
            .iter()
            .map(|row| Job::from_query_result(row, ""))
            .collect::<Result<_, _>>()?)
    }
}

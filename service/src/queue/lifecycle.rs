//! A job's life after and besides [`dequeue`](super::dequeue): enqueue,
//! heartbeat, complete, fail, cancel, and the reset of stalled jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents_entity::execution_job::JobState;
use sea_orm::{
    ActiveEnum, ConnectionTrait, DbBackend, QueryResult, TransactionSession, TransactionTrait,
    Value,
};

use super::fair_order::worker_name;
use super::sql::list;
use super::{Heartbeat, NewJob, QueueOptions, ResetReport};
use crate::error::{Error, Result};
use crate::ids::JobId;
use crate::sql::{begin_write, for_update, now, statement};
use crate::validate;

/// Rows per multi-row INSERT: 4 values each, well under every backend's
/// limit on bound values.
const INSERT_CHUNK: usize = 1_000;

/// The longest failure message kept, in bytes.
pub const MAX_FAILURE_MESSAGE_BYTES: usize = 64 * 1024;

/// Enqueues one job; see [`enqueue_many`].
///
/// # Errors
/// As [`enqueue_many`].
pub async fn enqueue<C>(conn: &C, job: &NewJob) -> Result<JobId>
where
    C: ConnectionTrait + TransactionTrait,
{
    let ids = enqueue_many(conn, std::slice::from_ref(job)).await?;
    Ok(ids[0])
}

/// Enqueues jobs, `queued` with `created_at` now, in one multi-row INSERT
/// per thousand jobs, all in one transaction. Returns their ids in order.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `process_after` outside the years 1000 to
/// 9999 (before any statement is sent); [`Error::Database`].
pub async fn enqueue_many<C>(conn: &C, jobs: &[NewJob]) -> Result<Vec<JobId>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let process_after = jobs
        .iter()
        .map(|j| {
            j.process_after
                .map(|at| validate::timestamp("process_after", at))
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let backend = conn.get_database_backend();
    let created_at = now();
    let txn = begin_write(conn).await?;
    let mut ids = Vec::with_capacity(jobs.len());
    for (chunk, after) in jobs
        .chunks(INSERT_CHUNK)
        .zip(process_after.chunks(INSERT_CHUNK))
    {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (job, after) in chunk.iter().zip(after) {
            values.push(job.user_id.0.into());
            values.push(job.payload.clone().into());
            values.push(created_at.into());
            values.push((*after).into());
        }
        let rows = vec!["(?, 'queued', ?, ?, ?)"; chunk.len()].join(", ");
        let insert = format!(
            "INSERT INTO execution_jobs (user_id, state, payload, created_at, process_after) \
             VALUES {rows}"
        );
        match backend {
            DbBackend::MySql => {
                // InnoDB numbers the rows of one multi-row INSERT
                // consecutively under innodb_autoinc_lock_mode 0 and 1
                // (MariaDB's default); under 2 it may interleave, so insert
                // row by row there.
                if autoinc_interleaved(&txn).await? && chunk.len() > 1 {
                    for (job, after) in chunk.iter().zip(after) {
                        let result = txn
                            .execute_raw(statement(
                                backend,
                                "INSERT INTO execution_jobs (user_id, state, payload, created_at, process_after) \
                                 VALUES (?, 'queued', ?, ?, ?)",
                                vec![
                                    job.user_id.0.into(),
                                    job.payload.clone().into(),
                                    created_at.into(),
                                    (*after).into(),
                                ],
                            ))
                            .await?;
                        ids.push(JobId(result.last_insert_id() as i64));
                    }
                } else {
                    let result = txn.execute_raw(statement(backend, &insert, values)).await?;
                    let first = result.last_insert_id() as i64;
                    ids.extend((0..chunk.len() as i64).map(|i| JobId(first + i)));
                }
            }
            _ => {
                let rows = txn
                    .query_all_raw(statement(
                        backend,
                        &format!("{insert} RETURNING id"),
                        values,
                    ))
                    .await?;
                for row in rows {
                    ids.push(JobId(row.try_get("", "id")?));
                }
            }
        }
    }
    txn.commit().await?;
    Ok(ids)
}

async fn autoinc_interleaved<C: ConnectionTrait>(conn: &C) -> Result<bool> {
    let row = conn
        .query_one_raw(statement(
            DbBackend::MySql,
            "SELECT @@innodb_autoinc_lock_mode AS mode",
            vec![],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "mode").unwrap_or(2) == 2,
        None => true,
    })
}

/// Records that `worker` is still running `jobs`: `last_heartbeat_at` moves
/// to now for those still `processing` by it. Jobs missing from
/// [`Heartbeat::alive`] were reset or finished by someone else: the worker
/// should drop them; jobs in [`Heartbeat::canceled`] were canceled.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad worker name or more than 1,000 ids;
/// [`Error::Database`].
pub async fn heartbeat<C>(conn: &C, worker: &str, jobs: &[JobId]) -> Result<Heartbeat>
where
    C: ConnectionTrait + TransactionTrait,
{
    let worker = worker_name(worker)?;
    if jobs.len() > 1_000 {
        return Err(Error::InvalidArgument {
            what: "jobs",
            why: format!("{} ids; at most 1000 per heartbeat", jobs.len()),
        });
    }
    if jobs.is_empty() {
        return Ok(Heartbeat::default());
    }
    let backend = conn.get_database_backend();
    let now = now();
    let ids: Vec<Value> = jobs.iter().map(|j| j.0.into()).collect();
    let mine = format!(
        "id IN ({}) AND state = 'processing' AND worker_hostname = ?",
        list(jobs.len())
    );
    let txn = begin_write(conn).await?;
    let mut values = vec![now.into()];
    values.extend(ids.iter().cloned());
    values.push(worker.into());
    txn.execute_raw(statement(
        backend,
        &format!("UPDATE execution_jobs SET last_heartbeat_at = ? WHERE {mine}"),
        values,
    ))
    .await?;
    let mut values = ids;
    values.push(worker.into());
    let rows = txn
        .query_all_raw(statement(
            backend,
            &format!("SELECT id, cancel FROM execution_jobs WHERE {mine} ORDER BY id"),
            values,
        ))
        .await?;
    txn.commit().await?;
    let mut beat = Heartbeat::default();
    for row in rows {
        let id = JobId(row.try_get("", "id")?);
        beat.alive.push(id);
        if row.try_get::<bool>("", "cancel")? {
            beat.canceled.push(id);
        }
    }
    Ok(beat)
}

/// Locks one job's row for a state change and returns its state and
/// failure count.
async fn lock_job<C: ConnectionTrait>(conn: &C, job: JobId) -> Result<(JobState, i32)> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT state, num_failures FROM execution_jobs WHERE id = ?{}",
                for_update(backend)
            ),
            vec![job.0.into()],
        ))
        .await?
        .ok_or(Error::JobNotFound(job))?;
    Ok((state_of(&row)?, row.try_get("", "num_failures")?))
}

fn state_of(row: &QueryResult) -> Result<JobState> {
    let state: String = row.try_get("", "state")?;
    Ok(JobState::try_from_value(&state)?)
}

/// Marks a `processing` job `completed`.
///
/// # Errors
/// [`Error::JobNotFound`]; [`Error::JobNotProcessing`] (nothing changes);
/// [`Error::Database`].
pub async fn complete<C>(conn: &C, job: JobId) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let txn = begin_write(conn).await?;
    let (state, _) = lock_job(&txn, job).await?;
    if state != JobState::Processing {
        return Err(Error::JobNotProcessing { job, state });
    }
    txn.execute_raw(statement(
        backend,
        "UPDATE execution_jobs SET state = 'completed', finished_at = ? WHERE id = ?",
        vec![now().into(), job.0.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Records a failure of a `processing` job: `errored`, eligible again after
/// the backoff, until its `max_failures`-th failure makes it `failed`.
/// Returns the state it is left in.
///
/// # Errors
/// [`Error::InvalidArgument`] for a message over 64 KiB or holding NUL, or
/// `max_failures < 1`; [`Error::JobNotFound`]; [`Error::JobNotProcessing`];
/// [`Error::Database`].
pub async fn fail<C>(
    conn: &C,
    job: JobId,
    message: &str,
    options: &QueueOptions,
) -> Result<JobState>
where
    C: ConnectionTrait + TransactionTrait,
{
    let message = validate::text("message", message, MAX_FAILURE_MESSAGE_BYTES)?;
    if options.max_failures < 1 {
        return Err(Error::InvalidArgument {
            what: "max_failures",
            why: format!("{} is below 1", options.max_failures),
        });
    }
    let now = now();
    let retry_at = validate::timestamp("backoff", after(now, options.backoff, "backoff")?)?;
    let backend = conn.get_database_backend();
    let txn = begin_write(conn).await?;
    let (state, failures) = lock_job(&txn, job).await?;
    if state != JobState::Processing {
        return Err(Error::JobNotProcessing { job, state });
    }
    let failed = failures + 1 >= options.max_failures;
    let (next, process_after) = if failed {
        (JobState::Failed, None)
    } else {
        (JobState::Errored, Some(retry_at))
    };
    txn.execute_raw(statement(
        backend,
        "UPDATE execution_jobs SET state = ?, num_failures = num_failures + 1, \
         failure_message = ?, finished_at = ?, process_after = ? WHERE id = ?",
        vec![
            next.to_value().into(),
            message.into(),
            now.into(),
            process_after.into(),
            job.0.into(),
        ],
    ))
    .await?;
    txn.commit().await?;
    Ok(next)
}

/// Cancels a job. A waiting job becomes `canceled` at once; a `processing`
/// one keeps running with its `cancel` flag set, which its worker learns
/// from its next [`heartbeat`]. Returns the state it is left in.
///
/// # Errors
/// [`Error::JobNotFound`]; [`Error::JobFinished`] for a job already
/// completed, failed or canceled (nothing changes); [`Error::Database`].
pub async fn cancel<C>(conn: &C, job: JobId) -> Result<JobState>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let txn = begin_write(conn).await?;
    let (state, _) = lock_job(&txn, job).await?;
    let next = match state {
        JobState::Queued | JobState::Errored => {
            txn.execute_raw(statement(
                backend,
                "UPDATE execution_jobs SET state = 'canceled', cancel = ?, finished_at = ? WHERE id = ?",
                vec![true.into(), now().into(), job.0.into()],
            ))
            .await?;
            JobState::Canceled
        }
        JobState::Processing => {
            txn.execute_raw(statement(
                backend,
                "UPDATE execution_jobs SET cancel = ? WHERE id = ?",
                vec![true.into(), job.0.into()],
            ))
            .await?;
            JobState::Processing
        }
        JobState::Completed | JobState::Failed | JobState::Canceled => {
            return Err(Error::JobFinished { job, state });
        }
    };
    txn.commit().await?;
    Ok(next)
}

/// Returns `processing` jobs whose heartbeat is older than `max_age` (their
/// worker died) to the queue with `num_resets` + 1, at their old place; a job
/// already reset `max_resets` times becomes `failed` instead.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `max_age` too large or negative
/// `max_resets`; [`Error::Database`].
pub async fn reset_stalled<C>(conn: &C, max_age: Duration, max_resets: i32) -> Result<ResetReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    if max_resets < 0 {
        return Err(Error::InvalidArgument {
            what: "max_resets",
            why: format!("{max_resets} is negative"),
        });
    }
    let now = now();
    let cutoff = before(now, max_age, "max_age")?;
    let backend = conn.get_database_backend();
    let txn = begin_write(conn).await?;
    let rows = txn
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT id, num_resets FROM execution_jobs WHERE state = 'processing' \
                 AND (last_heartbeat_at IS NULL OR last_heartbeat_at < ?) ORDER BY id{}",
                for_update(backend)
            ),
            vec![cutoff.into()],
        ))
        .await?;
    let mut report = ResetReport::default();
    for row in rows {
        let id = JobId(row.try_get("", "id")?);
        if row.try_get::<i32>("", "num_resets")? >= max_resets {
            report.failed.push(id);
        } else {
            report.requeued.push(id);
        }
    }
    for chunk in report.requeued.chunks(INSERT_CHUNK) {
        let mut values: Vec<Value> = chunk.iter().map(|j| j.0.into()).collect();
        values.insert(0, Value::from(None::<DateTime<Utc>>));
        txn.execute_raw(statement(
            backend,
            &format!(
                "UPDATE execution_jobs SET state = 'queued', num_resets = num_resets + 1, \
                 last_heartbeat_at = ?, worker_hostname = NULL WHERE id IN ({})",
                list(chunk.len())
            ),
            values,
        ))
        .await?;
    }
    for chunk in report.failed.chunks(INSERT_CHUNK) {
        let mut values: Vec<Value> = vec![now.into()];
        values.extend(chunk.iter().map(|j| Value::from(j.0)));
        txn.execute_raw(statement(
            backend,
            &format!(
                "UPDATE execution_jobs SET state = 'failed', finished_at = ?, \
                 failure_message = 'stalled: no heartbeat, reset too many times' \
                 WHERE id IN ({})",
                list(chunk.len())
            ),
            values,
        ))
        .await?;
    }
    txn.commit().await?;
    if !report.requeued.is_empty() || !report.failed.is_empty() {
        tracing::info!(
            requeued = report.requeued.len(),
            failed = report.failed.len(),
            "reset stalled jobs"
        );
    }
    Ok(report)
}

fn span(d: Duration, what: &'static str) -> Result<chrono::Duration> {
    chrono::Duration::from_std(d).map_err(|_| Error::InvalidArgument {
        what,
        why: format!("{d:?} is too large"),
    })
}

pub(super) fn after(now: DateTime<Utc>, d: Duration, what: &'static str) -> Result<DateTime<Utc>> {
    now.checked_add_signed(span(d, what)?)
        .ok_or_else(|| Error::InvalidArgument {
            what,
            why: format!("{d:?} is too large"),
        })
}

pub(super) fn before(now: DateTime<Utc>, d: Duration, what: &'static str) -> Result<DateTime<Utc>> {
    let at = now
        .checked_sub_signed(span(d, what)?)
        .ok_or_else(|| Error::InvalidArgument {
            what,
            why: format!("{d:?} is too large"),
        })?;
    validate::timestamp(what, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_beyond_the_calendar_are_refused() {
        let now = now();
        assert!(after(now, Duration::from_secs(u64::MAX), "backoff").is_err());
        assert!(before(now, Duration::from_secs(1 << 40), "max_age").is_err());
        assert!(before(now, Duration::from_secs(60), "max_age").is_ok());
    }
}

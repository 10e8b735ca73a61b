//! A job's life after and besides [`dequeue`](super::dequeue): enqueue,
//! heartbeat, complete, fail, cancel, and the reset of stalled jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents_entity::execution_job::JobState;
use sea_orm::{ActiveEnum, ConnectionTrait, DbBackend, QueryResult, TransactionTrait, Value};

use super::fair_order::worker_name;
use super::sql::list;
use super::{Heartbeat, Job, NewJob, QueueOptions, ResetReport};
use crate::error::{Error, Result};
use crate::ids::JobId;
use crate::sql::{begin_write, finish, for_update, now, statement};
use crate::validate;

/// Rows per multi-row INSERT: 4 values each, well under every backend's
/// limit on bound values.
const INSERT_CHUNK: usize = 1_000;

/// The longest failure message kept, in bytes: what MySQL/MariaDB's `TEXT`
/// column holds (65,535 bytes), the smallest of the three backends.
pub const MAX_FAILURE_MESSAGE_BYTES: usize = 65_535;

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

/// Enqueues jobs, `queued` with `created_at` now, in multi-row INSERTs of at
/// most a thousand jobs and at most what one statement may carry (on
/// MySQL/MariaDB the server's `max_allowed_packet`), all in one transaction.
/// Returns their ids in order.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `process_after` outside the years 1000 to
/// 9999, or a payload larger than one statement may carry (before any row is
/// written); [`Error::Database`].
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
    let sizes: Vec<usize> = jobs
        .iter()
        .map(|j| j.payload.to_string().len() + ROW_OVERHEAD_BYTES)
        .collect();
    let limits = server_limits(conn, &sizes).await?;
    let budget = limits.statement_bytes;
    if let Some(largest) = sizes.iter().max()
        && *largest > budget
    {
        return Err(Error::InvalidArgument {
            what: "payload",
            why: format!(
                "{} bytes; one statement carries at most {budget} (the server's max_allowed_packet)",
                largest - ROW_OVERHEAD_BYTES
            ),
        });
    }
    let created_at = now();
    let txn = begin_write(conn).await?;
    let done: Result<Vec<JobId>> = async {
        let mut ids = Vec::with_capacity(jobs.len());
        let mut start = 0;
        while start < jobs.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < jobs.len() && end - start < INSERT_CHUNK && bytes + sizes[end] <= budget {
                bytes += sizes[end];
                end += 1;
            }
            insert_jobs(
                &txn,
                &jobs[start..end],
                &process_after[start..end],
                created_at,
                limits.consecutive_ids,
                &mut ids,
            )
            .await?;
            start = end;
        }
        Ok(ids)
    }
    .await;
    finish(txn, done).await
}

/// What a row adds to a multi-row INSERT besides its payload: the user id,
/// two times and the parameters' headers, generously.
const ROW_OVERHEAD_BYTES: usize = 128;

/// What the server allows a multi-row INSERT of jobs.
struct Limits {
    /// Bytes of rows one statement may carry: on MySQL/MariaDB the server's
    /// `max_allowed_packet` less room for the statement itself; PostgreSQL
    /// and SQLite take far more than a thousand rows of any payload their
    /// JSON columns hold, so 64 MiB only keeps statements reasonable.
    statement_bytes: usize,
    /// Whether one multi-row INSERT numbers its rows consecutively, so their
    /// ids follow from the first (MySQL/MariaDB under
    /// `innodb_autoinc_lock_mode` 0 and 1, MariaDB's default; RETURNING
    /// answers elsewhere).
    consecutive_ids: bool,
}

/// The server's limits, read in one round trip on MySQL/MariaDB, and only
/// when they can matter: a single job of up to 64 KiB fits every server's
/// packet as configured in practice (the default is 16 MiB) and needs no ids
/// numbered, so the common enqueue of one job pays no extra statement.
async fn server_limits<C: ConnectionTrait>(conn: &C, sizes: &[usize]) -> Result<Limits> {
    const ELSEWHERE: usize = 64 << 20;
    let elsewhere = Limits {
        statement_bytes: ELSEWHERE,
        consecutive_ids: true,
    };
    let small_single = sizes.len() == 1 && sizes[0] <= 64 << 10;
    if conn.get_database_backend() != DbBackend::MySql || small_single {
        return Ok(elsewhere);
    }
    let row = conn
        .query_one_raw(statement(
            DbBackend::MySql,
            "SELECT CAST(@@max_allowed_packet AS SIGNED) AS packet, \
             CAST(@@innodb_autoinc_lock_mode AS SIGNED) AS autoinc_mode",
            vec![],
        ))
        .await?;
    let (packet, mode) = match row {
        Some(row) => (
            row.try_get::<i64>("", "packet")?,
            row.try_get::<i64>("", "autoinc_mode")?,
        ),
        None => (4 << 20, 2),
    };
    Ok(Limits {
        statement_bytes: usize::try_from(packet)
            .unwrap_or(usize::MAX)
            .saturating_sub(16 << 10),
        consecutive_ids: mode != 2,
    })
}

/// One multi-row INSERT of `jobs`, their ids appended to `ids` in order.
async fn insert_jobs<C: ConnectionTrait>(
    txn: &C,
    jobs: &[NewJob],
    process_after: &[Option<DateTime<Utc>>],
    created_at: DateTime<Utc>,
    consecutive_ids: bool,
    ids: &mut Vec<JobId>,
) -> Result<()> {
    let backend = txn.get_database_backend();
    let row_values = |job: &NewJob, after: &Option<DateTime<Utc>>| -> [Value; 4] {
        [
            job.user_id.0.into(),
            job.payload.clone().into(),
            created_at.into(),
            (*after).into(),
        ]
    };
    let insert = |n: usize| {
        format!(
            "INSERT INTO execution_jobs (user_id, state, payload, created_at, process_after) \
             VALUES {}",
            vec!["(?, 'queued', ?, ?, ?)"; n].join(", ")
        )
    };
    let values = |jobs: &[NewJob], after: &[Option<DateTime<Utc>>]| -> Vec<Value> {
        jobs.iter()
            .zip(after)
            .flat_map(|(j, a)| row_values(j, a))
            .collect()
    };
    match backend {
        DbBackend::MySql => {
            // Under innodb_autoinc_lock_mode 2 the rows of one INSERT may
            // interleave with another's: insert row by row there.
            if jobs.len() > 1 && !consecutive_ids {
                for (job, after) in jobs.iter().zip(process_after) {
                    let result = txn
                        .execute_raw(statement(
                            backend,
                            &insert(1),
                            row_values(job, after).into(),
                        ))
                        .await?;
                    ids.push(JobId(result.last_insert_id() as i64));
                }
            } else {
                let result = txn
                    .execute_raw(statement(
                        backend,
                        &insert(jobs.len()),
                        values(jobs, process_after),
                    ))
                    .await?;
                let first = result.last_insert_id() as i64;
                ids.extend((0..jobs.len() as i64).map(|i| JobId(first + i)));
            }
        }
        _ => {
            let rows = txn
                .query_all_raw(statement(
                    backend,
                    &format!("{} RETURNING id", insert(jobs.len())),
                    values(jobs, process_after),
                ))
                .await?;
            for row in rows {
                ids.push(JobId(row.try_get("", "id")?));
            }
        }
    }
    Ok(())
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
    let done: Result<Vec<QueryResult>> = async {
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
        Ok(txn
            .query_all_raw(statement(
                backend,
                &format!("SELECT id, cancel FROM execution_jobs WHERE {mine} ORDER BY id"),
                values,
            ))
            .await?)
    }
    .await;
    let rows = finish(txn, done).await?;
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

/// A job's row as a state change sees it, under its lock.
struct Locked {
    state: JobState,
    num_failures: i32,
    num_resets: i32,
    worker: Option<String>,
}

impl Locked {
    /// Refuses a result from a worker that no longer holds this claim of the
    /// job: it was reset (and maybe handed out again, even to a worker of the
    /// same name: then its attempt differs) or finished by someone else.
    fn held_by(&self, claim: &Job) -> Result<()> {
        let job = JobId(claim.id);
        if self.state != JobState::Processing {
            return Err(Error::JobNotProcessing {
                job,
                state: self.state,
            });
        }
        let same_claim = self.worker.is_some()
            && self.worker == claim.worker_hostname
            && self.num_resets == claim.num_resets
            && self.num_failures == claim.num_failures;
        if !same_claim {
            return Err(Error::JobNotHeld {
                job,
                worker: claim.worker_hostname.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }
}

/// Locks one job's row for a state change.
async fn lock_job<C: ConnectionTrait>(conn: &C, job: JobId) -> Result<Locked> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT state, num_failures, num_resets, worker_hostname FROM execution_jobs WHERE id = ?{}",
                for_update(backend)
            ),
            vec![job.0.into()],
        ))
        .await?
        .ok_or(Error::JobNotFound(job))?;
    Ok(Locked {
        state: state_of(&row)?,
        num_failures: row.try_get("", "num_failures")?,
        num_resets: row.try_get("", "num_resets")?,
        worker: row.try_get("", "worker_hostname")?,
    })
}

fn state_of(row: &QueryResult) -> Result<JobState> {
    let state: String = row.try_get("", "state")?;
    Ok(JobState::try_from_value(&state)?)
}

/// Marks a job `completed`, for the worker that holds it: `job` is the job
/// as [`dequeue`](super::dequeue) handed it out.
///
/// # Errors
/// [`Error::JobNotFound`]; [`Error::JobNotProcessing`]; [`Error::JobNotHeld`]
/// when the job was reset and handed out again (to any worker, this one's
/// name included) since this claim: the result belongs to that claim, and
/// nothing changes; [`Error::Database`].
pub async fn complete<C>(conn: &C, job: &Job) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let txn = begin_write(conn).await?;
    let done: Result<()> = async {
        lock_job(&txn, JobId(job.id)).await?.held_by(job)?;
        txn.execute_raw(statement(
            backend,
            "UPDATE execution_jobs SET state = 'completed', finished_at = ? WHERE id = ?",
            vec![now().into(), job.id.into()],
        ))
        .await?;
        Ok(())
    }
    .await;
    finish(txn, done).await
}

/// Records a failure of a job, for the worker that holds it (`job` as
/// [`dequeue`](super::dequeue) handed it out): `errored`, eligible again after
/// the backoff, until its `max_failures`-th failure makes it `failed`.
/// Returns the state it is left in.
///
/// # Errors
/// [`Error::InvalidArgument`] for a message over [`MAX_FAILURE_MESSAGE_BYTES`]
/// or holding NUL, or `max_failures < 1`; [`Error::JobNotFound`];
/// [`Error::JobNotProcessing`]; [`Error::JobNotHeld`] (see [`complete`]);
/// [`Error::Database`].
pub async fn fail<C>(conn: &C, job: &Job, message: &str, options: &QueueOptions) -> Result<JobState>
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
    let done: Result<JobState> = async {
        let locked = lock_job(&txn, JobId(job.id)).await?;
        locked.held_by(job)?;
        let failed = locked.num_failures.saturating_add(1) >= options.max_failures;
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
                job.id.into(),
            ],
        ))
        .await?;
        Ok(next)
    }
    .await;
    finish(txn, done).await
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
    let done: Result<JobState> = async {
        let state = lock_job(&txn, job).await?.state;
        Ok(match state {
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
        })
    }
    .await;
    finish(txn, done).await
}

/// Returns `processing` jobs whose heartbeat is older than `max_age` (their
/// worker died) to the queue with `num_resets` + 1, at their old place; a job
/// already reset `max_resets` times becomes `failed` instead, and one
/// canceled while it ran becomes `canceled`.
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
    let done: Result<ResetReport> = async {
        let rows = txn
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT id, num_resets, cancel FROM execution_jobs WHERE state = 'processing' \
                     AND (last_heartbeat_at IS NULL OR last_heartbeat_at < ?) ORDER BY id{}",
                    for_update(backend)
                ),
                vec![cutoff.into()],
            ))
            .await?;
        let mut report = ResetReport::default();
        for row in rows {
            let id = JobId(row.try_get("", "id")?);
            if row.try_get::<bool>("", "cancel")? {
                // Canceled while it ran: its worker is gone, and so is the
                // reason to run it again.
                report.canceled.push(id);
            } else if row.try_get::<i32>("", "num_resets")? >= max_resets {
                report.failed.push(id);
            } else {
                report.requeued.push(id);
            }
        }
        let ends = [
            (
                &report.requeued,
                "state = 'queued', num_resets = num_resets + 1, last_heartbeat_at = NULL, \
                 worker_hostname = NULL",
                false,
            ),
            (
                &report.failed,
                "state = 'failed', finished_at = ?, \
                 failure_message = 'stalled: no heartbeat, reset too many times'",
                true,
            ),
            (
                &report.canceled,
                "state = 'canceled', finished_at = ?, worker_hostname = NULL",
                true,
            ),
        ];
        for (jobs, set, at_now) in ends {
            for chunk in jobs.chunks(INSERT_CHUNK) {
                let mut values: Vec<Value> = Vec::with_capacity(chunk.len() + 1);
                if at_now {
                    values.push(now.into());
                }
                values.extend(chunk.iter().map(|j| Value::from(j.0)));
                txn.execute_raw(statement(
                    backend,
                    &format!(
                        "UPDATE execution_jobs SET {set} WHERE id IN ({})",
                        list(chunk.len())
                    ),
                    values,
                ))
                .await?;
            }
        }
        Ok(report)
    }
    .await;
    let report = finish(txn, done).await?;
    if !report.requeued.is_empty() || !report.failed.is_empty() || !report.canceled.is_empty() {
        tracing::info!(
            requeued = report.requeued.len(),
            failed = report.failed.len(),
            canceled = report.canceled.len(),
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

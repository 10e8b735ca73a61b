//! A job's life after and besides [`dequeue`](super::dequeue): enqueue,
//! heartbeat, complete, fail, cancel, and the reset of stalled jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents_entity::execution_job::JobState;
use recents_schema::{JobsSql, Names};
use sea_orm::{
    ActiveEnum, ConnectionTrait, DbBackend, FromQueryResult, QueryResult, TransactionTrait, Value,
};

use super::fair_order::worker_name;
use super::sql::list;
use super::{Heartbeat, Job, NewJob, QueueOptions, ResetReport};
use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::JobId;
use crate::sql::{begin_write, finish, for_update, is_own_connection, now, statement};
use crate::validate;

/// Rows per multi-row INSERT: 4 values each, well under every backend's
/// limit on bound values.
const INSERT_CHUNK: usize = 1_000;

/// The longest failure message kept, in bytes: what MySQL/MariaDB's `TEXT`
/// column holds (65,535 bytes), the smallest of the three backends.
pub const MAX_FAILURE_MESSAGE_BYTES: usize = 65_535;

async fn enqueue_in<C>(conn: &C, n: &Names, job: &NewJob) -> Result<JobId>
where
    C: ConnectionTrait + TransactionTrait,
{
    let ids = enqueue_many_in(conn, n, std::slice::from_ref(job)).await?;
    Ok(ids[0])
}

async fn enqueue_many_in<C>(conn: &C, n: &Names, jobs: &[NewJob]) -> Result<Vec<JobId>>
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
                n,
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

/// Enqueues one job; see [`enqueue_many`].
///
/// # Errors
/// As [`enqueue_many`].
pub async fn enqueue<C>(conn: &C, job: &NewJob) -> Result<JobId>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard().enqueue(conn, job).await
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
    Recents::standard().enqueue_many(conn, jobs).await
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
    Recents::standard().heartbeat(conn, worker, jobs).await
}

/// Marks a job `completed`, for the worker that holds it: `job` is the job
/// as [`dequeue`](super::dequeue) handed it out. On `conn`, a pool's
/// connection, one statement whose condition is the claim; only when it
/// matches nothing is the job read to say why.
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
    Recents::standard().complete(conn, job).await
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
    Recents::standard().fail(conn, job, message, options).await
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
    Recents::standard().cancel(conn, job).await
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
    Recents::standard()
        .reset_stalled(conn, max_age, max_resets)
        .await
}

impl Recents {
    /// [`enqueue`] on the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`enqueue`].
    pub async fn enqueue<C>(&self, conn: &C, job: &NewJob) -> Result<JobId>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        enqueue_in(conn, self.schema().names(conn.get_database_backend()), job).await
    }

    /// [`enqueue_many`] on the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`enqueue_many`].
    pub async fn enqueue_many<C>(&self, conn: &C, jobs: &[NewJob]) -> Result<Vec<JobId>>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        enqueue_many_in(conn, self.schema().names(conn.get_database_backend()), jobs).await
    }

    /// [`heartbeat`] on the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`heartbeat`].
    pub async fn heartbeat<C>(&self, conn: &C, worker: &str, jobs: &[JobId]) -> Result<Heartbeat>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        heartbeat_in(
            conn,
            self.schema().names(conn.get_database_backend()),
            worker,
            jobs,
        )
        .await
    }

    /// [`complete`] on the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`complete`].
    pub async fn complete<C>(&self, conn: &C, job: &Job) -> Result<()>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        complete_in(conn, self.schema().names(conn.get_database_backend()), job).await
    }

    /// [`fail`] on the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`fail`].
    pub async fn fail<C>(
        &self,
        conn: &C,
        job: &Job,
        message: &str,
        options: &QueueOptions,
    ) -> Result<JobState>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        fail_in(
            conn,
            self.schema().names(conn.get_database_backend()),
            job,
            message,
            options,
        )
        .await
    }

    /// [`cancel`] on the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`cancel`].
    pub async fn cancel<C>(&self, conn: &C, job: JobId) -> Result<JobState>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        cancel_in(conn, self.schema().names(conn.get_database_backend()), job).await
    }

    /// [`reset_stalled`] on the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`reset_stalled`].
    pub async fn reset_stalled<C>(
        &self,
        conn: &C,
        max_age: Duration,
        max_resets: i32,
    ) -> Result<ResetReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        self.reset_stalled_as_of(conn, now(), max_age, max_resets)
            .await
    }

    /// [`reset_stalled`] as if the time were `as_of`: heartbeats older than
    /// `as_of - max_age` count as stalled, and the jobs it ends are stamped
    /// `as_of`. For a tool that reads and acts on one pinned clock (the
    /// console's snapshot tests); a fleet calls [`reset_stalled`], which
    /// passes the current time. A pinned time later than the real one
    /// resets live jobs.
    ///
    /// # Errors
    /// As [`reset_stalled`], and [`Error::InvalidArgument`] for an `as_of`
    /// outside the years every backend stores.
    pub async fn reset_stalled_as_of<C>(
        &self,
        conn: &C,
        as_of: DateTime<Utc>,
        max_age: Duration,
        max_resets: i32,
    ) -> Result<ResetReport>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        reset_stalled_in(
            conn,
            self.schema().names(conn.get_database_backend()),
            validate::timestamp("as_of", as_of)?,
            max_age,
            max_resets,
        )
        .await
    }
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
        Some(row) => {
            let limits = ServerLimits::from_query_result(&row, "")?;
            (limits.packet, limits.autoinc_mode)
        }
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
    n: &Names,
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
    let j = &n.jobs;
    let insert = |rows: usize| {
        format!(
            "INSERT INTO {table} ({user}, {state}, {payload}, {created}, {after}) VALUES {}",
            vec!["(?, 'queued', ?, ?, ?)"; rows].join(", "),
            table = j.table,
            user = j.user_id,
            state = j.state,
            payload = j.payload,
            created = j.created_at,
            after = j.process_after,
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
                    &format!("{} RETURNING {} AS id", insert(jobs.len()), j.id),
                    values(jobs, process_after),
                ))
                .await?;
            for row in rows {
                ids.push(NewId::from_query_result(&row, "")?.id);
            }
        }
    }
    Ok(())
}

async fn heartbeat_in<C>(conn: &C, n: &Names, worker: &str, jobs: &[JobId]) -> Result<Heartbeat>
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
    let j = &n.jobs;
    let mine = format!(
        "{id} IN ({}) AND {state} = 'processing' AND {worker} = ?",
        list(jobs.len()),
        id = j.id,
        state = j.state,
        worker = j.worker_hostname,
    );
    // The update's values: the time, then the condition's (ids, worker).
    let mut values = vec![now.into()];
    values.extend(jobs.iter().map(|j| Value::from(j.0)));
    values.push(worker.into());
    let update = format!(
        "UPDATE {} SET {} = ? WHERE {mine}",
        j.table, j.last_heartbeat_at
    );
    // On the caller's own connection, where the backend returns what an
    // UPDATE changed, one autocommitted statement; MySQL/MariaDB read the
    // jobs back in the same transaction instead.
    let rows = if is_own_connection::<C>() && backend != DbBackend::MySql {
        let mut rows = conn
            .query_all_raw(statement(
                backend,
                &format!(
                    "{update} RETURNING {id} AS id, {cancel} AS cancel",
                    id = j.id,
                    cancel = j.cancel,
                ),
                values,
            ))
            .await?
            .iter()
            .map(|row| Alive::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(|row| row.id);
        rows
    } else {
        heartbeat_in_transaction(conn, j, &update, &mine, values).await?
    };
    let mut beat = Heartbeat::default();
    for row in rows {
        beat.alive.push(row.id);
        if row.cancel {
            beat.canceled.push(row.id);
        }
    }
    Ok(beat)
}

/// The heartbeat's `update` (its `values`), then a read of the jobs it
/// reached (`mine`, with the same values but the time), in one transaction
/// (a savepoint in the caller's).
async fn heartbeat_in_transaction<C>(
    conn: &C,
    j: &JobsSql,
    update: &str,
    mine: &str,
    values: Vec<Value>,
) -> Result<Vec<Alive>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let condition = values[1..].to_vec();
    let txn = begin_write(conn).await?;
    let done: Result<Vec<QueryResult>> = async {
        txn.execute_raw(statement(backend, update, values)).await?;
        Ok(txn
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT {id} AS id, {cancel} AS cancel FROM {table} WHERE {mine} ORDER BY {id}",
                    id = j.id,
                    cancel = j.cancel,
                    table = j.table,
                ),
                condition,
            ))
            .await?)
    }
    .await;
    Ok(finish(txn, done)
        .await?
        .iter()
        .map(|row| Alive::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?)
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
async fn lock_job<C: ConnectionTrait>(conn: &C, n: &Names, job: JobId) -> Result<Locked> {
    let j = &n.jobs;
    let row = conn
        .query_one_raw(statement(
            n.backend,
            &format!(
                "SELECT {state} AS state, {failures} AS num_failures, {resets} AS num_resets, \
                 {worker} AS worker_hostname FROM {table} WHERE {id} = ?{lock}",
                state = j.state,
                failures = j.num_failures,
                resets = j.num_resets,
                worker = j.worker_hostname,
                table = j.table,
                id = j.id,
                lock = for_update(n.backend),
            ),
            vec![job.0.into()],
        ))
        .await?
        .ok_or(Error::JobNotFound(job))?;
    let row = LockedRow::from_query_result(&row, "")?;
    Ok(Locked {
        state: JobState::try_from_value(&row.state)?,
        num_failures: row.num_failures,
        num_resets: row.num_resets,
        worker: row.worker_hostname,
    })
}

#[derive(FromQueryResult)]
struct LockedRow {
    state: String,
    num_failures: i32,
    num_resets: i32,
    worker_hostname: Option<String>,
}

#[derive(FromQueryResult)]
struct NewId {
    id: JobId,
}

#[derive(FromQueryResult)]
struct ServerLimits {
    packet: i64,
    autoinc_mode: i64,
}

#[derive(FromQueryResult)]
struct Alive {
    id: JobId,
    cancel: bool,
}

#[derive(FromQueryResult)]
struct Stalled {
    id: JobId,
    num_resets: i32,
    cancel: bool,
}

async fn complete_in<C>(conn: &C, n: &Names, job: &Job) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let j = &n.jobs;
    // On the caller's own connection, one autocommitted statement whose
    // condition is the claim (re-read under the row's lock, as the locked
    // read below does): a result from a worker that lost its claim changes
    // nothing. Only when it matches no row is the job read, in the
    // transaction below, to say why.
    if is_own_connection::<C>() {
        let completed = conn
            .execute_raw(statement(
                backend,
                &format!(
                    "UPDATE {table} SET {state} = 'completed', {finished} = ? \
                     WHERE {id} = ? AND {state} = 'processing' AND {worker} = ? \
                     AND {resets} = ? AND {failures} = ?",
                    table = j.table,
                    state = j.state,
                    finished = j.finished_at,
                    id = j.id,
                    worker = j.worker_hostname,
                    resets = j.num_resets,
                    failures = j.num_failures,
                ),
                vec![
                    now().into(),
                    job.id.into(),
                    job.worker_hostname.clone().into(),
                    job.num_resets.into(),
                    job.num_failures.into(),
                ],
            ))
            .await?;
        if completed.rows_affected() == 1 {
            return Ok(());
        }
    }
    let txn = begin_write(conn).await?;
    let done: Result<()> = async {
        lock_job(&txn, n, JobId(job.id)).await?.held_by(job)?;
        txn.execute_raw(statement(
            backend,
            &format!(
                "UPDATE {} SET {} = 'completed', {} = ? WHERE {} = ?",
                j.table, j.state, j.finished_at, j.id
            ),
            vec![now().into(), job.id.into()],
        ))
        .await?;
        Ok(())
    }
    .await;
    finish(txn, done).await
}

async fn fail_in<C>(
    conn: &C,
    n: &Names,
    job: &Job,
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
    let done: Result<JobState> = async {
        let locked = lock_job(&txn, n, JobId(job.id)).await?;
        locked.held_by(job)?;
        let failed = locked.num_failures.saturating_add(1) >= options.max_failures;
        let (next, process_after) = if failed {
            (JobState::Failed, None)
        } else {
            (JobState::Errored, Some(retry_at))
        };
        let j = &n.jobs;
        txn.execute_raw(statement(
            backend,
            &format!(
                "UPDATE {table} SET {state} = ?, {failures} = {failures} + 1, \
                 {message} = ?, {finished} = ?, {after} = ? WHERE {id} = ?",
                table = j.table,
                state = j.state,
                failures = j.num_failures,
                message = j.failure_message,
                finished = j.finished_at,
                after = j.process_after,
                id = j.id,
            ),
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

async fn cancel_in<C>(conn: &C, n: &Names, job: JobId) -> Result<JobState>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = conn.get_database_backend();
    let txn = begin_write(conn).await?;
    let done: Result<JobState> = async {
        let state = lock_job(&txn, n, job).await?.state;
        let j = &n.jobs;
        Ok(match state {
            JobState::Queued | JobState::Errored => {
                txn.execute_raw(statement(
                    backend,
                    &format!(
                        "UPDATE {} SET {} = 'canceled', {} = ?, {} = ? WHERE {} = ?",
                        j.table, j.state, j.cancel, j.finished_at, j.id
                    ),
                    vec![true.into(), now().into(), job.0.into()],
                ))
                .await?;
                JobState::Canceled
            }
            JobState::Processing => {
                txn.execute_raw(statement(
                    backend,
                    &format!("UPDATE {} SET {} = ? WHERE {} = ?", j.table, j.cancel, j.id),
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

async fn reset_stalled_in<C>(
    conn: &C,
    n: &Names,
    now: DateTime<Utc>,
    max_age: Duration,
    max_resets: i32,
) -> Result<ResetReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    if max_resets < 0 {
        return Err(Error::InvalidArgument {
            what: "max_resets",
            why: format!("{max_resets} is negative"),
        });
    }
    let cutoff = before(now, max_age, "max_age")?;
    let backend = conn.get_database_backend();
    let txn = begin_write(conn).await?;
    let done: Result<ResetReport> = async {
        let j = &n.jobs;
        let stalled = format!(
            "{state} = 'processing' AND ({beat} IS NULL OR {beat} < ?)",
            state = j.state,
            beat = j.last_heartbeat_at,
        );
        // The stalled jobs are found by a plain read, then locked by id: a
        // locking read of the condition itself is planned on MySQL/MariaDB
        // as a walk of the primary key, which under REPEATABLE READ locks
        // every row it passes, waiting jobs included, and a claim running
        // meanwhile would skip those users' heads.
        let candidates = txn
            .query_all_raw(statement(
                backend,
                &format!("SELECT {id} AS id FROM {table} WHERE {stalled}", id = j.id, table = j.table),
                vec![cutoff.into()],
            ))
            .await?
            .iter()
            .map(|row| Ok(NewId::from_query_result(row, "")?.id))
            .collect::<Result<Vec<JobId>>>()?;
        let mut rows = Vec::new();
        for chunk in candidates.chunks(INSERT_CHUNK) {
            let mut values: Vec<Value> = chunk.iter().map(|id| Value::from(id.0)).collect();
            values.push(cutoff.into());
            rows.extend(
                txn.query_all_raw(statement(
                    backend,
                    &format!(
                        "SELECT {id} AS id, {resets} AS num_resets, {cancel} AS cancel FROM {table} \
                         WHERE {id} IN ({list}) AND {stalled} ORDER BY {id}{lock}",
                        id = j.id,
                        resets = j.num_resets,
                        cancel = j.cancel,
                        table = j.table,
                        list = list(chunk.len()),
                        lock = for_update(backend),
                    ),
                    values,
                ))
                .await?,
            );
        }
        let mut report = ResetReport::default();
        for row in rows {
            let row = Stalled::from_query_result(&row, "")?;
            let id = row.id;
            if row.cancel {
                // Canceled while it ran: its worker is gone, and so is the
                // reason to run it again.
                report.canceled.push(id);
            } else if row.num_resets >= max_resets {
                report.failed.push(id);
            } else {
                report.requeued.push(id);
            }
        }
        let ends = [
            (
                &report.requeued,
                format!(
                    "{state} = 'queued', {resets} = {resets} + 1, {beat} = NULL, {worker} = NULL",
                    state = j.state,
                    resets = j.num_resets,
                    beat = j.last_heartbeat_at,
                    worker = j.worker_hostname,
                ),
                false,
            ),
            (
                &report.failed,
                format!(
                    "{state} = 'failed', {finished} = ?, \
                     {message} = 'stalled: no heartbeat, reset too many times'",
                    state = j.state,
                    finished = j.finished_at,
                    message = j.failure_message,
                ),
                true,
            ),
            (
                &report.canceled,
                format!(
                    "{state} = 'canceled', {finished} = ?, {worker} = NULL",
                    state = j.state,
                    finished = j.finished_at,
                    worker = j.worker_hostname,
                ),
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
                        "UPDATE {} SET {set} WHERE {} IN ({})",
                        j.table,
                        j.id,
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
    Ok(since(now, d, what)?.at)
}

/// The start of a window of `d` that ends at `now`, as a bound on stored
/// times: [`Since::at`] is clamped to the earliest time recents stores, and
/// [`Since::clamped`] says the window began before it, so a condition can
/// still hold every stored time in it (`t < at` means the same, and
/// `t > start` becomes `t >= at`). Only a `d` beyond chrono's calendar is
/// an error: a window may reach back before year 1000 from an `as_of` near
/// it.
pub(super) fn since(now: DateTime<Utc>, d: Duration, what: &'static str) -> Result<Since> {
    let earliest = validate::earliest();
    let start = now
        .checked_sub_signed(span(d, what)?)
        .ok_or_else(|| Error::InvalidArgument {
            what,
            why: format!("{d:?} is too large"),
        })?;
    Ok(if start < earliest {
        Since {
            at: earliest,
            clamped: true,
        }
    } else {
        Since {
            at: validate::timestamp(what, start)?,
            clamped: false,
        }
    })
}

/// See [`since`].
pub(super) struct Since {
    pub(super) at: DateTime<Utc>,
    pub(super) clamped: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_beyond_the_calendar_are_refused() {
        let now = now();
        assert!(after(now, Duration::from_secs(u64::MAX), "backoff").is_err());
        assert!(before(now, Duration::from_secs(u64::MAX / 4), "max_age").is_err());
        assert!(before(now, Duration::from_secs(60), "max_age").is_ok());
        // Before year 1000: clamped to it, no stored time is older.
        let reach = since(now, Duration::from_secs(1 << 40), "max_age").unwrap();
        assert!(reach.clamped);
        assert_eq!(reach.at, validate::earliest());
        let start = validate::earliest() + chrono::Duration::seconds(30);
        let reach = since(start, Duration::from_secs(60), "max_age").unwrap();
        assert!(reach.clamped && reach.at == validate::earliest());
        let reach = since(start, Duration::from_secs(30), "max_age").unwrap();
        assert!(!reach.clamped && reach.at == validate::earliest());
    }
}

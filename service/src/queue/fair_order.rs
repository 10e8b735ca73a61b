//! Reading the fair order: the next job to hand out, a job's place, the
//! next jobs in line.

use chrono::{DateTime, Utc};
use recents_entity::execution_job::JobState;
use recents_schema::{Names, Schema};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, TransactionTrait};

use super::sql::{candidate_values, candidates, due, eligible, owner, round, user_order};
use super::{InLine, Job, Place};
use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::{JobId, UserId};
use crate::sql::{begin_write, finish, now, statement};
use crate::validate;

/// How many times [`dequeue`] looks again when every head of the fair order
/// was being claimed by other workers, before it answers `None`.
const MAX_LOOKS: u32 = 64;

/// Hands the head of the fair order to `worker`: the job becomes
/// `processing`, with `started_at` and `last_heartbeat_at` now (the
/// database's clock on PostgreSQL and MySQL/MariaDB) and
/// `worker_hostname` set, and the user's latest dequeue moves to now (by
/// trigger). `None` when no job is eligible, or when every waiting user's
/// next job stayed locked by other workers' claims through many looks.
///
/// No job is handed to two workers: PostgreSQL and MySQL/MariaDB claim with
/// `FOR UPDATE SKIP LOCKED`, so concurrent workers take the next users'
/// heads instead of waiting; SQLite claims in one statement under its write
/// lock.
///
/// Cost: one probe of the queue index per user with eligible jobs (round 1
/// of the fair order), never a read of every queued job.
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty worker name, one over 255 bytes or
/// one holding NUL; [`Error::Database`] (see [`Error::is_retryable`]).
pub async fn dequeue<C>(conn: &C, worker: &str) -> Result<Option<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard().dequeue(conn, worker).await
}

/// Where a waiting job stands in the fair order: dequeuing repeatedly, with
/// no new arrivals, hands out the jobs in the order of their
/// `place_in_global_queue`. `None` when the job is not waiting (processing,
/// finished, canceled, or not due yet).
///
/// Cost: O(users × `place_in_user_queue`) queue-index entries, through the
/// same per-user probes as [`dequeue`]; the queue is never ranked whole.
///
/// # Errors
/// [`Error::JobNotFound`]; [`Error::Database`].
pub async fn place_in_queue<C: ConnectionTrait>(conn: &C, job: JobId) -> Result<Option<Place>> {
    Recents::standard().place_in_queue(conn, job).await
}

/// The next `limit` jobs of the fair order, with their places: what
/// `limit` dequeues would hand out if nothing else happened.
///
/// Cost: one round per place in a user queue, each one probe per waiting
/// user; with more waiting users than `limit`, one round.
///
/// # Errors
/// [`Error::InvalidLimit`] unless `1 <= limit <= 1000`; [`Error::Database`].
pub async fn next_in_line<C: ConnectionTrait>(conn: &C, limit: u32) -> Result<Vec<InLine>> {
    Recents::standard().next_in_line(conn, limit).await
}

impl Recents {
    /// [`dequeue`] from the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`dequeue`].
    pub async fn dequeue<C>(&self, conn: &C, worker: &str) -> Result<Option<Job>>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let worker = worker_name(worker)?;
        let backend = conn.get_database_backend();
        let n = self.schema().names(backend);
        for look in 0..MAX_LOOKS {
            let claimed = match backend {
                DbBackend::MySql => claim_one_by_one(conn, n, worker).await?,
                _ => claim_in_one_statement(conn, n, worker).await?,
            };
            if claimed.is_some() {
                return Ok(claimed);
            }
            // Nothing claimed: nothing is eligible, or every user's head was
            // locked by a worker claiming it. Then look again once those claims
            // committed, at a fresh snapshot: taking a user's second job instead
            // would serve it twice in one round.
            if backend == DbBackend::Sqlite || !any_eligible(conn, n, now()).await? {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_micros(200 << look.min(5))).await;
        }
        Ok(None)
    }

    /// [`place_in_queue`] in the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`place_in_queue`].
    pub async fn place_in_queue<C: ConnectionTrait>(
        &self,
        conn: &C,
        job: JobId,
    ) -> Result<Option<Place>> {
        place_in_queue_of(conn, self.schema(), job).await
    }

    /// [`next_in_line`] in the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`next_in_line`].
    pub async fn next_in_line<C: ConnectionTrait>(
        &self,
        conn: &C,
        limit: u32,
    ) -> Result<Vec<InLine>> {
        next_in_line_of(conn, self.schema(), limit).await
    }
}

/// The job `id`, all of its columns under recents' names.
pub(super) async fn job_by_id<C: ConnectionTrait>(
    conn: &C,
    n: &Names,
    id: i64,
    lock: &str,
) -> Result<Option<Job>> {
    let row = conn
        .query_one_raw(statement(
            n.backend,
            &format!(
                "SELECT {columns} FROM {jobs} j WHERE j.{id} = ?{lock}",
                columns = n.jobs.all_as_recents("j"),
                jobs = n.jobs.table,
                id = n.jobs.id,
            ),
            vec![id.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(Job::from_query_result(&row, "")?),
        None => None,
    })
}

pub(super) fn worker_name(worker: &str) -> Result<&str> {
    if worker.is_empty() {
        return Err(Error::InvalidArgument {
            what: "worker",
            why: "empty".into(),
        });
    }
    validate::text("worker", worker, 255)
}

/// A dequeue's start time, written by [`set_processing`]: after every latest
/// dequeue, so that the user just served sorts after every other user
/// however coarse or unsteady the clock (this is what makes
/// [`place_in_queue`] the dequeue order), and taken by the database at the
/// moment the row is claimed on PostgreSQL and MySQL/MariaDB: a time taken
/// by the caller before the statement would let a slow worker stamp an
/// older time than claims that went before it, and so favour its user again.
/// The latest dequeue is one probe of `idx_execution_last_dequeues_latest`.
async fn latest_dequeue<C: ConnectionTrait>(conn: &C, n: &Names) -> Result<Option<DateTime<Utc>>> {
    let row = conn
        .query_one_raw(statement(
            n.backend,
            &format!(
                "SELECT MAX(latest_dequeue) AS latest FROM {}",
                n.last_dequeues
            ),
            vec![],
        ))
        .await?;
    Ok(match row {
        Some(row) => Latest::from_query_result(&row, "")?.latest,
        None => None,
    })
}

#[derive(FromQueryResult)]
struct Latest {
    latest: Option<DateTime<Utc>>,
}

/// Never past the latest time every backend stores: there the start times
/// of later dequeues tie, and users are told apart by their oldest job.
fn after_latest(latest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match latest {
        Some(latest) if latest >= now => {
            (latest + chrono::Duration::microseconds(1)).min(validate::latest())
        }
        _ => now,
    }
}

/// `UPDATE … SET` of a claimed job; takes `?`s: (but on PostgreSQL) start
/// time and now, then the worker.
fn set_processing(n: &Names) -> String {
    let j = &n.jobs;
    match n.backend {
        DbBackend::Postgres => format!(
            "UPDATE {jobs} SET {state} = 'processing', \
             {started} = LEAST(GREATEST(clock_timestamp(), \
                 (SELECT MAX(latest_dequeue) FROM {last}) + INTERVAL '1 microsecond'), \
                 TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'), \
             {heartbeat} = clock_timestamp(), {worker} = ?",
            jobs = j.table,
            state = j.state,
            started = j.started_at,
            last = n.last_dequeues,
            heartbeat = j.last_heartbeat_at,
            worker = j.worker_hostname,
        ),
        _ => format!(
            "UPDATE {jobs} SET {state} = 'processing', {started} = ?, \
             {heartbeat} = ?, {worker} = ?",
            jobs = j.table,
            state = j.state,
            started = j.started_at,
            heartbeat = j.last_heartbeat_at,
            worker = j.worker_hostname,
        ),
    }
}

/// The heads of the fair order's first round `j` with their users' latest
/// dequeues `l`, in the fair order; takes [`candidate_values`] then now.
///
/// Expected plan on PostgreSQL (EXPLAIN ANALYZE, 351k jobs, 24k queued, 20
/// users: 1.1 ms): a Recursive Union of one Index Only Scan of
/// `idx_execution_jobs_queue` per waiting user (the skip scan), per user a
/// Limit over an Index Scan of the same index (`user_id = …`, the head) and a
/// primary-key probe of the head's row, a Sort of one row per user, LockRows,
/// then the Update by primary key. No step reads every queued job; a Hash
/// Join over the eligible jobs means the nested-loop settings were lost.
fn claimable(n: &Names) -> String {
    let common = format!(
        "{e} AND {d} ORDER BY {order}",
        e = eligible(n, "j"),
        d = due(n, "j"),
        order = user_order(n, "j"),
    );
    match n.backend {
        // PostgreSQL: the candidates are materialized first and the jobs are
        // then read by their ids, so that the per-user probes run once and
        // no plan can drive the join from the jobs table. Without statistics
        // (a table never analyzed) the planner believed the eligible jobs
        // were one row and ran every probe once per eligible job.
        DbBackend::Postgres => format!(
            "WITH u AS MATERIALIZED ({candidates}) \
             SELECT j.{id} AS id FROM {jobs} j \
             LEFT JOIN {last} l ON l.user_id = j.{user} \
             WHERE j.{id} = ANY(ARRAY(SELECT job_id FROM u)) AND {common}",
            candidates = candidates(n, true),
            id = n.jobs.id,
            jobs = n.jobs.table,
            last = n.last_dequeues,
            user = n.jobs.user_id,
        ),
        _ => format!(
            "SELECT j.{id} AS id FROM ({candidates}) u \
             JOIN {jobs} j ON j.{id} = u.job_id \
             LEFT JOIN {last} l ON l.user_id = u.user_id \
             WHERE {common}",
            candidates = candidates(n, true),
            id = n.jobs.id,
            jobs = n.jobs.table,
            last = n.last_dequeues,
        ),
    }
}

// Claims are serialized by a lock on the one row of `execution_dequeue_lock`
// (SQLite: by its write lock), held to commit. Without it, a claim delayed
// between its row lock and its write stamps a later start time than a claim
// that locked after it, and the next round serves that claim's user late:
// two users a round apart become two rounds apart. Each claim is a short
// transaction, so workers still dequeue thousands of jobs a second, and
// SKIP LOCKED still passes over rows other transactions (a cancel) hold.
async fn serialize_claims<C: ConnectionTrait>(txn: &C, n: &Names) -> Result<()> {
    let backend = n.backend;
    let lock = &n.dequeue_lock;
    let sql = match backend {
        DbBackend::Sqlite => return Ok(()),
        // The claim joins each waiting user's head back to its row to lock
        // it. The planner, which cannot estimate the recursive scan of
        // waiting users, may hash all eligible jobs for that join: O(queued)
        // instead of one primary-key probe per user. Nested loops only, for
        // this transaction.
        DbBackend::Postgres => format!(
            "SELECT id, set_config('enable_hashjoin', 'off', true) AS hash_join, \
             set_config('enable_mergejoin', 'off', true) AS merge_join \
             FROM {lock} WHERE id = 1 FOR UPDATE"
        ),
        _ => format!("SELECT id FROM {lock} WHERE id = 1 FOR UPDATE"),
    };
    txn.query_one_raw(statement(backend, &sql, vec![])).await?;
    Ok(())
}

// PostgreSQL and SQLite: the heads, sorted, the first one not locked
// claimed, in one UPDATE … RETURNING.
async fn claim_in_one_statement<C>(conn: &C, n: &Names, worker: &str) -> Result<Option<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = n.backend;
    let txn = begin_write(conn).await?;
    let done: Result<Option<Job>> = async {
        serialize_claims(&txn, n).await?;
        // "Due" is judged now, once the claim's turn came, not when it
        // began to wait for it.
        let now = now();
        let (lock, mut values) = match backend {
            DbBackend::Postgres => (" FOR UPDATE OF j SKIP LOCKED", vec![]),
            _ => {
                let started_at = after_latest(latest_dequeue(&txn, n).await?, now);
                ("", vec![started_at.into(), now.into()])
            }
        };
        let sql = format!(
            "{set} WHERE {id} = ({claimable} LIMIT 1{lock}) RETURNING {columns}",
            set = set_processing(n),
            id = n.jobs.id,
            claimable = claimable(n),
            columns = n.jobs.all_as_recents(""),
        );
        values.push(worker.into());
        values.extend(candidate_values(now, 1));
        values.push(now.into());
        Ok(
            match txn.query_one_raw(statement(backend, &sql, values)).await? {
                Some(row) => Some(Job::from_query_result(&row, "")?),
                None => None,
            },
        )
    }
    .await;
    finish(txn, done).await
}

// MySQL/MariaDB cannot UPDATE a table while selecting from it in a subquery,
// and sorting locked candidates would lock all of them: read the round's
// candidates in order, then lock them one at a time, skipping locked ones.
async fn claim_one_by_one<C>(conn: &C, n: &Names, worker: &str) -> Result<Option<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = DbBackend::MySql;
    let txn = begin_write(conn).await?;
    let done: Result<Option<Job>> = async {
        serialize_claims(&txn, n).await?;
        // "Due" is judged once the claim's turn came.
        let now = now();
        // A consistent read, not a locking one: it must not lock the
        // last-dequeue rows that other claims' triggers write.
        let latest = latest_dequeue(&txn, n).await?;
        let mut values = candidate_values(now, 1);
        values.push(now.into());
        let rows = txn
            .query_all_raw(statement(backend, &claimable(n), values))
            .await?;
        // The start time is the lock's: a time taken later would let this claim
        // stamp a later time than a claim that locked after it.
        let lock = format!(
            "SELECT j.{id} AS id, UTC_TIMESTAMP(6) AS locked_at FROM {jobs} j \
             WHERE j.{id} = ? AND {e} AND {d} FOR UPDATE SKIP LOCKED",
            id = n.jobs.id,
            jobs = n.jobs.table,
            e = eligible(n, "j"),
            d = due(n, "j"),
        );
        for row in rows {
            let id = Claimable::from_query_result(&row, "")?.id;
            let locked = txn
                .query_one_raw(statement(backend, &lock, vec![id.into(), now.into()]))
                .await?;
            let Some(locked) = locked else {
                continue;
            };
            let locked_at = Locked::from_query_result(&locked, "")?.locked_at;
            let started_at = after_latest(latest, locked_at);
            let updated = txn
                .execute_raw(statement(
                    backend,
                    &format!("{} WHERE {} = ?", set_processing(n), n.jobs.id),
                    vec![
                        started_at.into(),
                        locked_at.into(),
                        worker.into(),
                        id.into(),
                    ],
                ))
                .await?;
            let job = job_by_id(&txn, n, id, "").await?;
            // On Galera a replicated claim of the same job can abort this
            // transaction (brute force) between the UPDATE and the read: the
            // read then sees the row as another claim left it. Hand out only
            // a job this claim holds; otherwise look again.
            return Ok(job.filter(|j| {
                updated.rows_affected() == 1
                    && j.state == JobState::Processing
                    && j.worker_hostname.as_deref() == Some(worker)
            }));
        }
        Ok(None)
    }
    .await;
    finish(txn, done).await
}

#[derive(FromQueryResult)]
struct Claimable {
    id: i64,
}

#[derive(FromQueryResult)]
struct Locked {
    locked_at: DateTime<Utc>,
}

async fn any_eligible<C: ConnectionTrait>(conn: &C, n: &Names, now: DateTime<Utc>) -> Result<bool> {
    let sql = format!(
        "SELECT j.{id} AS id FROM {jobs} j WHERE {e} AND {d} LIMIT 1",
        id = n.jobs.id,
        jobs = n.jobs.table,
        e = eligible(n, "j"),
        d = due(n, "j"),
    );
    Ok(conn
        .query_one_raw(statement(n.backend, &sql, vec![now.into()]))
        .await?
        .is_some())
}

/// One user's row of a round, as [`round`] reads it.
#[derive(FromQueryResult)]
struct RoundRow {
    user_id: i64,
    latest_dequeue: Option<DateTime<Utc>>,
    head_id: i64,
    head_created_at: DateTime<Utc>,
    job_id: Option<i64>,
    created_at: Option<DateTime<Utc>>,
    short_count: Option<i64>,
}

/// One user's entry in a round of the fair order.
struct Entry {
    user_id: i64,
    latest_dequeue: Option<DateTime<Utc>>,
    /// The user's oldest eligible job: it places the user in every round.
    head: (DateTime<Utc>, i64),
    /// The user's job of this round, with its `created_at`.
    job: Option<(i64, DateTime<Utc>)>,
    /// Without a job of this round: how many eligible jobs the user has.
    short_count: i64,
}

impl Entry {
    /// The user's place within a round (`None` sorts first: never served).
    fn key(&self) -> (Option<DateTime<Utc>>, (DateTime<Utc>, i64)) {
        (self.latest_dequeue, self.head)
    }
}

/// Round `r` (1-based) of the fair order at `now`, in the order of users.
async fn read_round<C: ConnectionTrait>(
    conn: &C,
    n: &Names,
    now: DateTime<Utc>,
    r: u64,
) -> Result<Vec<Entry>> {
    let mut values = vec![now.into()];
    values.extend(candidate_values(now, r));
    let rows = conn
        .query_all_raw(statement(n.backend, &round(n, r == 1), values))
        .await?;
    let mut entries = rows
        .iter()
        .map(|row| {
            let row = RoundRow::from_query_result(row, "")?;
            Ok(Entry {
                user_id: row.user_id,
                latest_dequeue: row.latest_dequeue,
                head: (row.head_created_at, row.head_id),
                job: row.job_id.zip(row.created_at),
                short_count: row.short_count.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    entries.sort_by_key(Entry::key);
    Ok(entries)
}

async fn place_in_queue_of<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    job: JobId,
) -> Result<Option<Place>> {
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let now = now();
    let Some(j) = job_by_id(conn, n, job.0, "").await? else {
        return Err(Error::JobNotFound(job));
    };
    let waiting = matches!(j.state, JobState::Queued | JobState::Errored)
        && !j.cancel
        && j.process_after.is_none_or(|at| at <= now);
    if !waiting {
        return Ok(None);
    }
    let earlier = format!(
        "SELECT COUNT(*) AS n FROM {jobs} j WHERE {e} AND {o} = ? AND {d} \
         AND (j.{created} < ? OR (j.{created} = ? AND j.{id} < ?))",
        jobs = n.jobs.table,
        created = n.jobs.created_at,
        id = n.jobs.id,
        e = eligible(n, "j"),
        o = owner(n, "j"),
        d = due(n, "j"),
    );
    let row = conn
        .query_one_raw(statement(
            backend,
            &earlier,
            vec![
                j.user_id.into(),
                now.into(),
                j.created_at.into(),
                j.created_at.into(),
                j.id.into(),
            ],
        ))
        .await?;
    let earlier: i64 = match row {
        Some(row) => Count::from_query_result(&row, "")?.n,
        None => 0,
    };
    let place_in_user_queue = earlier as u64 + 1;
    let entries = read_round(conn, n, now, place_in_user_queue).await?;
    let Some(mine) = entries.iter().find(|e| e.user_id == j.user_id) else {
        // Became ineligible between the two reads.
        return Ok(None);
    };
    let key = mine.key();
    // Every other user contributes its jobs of the rounds before this one
    // (all of them when it has fewer), plus its job of this round if the user
    // comes first within a round.
    let ahead: u64 = entries
        .iter()
        .map(|e| match e.job {
            Some(_) => earlier as u64 + u64::from(e.key() < key),
            None => e.short_count as u64,
        })
        .sum();
    Ok(Some(Place {
        place_in_user_queue,
        place_in_global_queue: ahead + 1,
    }))
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

async fn next_in_line_of<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    limit: u32,
) -> Result<Vec<InLine>> {
    let limit = validate::limit(limit)? as usize;
    let n = schema.names(conn.get_database_backend());
    let now = now();
    let mut line = Vec::with_capacity(limit);
    let mut r = 1u64;
    while line.len() < limit {
        let entries = read_round(conn, n, now, r).await?;
        let mut any = false;
        for e in entries {
            let Some((id, created_at)) = e.job else {
                continue;
            };
            any = true;
            if line.len() == limit {
                break;
            }
            line.push(InLine {
                job_id: JobId(id),
                user_id: UserId(e.user_id),
                created_at,
                latest_dequeue: e.latest_dequeue,
                place: Place {
                    place_in_user_queue: r,
                    place_in_global_queue: line.len() as u64 + 1,
                },
            });
        }
        if !any {
            break;
        }
        r += 1;
    }
    Ok(line)
}

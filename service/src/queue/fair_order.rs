//! Reading the fair order: the next job to hand out, a job's place, the
//! next jobs in line.

use chrono::{DateTime, Utc};
use recents_entity::execution_job::JobState;
use recents_schema::{FRONT_SLACK, Names, Schema};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, TransactionTrait};

use super::sql;
use super::{InLine, Job, Place};
use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::{JobId, UserId};
use crate::maintenance::count;
use crate::sql::{begin_read_committed, finish, is_own_connection, now, statement};
use crate::validate;

/// How many times [`dequeue_many`] looks again when every head of the fair
/// order was being claimed by other workers, before it answers empty.
const MAX_LOOKS: u32 = 64;

/// The most jobs one [`dequeue_many`] hands out.
pub const MAX_DEQUEUE_BATCH: u32 = 1000;

/// Hands the head of the fair order to `worker`: the job becomes
/// `processing`, with `started_at` and `last_heartbeat_at` now (the
/// database's clock on PostgreSQL and MySQL/MariaDB) and
/// `worker_hostname` set, and the user's latest dequeue moves to now (by
/// trigger). `None` when no job is eligible, or when every waiting user's
/// next job stayed locked by other workers' claims through many looks.
/// [`dequeue_many`] with one job.
///
/// No job is handed to two workers: PostgreSQL and MySQL/MariaDB lock the
/// user's row of `execution_queue_heads` and then its head job with `FOR
/// UPDATE SKIP LOCKED`; SQLite claims under its write lock. Claims take
/// short turns on one lock row (`execution_dequeue_lock`), so that start
/// times follow the order in which users were locked. On PostgreSQL the
/// claim is one statement (the claim function of recents' migrations),
/// which holds the turn only while it runs; on `conn`, a pool's
/// connection, it is its own transaction. A future dropped after the
/// statement was sent may still claim a job nobody receives: it stays
/// `processing` until [`reset_stalled`](super::reset_stalled) gives it back.
///
/// Cost: a read of the front of `idx_execution_queue_heads_order` (the
/// users in the order they are served, one row each) and a primary-key
/// update, whatever the number of waiting users or jobs. No user is served
/// twice in a round while a user waiting at the round's start is unserved,
/// except by a claim already under way when that user's turn came: with `k`
/// claims in flight, each takes one of the first `k` users of the order.
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

/// Hands up to `count` jobs to `worker` at once, the first `count` of the
/// fair order (so one per user before any user's second), in one
/// transaction: for workers that take batches. Each job is as [`dequeue`]
/// leaves it. Empty when no job is eligible.
///
/// Cost: one read of the front of the order and one update for the whole
/// batch, per round of users the batch spans.
///
/// # Errors
/// [`Error::InvalidLimit`] unless `1 <= count <= 1000`; as [`dequeue`].
pub async fn dequeue_many<C>(conn: &C, worker: &str, count: u32) -> Result<Vec<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard().dequeue_many(conn, worker, count).await
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
        Ok(self.dequeue_many(conn, worker, 1).await?.into_iter().next())
    }

    /// [`dequeue_many`] from the jobs table this handle's schema names.
    ///
    /// # Errors
    /// As [`dequeue_many`].
    pub async fn dequeue_many<C>(&self, conn: &C, worker: &str, count: u32) -> Result<Vec<Job>>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        if count == 0 || count > MAX_DEQUEUE_BATCH {
            return Err(Error::InvalidLimit {
                got: count.into(),
                max: MAX_DEQUEUE_BATCH,
            });
        }
        let worker = worker_name(worker)?;
        let backend = conn.get_database_backend();
        let n = self.schema().names(backend);
        for look in 0..MAX_LOOKS {
            let claimed = claim(conn, n, worker, count as usize).await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
            // Nothing claimed: nothing is eligible, or every user at the
            // front was held by another claim. Then look again once those
            // claims committed: taking a user's second job instead would
            // serve it twice in one round.
            if backend == DbBackend::Sqlite || !any_eligible(conn, n, now()).await? {
                return Ok(Vec::new());
            }
            tokio::time::sleep(std::time::Duration::from_micros(200 << look.min(5))).await;
        }
        Ok(Vec::new())
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

/// Never past the latest time every backend stores: there the start times
/// of later dequeues tie, and users are told apart by their oldest job.
/// (PostgreSQL takes the same time in its UPDATE.) After every latest
/// dequeue, so that the user just served sorts after every other user
/// however coarse or unsteady the clock: this is what makes
/// [`place_in_queue`] the dequeue order.
fn after_latest(latest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match latest {
        Some(latest) if latest >= now => {
            (latest + chrono::Duration::microseconds(1)).min(validate::latest())
        }
        _ => now,
    }
}

async fn latest_dequeue<C: ConnectionTrait>(conn: &C, n: &Names) -> Result<Option<DateTime<Utc>>> {
    let row = conn
        .query_one_raw(statement(n.backend, &sql::latest_dequeue(n), vec![]))
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

/// A user at the front of the order, as read.
#[derive(FromQueryResult)]
struct FrontRow {
    user_id: i64,
    latest_dequeue: Option<DateTime<Utc>>,
    head_job_id: i64,
}

/// A user this claim holds, and the head it read under the lock.
struct Held {
    user_id: i64,
    head_job_id: i64,
    /// MySQL/MariaDB: when the lock was taken (the start time).
    locked_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct HeldRow {
    user_id: i64,
    head_job_id: i64,
    locked_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct UserRow {
    user_id: i64,
}

/// One claim transaction: brings rows whose scheduled jobs came due up to
/// date, then takes up to `want` heads from the front of the order, round
/// after round of users while the batch is not full.
async fn claim<C>(conn: &C, n: &Names, worker: &str, want: usize) -> Result<Vec<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    if n.backend == DbBackend::Postgres {
        return claim_pg(conn, n, worker, want, now()).await;
    }
    let txn = begin_read_committed(conn).await?;
    let done: Result<Vec<Job>> = async {
        let now = now();
        take_turn(&txn, n).await?;
        promote_due(&txn, n, now).await?;
        let mut claimed: Vec<Job> = Vec::new();
        // Users held whose head another transaction holds: not again.
        let mut passed: Vec<i64> = Vec::new();
        while claimed.len() < want {
            let held = hold_front(&txn, n, want - claimed.len(), &passed).await?;
            if held.is_empty() {
                break;
            }
            let jobs = claim_heads(&txn, n, worker, &held, now).await?;
            for h in &held {
                if !jobs.iter().any(|j| j.id == h.head_job_id) {
                    passed.push(h.user_id);
                }
            }
            let got = jobs.len();
            claimed.extend(jobs);
            if got == 0 {
                break;
            }
        }
        Ok(claimed)
    }
    .await;
    finish(txn, done).await
}

/// PostgreSQL: the claim function of migration 14 (`Names::queue_claim`),
/// one statement: the turn, the promotion of rows whose scheduled jobs came
/// due by `now`, and the rounds of `Names::claim_front_pg` run inside the
/// server, each statement of the function reading the commits before it.
/// The function holds the turn only while it runs, not to the commit. On
/// the caller's own connection the statement is its own transaction; in a
/// caller's transaction it runs in a savepoint.
async fn claim_pg<C>(
    conn: &C,
    n: &Names,
    worker: &str,
    want: usize,
    now: DateTime<Utc>,
) -> Result<Vec<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let claim = statement(
        n.backend,
        &format!(
            "SELECT {columns} FROM {claim}(?, ?, ?) j",
            columns = n.jobs.all_as_recents("j"),
            claim = n.queue_claim(),
        ),
        vec![(want as i64).into(), worker.into(), now.into()],
    );
    let rows = if is_own_connection::<C>() {
        conn.query_all_raw(claim).await?
    } else {
        let txn = begin_read_committed(conn).await?;
        let done = txn.query_all_raw(claim).await.map_err(Error::from);
        finish(txn, done).await?
    };
    Ok(rows
        .iter()
        .map(|row| Job::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?)
}

// Claims take their turns on the one row of `execution_dequeue_lock`
// (SQLite: on its write lock), held to commit; PostgreSQL's claim function
// takes its turn on an advisory lock, released before the commit (see
// migration 14). A claim is a few index rows now, so the turn is
// short; what it buys is that start times follow the order in which claims
// lock their users. Without it (measured: the eight-worker test) a claim
// preempted between locking its user and stamping the start time stamps a
// later time than claims that locked after it, possibly of the next round,
// and its user then sorts behind users a round ahead of it; no start time
// taken apart from the lock avoids that. SKIP LOCKED still passes over rows
// other transactions (a cancel) hold.
async fn take_turn<C: ConnectionTrait>(txn: &C, n: &Names) -> Result<()> {
    if n.backend == DbBackend::Sqlite {
        return Ok(());
    }
    txn.query_one_raw(statement(
        n.backend,
        &format!("SELECT id FROM {} WHERE id = 1 FOR UPDATE", n.dequeue_lock),
        vec![],
    ))
    .await?;
    Ok(())
}

/// Sets rows whose scheduled jobs came due by `now` to their definition now,
/// so that the front is the fair order now.
async fn promote_due<C: ConnectionTrait>(txn: &C, n: &Names, now: DateTime<Utc>) -> Result<()> {
    let backend = n.backend;
    let rows = txn
        .query_all_raw(statement(backend, &sql::lock_due(n), vec![now.into()]))
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let users = rows
        .iter()
        .map(|row| Ok(UserRow::from_query_result(row, "")?.user_id))
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    refresh_users(txn, n, &users, now).await
}

/// Sets the rows of `users` (held by this transaction) to their definition
/// as of `at`, deleting those left with nothing eligible.
pub(super) async fn refresh_users<C: ConnectionTrait>(
    txn: &C,
    n: &Names,
    users: &[i64],
    at: DateTime<Utc>,
) -> Result<()> {
    let backend = n.backend;
    let mut values: Vec<sea_orm::Value> = vec![at.into(); 5];
    values.extend(users.iter().map(|&u| u.into()));
    txn.execute_raw(statement(backend, &sql::promote(n, users.len()), values))
        .await?;
    txn.execute_raw(statement(
        backend,
        &sql::delete_empty(n, users.len()),
        users.iter().map(|&u| u.into()).collect(),
    ))
    .await?;
    Ok(())
}

/// Locks up to `want` users from the front of the order that no other
/// claim holds and that are still as read (MySQL/MariaDB); SQLite's one
/// writer takes the first `want`.
async fn hold_front<C: ConnectionTrait>(
    txn: &C,
    n: &Names,
    want: usize,
    passed: &[i64],
) -> Result<Vec<Held>> {
    let backend = n.backend;
    let mut window = want as u64 * 2 + FRONT_SLACK;
    loop {
        let mut values: Vec<sea_orm::Value> = passed.iter().map(|&u| u.into()).collect();
        values.push((window as i64).into());
        let rows = txn
            .query_all_raw(statement(backend, &sql::front(n, passed.len()), values))
            .await?;
        let front = rows
            .iter()
            .map(|row| FrontRow::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()?;
        // SQLite: one writer, so the front is the claim's.
        if backend != DbBackend::MySql {
            return Ok(front
                .into_iter()
                .take(want)
                .map(|f| Held {
                    user_id: f.user_id,
                    head_job_id: f.head_job_id,
                    locked_at: None,
                })
                .collect());
        }
        let mut held = Vec::new();
        for f in &front {
            if held.len() == want {
                break;
            }
            let locked = txn
                .query_one_raw(statement(
                    backend,
                    &sql::lock_user_mysql(n),
                    vec![
                        f.user_id.into(),
                        f.head_job_id.into(),
                        f.latest_dequeue.into(),
                    ],
                ))
                .await?;
            if let Some(row) = locked {
                let row = HeldRow::from_query_result(&row, "")?;
                held.push(Held {
                    user_id: row.user_id,
                    head_job_id: row.head_job_id,
                    locked_at: Some(row.locked_at),
                });
            }
        }
        if held.is_empty() && front.len() as u64 == window {
            window *= 8;
            continue;
        }
        return Ok(held);
    }
}

/// Claims the heads of the users this transaction holds, those still
/// eligible and due and not held by another transaction (a cancel, say).
async fn claim_heads<C: ConnectionTrait>(
    txn: &C,
    n: &Names,
    worker: &str,
    held: &[Held],
    now: DateTime<Utc>,
) -> Result<Vec<Job>> {
    let backend = n.backend;
    let heads: Vec<sea_orm::Value> = held.iter().map(|h| h.head_job_id.into()).collect();
    match backend {
        DbBackend::MySql => {
            let latest = latest_dequeue(txn, n).await?;
            let mut jobs = Vec::new();
            for h in held {
                let locked = txn
                    .query_one_raw(statement(
                        backend,
                        &sql::lock_head_mysql(n),
                        vec![h.head_job_id.into(), now.into()],
                    ))
                    .await?;
                if locked.is_none() {
                    continue;
                }
                let locked_at = h.locked_at.unwrap_or(now);
                let started_at = after_latest(latest, locked_at);
                let updated = txn
                    .execute_raw(statement(
                        backend,
                        &format!("{} WHERE {} = ?", sql::set_processing(n), n.jobs.id),
                        vec![
                            started_at.into(),
                            locked_at.into(),
                            worker.into(),
                            h.head_job_id.into(),
                        ],
                    ))
                    .await?;
                let job = job_by_id(txn, n, h.head_job_id, "").await?;
                // On Galera a replicated claim of the same job can abort this
                // transaction (brute force) between the UPDATE and the read:
                // the read then sees the row as another claim left it. Hand
                // out only a job this claim holds.
                if let Some(job) = job.filter(|j| {
                    updated.rows_affected() == 1
                        && j.state == JobState::Processing
                        && j.worker_hostname.as_deref() == Some(worker)
                }) {
                    jobs.push(job);
                }
            }
            Ok(jobs)
        }
        _ => {
            let started_at = after_latest(latest_dequeue(txn, n).await?, now);
            let mut values = vec![started_at.into(), now.into(), worker.into()];
            values.extend(heads);
            values.push(now.into());
            let rows = txn
                .query_all_raw(statement(
                    backend,
                    &sql::claim_heads_sqlite(n, held.len()),
                    values,
                ))
                .await?;
            Ok(rows
                .iter()
                .map(|row| Job::from_query_result(row, ""))
                .collect::<Result<Vec<_>, _>>()?)
        }
    }
}

async fn any_eligible<C: ConnectionTrait>(conn: &C, n: &Names, now: DateTime<Utc>) -> Result<bool> {
    Ok(conn
        .query_one_raw(statement(
            n.backend,
            &sql::any_eligible(n),
            vec![now.into()],
        ))
        .await?
        .is_some())
}

/// A user's row as it reads now (see [`sql::rows_now`]).
#[derive(FromQueryResult)]
struct RowNow {
    user_id: i64,
    latest_dequeue: Option<DateTime<Utc>>,
    head_job_id: Option<i64>,
    head_created_at: Option<DateTime<Utc>>,
    due_count: i64,
}

/// A waiting user, in the fair order of users.
struct Waiting {
    user_id: i64,
    latest_dequeue: Option<DateTime<Utc>>,
    /// The user's oldest eligible job: it places the user in every round.
    head: (DateTime<Utc>, i64),
    /// Eligible jobs due now.
    due_count: u64,
}

impl Waiting {
    /// The user's place within a round (`None` sorts first: never served).
    fn key(&self) -> (Option<DateTime<Utc>>, (DateTime<Utc>, i64)) {
        (self.latest_dequeue, self.head)
    }
}

/// Every waiting user, in the fair order of users: the rows of
/// `execution_queue_heads`, one per user, never the jobs.
async fn waiting_users<C: ConnectionTrait>(
    conn: &C,
    n: &Names,
    now: DateTime<Utc>,
) -> Result<Vec<Waiting>> {
    let rows = conn
        .query_all_raw(statement(n.backend, &sql::rows_now(n), vec![now.into(); 6]))
        .await?;
    let mut users = Vec::with_capacity(rows.len());
    for row in &rows {
        let r = RowNow::from_query_result(row, "")?;
        if let (Some(id), Some(created)) = (r.head_job_id, r.head_created_at) {
            users.push(Waiting {
                user_id: r.user_id,
                latest_dequeue: r.latest_dequeue,
                head: (created, id),
                due_count: count(r.due_count),
            });
        }
    }
    users.sort_by_key(Waiting::key);
    Ok(users)
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
    let row = conn
        .query_one_raw(statement(
            backend,
            &sql::earlier_in_user_queue(n),
            vec![
                j.user_id.into(),
                now.into(),
                j.created_at.into(),
                j.created_at.into(),
                j.id.into(),
            ],
        ))
        .await?;
    let earlier = match row {
        Some(row) => count(Count::from_query_result(&row, "")?.n),
        None => 0,
    };
    let place_in_user_queue = earlier + 1;
    let users = waiting_users(conn, n, now).await?;
    let Some(mine) = users.iter().find(|u| u.user_id == j.user_id) else {
        // Became ineligible between the two reads.
        return Ok(None);
    };
    let key = mine.key();
    // Every user contributes its jobs of the rounds before this one (all of
    // them when it has fewer), plus its job of this round if the user comes
    // first within a round.
    let ahead: u64 = users
        .iter()
        .map(|u| {
            if u.due_count >= place_in_user_queue {
                earlier + u64::from(u.key() < key)
            } else {
                u.due_count
            }
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

/// A job as [`sql::first_jobs`] reads it.
#[derive(FromQueryResult)]
struct FirstJob {
    job_id: i64,
    user_id: i64,
    created_at: DateTime<Utc>,
}

/// Users per statement of [`sql::first_jobs`].
const FIRST_JOBS_CHUNK: usize = 100;

async fn next_in_line_of<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    limit: u32,
) -> Result<Vec<InLine>> {
    let limit = validate::limit(limit)? as usize;
    let n = schema.names(conn.get_database_backend());
    let now = now();
    let users = waiting_users(conn, n, now).await?;
    // The rounds the first `limit` places span, from the users' counts
    // alone: round r holds every user with at least r jobs, in user order.
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut placed = 0;
    let mut r = 1u64;
    while placed < limit {
        let round: Vec<usize> = users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.due_count >= r)
            .map(|(i, _)| i)
            .take(limit - placed)
            .collect();
        if round.is_empty() {
            break;
        }
        placed += round.len();
        rounds.push(round);
        r += 1;
    }
    // Each user's jobs of those rounds: its head, then (for users in later
    // rounds) its first jobs, read through the queue index.
    let mut wanted = vec![0usize; users.len()];
    for round in &rounds {
        for &i in round {
            wanted[i] += 1;
        }
    }
    let mut jobs: Vec<Vec<(i64, DateTime<Utc>)>> =
        users.iter().map(|u| vec![(u.head.1, u.head.0)]).collect();
    let more: Vec<usize> = (0..users.len()).filter(|&i| wanted[i] > 1).collect();
    for chunk in more.chunks(FIRST_JOBS_CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * 3);
        for &i in chunk {
            values.push(users[i].user_id.into());
            values.push(now.into());
            values.push((wanted[i] as i64).into());
        }
        let rows = conn
            .query_all_raw(statement(
                n.backend,
                &sql::first_jobs(n, chunk.len()),
                values,
            ))
            .await?;
        let mut read: std::collections::HashMap<i64, Vec<(i64, DateTime<Utc>)>> =
            std::collections::HashMap::new();
        for row in &rows {
            let f = FirstJob::from_query_result(row, "")?;
            read.entry(f.user_id)
                .or_default()
                .push((f.job_id, f.created_at));
        }
        for &i in chunk {
            let mut mine = read.remove(&users[i].user_id).unwrap_or_default();
            mine.sort_by_key(|&(id, created)| (created, id));
            jobs[i] = mine;
        }
    }
    let mut line = Vec::with_capacity(limit);
    for (r, round) in rounds.iter().enumerate() {
        for &i in round {
            // A user whose jobs changed between the reads has fewer.
            let Some(&(id, created_at)) = jobs[i].get(r) else {
                continue;
            };
            line.push(InLine {
                job_id: JobId(id),
                user_id: UserId(users[i].user_id),
                created_at,
                latest_dequeue: users[i].latest_dequeue,
                place: Place {
                    place_in_user_queue: r as u64 + 1,
                    place_in_global_queue: line.len() as u64 + 1,
                },
            });
        }
    }
    Ok(line)
}

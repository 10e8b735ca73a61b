//! Reading the fair order: the next job to hand out, a job's place, the
//! next jobs in line.

use chrono::{DateTime, Utc};
use recents_entity::execution_job::{self, JobState};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, TransactionSession, TransactionTrait};

use super::sql::{
    JOB_COLUMNS, candidate_values, candidates, due, eligible, now, owner, round, user_order,
};
use super::{InLine, Job, Place};
use crate::error::{Error, Result};
use crate::ids::{JobId, UserId};
use crate::sql::{begin_write, statement};
use crate::validate;

/// How many rounds [`dequeue`] looks into when every job of the rounds
/// before is being claimed by other workers at the same instant.
const MAX_ROUNDS: u64 = 8;

/// Hands the head of the fair order to `worker`: the job becomes
/// `processing`, with `started_at` and `last_heartbeat_at` now and
/// `worker_hostname` set, and the user's latest dequeue moves to now (by
/// trigger). `None` when no job is eligible, or every eligible job is being
/// claimed by another worker at this instant.
///
/// No job is handed to two workers: PostgreSQL and MySQL/MariaDB claim with
/// `FOR UPDATE SKIP LOCKED`, so concurrent workers take the next jobs of the
/// fair order instead of waiting; SQLite claims in one statement under its
/// write lock.
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
    let worker = worker_name(worker)?;
    let backend = conn.get_database_backend();
    for r in 1..=MAX_ROUNDS {
        let now = now();
        let started_at = start_time(conn, now).await?;
        let claimed = match backend {
            DbBackend::MySql => claim_one_by_one(conn, worker, now, started_at, r).await?,
            _ => claim_in_one_statement(conn, backend, worker, now, started_at, r).await?,
        };
        if claimed.is_some() {
            return Ok(claimed);
        }
        // Nothing claimed: either nothing is eligible, or every job of this
        // round was locked by a worker claiming it; then the next round
        // holds the next jobs of the fair order.
        if backend == DbBackend::Sqlite || !any_eligible(conn, now).await? {
            return Ok(None);
        }
    }
    Ok(None)
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

/// The start time of a dequeue at `now`: after every latest dequeue, so
/// that the user just served sorts after every other user however coarse
/// or unsteady the clock (this is what makes [`place_in_queue`] the dequeue
/// order). One index probe of `idx_execution_last_dequeues_latest`.
async fn start_time<C: ConnectionTrait>(conn: &C, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            "SELECT MAX(latest_dequeue) AS latest FROM execution_last_dequeues",
            vec![],
        ))
        .await?;
    let latest: Option<DateTime<Utc>> = match row {
        Some(row) => row.try_get("", "latest")?,
        None => None,
    };
    Ok(match latest {
        Some(latest) if latest >= now => latest + chrono::Duration::microseconds(1),
        _ => now,
    })
}

fn set_processing() -> &'static str {
    "UPDATE execution_jobs SET state = 'processing', started_at = ?, last_heartbeat_at = ?, \
     worker_hostname = ?"
}

/// Round `r`'s claimable jobs `j`, their users' latest dequeues `l` and
/// heads, in the fair order; takes [`candidate_values`] then now.
fn claimable(backend: DbBackend, r: u64) -> String {
    let (head_join, head) = if r == 1 {
        ("", "j")
    } else {
        (" JOIN execution_jobs h ON h.id = u.head_id", "h")
    };
    format!(
        "SELECT j.id FROM ({candidates}) u \
         JOIN execution_jobs j ON j.id = u.job_id{head_join} \
         LEFT JOIN execution_last_dequeues l ON l.user_id = u.user_id \
         WHERE {e} AND {d} ORDER BY {order}",
        candidates = candidates(backend, r == 1),
        e = eligible(backend, "j"),
        d = due("j"),
        order = user_order(head),
    )
}

// PostgreSQL and SQLite: round `r`'s candidates, sorted, the first one not
// locked claimed, in one UPDATE … RETURNING.
async fn claim_in_one_statement<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    worker: &str,
    now: DateTime<Utc>,
    started_at: DateTime<Utc>,
    r: u64,
) -> Result<Option<Job>> {
    let lock = match backend {
        DbBackend::Postgres => " FOR UPDATE OF j SKIP LOCKED",
        _ => "",
    };
    let sql = format!(
        "{set} WHERE id = ({claimable} LIMIT 1{lock}) RETURNING {JOB_COLUMNS}",
        set = set_processing(),
        claimable = claimable(backend, r),
    );
    let mut values = vec![started_at.into(), now.into(), worker.into()];
    values.extend(candidate_values(now, r));
    values.push(now.into());
    Ok(execution_job::Entity::find()
        .from_raw_sql(statement(backend, &sql, values))
        .one(conn)
        .await?)
}

// MySQL/MariaDB cannot UPDATE a table while selecting from it in a subquery,
// and sorting locked candidates would lock all of them: read the round's
// candidates in order, then lock them one at a time, skipping locked ones.
async fn claim_one_by_one<C>(
    conn: &C,
    worker: &str,
    now: DateTime<Utc>,
    started_at: DateTime<Utc>,
    r: u64,
) -> Result<Option<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = DbBackend::MySql;
    let txn = begin_write(conn).await?;
    let mut values = candidate_values(now, r);
    values.push(now.into());
    let rows = txn
        .query_all_raw(statement(backend, &claimable(backend, r), values))
        .await?;
    let lock = format!(
        "SELECT j.id FROM execution_jobs j WHERE j.id = ? AND {e} AND {d} FOR UPDATE SKIP LOCKED",
        e = eligible(backend, "j"),
        d = due("j"),
    );
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let locked = txn
            .query_one_raw(statement(backend, &lock, vec![id.into(), now.into()]))
            .await?;
        if locked.is_none() {
            continue;
        }
        txn.execute_raw(statement(
            backend,
            &format!("{} WHERE id = ?", set_processing()),
            vec![started_at.into(), now.into(), worker.into(), id.into()],
        ))
        .await?;
        let job = execution_job::Entity::find_by_id(id).one(&txn).await?;
        txn.commit().await?;
        return Ok(job);
    }
    txn.rollback().await?;
    Ok(None)
}

async fn any_eligible<C: ConnectionTrait>(conn: &C, now: DateTime<Utc>) -> Result<bool> {
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT j.id FROM execution_jobs j WHERE {e} AND {d} LIMIT 1",
        e = eligible(backend, "j"),
        d = due("j"),
    );
    Ok(conn
        .query_one_raw(statement(backend, &sql, vec![now.into()]))
        .await?
        .is_some())
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
    now: DateTime<Utc>,
    r: u64,
) -> Result<Vec<Entry>> {
    let backend = conn.get_database_backend();
    let mut values = vec![now.into()];
    values.extend(candidate_values(now, r));
    let rows = conn
        .query_all_raw(statement(backend, &round(backend, r == 1), values))
        .await?;
    let mut entries = rows
        .iter()
        .map(|row| {
            let job_id: Option<i64> = row.try_get("", "job_id")?;
            let created_at: Option<DateTime<Utc>> = row.try_get("", "created_at")?;
            Ok(Entry {
                user_id: row.try_get("", "user_id")?,
                latest_dequeue: row.try_get("", "latest_dequeue")?,
                head: (
                    row.try_get("", "head_created_at")?,
                    row.try_get("", "head_id")?,
                ),
                job: job_id.zip(created_at),
                short_count: row.try_get::<Option<i64>>("", "short_count")?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    entries.sort_by(|a, b| a.key().cmp(&b.key()));
    Ok(entries)
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
    let backend = conn.get_database_backend();
    let now = now();
    let Some(j) = execution_job::Entity::find_by_id(job.0).one(conn).await? else {
        return Err(Error::JobNotFound(job));
    };
    let waiting = matches!(j.state, JobState::Queued | JobState::Errored)
        && !j.cancel
        && j.process_after.is_none_or(|at| at <= now);
    if !waiting {
        return Ok(None);
    }
    let earlier = format!(
        "SELECT COUNT(*) AS n FROM execution_jobs j WHERE {e} AND {o} = ? AND {d} \
         AND (j.created_at < ? OR (j.created_at = ? AND j.id < ?))",
        e = eligible(backend, "j"),
        o = owner(backend, "j"),
        d = due("j"),
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
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    let place_in_user_queue = earlier as u64 + 1;
    let entries = read_round(conn, now, place_in_user_queue).await?;
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

/// The next `limit` jobs of the fair order, with their places: what
/// `limit` dequeues would hand out if nothing else happened.
///
/// Cost: one round per place in a user queue, each one probe per waiting
/// user; with more waiting users than `limit`, one round.
///
/// # Errors
/// [`Error::InvalidLimit`] unless `1 <= limit <= 1000`; [`Error::Database`].
pub async fn next_in_line<C: ConnectionTrait>(conn: &C, limit: u32) -> Result<Vec<InLine>> {
    let limit = validate::limit(limit)? as usize;
    let now = now();
    let mut line = Vec::with_capacity(limit);
    let mut r = 1u64;
    while line.len() < limit {
        let entries = read_round(conn, now, r).await?;
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

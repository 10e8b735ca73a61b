//! The queue's SQL, spelled per backend where the backends differ: how an
//! eligible job is recognised (so that the queue index serves the query), how
//! the waiting users are enumerated, and row locking.

use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, Value};

/// The columns of a job, in the entity's order, for `RETURNING` and reads.
pub(super) const JOB_COLUMNS: &str = "id, user_id, state, payload, created_at, started_at, \
    finished_at, process_after, num_resets, num_failures, failure_message, worker_hostname, \
    last_heartbeat_at, cancel";

/// `{alias}` is a queued or errored job that is not canceled, written as the
/// predicate of the backend's queue index so the planner uses it:
/// `idx_execution_jobs_queue` is partial on PostgreSQL and SQLite, and on
/// MySQL/MariaDB indexes the virtual column `queued_user_id`.
pub(super) fn eligible(backend: DbBackend, alias: &str) -> String {
    match backend {
        DbBackend::MySql => format!("{alias}.queued_user_id IS NOT NULL"),
        _ => format!("{alias}.state IN ('queued', 'errored') AND NOT {alias}.cancel"),
    }
}

/// The user column the queue index leads with.
pub(super) fn owner(backend: DbBackend, alias: &str) -> String {
    match backend {
        DbBackend::MySql => format!("{alias}.queued_user_id"),
        _ => format!("{alias}.user_id"),
    }
}

/// `{alias}` may run now; takes one `?` (now).
pub(super) fn due(alias: &str) -> String {
    format!("({alias}.process_after IS NULL OR {alias}.process_after <= ?)")
}

/// The users with eligible jobs, one row each (`user_id`), without reading
/// their jobs: a skip scan of the queue index. PostgreSQL and SQLite have no
/// skip scan of their own, so a recursive query jumps from each user to the
/// next; MySQL/MariaDB do it for a GROUP BY on the index prefix ("Using index
/// for group-by"), and cap recursion at 1,000 steps besides.
fn waiting_users(backend: DbBackend) -> String {
    let e = eligible(backend, "j");
    let o = owner(backend, "j");
    match backend {
        DbBackend::MySql => {
            format!("SELECT {o} AS user_id FROM execution_jobs j WHERE {e} GROUP BY {o}")
        }
        _ => format!(
            "WITH RECURSIVE waiting(user_id) AS (\
                SELECT MIN({o}) FROM execution_jobs j WHERE {e} \
                UNION ALL \
                SELECT (SELECT {o} FROM execution_jobs j WHERE {e} AND {o} > w.user_id \
                        ORDER BY {o} LIMIT 1) \
                FROM waiting w WHERE w.user_id IS NOT NULL\
            ) SELECT user_id FROM waiting WHERE user_id IS NOT NULL"
        ),
    }
}

/// Each waiting user (`user_id`), its oldest eligible due job (`head_id`),
/// which places the user within every round, and its `r`-th (`job_id`, NULL
/// when it has fewer): one or two probes of the queue index per user. Takes
/// `?`s: now, then for rounds after the first now and offset `r - 1`.
pub(super) fn candidates(backend: DbBackend, first_round: bool) -> String {
    let e = eligible(backend, "j");
    let o = owner(backend, "j");
    let d = due("j");
    let nth = |offset: &str| {
        format!(
            "(SELECT j.id FROM execution_jobs j WHERE {e} AND {o} = w.user_id AND {d} \
              ORDER BY j.created_at, j.id LIMIT 1{offset})"
        )
    };
    let head = nth("");
    let job = if first_round {
        "head_id".to_owned()
    } else {
        nth(" OFFSET ?")
    };
    let waiting = waiting_users(backend);
    format!(
        "SELECT v.user_id, v.head_id, {job} AS job_id FROM (\
            SELECT w.user_id, {head} AS head_id FROM ({waiting}) w{w_kept}\
         ) v{v_kept}",
        job = job.replace("w.user_id", "v.user_id"),
        w_kept = kept(backend, "w.user_id"),
        v_kept = kept(backend, "v.user_id, v.head_id"),
    )
}

/// MariaDB (10.11) merges a derived table whose select list holds a
/// correlated subquery into the outer query, and the second execution of the
/// prepared statement then fails with "Unknown column 'w.user_id'". A GROUP
/// BY on the derived table's key keeps it a table of its own.
fn kept(backend: DbBackend, key: &str) -> String {
    match backend {
        DbBackend::MySql => format!(" GROUP BY {key}"),
        _ => String::new(),
    }
}

/// Round `r` of the fair order, unsorted: [`candidates`] with each user's
/// latest dequeue, its head's `created_at`, the round's job's `created_at`,
/// and, for a user with fewer than `r` eligible due jobs, how many it has
/// (`short_count`). Takes `?`s: now (the short count), then [`candidates`]'.
pub(super) fn round(backend: DbBackend, first_round: bool) -> String {
    let e = eligible(backend, "j");
    let o = owner(backend, "j");
    let d = due("j");
    // Scalar subqueries, not joins: each is a primary-key probe per user,
    // where a join may be planned as a hash of every eligible job.
    format!(
        "SELECT u.user_id, \
            (SELECT l.latest_dequeue FROM execution_last_dequeues l WHERE l.user_id = u.user_id) \
                AS latest_dequeue, \
            u.head_id, (SELECT h.created_at FROM execution_jobs h WHERE h.id = u.head_id) \
                AS head_created_at, \
            u.job_id, (SELECT c.created_at FROM execution_jobs c WHERE c.id = u.job_id) AS created_at, \
            CASE WHEN u.job_id IS NULL THEN (\
                SELECT COUNT(*) FROM execution_jobs j WHERE {e} AND {o} = u.user_id AND {d}\
            ) END AS short_count \
         FROM ({candidates}) u WHERE u.head_id IS NOT NULL",
        candidates = candidates(backend, first_round),
    )
}

/// The values of [`candidates`]' `?`s for round `r` (1-based).
pub(super) fn candidate_values(now: DateTime<Utc>, r: u64) -> Vec<Value> {
    if r == 1 {
        vec![now.into()]
    } else {
        vec![
            now.into(),
            (r.saturating_sub(1).min(i64::MAX as u64) as i64).into(),
            now.into(),
        ]
    }
}

/// The order of users within every round, over latest dequeue `l` and the
/// user's head job `{head}` (NULLS FIRST spelled so that all three backends
/// accept it).
pub(super) fn user_order(head: &str) -> String {
    format!("l.latest_dequeue IS NOT NULL, l.latest_dequeue, {head}.created_at, {head}.id")
}

/// `?, ?, …` for `n` values.
pub(super) fn list(n: usize) -> String {
    vec!["?"; n].join(", ")
}

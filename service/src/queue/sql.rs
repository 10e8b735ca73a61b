//! The queue's SQL, spelled per backend where the backends differ: how an
//! eligible job is recognised (so that the queue index serves the query), how
//! the waiting users are enumerated, and row locking. Every name comes from
//! the schema mapping: the jobs table is the backend's.

use chrono::{DateTime, Utc};
use recents_schema::Names;
use sea_orm::{DbBackend, Value};

/// `{alias}` is a queued or errored job that is not canceled, written as the
/// predicate of the backend's queue index so the planner uses it:
/// `idx_execution_jobs_queue` is partial on PostgreSQL and SQLite, and on
/// MySQL/MariaDB indexes the virtual column `queued_user_id`.
pub(super) fn eligible(n: &Names, alias: &str) -> String {
    match n.backend {
        DbBackend::MySql => format!("{alias}.{} IS NOT NULL", n.object("queued_user_id")),
        _ => format!(
            "{alias}.{state} IN ('queued', 'errored') AND NOT {alias}.{cancel}",
            state = n.jobs.state,
            cancel = n.jobs.cancel,
        ),
    }
}

/// The user column the queue index leads with.
pub(super) fn owner(n: &Names, alias: &str) -> String {
    match n.backend {
        DbBackend::MySql => format!("{alias}.{}", n.object("queued_user_id")),
        _ => format!("{alias}.{}", n.jobs.user_id),
    }
}

/// `{alias}` may run now; takes one `?` (now).
pub(super) fn due(n: &Names, alias: &str) -> String {
    let after = &n.jobs.process_after;
    format!("({alias}.{after} IS NULL OR {alias}.{after} <= ?)")
}

/// The users with eligible jobs, one row each (`user_id`), without reading
/// their jobs: a skip scan of the queue index. PostgreSQL and SQLite have no
/// skip scan of their own, so a recursive query jumps from each user to the
/// next; MySQL/MariaDB do it for a GROUP BY on the index prefix ("Using index
/// for group-by"), and cap recursion at 1,000 steps besides.
fn waiting_users(n: &Names) -> String {
    let e = eligible(n, "j");
    let o = owner(n, "j");
    let jobs = &n.jobs.table;
    match n.backend {
        DbBackend::MySql => {
            format!("SELECT {o} AS user_id FROM {jobs} j WHERE {e} GROUP BY {o}")
        }
        _ => format!(
            "WITH RECURSIVE waiting(user_id) AS (\
                SELECT MIN({o}) FROM {jobs} j WHERE {e} \
                UNION ALL \
                SELECT (SELECT {o} FROM {jobs} j WHERE {e} AND {o} > w.user_id \
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
pub(super) fn candidates(n: &Names, first_round: bool) -> String {
    let e = eligible(n, "j");
    let o = owner(n, "j");
    let d = due(n, "j");
    let j = &n.jobs;
    // The `offset`-th eligible due job of the user `user`.
    let nth = |user: &str, offset: &str| {
        format!(
            "(SELECT j.{id} FROM {jobs} j WHERE {e} AND {o} = {user} AND {d} \
              ORDER BY j.{created}, j.{id} LIMIT 1{offset})",
            id = j.id,
            jobs = j.table,
            created = j.created_at,
        )
    };
    let head = nth("w.user_id", "");
    let job = if first_round {
        "head_id".to_owned()
    } else {
        nth("v.user_id", " OFFSET ?")
    };
    let waiting = waiting_users(n);
    format!(
        "SELECT v.user_id, v.head_id, {job} AS job_id FROM (\
            SELECT w.user_id, {head} AS head_id FROM ({waiting}) w{w_kept}\
         ) v{v_kept}",
        w_kept = kept(n.backend, "w.user_id"),
        v_kept = kept(n.backend, "v.user_id, v.head_id"),
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
pub(super) fn round(n: &Names, first_round: bool) -> String {
    let e = eligible(n, "j");
    let o = owner(n, "j");
    let d = due(n, "j");
    let j = &n.jobs;
    // Scalar subqueries, not joins: each is a primary-key probe per user,
    // where a join may be planned as a hash of every eligible job.
    format!(
        "SELECT u.user_id, \
            (SELECT l.latest_dequeue FROM {last} l WHERE l.user_id = u.user_id) \
                AS latest_dequeue, \
            u.head_id, (SELECT h.{created} FROM {jobs} h WHERE h.{id} = u.head_id) \
                AS head_created_at, \
            u.job_id, (SELECT c.{created} FROM {jobs} c WHERE c.{id} = u.job_id) AS created_at, \
            CASE WHEN u.job_id IS NULL THEN (\
                SELECT COUNT(*) FROM {jobs} j WHERE {e} AND {o} = u.user_id AND {d}\
            ) END AS short_count \
         FROM ({candidates}) u WHERE u.head_id IS NOT NULL",
        last = n.last_dequeues,
        created = j.created_at,
        jobs = j.table,
        id = j.id,
        candidates = candidates(n, first_round),
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
pub(super) fn user_order(n: &Names, head: &str) -> String {
    format!(
        "l.latest_dequeue IS NOT NULL, l.latest_dequeue, {head}.{created}, {head}.{id}",
        created = n.jobs.created_at,
        id = n.jobs.id,
    )
}

/// `?, ?, …` for `n` values.
pub(super) fn list(n: usize) -> String {
    vec!["?"; n].join(", ")
}

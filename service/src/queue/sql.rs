//! The queue's statements over `execution_queue_heads` and the backend's
//! jobs table, spelled per backend where the backends differ, siblings
//! side by side. Every name comes from the schema mapping; the fragments
//! (eligible, due, a user's head) and the statements PostgreSQL's claim
//! function shares (the front, the promotion, the claim) are
//! `recents_schema::Names`', given `?`s here.

use recents_schema::Names;

/// The front of the fair order (`Names::queue_front`), skipping `skipping`
/// users (`?`s), then the window's `?`.
pub(super) fn front(n: &Names, skipping: usize) -> String {
    let skip = if skipping == 0 {
        String::new()
    } else {
        format!(" AND f.user_id NOT IN ({})", list(skipping))
    };
    n.queue_front(&skip, "?")
}

/// MySQL/MariaDB: locks one user read at the front, if no other claim holds
/// it and it is still as read (a locking read sees the newest version),
/// with the lock's time: the start time is taken there, since a time taken
/// later would let this claim stamp a later time than a claim that locked
/// after it. Takes `?`s: user, head, latest dequeue.
pub(super) fn lock_user_mysql(n: &Names) -> String {
    format!(
        "SELECT user_id, head_job_id, UTC_TIMESTAMP(6) AS locked_at FROM {heads} \
         WHERE user_id = ? AND head_job_id = ? AND latest_dequeue <=> ? FOR UPDATE SKIP LOCKED",
        heads = n.queue_heads,
    )
}

/// Rows whose scheduled jobs came due by `?`, locked (`Names::lock_due`).
pub(super) fn lock_due(n: &Names) -> String {
    n.lock_due("?")
}

/// Sets the rows of `count` users (`?`s) to their definition as of `?` (the
/// first `?`s, five of them): `Names::promote`.
pub(super) fn promote(n: &Names, count: usize) -> String {
    n.promote("?", &format!("IN ({})", list(count)))
}

/// Deletes rows left with nothing eligible among `count` users.
pub(super) fn delete_empty(n: &Names, count: usize) -> String {
    n.delete_empty(&format!("IN ({})", list(count)))
}

/// `UPDATE … SET` of a claimed job on MySQL/MariaDB and SQLite; takes
/// `?`s: start time, heartbeat time, worker.
pub(super) fn set_processing(n: &Names) -> String {
    n.set_processing("?", "?", "?")
}

/// SQLite: claims the `count` heads (`?`s) still eligible and due at `?`.
/// Takes `?`s: start time, now, worker, heads, now.
pub(super) fn claim_heads_sqlite(n: &Names, count: usize) -> String {
    let j = &n.jobs;
    format!(
        "{set} WHERE {id} IN ({heads}) AND {eligible} AND {due} RETURNING {columns}",
        set = set_processing(n),
        id = j.id,
        heads = list(count),
        eligible = n.job_eligible(&j.table),
        due = n.job_due(&j.table, "?"),
        columns = j.all_as_recents(""),
    )
}

/// MySQL/MariaDB: locks one head if it is still eligible and due at `?`
/// and no other transaction holds it. Takes `?`s: job, now.
pub(super) fn lock_head_mysql(n: &Names) -> String {
    format!(
        "SELECT j.{id} AS id FROM {jobs} j \
         WHERE j.{id} = ? AND {eligible} AND {due} FOR UPDATE SKIP LOCKED",
        id = n.jobs.id,
        jobs = n.jobs.table,
        eligible = n.job_eligible("j"),
        due = n.job_due("j", "?"),
    )
}

/// The greatest latest dequeue: one probe of `idx_execution_last_dequeues_latest`.
pub(super) fn latest_dequeue(n: &Names) -> String {
    format!(
        "SELECT MAX(latest_dequeue) AS latest FROM {}",
        n.last_dequeues
    )
}

/// Whether any job is eligible and due at `?`.
pub(super) fn any_eligible(n: &Names) -> String {
    format!(
        "SELECT j.{id} AS id FROM {jobs} j WHERE {e} AND {d} LIMIT 1",
        id = n.jobs.id,
        jobs = n.jobs.table,
        e = n.job_eligible("j"),
        d = n.job_due("j", "?"),
    )
}

/// Every row as of `?` (six `?`s, all now): a row whose scheduled jobs came
/// due reads as its definition now, without writing it (readers do not
/// promote).
pub(super) fn rows_now(n: &Names) -> String {
    let user = "r.user_id";
    let stale = "r.next_due_at <= ?";
    format!(
        "SELECT r.user_id, r.latest_dequeue, \
         CASE WHEN {stale} THEN {head_id} ELSE r.head_job_id END AS head_job_id, \
         CASE WHEN {stale} THEN {head_created} ELSE r.head_created_at END AS head_created_at, \
         CASE WHEN {stale} THEN {count_of} ELSE r.due_count END AS due_count \
         FROM {heads} r",
        heads = n.queue_heads,
        head_id = n.head_probe(&n.jobs.id, user, "?"),
        head_created = n.head_probe(&n.jobs.created_at, user, "?"),
        count_of = n.due_count_probe(user, "?"),
    )
}

/// The first `?` eligible jobs due at `?` of each of `count` users (`?`,
/// then those two, per user): one probe of the queue index per user.
pub(super) fn first_jobs(n: &Names, count: usize) -> String {
    let j = &n.jobs;
    let one = format!(
        "SELECT * FROM (SELECT fj.{id} AS job_id, fj.{user} AS user_id, fj.{created} AS created_at \
         FROM {jobs} fj WHERE {e} AND {o} = ? AND {d} ORDER BY fj.{created}, fj.{id} LIMIT ?) fj",
        id = j.id,
        user = j.user_id,
        created = j.created_at,
        jobs = j.table,
        e = n.job_eligible("fj"),
        o = n.job_owner("fj"),
        d = n.job_due("fj", "?"),
    );
    vec![one; count].join(" UNION ALL ")
}

/// How many eligible jobs due at `?` of user `?` come before the job
/// (`created_at`, id) `?, ?, ?`: that job's place in its user's queue, less one.
pub(super) fn earlier_in_user_queue(n: &Names) -> String {
    format!(
        "SELECT COUNT(*) AS n FROM {jobs} j WHERE {e} AND {o} = ? AND {d} \
         AND (j.{created} < ? OR (j.{created} = ? AND j.{id} < ?))",
        jobs = n.jobs.table,
        created = n.jobs.created_at,
        id = n.jobs.id,
        e = n.job_eligible("j"),
        o = n.job_owner("j"),
        d = n.job_due("j", "?"),
    )
}

/// Each row of users in `[?, ?]` beside its definition as of its own
/// `as_of` (a user with eligible jobs has some due by then or a next due
/// time after it).
pub(super) fn rows_and_definitions(n: &Names) -> String {
    let user = "r.user_id";
    let at = "r.as_of";
    format!(
        "SELECT r.user_id, r.latest_dequeue, r.head_job_id, r.head_created_at, r.due_count, \
         r.next_due_at, r.as_of, \
         (SELECT ld.latest_dequeue FROM {last} ld WHERE ld.user_id = r.user_id) AS d_latest_dequeue, \
         {head_id} AS d_head_job_id, {head_created} AS d_head_created_at, \
         {count_of} AS d_due_count, {next} AS d_next_due_at \
         FROM {heads} r WHERE r.user_id >= ? AND r.user_id <= ?",
        last = n.last_dequeues,
        head_id = n.head_probe(&n.jobs.id, user, at),
        head_created = n.head_probe(&n.jobs.created_at, user, at),
        count_of = n.due_count_probe(user, at),
        next = n.next_due_probe(user, at),
        heads = n.queue_heads,
    )
}

/// Users in `[?, ?]` with eligible jobs and no row.
pub(super) fn users_without_row(n: &Names) -> String {
    format!(
        "SELECT {owner} AS user_id FROM {jobs} j WHERE {eligible} AND {owner} >= ? AND {owner} <= ? \
         AND NOT EXISTS (SELECT 1 FROM {heads} h WHERE h.user_id = {owner}) GROUP BY {owner}",
        owner = n.job_owner("j"),
        jobs = n.jobs.table,
        eligible = n.job_eligible("j"),
        heads = n.queue_heads,
    )
}

/// `?, ?, …` for `n` values.
pub(super) fn list(n: usize) -> String {
    vec!["?"; n].join(", ")
}

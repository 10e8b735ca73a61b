//! The queue's statements over `execution_queue_heads` and the backend's
//! jobs table, spelled per backend where the backends differ, siblings
//! side by side. Every name comes from the schema mapping; the fragments
//! (eligible, due, a user's head) are `recents_schema::Names`'.

use recents_schema::Names;
use sea_orm::DbBackend;

/// The claimable rows, in the fair order of users: those with a head; a
/// plain read (READ COMMITTED on MySQL/MariaDB: the newest commits). Takes
/// `?`s: skipped users, window. Expected plan on PostgreSQL: an Index Scan of the partial index
/// `idx_execution_queue_heads_order` from its front, whatever the number of
/// waiting users; no Sort.
pub(super) fn front(n: &Names, skipping: usize) -> String {
    let skip = if skipping == 0 {
        String::new()
    } else {
        format!(" AND f.user_id NOT IN ({})", list(skipping))
    };
    format!(
        "SELECT f.user_id, f.latest_dequeue, f.head_job_id, f.head_created_at \
         FROM {heads} f WHERE f.head_job_id IS NOT NULL{skip} ORDER BY {order} LIMIT ?",
        heads = n.queue_heads,
        order = n.queue_head_order("f"),
    )
}

/// PostgreSQL: one round of a claim in one statement. It locks up to `?`
/// users of the front's first `?` (after the skipped users' `?`s), each
/// still as the front read it, skipping users other claims hold; then
/// their heads that are still eligible and due at `?` and that no other
/// transaction holds; and sets those processing (the worker `?` comes
/// first). The lock re-reads a row another transaction changed since the
/// snapshot and re-evaluates the join against the front's values: a user
/// served (or whose head changed) in between is passed over, not served
/// again from a stale place. The start time is taken in the same statement,
/// microseconds after the user's lock: a time taken a round trip later
/// would let a claim stamp a later time than claims that locked after it,
/// and put its user a round behind. The users' rows are reached through
/// their primary key, one probe per user of the front (`= ANY` of the
/// front's ids): joined to the front alone, the planner chose, by cost, a
/// hash join over a sequential scan of every user's row once the window
/// and the users were a few thousand.
pub(super) fn claim_front_pg(n: &Names, skipping: usize) -> String {
    let j = &n.jobs;
    format!(
        "WITH c AS MATERIALIZED ({front}), held AS MATERIALIZED (\
            SELECT h.user_id, h.head_job_id FROM {heads} h JOIN c \
              ON h.user_id = c.user_id AND h.head_job_id = c.head_job_id \
             AND h.latest_dequeue IS NOT DISTINCT FROM c.latest_dequeue \
            WHERE h.user_id = ANY (ARRAY(SELECT c.user_id FROM c)) \
            ORDER BY {order} LIMIT ? FOR UPDATE OF h SKIP LOCKED\
         ), claimable AS MATERIALIZED (\
            SELECT cj.{id} FROM {jobs} cj WHERE cj.{id} IN (SELECT head_job_id FROM held) \
            AND {eligible} AND {due} FOR UPDATE OF cj SKIP LOCKED\
         ) {set} WHERE {id} IN (SELECT {id} FROM claimable) RETURNING {columns}",
        heads = n.queue_heads,
        front = front(n, skipping),
        order = n.queue_head_order("c"),
        id = j.id,
        jobs = j.table,
        eligible = n.job_eligible("cj"),
        due = n.job_due("cj", "?"),
        set = set_processing(n),
        columns = j.all_as_recents(""),
    )
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

/// Rows whose scheduled jobs came due by `?`: they are brought up to date
/// before a claim reads the front. Locking, skipping rows other claims
/// hold (those claims promote them).
pub(super) fn lock_due(n: &Names) -> String {
    let lock = match n.backend {
        DbBackend::Sqlite => "",
        _ => " FOR UPDATE SKIP LOCKED",
    };
    format!(
        "SELECT user_id FROM {heads} WHERE next_due_at <= ? ORDER BY user_id LIMIT 1000{lock}",
        heads = n.queue_heads,
    )
}

/// Sets the rows of `count` users (`?`s) to their definition as of `?` (the
/// first `?`s, five of them). A later statement than the lock, so
/// PostgreSQL's READ COMMITTED reads the jobs as committed after it.
pub(super) fn promote(n: &Names, count: usize) -> String {
    let user = "pr.user_id";
    format!(
        "UPDATE {heads} AS pr SET latest_dequeue = \
             (SELECT ld.latest_dequeue FROM {last} ld WHERE ld.user_id = pr.user_id), \
         head_job_id = {head_id}, head_created_at = {head_created}, \
         due_count = {count_of}, next_due_at = {next}, as_of = ? WHERE pr.user_id IN ({users})",
        heads = n.queue_heads,
        last = n.last_dequeues,
        head_id = n.head_probe(&n.jobs.id, user, "?"),
        head_created = n.head_probe(&n.jobs.created_at, user, "?"),
        count_of = n.due_count_probe(user, "?"),
        next = n.next_due_probe(user, "?"),
        users = list(count),
    )
}

/// Deletes rows left with nothing eligible among `count` users.
pub(super) fn delete_empty(n: &Names, count: usize) -> String {
    format!(
        "DELETE FROM {heads} WHERE user_id IN ({users}) AND due_count <= 0 AND next_due_at IS NULL",
        heads = n.queue_heads,
        users = list(count),
    )
}

/// `UPDATE … SET` of a claimed job; takes `?`s: (but on PostgreSQL) start
/// time and now, then the worker. PostgreSQL takes the start time itself,
/// at the row's update: after every latest dequeue (one probe of
/// `idx_execution_last_dequeues_latest`), never past the latest storable time.
pub(super) fn set_processing(n: &Names) -> String {
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

//! The fair queue's claim statements: the front of the order, the promotion
//! of rows whose scheduled jobs came due, and PostgreSQL's one-statement
//! claim round. The service sends them with `?` parameters (MySQL/MariaDB
//! and SQLite, and the promotion on every backend); on PostgreSQL the claim
//! function of migration 14 runs the same text with its own variables, so
//! each takes its operands as expressions.

use sea_orm::DbBackend;

use crate::Names;

/// Users read from the front of the order per job asked for, beyond the
/// ones other claims may hold: a claim passes over those.
pub const FRONT_SLACK: u64 = 64;

/// PostgreSQL's claim function (migration 14), before the prefix.
const CLAIM_FUNCTION: &str = "execution_queue_claim";

/// The widest front a claim reads before it decides that every user with a
/// head is held by other claims.
pub const MAX_FRONT: u64 = 1 << 20;

impl Names {
    /// PostgreSQL's claim function, prefixed and quoted: `(want bigint,
    /// worker text, now timestamptz) RETURNS SETOF` the jobs table.
    pub fn queue_claim(&self) -> String {
        self.object(CLAIM_FUNCTION)
    }

    /// The claimable rows, in the fair order of users: those with a head,
    /// the first `{limit}` (an expression), `{skip}` added to the condition
    /// (`""`, or ` AND f.user_id NOT IN (…)`). A plain read. Expected plan
    /// on PostgreSQL: an Index Scan of the partial index
    /// `idx_execution_queue_heads_order` from its front, whatever the number
    /// of waiting users; no Sort.
    pub fn queue_front(&self, skip: &str, limit: &str) -> String {
        format!(
            "SELECT f.user_id, f.latest_dequeue, f.head_job_id, f.head_created_at \
             FROM {heads} f WHERE f.head_job_id IS NOT NULL{skip} ORDER BY {order} LIMIT {limit}",
            heads = self.queue_heads,
            order = self.queue_head_order("f"),
        )
    }

    /// Whether more than `{window}` users have a head.
    pub fn queue_front_beyond(&self, window: &str) -> String {
        format!(
            "SELECT f.user_id FROM {heads} f WHERE f.head_job_id IS NOT NULL \
             ORDER BY {order} LIMIT 1 OFFSET {window}",
            heads = self.queue_heads,
            order = self.queue_head_order("f"),
        )
    }

    /// `UPDATE … SET` of a claimed job by worker `{worker}`, started at
    /// `{started}` and with its first heartbeat at `{beat}` (expressions).
    pub fn set_processing(&self, started: &str, beat: &str, worker: &str) -> String {
        let j = &self.jobs;
        format!(
            "UPDATE {jobs} SET {state} = 'processing', {started_at} = {started}, \
             {heartbeat} = {beat}, {worker_col} = {worker}",
            jobs = j.table,
            state = j.state,
            started_at = j.started_at,
            heartbeat = j.last_heartbeat_at,
            worker_col = j.worker_hostname,
        )
    }

    /// PostgreSQL: a claim's start time, taken by the server at the row's
    /// update: after every latest dequeue (one probe of
    /// `idx_execution_last_dequeues_latest`), never past the latest storable
    /// time.
    fn claim_start_pg(&self) -> String {
        format!(
            "LEAST(GREATEST(clock_timestamp(), \
                 (SELECT MAX(latest_dequeue) FROM {last}) + INTERVAL '1 microsecond'), \
                 TIMESTAMPTZ '9999-12-31 23:59:59.999999+00')",
            last = self.last_dequeues,
        )
    }

    /// PostgreSQL: one round of a claim in one statement. It locks up to
    /// `{want}` users of the front's first `{window}`, each still as the
    /// front read it, skipping users other claims hold; then their heads
    /// that are still eligible and due at `{now}` and that no other
    /// transaction holds; and sets those processing by `{worker}`, returning
    /// their rows whole (`RETURNING *`).
    ///
    /// The lock re-reads a row another transaction changed since the
    /// snapshot and re-evaluates the join against the front's values: a user
    /// served (or whose head changed) in between is passed over, not served
    /// again from a stale place. The start time is taken in the same
    /// statement, microseconds after the user's lock: a time taken a round
    /// trip later would let a claim stamp a later time than claims that
    /// locked after it, and put its user a round behind. The users' rows are
    /// reached through their primary key, one probe per user of the front
    /// (`= ANY` of the front's ids): joined to the front alone, the planner
    /// chose, by cost, a hash join over a sequential scan of every user's
    /// row once the window and the users were a few thousand.
    pub fn claim_front_pg(&self, window: &str, want: &str, now: &str, worker: &str) -> String {
        let j = &self.jobs;
        format!(
            "WITH c AS MATERIALIZED ({front}), held AS MATERIALIZED (\
                SELECT h.user_id, h.head_job_id FROM {heads} h JOIN c \
                  ON h.user_id = c.user_id AND h.head_job_id = c.head_job_id \
                 AND h.latest_dequeue IS NOT DISTINCT FROM c.latest_dequeue \
                WHERE h.user_id = ANY (ARRAY(SELECT c.user_id FROM c)) \
                ORDER BY {order} LIMIT {want} FOR UPDATE OF h SKIP LOCKED\
             ), claimable AS MATERIALIZED (\
                SELECT cj.{id} FROM {jobs} cj WHERE cj.{id} IN (SELECT head_job_id FROM held) \
                AND {eligible} AND {due} FOR UPDATE OF cj SKIP LOCKED\
             ) {set} WHERE {id} IN (SELECT {id} FROM claimable) RETURNING *",
            heads = self.queue_heads,
            front = self.queue_front("", window),
            order = self.queue_head_order("c"),
            id = j.id,
            jobs = j.table,
            eligible = self.job_eligible("cj"),
            due = self.job_due("cj", now),
            set = self.set_processing(&self.claim_start_pg(), "clock_timestamp()", worker),
        )
    }

    /// Rows whose scheduled jobs came due by `{at}`: they are brought up to
    /// date before a claim reads the front. Locking, skipping rows other
    /// claims hold (those claims promote them).
    pub fn lock_due(&self, at: &str) -> String {
        let lock = match self.backend {
            DbBackend::Sqlite => "",
            _ => " FOR UPDATE SKIP LOCKED",
        };
        format!(
            "SELECT user_id FROM {heads} WHERE next_due_at <= {at} ORDER BY user_id LIMIT 1000{lock}",
            heads = self.queue_heads,
        )
    }

    /// Sets the rows of the users `user_id {users}` (e.g. `IN (…)`), held by
    /// this transaction, to their definition as of `{at}`. A later statement
    /// than the lock, so PostgreSQL's READ COMMITTED reads the jobs as
    /// committed after it.
    pub fn promote(&self, at: &str, users: &str) -> String {
        let user = "pr.user_id";
        format!(
            "UPDATE {heads} AS pr SET latest_dequeue = \
                 (SELECT ld.latest_dequeue FROM {last} ld WHERE ld.user_id = pr.user_id), \
             head_job_id = {head_id}, head_created_at = {head_created}, \
             due_count = {count_of}, next_due_at = {next}, as_of = {at} WHERE pr.user_id {users}",
            heads = self.queue_heads,
            last = self.last_dequeues,
            head_id = self.head_probe(&self.jobs.id, user, at),
            head_created = self.head_probe(&self.jobs.created_at, user, at),
            count_of = self.due_count_probe(user, at),
            next = self.next_due_probe(user, at),
        )
    }

    /// Deletes the rows left with nothing eligible among the users
    /// `user_id {users}`.
    pub fn delete_empty(&self, users: &str) -> String {
        format!(
            "DELETE FROM {heads} WHERE user_id {users} AND due_count <= 0 AND next_due_at IS NULL",
            heads = self.queue_heads,
        )
    }
}

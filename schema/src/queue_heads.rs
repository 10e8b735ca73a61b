//! The fair queue's fragments over the backend's jobs table, shared by the
//! migration that keeps `execution_queue_heads` (its triggers and fill) and
//! the service that reads, promotes, verifies and repairs those rows: one
//! spelling of "eligible", "due" and "a user's head", so the rows the
//! triggers write and the rows verify expects are the same definition.
//!
//! A user's row holds, **as of** its `as_of` time: the user's oldest eligible
//! job due by then (`head_job_id`, `head_created_at`), how many eligible jobs
//! are due by then (`due_count`), the earliest `process_after` after it
//! (`next_due_at`: when the row must be brought up to date), and the user's
//! latest dequeue. A row exists exactly for the users with eligible jobs.

use sea_orm::DbBackend;

use crate::Names;

impl Names {
    /// `{alias}` is a queued or errored job that is not canceled, written as
    /// the predicate of the backend's queue index so the planner uses it:
    /// `idx_execution_jobs_queue` is partial on PostgreSQL and SQLite, and on
    /// MySQL/MariaDB indexes the virtual column `queued_user_id`.
    pub fn job_eligible(&self, alias: &str) -> String {
        match self.backend {
            DbBackend::MySql => format!("{alias}.{} IS NOT NULL", self.object("queued_user_id")),
            _ => format!(
                "{alias}.{state} IN ('queued', 'errored') AND NOT {alias}.{cancel}",
                state = self.jobs.state,
                cancel = self.jobs.cancel,
            ),
        }
    }

    /// The user column the queue index leads with.
    pub fn job_owner(&self, alias: &str) -> String {
        match self.backend {
            DbBackend::MySql => format!("{alias}.{}", self.object("queued_user_id")),
            _ => format!("{alias}.{}", self.jobs.user_id),
        }
    }

    /// `{alias}` may run at `{at}` (an expression).
    pub fn job_due(&self, alias: &str, at: &str) -> String {
        let after = &self.jobs.process_after;
        format!("({alias}.{after} IS NULL OR {alias}.{after} <= {at})")
    }

    /// The column `column` of user `{user}`'s oldest eligible job due at
    /// `{at}`: a walk of the queue index from the user's oldest job.
    pub fn head_probe(&self, column: &str, user: &str, at: &str) -> String {
        format!(
            "(SELECT hp.{column} FROM {jobs} hp WHERE {e} AND {o} = {user} AND {d} \
              ORDER BY hp.{created}, hp.{id} LIMIT 1)",
            jobs = self.jobs.table,
            e = self.job_eligible("hp"),
            o = self.job_owner("hp"),
            d = self.job_due("hp", at),
            created = self.jobs.created_at,
            id = self.jobs.id,
        )
    }

    /// How many eligible jobs of `{user}` are due at `{at}` (the user's whole
    /// range of the queue index: only a row's creation and its promotion
    /// count, never a claim).
    pub fn due_count_probe(&self, user: &str, at: &str) -> String {
        format!(
            "(SELECT COUNT(*) FROM {jobs} cp WHERE {e} AND {o} = {user} AND {d})",
            jobs = self.jobs.table,
            e = self.job_eligible("cp"),
            o = self.job_owner("cp"),
            d = self.job_due("cp", at),
        )
    }

    /// The earliest `process_after` after `{at}` of `{user}`'s eligible
    /// jobs: one probe of `idx_execution_jobs_scheduled`.
    pub fn next_due_probe(&self, user: &str, at: &str) -> String {
        format!(
            "(SELECT MIN(np.{after}) FROM {jobs} np WHERE {e} AND {o} = {user} AND np.{after} > {at})",
            jobs = self.jobs.table,
            after = self.jobs.process_after,
            e = self.job_eligible("np"),
            o = self.job_owner("np"),
        )
    }

    /// The columns of `execution_queue_heads`, in the order of
    /// [`queue_head_of`](Self::queue_head_of)'s values.
    pub fn queue_head_columns(&self) -> &'static str {
        "user_id, latest_dequeue, head_job_id, head_created_at, due_count, next_due_at, as_of"
    }

    /// The values of user `{user}`'s row as of `{at}` (both expressions), in
    /// the order of [`queue_head_columns`](Self::queue_head_columns): the
    /// definition every row is kept equal to.
    pub fn queue_head_of(&self, user: &str, at: &str) -> String {
        format!(
            "{user}, (SELECT ld.latest_dequeue FROM {last} ld WHERE ld.user_id = {user}), \
             {head_id}, {head_created}, {count}, {next}, {at}",
            last = self.last_dequeues,
            head_id = self.head_probe(&self.jobs.id, user, at),
            head_created = self.head_probe(&self.jobs.created_at, user, at),
            count = self.due_count_probe(user, at),
            next = self.next_due_probe(user, at),
        )
    }

    /// The fair order of users over `execution_queue_heads` aliased
    /// `{alias}` (`""`: unqualified), as its walk index
    /// `idx_execution_queue_heads_order` holds it: never-served users first
    /// (every backend but PostgreSQL sorts NULL first already), then the
    /// latest dequeue, then the user's head.
    pub fn queue_head_order(&self, alias: &str) -> String {
        let nulls_first = match self.backend {
            DbBackend::Postgres => " NULLS FIRST",
            _ => "",
        };
        let a = if alias.is_empty() {
            String::new()
        } else {
            format!("{alias}.")
        };
        format!("{a}latest_dequeue{nulls_first}, {a}head_created_at, {a}head_job_id")
    }
}

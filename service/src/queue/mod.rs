//! The fair execution queue: one user's thousand jobs never starve everyone
//! else.
//!
//! **Eligible** jobs are `queued` or `errored`, not canceled, and due
//! (`process_after` is NULL or past). A job's `place_in_user_queue` is its
//! rank among its user's eligible jobs by `(created_at, id)`. The **fair
//! order** sorts all eligible jobs by `place_in_user_queue`, then by their
//! user: `latest_dequeue` NULLS FIRST (the user's greatest `started_at`, in
//! `execution_last_dequeues`, kept by database triggers), then the user's
//! oldest eligible job `(created_at, id)`. So [`dequeue`] hands out the
//! oldest job of the user served longest ago (never-served users first, the
//! one waiting longest first); once every waiting user had one, the second
//! round starts, in the same order of users.
//!
//! Users that tie on `latest_dequeue` (all never-served users do) are ordered
//! by their oldest job, not by the job of the round: then every round visits
//! users in one order, which is the order in which dequeues serve them, and a
//! job's [`place_in_queue`] is exactly when dequeue hands it out. [`dequeue`]
//! keeps start times strictly increasing for the same reason.
//!
//! Cost: each user with eligible jobs has one row in `execution_queue_heads`
//! (its head job, its count of due jobs, its next due time and its latest
//! dequeue), kept exact by triggers on the jobs table whatever writes it,
//! and indexed in the order in which users are served. [`dequeue`] and
//! [`dequeue_many`] read the front of that index: O(1) rows per job handed
//! out, whatever the number of waiting users or jobs. [`place_in_queue`] and
//! [`next_in_line`] read the rows (one per waiting user) and, for places
//! beyond a user's head, that user's jobs only. A row whose scheduled jobs
//! came due is brought up to date by the next claim (readers compute it).
//! [`verify_queue_heads`] and [`repair_queue_heads`] check the rows against
//! their definition; [`fair_order_from_history`] is the order's definition
//! (window functions over every eligible job) that the tests compare with.
//!
//! ```no_run
//! # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
//! use recents_service::queue::{self, NewJob, QueueOptions};
//! use recents_service::UserId;
//!
//! queue::enqueue(db, &NewJob::now(UserId(7), serde_json::json!({"workspace": 5}))).await?;
//! if let Some(job) = queue::dequeue(db, "worker-1").await? {   // processing, heartbeat set
//!     // ... run it, calling queue::heartbeat(db, "worker-1", &[id]) meanwhile ...
//!     queue::complete(db, &job).await?;
//! }
//! queue::reset_stalled(db, std::time::Duration::from_secs(60), 3).await?; // from a cron
//! # Ok(()) }
//! ```

mod fair_order;
mod heads;
mod history;
mod last_dequeues;
mod lifecycle;
mod sql;
mod stalled;
mod throughput;
mod worker;
mod workers_seen;

use chrono::{DateTime, Utc};
pub use recents_entity::execution_job::{JobState, Model as Job};

use crate::ids::{JobId, UserId};

pub use fair_order::{MAX_DEQUEUE_BATCH, dequeue, dequeue_many, next_in_line, place_in_queue};
pub use heads::{
    QueueHead, QueueHeadDrift, QueueHeadReport, repair_queue_heads, verify_queue_heads,
};
pub use history::fair_order_from_history;
pub(crate) use last_dequeues::merge_batch as merge_last_dequeues_batch;
pub use last_dequeues::{
    LastDequeueDrift, LastDequeueReport, repair_last_dequeues, verify_last_dequeues,
};
pub use lifecycle::{
    MAX_FAILURE_MESSAGE_BYTES, cancel, complete, enqueue, enqueue_many, fail, heartbeat,
    reset_stalled,
};
pub use stalled::stalled_jobs;
pub use throughput::{Throughput, throughput};
#[cfg(feature = "signal")]
pub use worker::shutdown_on_signal;
pub use worker::{
    CLAIM_LATENCY_BOUNDS, CancellationToken, ClaimLatency, JobContext, JobHandler, MAX_CONCURRENCY,
    StopReason, WAKEUP_CHANNEL, Worker, WorkerMetrics, WorkerMetricsHandle, WorkerReport,
};
pub use workers_seen::{WorkerSeen, workers};

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// Whose job it is: fairness is between users.
    pub user_id: UserId,
    /// What to run, for the worker.
    pub payload: serde_json::Value,
    /// Not eligible before this time; `None` for at once.
    pub process_after: Option<DateTime<Utc>>,
}

impl NewJob {
    /// A job eligible at once.
    pub fn now(user_id: UserId, payload: serde_json::Value) -> Self {
        Self {
            user_id,
            payload,
            process_after: None,
        }
    }
}

/// How failures are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// A failing job is `failed` for good at this many failures; before, it
    /// is `errored` and eligible again after [`backoff`](Self::backoff).
    pub max_failures: i32,
    /// How long an errored job waits before it is eligible again.
    pub backoff: std::time::Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            max_failures: 3,
            backoff: std::time::Duration::from_secs(30),
        }
    }
}

/// Where a waiting job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// 1 for the user's oldest eligible job.
    pub place_in_user_queue: u64,
    /// 1 for the job the next [`dequeue`] hands out.
    pub place_in_global_queue: u64,
}

/// A job in the fair order, as [`next_in_line`] and
/// [`fair_order_from_history`] list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InLine {
    /// The job.
    pub job_id: JobId,
    /// Its user.
    pub user_id: UserId,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// Its user's latest dequeue (`None`: never served).
    pub latest_dequeue: Option<DateTime<Utc>>,
    /// Its places.
    pub place: Place,
}

/// What a worker learns from a [`heartbeat`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Jobs still `processing` by this worker: their heartbeat was recorded.
    pub alive: Vec<JobId>,
    /// Of those, jobs canceled since: the worker should stop them.
    pub canceled: Vec<JobId>,
}

/// What [`reset_stalled`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// Stalled jobs back in the queue (`num_resets` + 1).
    pub requeued: Vec<JobId>,
    /// Stalled jobs past `max_resets`, now `failed`.
    pub failed: Vec<JobId>,
    /// Stalled jobs canceled while they ran, now `canceled`.
    pub canceled: Vec<JobId>,
}

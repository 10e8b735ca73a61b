//! The worker runtime of the fair queue: claims jobs, runs a handler for
//! each with its heartbeats kept for it, records the result, and shuts down
//! without losing a job. What every adopter would otherwise write around
//! [`dequeue`](super::dequeue), [`heartbeat`](super::heartbeat),
//! [`complete`](super::complete) and [`fail`](super::fail).

mod handler;
mod leader;
mod metrics;
mod supervise;
mod wakeup;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument;

pub use handler::{JobContext, JobHandler, StopReason};
pub use metrics::{CLAIM_LATENCY_BOUNDS, ClaimLatency, WorkerMetrics, WorkerMetricsHandle};
/// Re-exported for [`Worker::run`]'s shutdown: `token.cancelled_owned()`.
pub use tokio_util::sync::CancellationToken;
pub use wakeup::WAKEUP_CHANNEL;

use super::fair_order::worker_name;
use super::{Job, QueueOptions};
use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::JobId;
use metrics::Counters;
use supervise::{Outcome, Supervision};

/// The most handlers one worker runs at once: one [`heartbeat`] call covers
/// them all.
pub const MAX_CONCURRENCY: usize = 1_000;

/// A worker of the fair queue: claims up to `concurrency` jobs and runs
/// `handler` on each. Built with [`Worker::new`] and the options below, run
/// with [`Worker::run`].
///
/// - Heartbeats: every [`heartbeat_interval`](Self::heartbeat_interval), one
///   [`heartbeat`] for all jobs in flight. A job found canceled, or no longer
///   held by this worker (reset as stalled, maybe running elsewhere), has its
///   [`JobContext`] canceled and its result is not recorded.
/// - Results: `Ok` completes the job; `Err`, a panic, or a run past the
///   [`handler_timeout`](Self::handler_timeout) fails it with the message
///   (retried as [`queue_options`](Self::queue_options) say).
/// - Idle: polls from [`poll_interval`](Self::poll_interval)'s minimum,
///   doubling to its maximum while the queue stays empty; on PostgreSQL an
///   enqueue wakes idle workers at once (LISTEN on [`WAKEUP_CHANNEL`]).
/// - Stalled jobs: one worker of the fleet (elected by a session lock on
///   PostgreSQL and MySQL/MariaDB) runs [`reset_stalled`](super::reset_stalled)
///   every [`reset_every`](Self::reset_every).
///
/// ```no_run
/// # async fn example(db: sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
/// use std::time::Duration;
/// use recents_service::queue::{Job, JobContext, QueueOptions, Worker, shutdown_on_signal};
///
/// let worker = Worker::new(db, "host-1:4242", |job: Job, ctx: JobContext| async move {
///     tracing::info!(payload = %job.payload, "running");
///     if ctx.is_canceled() {
///         return Ok(()); // canceled or lost: nothing is recorded anyway
///     }
///     Ok::<_, std::io::Error>(()) // Err(e): failed with e's message
/// })
/// .concurrency(8)                                                  // handlers in flight
/// .batch(4)                                                        // jobs per claim
/// .poll_interval(Duration::from_millis(100), Duration::from_secs(5)) // idle backoff
/// .heartbeat_interval(Duration::from_secs(10))
/// .stall_age(Duration::from_secs(60))
/// .reset_every(Duration::from_secs(15), 3)                         // the elected resetter
/// .queue_options(QueueOptions { max_failures: 5, backoff: Duration::from_secs(30) })
/// .handler_timeout(Duration::from_secs(300))
/// .cancel_grace(Duration::from_secs(10))
/// .shutdown_grace(Duration::from_secs(30));
/// let metrics = worker.metrics(); // readable while it runs
/// let report = worker.run(shutdown_on_signal()).await?; // until SIGTERM / Ctrl-C
/// println!("completed {}, abandoned {}", report.completed, report.abandoned);
/// println!("claimed {}", metrics.snapshot().claimed);
/// # Ok(()) }
/// ```
pub struct Worker<H> {
    conn: DatabaseConnection,
    name: Arc<str>,
    handler: Arc<H>,
    options: Options,
    counters: Arc<Counters>,
}

#[derive(Clone, Debug)]
struct Options {
    concurrency: usize,
    batch: usize,
    poll_min: Duration,
    poll_max: Duration,
    heartbeat_interval: Duration,
    stall_age: Duration,
    reset_every: Duration,
    max_resets: i32,
    resetter: bool,
    queue: QueueOptions,
    handler_timeout: Option<Duration>,
    cancel_grace: Duration,
    shutdown_grace: Duration,
    wakeups: bool,
    recents: Recents,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 4,
            batch: 4,
            poll_min: Duration::from_millis(100),
            poll_max: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(10),
            stall_age: Duration::from_secs(60),
            reset_every: Duration::from_secs(15),
            max_resets: 3,
            resetter: true,
            queue: QueueOptions::default(),
            handler_timeout: None,
            cancel_grace: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            wakeups: true,
            recents: Recents::standard().clone(),
        }
    }
}

/// What a [`Worker::run`] did, from its start to its return.
///
/// ```no_run
/// # fn example(report: recents_service::queue::WorkerReport) {
/// if report.abandoned > 0 {
///     eprintln!("{} jobs left for reset_stalled to hand on", report.abandoned);
/// }
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Jobs completed.
    pub completed: u64,
    /// Jobs failed for good.
    pub failed: u64,
    /// Failures recorded with a retry to come.
    pub retried: u64,
    /// Jobs stopped because they were canceled or lost (results not recorded).
    pub canceled: u64,
    /// Jobs still running at the shutdown deadline: aborted and left
    /// `processing` without heartbeats, for [`reset_stalled`](super::reset_stalled).
    pub abandoned: u64,
}

impl<H: JobHandler> Worker<H> {
    /// A worker named `name` (its `worker_hostname` on the jobs it claims:
    /// unique within the fleet, e.g. host and process id) running `handler`,
    /// with the default options: 4 handlers, claims of up to 4 jobs, polls
    /// from 100 ms to 5 s, heartbeats every 10 s, stalled after 60 s, no
    /// handler timeout, 30 s of grace at shutdown. The name is checked by
    /// [`run`](Self::run).
    ///
    /// ```no_run
    /// # fn example(db: sea_orm::DatabaseConnection) {
    /// use recents_service::queue::{Job, JobContext, Worker};
    /// let worker = Worker::new(db, "host-1:4242", |job: Job, _ctx: JobContext| async move {
    ///     println!("{}", job.payload);
    ///     Ok::<_, String>(())
    /// });
    /// # }
    /// ```
    pub fn new(conn: DatabaseConnection, name: impl Into<String>, handler: H) -> Self {
        Worker {
            conn,
            name: Arc::from(name.into()),
            handler: Arc::new(handler),
            options: Options::default(),
            counters: Arc::new(Counters::default()),
        }
    }

    /// Handlers in flight at most (1 to [`MAX_CONCURRENCY`]).
    ///
    /// ```no_run
    /// # fn example(db: sea_orm::DatabaseConnection) {
    /// # use recents_service::queue::{Job, JobContext, Worker};
    /// # let w = Worker::new(db, "w", |_: Job, _: JobContext| async { Ok::<_, String>(()) });
    /// let w = w.concurrency(16).batch(4);
    /// # }
    /// ```
    pub fn concurrency(mut self, handlers: usize) -> Self {
        self.options.concurrency = handlers;
        self
    }

    /// Jobs claimed at a time, at most (1 or more; never more than free
    /// handlers).
    pub fn batch(mut self, jobs: usize) -> Self {
        self.options.batch = jobs;
        self
    }

    /// How long an idle worker waits before it looks again: `min` after the
    /// queue was found empty, doubling up to `max` while it stays empty.
    ///
    /// ```no_run
    /// # fn example(db: sea_orm::DatabaseConnection) {
    /// # use recents_service::queue::{Job, JobContext, Worker};
    /// # let w = Worker::new(db, "w", |_: Job, _: JobContext| async { Ok::<_, String>(()) });
    /// use std::time::Duration;
    /// let w = w.poll_interval(Duration::from_millis(50), Duration::from_secs(2));
    /// # }
    /// ```
    pub fn poll_interval(mut self, min: Duration, max: Duration) -> Self {
        self.options.poll_min = min;
        self.options.poll_max = max;
        self
    }

    /// How often the jobs in flight are heartbeaten (below the stall age).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.options.heartbeat_interval = every;
        self
    }

    /// How old a heartbeat makes a job stalled, for the resetter.
    pub fn stall_age(mut self, age: Duration) -> Self {
        self.options.stall_age = age;
        self
    }

    /// How often the elected worker runs
    /// [`reset_stalled`](super::reset_stalled), and how many resets a job gets
    /// before it fails.
    pub fn reset_every(mut self, every: Duration, max_resets: i32) -> Self {
        self.options.reset_every = every;
        self.options.max_resets = max_resets;
        self
    }

    /// Whether this worker stands for election as the fleet's resetter
    /// (default: yes).
    pub fn resetter(mut self, stands: bool) -> Self {
        self.options.resetter = stands;
        self
    }

    /// How failures are retried.
    pub fn queue_options(mut self, options: QueueOptions) -> Self {
        self.options.queue = options;
        self
    }

    /// How long a handler may run: past it, its context is canceled, its
    /// task aborted and the job failed with a message saying it timed out.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.options.handler_timeout = Some(timeout);
        self
    }

    /// How long a handler whose job was canceled or lost may take to return
    /// before its task is aborted (default 10 s).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.options.cancel_grace = grace;
        self
    }

    /// How long handlers in flight at shutdown may take to finish.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.options.shutdown_grace = grace;
        self
    }

    /// Whether an idle worker on PostgreSQL LISTENs for enqueues (default:
    /// yes). Without, it polls.
    pub fn wakeups(mut self, listen: bool) -> Self {
        self.options.wakeups = listen;
        self
    }

    /// The jobs table as a schema mapping names it (default: recents' own
    /// names): every claim, heartbeat, result and reset goes through `recents`.
    pub fn recents(mut self, recents: Recents) -> Self {
        self.options.recents = recents;
        self
    }

    /// A reader of this worker's counters, valid while it runs and after.
    pub fn metrics(&self) -> WorkerMetricsHandle {
        WorkerMetricsHandle(self.counters.clone())
    }

    /// The options, checked; an error names the first bad one.
    fn checked(&self) -> Result<()> {
        worker_name(&self.name)?;
        let o = &self.options;
        let bad = |what: &'static str, why: String| Err(Error::InvalidArgument { what, why });
        if o.concurrency == 0 || o.concurrency > MAX_CONCURRENCY {
            return bad(
                "concurrency",
                format!("{}; from 1 to {MAX_CONCURRENCY}", o.concurrency),
            );
        }
        if o.batch == 0 {
            return bad("batch", "0; at least 1".into());
        }
        if o.poll_min.is_zero() || o.poll_min > o.poll_max {
            return bad(
                "poll_interval",
                format!(
                    "{:?} to {:?}; the minimum must be above zero and at most the maximum",
                    o.poll_min, o.poll_max
                ),
            );
        }
        if o.heartbeat_interval.is_zero() || o.heartbeat_interval >= o.stall_age {
            return bad(
                "heartbeat_interval",
                format!(
                    "{:?}; must be above zero and below the stall age {:?}, or live jobs are reset",
                    o.heartbeat_interval, o.stall_age
                ),
            );
        }
        if o.reset_every.is_zero() {
            return bad("reset_every", "zero".into());
        }
        if o.max_resets < 0 {
            return bad("max_resets", format!("{} is negative", o.max_resets));
        }
        if o.queue.max_failures < 1 {
            return bad(
                "max_failures",
                format!("{} is below 1", o.queue.max_failures),
            );
        }
        if o.handler_timeout.is_some_and(|t| t.is_zero()) {
            return bad("handler_timeout", "zero".into());
        }
        // Durations the queue's SQL turns into times.
        super::lifecycle::before(crate::sql::now(), o.stall_age, "stall_age")?;
        super::lifecycle::after(crate::sql::now(), o.queue.backoff, "backoff")?;
        Ok(())
    }

    /// Runs until `shutdown` resolves, then stops claiming, lets the handlers
    /// in flight finish within the [shutdown grace](Self::shutdown_grace),
    /// and aborts the rest: they stay `processing` without heartbeats, and
    /// [`reset_stalled`](super::reset_stalled) hands them on. Database errors
    /// on the way are logged and retried, never returned.
    ///
    /// `shutdown` is any future: [`shutdown_on_signal()`], or
    /// `token.cancelled_owned()` of a [`CancellationToken`].
    ///
    /// ```no_run
    /// # async fn example(db: sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
    /// # use recents_service::queue::{Job, JobContext, Worker};
    /// # let w = Worker::new(db, "w", |_: Job, _: JobContext| async { Ok::<_, String>(()) });
    /// use recents_service::queue::CancellationToken;
    /// let stop = CancellationToken::new();
    /// let running = tokio::spawn(w.run(stop.clone().cancelled_owned()));
    /// // ...
    /// stop.cancel();
    /// let report = running.await.expect("the worker task")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad worker name or option, before
    /// anything runs.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<WorkerReport> {
        self.checked()?;
        let Worker {
            conn,
            name,
            handler,
            options,
            counters,
        } = self;
        let span = tracing::info_span!("worker", worker = %name);
        let runtime = Runtime {
            conn,
            name,
            handler,
            options,
            counters,
            in_flight: HashMap::new(),
            supervisors: JoinSet::new(),
            report: WorkerReport::default(),
        };
        runtime.run(shutdown).instrument(span).await
    }
}

/// A job being run: how to stop it.
struct InFlight {
    ctx: JobContext,
    handler: AbortHandle,
    /// Still heartbeaten: not yet canceled or lost.
    beating: bool,
}

struct Runtime<H> {
    conn: DatabaseConnection,
    name: Arc<str>,
    handler: Arc<H>,
    options: Options,
    counters: Arc<Counters>,
    in_flight: HashMap<JobId, InFlight>,
    supervisors: JoinSet<(JobId, Outcome)>,
    report: WorkerReport,
}

impl<H: JobHandler> Runtime<H> {
    async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<WorkerReport> {
        let o = self.options.clone();
        let wakeups = wakeup::Wakeups::start(&self.conn, o.wakeups).await;
        tracing::info!(
            concurrency = o.concurrency,
            listening = wakeups.listening(),
            "worker started"
        );
        let stop_resetter = CancellationToken::new();
        let resetter = o.resetter.then(|| {
            tokio::spawn(leader::run_resetter(
                self.conn.clone(),
                leader::ResetPlan {
                    recents: o.recents.clone(),
                    every: o.reset_every,
                    stall_age: o.stall_age,
                    max_resets: o.max_resets,
                },
                self.counters.clone(),
                stop_resetter.clone(),
            ))
        });
        let mut beat = tokio::time::interval(o.heartbeat_interval);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.reset(); // the first beat one interval after the first claim
        let mut idle_wait = o.poll_min;
        let mut next_claim = tokio::time::Instant::now();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let free = o.concurrency.saturating_sub(self.in_flight.len());
            if deadline.is_none() && free > 0 && tokio::time::Instant::now() >= next_claim {
                let want = free.min(o.batch);
                let started = Instant::now();
                let claimed = claim(&self.options.recents, &self.conn, &self.name, want).await;
                self.counters.claim_took(started.elapsed());
                let got = match claimed {
                    Ok(jobs) => {
                        let got = jobs.len();
                        for job in jobs {
                            self.start(job);
                        }
                        got
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claim failed; backing off");
                        0
                    }
                };
                if got < want {
                    // The queue is empty (or the database failing): wait,
                    // longer each time it stays so.
                    next_claim = tokio::time::Instant::now() + idle_wait;
                    idle_wait = (idle_wait * 2).min(o.poll_max);
                } else {
                    idle_wait = o.poll_min;
                }
                continue;
            }
            if deadline.is_some() && self.supervisors.is_empty() {
                break;
            }
            let can_claim = deadline.is_none() && free > 0;
            tokio::select! {
                biased;
                () = &mut shutdown, if deadline.is_none() => {
                    tracing::info!(in_flight = self.in_flight.len(), "shutting down: no more claims");
                    deadline = Some(tokio::time::Instant::now() + o.shutdown_grace);
                }
                Some(done) = self.supervisors.join_next() => self.finished(done),
                _ = beat.tick() => self.heartbeat().await,
                () = wakeups.notify.notified(), if can_claim => {
                    next_claim = tokio::time::Instant::now();
                    idle_wait = o.poll_min;
                }
                () = tokio::time::sleep_until(next_claim), if can_claim => {}
                () = sleep_until_some(deadline) => {
                    self.abandon().await;
                    break;
                }
            }
        }
        stop_resetter.cancel();
        if let Some(resetter) = resetter {
            let _ = resetter.await;
        }
        drop(wakeups);
        tracing::info!(
            completed = self.report.completed,
            failed = self.report.failed,
            retried = self.report.retried,
            canceled = self.report.canceled,
            abandoned = self.report.abandoned,
            "worker stopped"
        );
        Ok(self.report)
    }

    /// Spawns the handler of a claimed job and its supervisor.
    fn start(&mut self, job: Job) {
        let id = JobId(job.id);
        let span = tracing::info_span!("job", job.id = job.id, user.id = job.user_id);
        let ctx = JobContext::new(&job, self.name.clone());
        let handler = self.handler.clone();
        let handler_ctx = ctx.clone();
        let handler_job = job.clone();
        let task = tokio::spawn(
            async move {
                handler
                    .handle(handler_job, handler_ctx)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
            .instrument(span.clone()),
        );
        Counters::add(&self.counters.claimed, 1);
        Counters::add(&self.counters.in_flight, 1);
        self.in_flight.insert(
            id,
            InFlight {
                ctx: ctx.clone(),
                handler: task.abort_handle(),
                beating: true,
            },
        );
        let supervision = Supervision {
            recents: self.options.recents.clone(),
            conn: self.conn.clone(),
            job,
            ctx,
            timeout: self.options.handler_timeout,
            cancel_grace: self.options.cancel_grace,
            queue: self.options.queue.clone(),
            counters: self.counters.clone(),
        };
        self.supervisors
            .spawn(async move { (id, supervision.watch(task).await) }.instrument(span));
    }

    fn finished(&mut self, done: std::result::Result<(JobId, Outcome), tokio::task::JoinError>) {
        let (id, outcome) = match done {
            Ok(done) => done,
            // Supervisors are aborted only by `abandon`, which counts them.
            Err(e) => {
                tracing::error!(error = %e, "a job's supervisor ended abnormally");
                return;
            }
        };
        if self.in_flight.remove(&id).is_some() {
            self.counters
                .in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        let r = &mut self.report;
        match outcome {
            Outcome::Completed => r.completed += 1,
            Outcome::Failed => r.failed += 1,
            Outcome::Retried => r.retried += 1,
            Outcome::Canceled => r.canceled += 1,
            Outcome::Abandoned => r.abandoned += 1,
            Outcome::Unrecorded => {}
        }
    }

    /// One heartbeat for every job still held; stops those canceled or lost.
    async fn heartbeat(&mut self) {
        let ids: Vec<JobId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.beating)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let beat = match self
            .options
            .recents
            .heartbeat(&self.conn, &self.name, &ids)
            .await
        {
            Ok(beat) => beat,
            Err(e) => {
                // Missed beats age the jobs toward a reset; the fencing of
                // complete/fail then refuses this worker's results.
                tracing::warn!(error = %e, jobs = ids.len(), "heartbeat failed");
                return;
            }
        };
        for id in ids {
            let reason = if beat.canceled.contains(&id) {
                StopReason::Canceled
            } else if !beat.alive.contains(&id) {
                StopReason::Lost
            } else {
                continue;
            };
            if let Some(f) = self.in_flight.get_mut(&id) {
                f.beating = false;
                if f.ctx.stop.fire(reason) {
                    tracing::info!(job.id = id.0, ?reason, "stopping the job's handler");
                }
            }
        }
    }

    /// At the shutdown deadline: cancels and aborts every handler still
    /// running, and waits briefly for their supervisors (a supervisor
    /// recording a result finishes its transaction).
    async fn abandon(&mut self) {
        tracing::warn!(
            jobs = self.in_flight.len(),
            "shutdown grace is over: aborting the handlers still running"
        );
        for f in self.in_flight.values() {
            f.ctx.stop.fire(StopReason::Shutdown);
            f.handler.abort();
        }
        let wait = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(done) = self.supervisors.join_next().await {
                self.finished(done);
            }
        });
        if wait.await.is_err() {
            let left = self.supervisors.len() as u64;
            self.supervisors.abort_all();
            self.report.abandoned += left;
            Counters::add(&self.counters.abandoned, left);
            self.counters.in_flight.fetch_sub(
                self.in_flight.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            self.in_flight.clear();
        }
    }
}

async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Claims up to `n` jobs for `worker`, in the fair order: one
/// [`dequeue_many`](super::dequeue_many) per batch of at most
/// [`MAX_DEQUEUE_BATCH`](super::MAX_DEQUEUE_BATCH). A failure after some
/// batches were claimed returns those (logged), so that none is left claimed
/// and unrun.
async fn claim<C>(recents: &Recents, conn: &C, worker: &str, n: usize) -> Result<Vec<Job>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let mut jobs = Vec::with_capacity(n);
    while jobs.len() < n {
        let want = (n - jobs.len()).min(super::MAX_DEQUEUE_BATCH as usize) as u32;
        match recents.dequeue_many(conn, worker, want).await {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => {
                let short = batch.len() < want as usize;
                jobs.extend(batch);
                if short {
                    break;
                }
            }
            Err(e) if jobs.is_empty() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, claimed = jobs.len(), "claim cut short");
                break;
            }
        }
    }
    Ok(jobs)
}

/// Resolves at SIGTERM or Ctrl-C (SIGINT), for [`Worker::run`].
///
/// ```no_run
/// # async fn example(db: sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
/// # use recents_service::queue::{Job, JobContext, Worker};
/// # let w = Worker::new(db, "w", |_: Job, _: JobContext| async { Ok::<_, String>(()) });
/// let report = w.run(recents_service::queue::shutdown_on_signal()).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "signal")]
pub async fn shutdown_on_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    }
}

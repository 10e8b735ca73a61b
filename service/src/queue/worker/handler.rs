//! What a [`Worker`](super::Worker) runs for each job, and what the job is
//! handed besides itself: its cancellation.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::ids::{JobId, UserId};
use crate::queue::Job;

/// Runs one job. `Ok` completes it; `Err` fails it with the error's message
/// (its alternate `{:#}` form, so an `anyhow::Error` keeps its causes), to be
/// retried as the worker's [`QueueOptions`](crate::queue::QueueOptions) say.
///
/// Any `Fn(Job, JobContext) -> impl Future<Output = Result<(), E>>` is a
/// handler, for `E: Display` (every `std::error::Error`, `anyhow::Error`,
/// `String`); implement the trait on a type of your own to carry state.
///
/// ```no_run
/// use recents_service::queue::{Job, JobContext, JobHandler};
///
/// struct Thumbnails { bucket: String }
///
/// impl JobHandler for Thumbnails {
///     type Error = std::io::Error;
///     async fn handle(&self, job: Job, ctx: JobContext) -> Result<(), Self::Error> {
///         if ctx.is_canceled() {
///             return Ok(()); // the result of a stopped job is not recorded
///         }
///         println!("job {} into {}", job.id, self.bucket);
///         Ok(())
///     }
/// }
/// ```
pub trait JobHandler: Send + Sync + 'static {
    /// What a failing job reports; its message becomes the job's
    /// `failure_message`.
    type Error: Display + Send + 'static;

    /// Runs `job`. Long work should watch [`JobContext::canceled`].
    fn handle(
        &self,
        job: Job,
        ctx: JobContext,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl<F, Fut, E> JobHandler for F
where
    F: Fn(Job, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Display + Send + 'static,
{
    type Error = E;

    fn handle(
        &self,
        job: Job,
        ctx: JobContext,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self(job, ctx)
    }
}

/// Why a job's [`JobContext`] was canceled.
///
/// ```no_run
/// # async fn example(ctx: recents_service::queue::JobContext) {
/// use recents_service::queue::StopReason;
/// ctx.canceled().await;
/// if ctx.stop_reason() == Some(StopReason::Lost) {
///     // another worker may run this job now: stop touching its outputs
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The job was canceled ([`cancel`](crate::queue::cancel)) while it ran.
    Canceled,
    /// This worker no longer holds the job: it was reset as stalled, and
    /// maybe handed to another worker.
    Lost,
    /// The handler ran past the worker's handler timeout.
    TimedOut,
    /// The worker shut down before the handler finished.
    Shutdown,
}

impl StopReason {
    fn code(self) -> u8 {
        match self {
            StopReason::Canceled => 1,
            StopReason::Lost => 2,
            StopReason::TimedOut => 3,
            StopReason::Shutdown => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(StopReason::Canceled),
            2 => Some(StopReason::Lost),
            3 => Some(StopReason::TimedOut),
            4 => Some(StopReason::Shutdown),
            _ => None,
        }
    }
}

/// A job's stop signal, shared by its handler, its supervisor and the
/// worker: the first reason given wins.
#[derive(Debug, Default)]
pub(super) struct Stop {
    token: CancellationToken,
    reason: AtomicU8,
}

impl Stop {
    /// Fires the token with `reason`, unless it already fired; whether this
    /// call fired it.
    pub(super) fn fire(&self, reason: StopReason) -> bool {
        let first = self
            .reason
            .compare_exchange(0, reason.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.token.cancel();
        first
    }

    pub(super) fn reason(&self) -> Option<StopReason> {
        StopReason::from_code(self.reason.load(Ordering::Acquire))
    }

    pub(super) async fn fired(&self) {
        self.token.cancelled().await;
    }
}

/// What a handler is given besides its job: whether to stop.
///
/// The worker cancels a job's context when the job is canceled, when this
/// worker no longer holds it (it was reset as stalled), when the handler
/// runs past its timeout, or at shutdown past the grace period. After a
/// cancel or a lost claim the handler's result is not recorded.
///
/// ```no_run
/// # async fn run(ctx: recents_service::queue::JobContext) {
/// tokio::select! {
///     _ = ctx.canceled() => { /* clean up and return */ }
///     _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => { /* the work */ }
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct JobContext {
    job_id: JobId,
    user_id: UserId,
    worker: Arc<str>,
    pub(super) stop: Arc<Stop>,
}

impl JobContext {
    pub(super) fn new(job: &Job, worker: Arc<str>) -> Self {
        JobContext {
            job_id: JobId(job.id),
            user_id: UserId(job.user_id),
            worker,
            stop: Arc::new(Stop::default()),
        }
    }

    /// The job.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// Its user.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The name of the worker running it.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Whether the handler should stop: see [`JobContext`].
    pub fn is_canceled(&self) -> bool {
        self.stop.token.is_cancelled()
    }

    /// Resolves once the handler should stop.
    pub async fn canceled(&self) {
        self.stop.fired().await;
    }

    /// Why it should stop, once it should.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop.reason()
    }
}

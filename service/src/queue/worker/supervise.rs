//! One job's supervisor: waits for its handler (to its timeout), and records
//! what happened, unless the job was canceled or lost meanwhile.

use std::future::Future;
use std::time::Duration;

use recents_entity::execution_job::JobState;
use sea_orm::DatabaseConnection;
use tokio::task::{JoinError, JoinHandle};

use super::handler::{JobContext, StopReason};
use super::metrics::Counters;
use crate::error::{Error, Result};
use crate::queue::{Job, MAX_FAILURE_MESSAGE_BYTES, QueueOptions};

/// How a job's run ended, for the worker's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Completed,
    /// Failed for good.
    Failed,
    /// Failed, to be retried.
    Retried,
    /// Canceled or lost: nothing recorded.
    Canceled,
    /// Aborted at shutdown: nothing recorded, left for `reset_stalled`.
    Abandoned,
    /// The result could not be written (the database kept failing): the job
    /// stays `processing`, its heartbeats stop, and `reset_stalled` hands it
    /// on.
    Unrecorded,
}

/// What a supervisor needs.
pub(super) struct Supervision {
    pub(super) recents: crate::handle::Recents,
    pub(super) conn: DatabaseConnection,
    pub(super) job: Job,
    pub(super) ctx: JobContext,
    pub(super) timeout: Option<Duration>,
    pub(super) cancel_grace: Duration,
    pub(super) queue: QueueOptions,
    pub(super) counters: std::sync::Arc<Counters>,
}

type Ran = std::result::Result<std::result::Result<(), String>, JoinError>;

impl Supervision {
    /// Waits for the handler's `task` and records its result.
    pub(super) async fn watch(
        self,
        mut task: JoinHandle<std::result::Result<(), String>>,
    ) -> Outcome {
        let stop = self.ctx.stop.clone();
        let timeout = async {
            match self.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let ran: Ran = tokio::select! {
            biased;
            ran = &mut task => ran,
            () = stop.fired() => {
                // Canceled, lost or shutting down: the handler was told, and
                // gets a grace period to return before it is aborted.
                match tokio::time::timeout(self.cancel_grace, &mut task).await {
                    Ok(ran) => ran,
                    Err(_) => {
                        task.abort();
                        (&mut task).await
                    }
                }
            }
            () = timeout => {
                stop.fire(StopReason::TimedOut);
                task.abort();
                (&mut task).await
            }
        };
        match (stop.reason(), ran) {
            (Some(reason @ (StopReason::Canceled | StopReason::Lost)), _) => {
                tracing::info!(?reason, "job stopped; its result is not recorded");
                Counters::add(&self.counters.canceled, 1);
                Outcome::Canceled
            }
            (Some(StopReason::TimedOut), Err(e)) if e.is_cancelled() => {
                Counters::add(&self.counters.timed_out, 1);
                let after = self.timeout.unwrap_or_default();
                self.failed(format!("handler timed out after {after:?}"))
                    .await
            }
            (_, Ok(Ok(()))) => self.completed().await,
            (_, Ok(Err(message))) => self.failed(message).await,
            (_, Err(e)) if e.is_panic() => {
                Counters::add(&self.counters.panicked, 1);
                let message = panic_message(e);
                tracing::warn!(panic = %message, "handler panicked");
                self.failed(format!("handler panicked: {message}")).await
            }
            (_, Err(_)) => {
                Counters::add(&self.counters.abandoned, 1);
                Outcome::Abandoned
            }
        }
    }

    async fn completed(&self) -> Outcome {
        match retrying(|| self.recents.complete(&self.conn, &self.job)).await {
            Ok(()) => {
                Counters::add(&self.counters.completed, 1);
                Outcome::Completed
            }
            Err(e) => self.refused(e),
        }
    }

    async fn failed(&self, message: String) -> Outcome {
        let message = failure_message(&message);
        tracing::info!(failure = %message, "job failed");
        match retrying(|| {
            self.recents
                .fail(&self.conn, &self.job, &message, &self.queue)
        })
        .await
        {
            Ok(JobState::Failed) => {
                Counters::add(&self.counters.failed, 1);
                Outcome::Failed
            }
            Ok(_) => {
                Counters::add(&self.counters.retried, 1);
                Outcome::Retried
            }
            Err(e) => self.refused(e),
        }
    }

    /// A result the queue refused: expected when the job was reset (and maybe
    /// handed on) or canceled and finished meanwhile; anything else is a
    /// database failure that outlasted the retries.
    fn refused(&self, e: Error) -> Outcome {
        match e {
            Error::JobNotHeld { .. }
            | Error::JobNotProcessing { .. }
            | Error::JobFinished { .. } => {
                tracing::info!(reason = %e, "result refused: the job is no longer this worker's");
                Counters::add(&self.counters.canceled, 1);
                Outcome::Canceled
            }
            e => {
                tracing::error!(error = %e, "cannot record the job's result; reset_stalled will hand it on");
                Outcome::Unrecorded
            }
        }
    }
}

/// Runs `op` again on errors worth retrying (a lost race, a database out of
/// reach for a moment), up to five times over about two seconds.
async fn retrying<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = Duration::from_millis(10);
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if attempt < 5 && (e.is_retryable() || e.is_unavailable()) => {
                tracing::debug!(error = %e, attempt, "retrying");
                tokio::time::sleep(delay).await;
                delay *= 3;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// The message a job's row can hold: NUL bytes replaced, cut to
/// [`MAX_FAILURE_MESSAGE_BYTES`] on a character boundary.
pub(super) fn failure_message(message: &str) -> String {
    let mut message = message.replace('\0', "\u{fffd}");
    if message.len() > MAX_FAILURE_MESSAGE_BYTES {
        let mut end = MAX_FAILURE_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// A panic's message, as `panic!` was given it.
fn panic_message(e: JoinError) -> String {
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_messages_are_cut_on_a_character_boundary_and_lose_nul() {
        let long = "é".repeat(MAX_FAILURE_MESSAGE_BYTES); // 2 bytes each
        let cut = failure_message(&long);
        assert!(cut.len() <= MAX_FAILURE_MESSAGE_BYTES);
        assert!(cut.len() >= MAX_FAILURE_MESSAGE_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(failure_message("a\0b"), "a\u{fffd}b");
        assert_eq!(failure_message("short"), "short");
    }

    #[tokio::test]
    async fn panic_messages_are_recovered_from_str_and_string_payloads() {
        let e = tokio::spawn(async { panic!("boom {}", 7) })
            .await
            .unwrap_err();
        assert_eq!(panic_message(e), "boom 7");
        let e = tokio::spawn(async { std::panic::panic_any("static") })
            .await
            .unwrap_err();
        assert_eq!(panic_message(e), "static");
    }
}

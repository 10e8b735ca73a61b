//! A worker's counters: atomics the worker bumps and any task may read while
//! it runs, for a team to export (Prometheus, logs, the console).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the claim-latency histogram's buckets; a last bucket
/// holds the claims slower than all of them.
pub const CLAIM_LATENCY_BOUNDS: [Duration; 5] = [
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(25),
    Duration::from_millis(100),
    Duration::from_millis(500),
];

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) claimed: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) canceled: AtomicU64,
    pub(super) abandoned: AtomicU64,
    pub(super) timed_out: AtomicU64,
    pub(super) panicked: AtomicU64,
    pub(super) reset: AtomicU64,
    pub(super) in_flight: AtomicU64,
    claims: AtomicU64,
    claim_micros: AtomicU64,
    claim_buckets: [AtomicU64; CLAIM_LATENCY_BOUNDS.len() + 1],
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn claim_took(&self, took: Duration) {
        self.claims.fetch_add(1, Ordering::Relaxed);
        self.claim_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let bucket = CLAIM_LATENCY_BOUNDS
            .iter()
            .position(|bound| took <= *bound)
            .unwrap_or(CLAIM_LATENCY_BOUNDS.len());
        self.claim_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

/// A reader of a worker's counters, cheap to clone and to read while the
/// worker runs (and after).
///
/// ```no_run
/// # fn example(metrics: recents_service::queue::WorkerMetricsHandle) {
/// // from `Worker::metrics()`, taken before `run`
/// tokio::spawn(async move {
///     loop {
///         let m = metrics.snapshot();
///         println!("in flight {}, completed {}", m.in_flight, m.completed);
///         tokio::time::sleep(std::time::Duration::from_secs(10)).await;
///     }
/// });
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WorkerMetricsHandle(pub(super) Arc<Counters>);

impl WorkerMetricsHandle {
    /// The counters now. Each is read on its own, so a snapshot taken while
    /// the worker runs may be a moment apart between counters.
    pub fn snapshot(&self) -> WorkerMetrics {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerMetrics {
            claimed: get(&c.claimed),
            completed: get(&c.completed),
            failed: get(&c.failed),
            retried: get(&c.retried),
            canceled: get(&c.canceled),
            abandoned: get(&c.abandoned),
            timed_out: get(&c.timed_out),
            panicked: get(&c.panicked),
            reset: get(&c.reset),
            in_flight: get(&c.in_flight),
            claim_latency: ClaimLatency {
                count: get(&c.claims),
                sum: Duration::from_micros(get(&c.claim_micros)),
                buckets: std::array::from_fn(|i| get(&c.claim_buckets[i])),
            },
        }
    }
}

/// A worker's counters at one moment, since it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerMetrics {
    /// Jobs claimed ([`dequeue`](crate::queue::dequeue)d).
    pub claimed: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs failed for good (their last allowed failure).
    pub failed: u64,
    /// Failures recorded with a retry to come (`errored`).
    pub retried: u64,
    /// Jobs stopped because they were canceled or this worker lost them
    /// (reset as stalled): their results were not recorded.
    pub canceled: u64,
    /// Jobs left running at shutdown past its grace period: aborted, their
    /// heartbeats stopped, for [`reset_stalled`](crate::queue::reset_stalled)
    /// to hand on.
    pub abandoned: u64,
    /// Of the failures, handlers stopped at their timeout.
    pub timed_out: u64,
    /// Of the failures, handlers that panicked.
    pub panicked: u64,
    /// Stalled jobs this worker's resetter returned to the queue.
    pub reset: u64,
    /// Handlers running now.
    pub in_flight: u64,
    /// How long claims took.
    pub claim_latency: ClaimLatency,
}

/// The latency of a worker's claims: a sum and count (for the mean) and a
/// histogram over [`CLAIM_LATENCY_BOUNDS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimLatency {
    /// Claims made (each of up to the batch size).
    pub count: u64,
    /// Their total time.
    pub sum: Duration,
    /// Claims per bucket: `buckets[i]` took at most `CLAIM_LATENCY_BOUNDS[i]`
    /// (and more than the bound before); the last, longer than all bounds.
    pub buckets: [u64; CLAIM_LATENCY_BOUNDS.len() + 1],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_latencies_fall_into_their_buckets() {
        let counters = Arc::new(Counters::default());
        counters.claim_took(Duration::from_micros(900));
        counters.claim_took(Duration::from_millis(5));
        counters.claim_took(Duration::from_secs(2));
        let m = WorkerMetricsHandle(counters).snapshot();
        assert_eq!(m.claim_latency.count, 3);
        assert_eq!(m.claim_latency.buckets, [1, 1, 0, 0, 0, 1]);
        assert_eq!(
            m.claim_latency.sum,
            Duration::from_micros(900) + Duration::from_millis(5) + Duration::from_secs(2)
        );
    }
}

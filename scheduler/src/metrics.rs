//! Counters of what the scheduler did and where its time went, shared with
//! whoever started it (the benchmark reads them; a `/metrics` endpoint
//! could).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters, updated as the scheduler works.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Scheduling cycles that found a node.
    pub scheduled: AtomicU64,
    /// Scheduling cycles that found none.
    pub unschedulable: AtomicU64,
    /// Bindings the apiserver accepted.
    pub bound: AtomicU64,
    /// Bindings the apiserver refused (or whose call failed).
    pub bind_errors: AtomicU64,
    /// `Pods.Bind` calls made.
    pub bind_calls: AtomicU64,
    /// Time spent filtering and scoring, in nanoseconds.
    pub algorithm_nanos: AtomicU64,
    /// Time `Pods.Bind` calls took, summed over calls (they overlap), in
    /// nanoseconds.
    pub bind_nanos: AtomicU64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_time(counter: &AtomicU64, d: Duration) {
        counter.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

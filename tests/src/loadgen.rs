//! A closed-loop load driver for benchmarks: `clients` concurrent workers,
//! each calling its operation again as soon as the last one returns, first
//! for a warm-up, then for a measured duration (or until each has done a
//! fixed number of operations).
//!
//! [`run`] returns a [`LoadReport`]: operations per second, latency
//! percentiles of the successful operations, and the errors, counted apart
//! and sampled by message, never dropped. Every operation runs under a
//! timeout (a timed-out operation is an error), so a run is bounded in time:
//! at most warm-up + duration + one operation timeout.
//!
//! Used by `examples/api_bench.rs` to drive Capstan and etcd with the same
//! shape. Unit tests: `cargo test -p capstan-tests --lib loadgen`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How many distinct error messages a report keeps (the count covers all).
const MAX_ERROR_SAMPLES: usize = 8;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Concurrent workers, each with its own operation (and client).
    pub clients: usize,
    /// Time run before measuring starts; operations started in it are not
    /// counted (their errors are, in [`LoadReport::warmup_errors`]).
    pub warmup: Duration,
    /// The measured time, after the warm-up.
    pub duration: Duration,
    /// If set, each worker stops after this many operations (warm-up
    /// included) even if time is left: for fixed work such as creating a
    /// worker's objects. The rate is then over the time actually taken.
    pub ops_per_worker: Option<u64>,
    /// An operation not done by then is abandoned and counted as an error.
    pub op_timeout: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            clients: 1,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            ops_per_worker: None,
            op_timeout: Duration::from_secs(10),
        }
    }
}

/// What a run measured. Latencies are of successful operations started
/// after the warm-up and finished before the end.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Workers that ran.
    pub clients: usize,
    /// Successful measured operations.
    pub ops: u64,
    /// Failed (or timed-out) measured operations.
    pub errors: u64,
    /// Failed operations during the warm-up.
    pub warmup_errors: u64,
    /// The measured time (from the end of the warm-up to the last measured
    /// completion when every worker stopped early, else the duration).
    pub elapsed: Duration,
    /// Successful operations per second over `elapsed`.
    pub ops_per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Slowest successful operation.
    pub max: Duration,
    /// Up to 8 distinct error messages (warm-up included) with their counts.
    pub error_samples: BTreeMap<String, u64>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} clients: {:.0} ops/s, p50 {}, p99 {}, max {}, {} errors ({} in warm-up)",
            self.clients,
            self.ops_per_sec,
            fmt_latency(self.p50),
            fmt_latency(self.p99),
            fmt_latency(self.max),
            self.errors,
            self.warmup_errors
        )
    }
}

/// A latency as milliseconds with two decimals (`1.27ms`).
pub fn fmt_latency(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1e3)
}

/// What one worker saw.
#[derive(Default)]
struct WorkerTally {
    latencies_us: Vec<u32>,
    errors: u64,
    warmup_errors: u64,
    last_done: Option<Instant>,
    error_samples: BTreeMap<String, u64>,
}

impl WorkerTally {
    fn error(&mut self, message: String, measured: bool) {
        if measured {
            self.errors += 1;
        } else {
            self.warmup_errors += 1;
        }
        if let Some(n) = self.error_samples.get_mut(&message) {
            *n += 1;
        } else if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.insert(message, 1);
        }
    }
}

/// The `p`-th percentile (nearest rank) of sorted microsecond latencies.
fn percentile(sorted_us: &[u32], p: f64) -> Duration {
    if sorted_us.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    Duration::from_micros(u64::from(sorted_us[i]))
}

/// Runs the load described by `config`. `make_worker(w)` is called once per
/// worker `w` in `0..clients` and returns that worker's operation, which is
/// called with the worker's operation number (0, 1, 2, ...) and returns a
/// future resolving to `Ok` or an error whose message is sampled.
///
/// Workers are tokio tasks, so they spread over the runtime's threads as the
/// clients of a real service would.
pub async fn run<M, F, Fut, E>(config: &LoadConfig, mut make_worker: M) -> LoadReport
where
    M: FnMut(usize) -> F,
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: fmt::Display,
{
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let limit = config.ops_per_worker.unwrap_or(u64::MAX);
    let op_timeout = config.op_timeout;
    let mut tasks = Vec::with_capacity(config.clients);
    for w in 0..config.clients {
        let mut op = make_worker(w);
        tasks.push(tokio::spawn(async move {
            let mut tally = WorkerTally::default();
            let mut i = 0u64;
            while i < limit {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let result = tokio::time::timeout(op_timeout, op(i)).await;
                let done = Instant::now();
                i += 1;
                let measured = began >= measure_from;
                match result {
                    Ok(Ok(())) => {
                        if measured && done <= end {
                            let us = (done - began).as_micros();
                            tally
                                .latencies_us
                                .push(u32::try_from(us).unwrap_or(u32::MAX));
                            tally.last_done = Some(done);
                        }
                    }
                    Ok(Err(e)) => tally.error(e.to_string(), measured),
                    Err(_) => tally.error(format!("timed out after {op_timeout:?}"), measured),
                }
            }
            tally
        }));
    }
    let mut report = LoadReport {
        clients: config.clients,
        ..LoadReport::default()
    };
    let mut latencies = Vec::new();
    let mut last_done = None::<Instant>;
    for task in tasks {
        let tally = match task.await {
            Ok(t) => t,
            Err(e) => {
                // A panicking operation is an error of the run, not a lost worker.
                let mut t = WorkerTally::default();
                t.error(format!("worker task failed: {e}"), true);
                t
            }
        };
        latencies.extend_from_slice(&tally.latencies_us);
        report.errors += tally.errors;
        report.warmup_errors += tally.warmup_errors;
        last_done = last_done.max(tally.last_done);
        for (msg, n) in tally.error_samples {
            if let Some(c) = report.error_samples.get_mut(&msg) {
                *c += n;
            } else if report.error_samples.len() < MAX_ERROR_SAMPLES {
                report.error_samples.insert(msg, n);
            }
        }
    }
    let finished = Instant::now();
    latencies.sort_unstable();
    report.ops = latencies.len() as u64;
    report.elapsed = if finished < end {
        // Every worker ran out of operations before the deadline.
        last_done
            .unwrap_or(finished)
            .saturating_duration_since(measure_from)
    } else {
        config.duration
    };
    let secs = report.elapsed.as_secs_f64();
    report.ops_per_sec = if secs > 0.0 {
        report.ops as f64 / secs
    } else {
        0.0
    };
    report.p50 = percentile(&latencies, 50.0);
    report.p99 = percentile(&latencies, 99.0);
    report.max = latencies
        .last()
        .map_or(Duration::ZERO, |&us| Duration::from_micros(u64::from(us)));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_micros(100));
        assert_eq!(percentile(&[7], 99.0), Duration::from_micros(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleeping_op_gives_plausible_rate_and_latency() {
        let config = LoadConfig {
            clients: 10,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(600),
            ops_per_worker: None,
            op_timeout: Duration::from_secs(5),
        };
        let report = run(&config, |_| {
            |_| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<(), String>(())
            }
        })
        .await;
        // 10 workers sleeping 5 ms each: at most 2,000 ops/s; a loaded
        // machine may do much fewer, but not almost none.
        assert!(
            report.ops_per_sec > 200.0 && report.ops_per_sec <= 2_100.0,
            "{report}"
        );
        assert!(report.p50 >= Duration::from_millis(5), "{report}");
        assert!(
            report.p99 >= report.p50 && report.max >= report.p99,
            "{report}"
        );
        assert!(report.p50 < Duration::from_millis(100), "{report}");
        assert_eq!(report.errors, 0);
        assert_eq!(report.elapsed, config.duration);
    }

    #[tokio::test]
    async fn errors_are_counted_and_sampled_not_dropped() {
        let config = LoadConfig {
            clients: 3,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(5),
            ops_per_worker: Some(10),
            op_timeout: Duration::from_secs(5),
        };
        // Every third operation fails.
        let report = run(&config, |w| {
            move |i| async move {
                if i % 3 == 2 {
                    Err(format!("boom from worker {w}"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        // Per worker: ops 0..10, failing at 2, 5, 8.
        assert_eq!(report.errors, 9, "{report}");
        assert_eq!(report.ops, 21, "{report}");
        assert_eq!(report.error_samples.len(), 3);
        assert_eq!(report.error_samples["boom from worker 1"], 3);
        // Fixed work ended long before the deadline: the rate is over the
        // time taken, not the 5 s allowed.
        assert!(report.elapsed < Duration::from_secs(1), "{report}");
    }

    #[tokio::test]
    async fn a_hung_operation_times_out_as_an_error() {
        let config = LoadConfig {
            clients: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(200),
            ops_per_worker: Some(1),
            op_timeout: Duration::from_millis(50),
        };
        let started = Instant::now();
        let report = run(&config, |_| {
            |_| async {
                std::future::pending::<()>().await;
                Ok::<(), String>(())
            }
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(report.errors, 1);
        assert_eq!(report.ops, 0);
        assert!(
            report.error_samples.keys().any(|m| m.contains("timed out")),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn warmup_errors_are_reported_apart() {
        let config = LoadConfig {
            clients: 1,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(100),
            ops_per_worker: None,
            op_timeout: Duration::from_secs(1),
        };
        let t0 = Instant::now();
        let report = run(&config, |_| {
            move |_| async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                if t0.elapsed() < Duration::from_millis(80) {
                    Err("cold")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(report.warmup_errors > 0, "{report}");
        assert_eq!(report.errors, 0, "{report}");
        assert!(report.ops > 0, "{report}");
    }
}

//! Prometheus metrics of one replica.
//!
//! Request metrics are recorded as requests finish; Raft and store gauges
//! are read when `/metrics` is scraped.
//!
//! - `capstan_apiserver_requests_total{verb,resource,code}`
//! - `capstan_apiserver_request_duration_seconds{verb,resource}` (histogram)
//! - `capstan_apiserver_watches`: open watch streams
//! - `capstan_raft_term`, `capstan_raft_leader` (leader's id, 0 if none),
//!   `capstan_raft_is_leader`, `capstan_raft_commit_index`,
//!   `capstan_raft_applied_index`, `capstan_store_revision`,
//!   `capstan_store_compacted_revision`, `capstan_store_size_bytes`

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    resource: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    verb: &'static str,
    resource: String,
}

fn latency_histogram() -> Histogram {
    // 250 µs … ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The values read from the replica at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftSnapshot {
    /// Current term.
    pub term: u64,
    /// The leader's id, 0 when none is known.
    pub leader: u64,
    /// Whether this replica leads.
    pub is_leader: bool,
    /// Highest log index known committed.
    pub commit_index: u64,
    /// Highest log index applied here.
    pub applied_index: u64,
    /// Current store revision.
    pub revision: u64,
    /// Compacted revision.
    pub compacted_revision: u64,
    /// Bytes on disk under the data dir.
    pub store_size_bytes: u64,
}

/// All metrics of a replica.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    watches: Gauge,
    term: Gauge<u64, AtomicU64>,
    leader: Gauge<u64, AtomicU64>,
    is_leader: Gauge<u64, AtomicU64>,
    commit: Gauge<u64, AtomicU64>,
    applied: Gauge<u64, AtomicU64>,
    revision: Gauge<u64, AtomicU64>,
    compacted: Gauge<u64, AtomicU64>,
    size: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("capstan");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let watches = Gauge::default();
        registry.register(
            "apiserver_requests",
            "API requests by verb, resource and HTTP-equivalent code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency by verb and resource",
            latency.clone(),
        );
        registry.register("apiserver_watches", "Open watch streams", watches.clone());
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::<u64, AtomicU64>::default();
            registry.register(name, help, g.clone());
            g
        };
        Self {
            term: gauge(&mut registry, "raft_term", "Current Raft term"),
            leader: gauge(
                &mut registry,
                "raft_leader",
                "Id of the known leader, 0 if none",
            ),
            is_leader: gauge(&mut registry, "raft_is_leader", "1 if this replica leads"),
            commit: gauge(
                &mut registry,
                "raft_commit_index",
                "Highest log index known committed",
            ),
            applied: gauge(
                &mut registry,
                "raft_applied_index",
                "Highest log index applied here",
            ),
            revision: gauge(&mut registry, "store_revision", "Current store revision"),
            compacted: gauge(
                &mut registry,
                "store_compacted_revision",
                "Compacted store revision",
            ),
            size: gauge(
                &mut registry,
                "store_size_bytes",
                "Bytes on disk under the data dir",
            ),
            registry,
            requests,
            latency,
            watches,
        }
    }

    /// Records one finished request.
    pub fn request(&self, verb: &'static str, resource: &str, code: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                verb,
                resource: resource.to_owned(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                verb,
                resource: resource.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A watch opened (`+1`) or closed (`-1`).
    pub fn watch_delta(&self, delta: i64) {
        self.watches.inc_by(delta);
    }

    /// The text exposition, with gauges set from `raft`.
    pub fn render(&self, raft: RaftSnapshot) -> String {
        self.term.set(raft.term);
        self.leader.set(raft.leader);
        self.is_leader.set(u64::from(raft.is_leader));
        self.commit.set(raft.commit_index);
        self.applied.set(raft.applied_index);
        self.revision.set(raft.revision);
        self.compacted.set(raft.compacted_revision);
        self.size.set(raft.store_size_bytes);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_requests_latency_and_raft_gauges() {
        let m = Metrics::new();
        m.request("create", "pods", 201, Duration::from_millis(3));
        m.request("create", "pods", 201, Duration::from_millis(5));
        m.request("get", "pods", 404, Duration::from_micros(300));
        m.watch_delta(1);
        let text = m.render(RaftSnapshot {
            term: 7,
            leader: 2,
            commit_index: 99,
            ..Default::default()
        });
        assert!(
            text.contains(
                r#"capstan_apiserver_requests_total{verb="create",resource="pods",code="201"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"capstan_apiserver_requests_total{verb="get",resource="pods",code="404"} 1"#
        ));
        assert!(text.contains(
            r#"capstan_apiserver_request_duration_seconds_count{verb="create",resource="pods"} 2"#
        ));
        assert!(text.contains("capstan_apiserver_watches 1"));
        assert!(text.contains("capstan_raft_term 7"));
        assert!(text.contains("capstan_raft_leader 2"));
        assert!(text.contains("capstan_raft_commit_index 99"));
    }
}

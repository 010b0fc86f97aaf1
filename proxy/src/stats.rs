//! Counters of what the proxy did, shared by every listener, logged through
//! tracing when the proxy stops (and readable by tests and an embedding).

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections forwarded to an endpoint.
    pub tcp_forwarded: AtomicU64,
    /// TCP connections being forwarded now (a gauge).
    pub tcp_active: AtomicU64,
    /// TCP connections reset because no endpoint could be reached.
    pub tcp_failed: AtomicU64,
    /// Bytes from clients to endpoints (TCP and UDP).
    pub bytes_to_backend: AtomicU64,
    /// Bytes from endpoints to clients (TCP and UDP).
    pub bytes_to_client: AtomicU64,
    /// UDP flows opened.
    pub udp_flows: AtomicU64,
    /// DNS queries answered.
    pub dns_queries: AtomicU64,
}

impl Stats {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` from the gauge `counter`.
    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Logs every counter at info level.
    pub fn log(&self) {
        tracing::info!(
            tcp_forwarded = Self::get(&self.tcp_forwarded),
            tcp_active = Self::get(&self.tcp_active),
            tcp_failed = Self::get(&self.tcp_failed),
            bytes_to_backend = Self::get(&self.bytes_to_backend),
            bytes_to_client = Self::get(&self.bytes_to_client),
            udp_flows = Self::get(&self.udp_flows),
            dns_queries = Self::get(&self.dns_queries),
            "proxy counters"
        );
    }
}

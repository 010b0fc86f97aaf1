//! `/healthz`, `/readyz` and `/metrics`, served over HTTP/1.1 or HTTP/2 on
//! the client API port next to the gRPC services.
//!
//! They are behind the same mutual TLS as the API: any certificate from
//! the cluster CA may read them (no RBAC), a client without one is refused
//! at the handshake. We chose not to open a plaintext probe port: a health
//! probe uses a client certificate like every other component (for
//! example `curl --cacert ca.crt --cert admin.crt --key admin.key
//! https://127.0.0.1:6443/healthz`).
//!
//! - `/healthz`: 200 `ok` while the store answers.
//! - `/readyz`: 200 `ok` once this replica has caught up with the leader —
//!   a linearizable read barrier (read-index through the leader, then wait
//!   until applied here) completes within 2 s — and the cluster's bootstrap
//!   objects exist; 503 with the reason otherwise.
//! - `/metrics`: Prometheus text format, see [`crate::metrics`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use capstan_raftstore::node::Consistency;
use capstan_raftstore::transport::PeerTransport;

use crate::service::Api;
use crate::service::cluster::raft_snapshot;

/// How long `/readyz` waits for the read barrier.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the operations endpoints need.
pub struct Ops<T> {
    /// The replica's shared state.
    pub api: Arc<Api<T>>,
    /// Set once the bootstrap objects are known to exist.
    pub bootstrapped: Arc<AtomicBool>,
    /// The data dir, for `capstan_store_size_bytes`.
    pub data_dir: std::path::PathBuf,
}

/// Adds the three endpoints to `router`.
pub fn routes<T: PeerTransport>(router: axum::Router, ops: Arc<Ops<T>>) -> axum::Router {
    let health = Arc::clone(&ops);
    let ready = Arc::clone(&ops);
    router
        .route("/healthz", get(move || healthz(Arc::clone(&health))))
        .route("/readyz", get(move || readyz(Arc::clone(&ready))))
        .route("/metrics", get(move || metrics(Arc::clone(&ops))))
}

async fn healthz<T: PeerTransport>(ops: Arc<Ops<T>>) -> impl IntoResponse {
    match ops.api.store.replica().reader().current_revision() {
        Ok(_) => (StatusCode::OK, "ok\n".to_owned()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unavailable: {e}\n"),
        ),
    }
}

async fn readyz<T: PeerTransport>(ops: Arc<Ops<T>>) -> impl IntoResponse {
    let barrier = ops
        .api
        .store
        .replica()
        .read_barrier(Consistency::Linearizable);
    match tokio::time::timeout(READY_TIMEOUT, barrier).await {
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not caught up with a leader within 2s\n".to_owned(),
        ),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
        Ok(Ok(())) if !ops.bootstrapped.load(Ordering::Acquire) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: bootstrap objects (namespaces, RBAC) not written yet\n".to_owned(),
        ),
        Ok(Ok(())) => (StatusCode::OK, "ok\n".to_owned()),
    }
}

async fn metrics<T: PeerTransport>(ops: Arc<Ops<T>>) -> impl IntoResponse {
    let mut snapshot = raft_snapshot(ops.api.store.replica());
    let dir = ops.data_dir.clone();
    snapshot.store_size_bytes = tokio::task::spawn_blocking(move || dir_size(&dir))
        .await
        .unwrap_or(0);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.api.metrics.render(snapshot),
    )
}

/// Bytes in regular files under `dir` (recursively).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

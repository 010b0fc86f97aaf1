//! One UDP listener of a service port. Each client address is a flow: the
//! first datagram picks an endpoint (round-robin or ClientIP affinity) and
//! opens a socket connected to it; the endpoint's replies are sent back
//! from the listener's socket, so the client sees them come from the
//! service address. A flow ends after `idle` without traffic either way, or
//! when its endpoint leaves the set (the next datagram picks a new one, as
//! kube-proxy clears stale UDP conntrack entries). Closing the listener
//! ends its flows: UDP has nothing established to keep.
//!
//! With no ready endpoint there is no listener at all (see `model`), so
//! the kernel answers ICMP port unreachable and a connected client socket
//! sees ECONNREFUSED; a datagram that arrives in the moment the last
//! endpoint goes is dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use crate::balancer::Balancer;
use crate::stats::Stats;

/// The largest datagram carried.
const MAX_DATAGRAM: usize = 65536;

struct Flow {
    upstream: Arc<UdpSocket>,
    backend: SocketAddr,
    /// Milliseconds since the listener started, of the last traffic.
    last: AtomicU64,
}

type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>>;

/// Serves until the task is aborted; `idle` ends quiet flows.
pub async fn serve(socket: UdpSocket, balancer: Arc<Balancer>, idle: Duration, stats: Arc<Stats>) {
    let socket = Arc::new(socket);
    let started = Instant::now();
    let flows: Flows = Arc::default();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors reported on the socket and the like: go on.
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        while tasks.try_join_next().is_some() {}
        let now_ms = started.elapsed().as_millis() as u64;
        let existing = flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let flow = match existing {
            Some(f) if balancer.contains(f.backend) => f,
            _ => {
                let Some(flow) = open(&balancer, client).await else {
                    continue;
                };
                let flow = Arc::new(Flow {
                    last: AtomicU64::new(now_ms),
                    ..flow
                });
                Stats::add(&stats.udp_flows, 1);
                flows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, flow.clone());
                tasks.spawn(replies(
                    socket.clone(),
                    flow.clone(),
                    client,
                    flows.clone(),
                    started,
                    idle,
                    stats.clone(),
                ));
                flow
            }
        };
        flow.last.store(now_ms, Ordering::Relaxed);
        match flow.upstream.send(&buf[..n]).await {
            Ok(_) => Stats::add(&stats.bytes_to_backend, n as u64),
            Err(e) => tracing::debug!(backend = %flow.backend, error = %e, "udp send failed"),
        }
    }
}

/// A socket connected to the endpoint picked for `client`.
async fn open(balancer: &Balancer, client: SocketAddr) -> Option<Flow> {
    let backend = balancer.pick(client.ip(), Instant::now())?;
    let any: IpAddr = match backend {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let result = async {
        let s = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
        s.connect(backend).await?;
        Ok::<_, std::io::Error>(s)
    }
    .await;
    match result {
        Ok(s) => Some(Flow {
            upstream: Arc::new(s),
            backend,
            last: AtomicU64::new(0),
        }),
        Err(e) => {
            tracing::warn!(%backend, error = %e, "cannot open a udp flow");
            None
        }
    }
}

/// Relays the endpoint's replies to `client` until the flow is idle.
async fn replies(
    listener: Arc<UdpSocket>,
    flow: Arc<Flow>,
    client: SocketAddr,
    flows: Flows,
    started: Instant,
    idle: Duration,
    stats: Arc<Stats>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let since = (started.elapsed().as_millis() as u64)
            .saturating_sub(flow.last.load(Ordering::Relaxed));
        let left = idle.saturating_sub(Duration::from_millis(since));
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, flow.upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                flow.last
                    .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                if listener.send_to(&buf[..n], client).await.is_ok() {
                    Stats::add(&stats.bytes_to_client, n as u64);
                }
            }
            // ECONNREFUSED from the endpoint's ICMP: keep the flow until idle.
            Ok(Err(e)) => {
                tracing::debug!(backend = %flow.backend, error = %e, "udp receive from endpoint failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {}
        }
    }
    let mut map = flows.lock().unwrap_or_else(|p| p.into_inner());
    if map.get(&client).is_some_and(|f| Arc::ptr_eq(f, &flow)) {
        map.remove(&client);
    }
}

//! One TCP listener of a service port: accepts, picks an endpoint with the
//! port's [`Balancer`], connects (trying the next endpoint on failure) and
//! forwards in a task of its own, so that closing the listener (the
//! service or its last endpoint is gone) leaves established connections
//! running to their end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::balancer::Balancer;
use crate::config::ForwardMode;
use crate::forward;
use crate::stats::Stats;

/// What every connection of a listener shares.
#[derive(Clone)]
pub struct TcpContext {
    /// The port's endpoints.
    pub balancer: Arc<Balancer>,
    /// splice or copy.
    pub mode: ForwardMode,
    /// How long one endpoint may take to accept.
    pub connect_timeout: Duration,
    /// Counters.
    pub stats: Arc<Stats>,
}

/// Accepts until the task is aborted (which closes the listener).
pub async fn serve(listener: TcpListener, ctx: TcpContext) {
    let local = listener.local_addr().ok();
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move { connection(client, peer, ctx).await });
            }
            Err(e) => {
                // EMFILE and friends: pause instead of spinning.
                tracing::warn!(?local, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(client: TcpStream, peer: SocketAddr, ctx: TcpContext) {
    let Some(backend) = connect(&ctx, peer).await else {
        Stats::add(&ctx.stats.tcp_failed, 1);
        reset(client);
        return;
    };
    Stats::add(&ctx.stats.tcp_forwarded, 1);
    Stats::add(&ctx.stats.tcp_active, 1);
    let _active = Active(&ctx.stats);
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    let endpoint = backend.peer_addr().ok();
    match forward::forward(client, backend, ctx.mode).await {
        Ok(c) => {
            Stats::add(&ctx.stats.bytes_to_backend, c.to_backend);
            Stats::add(&ctx.stats.bytes_to_client, c.to_client);
            tracing::trace!(%peer, ?endpoint, ?c, "connection done");
        }
        Err(e) => tracing::debug!(%peer, ?endpoint, error = %e, "connection ended with an error"),
    }
}

/// Counts one forwarded connection out of the active gauge when dropped.
struct Active<'a>(&'a Stats);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        Stats::sub(&self.0.tcp_active, 1);
    }
}

/// Connects to the picked endpoint, then to each next one once.
async fn connect(ctx: &TcpContext, peer: SocketAddr) -> Option<TcpStream> {
    let now = Instant::now();
    let mut backend = ctx.balancer.pick(peer.ip(), now)?;
    let tries = ctx.balancer.backends().len().max(1);
    for _ in 0..tries {
        match tokio::time::timeout(ctx.connect_timeout, TcpStream::connect(backend)).await {
            Ok(Ok(s)) => return Some(s),
            Ok(Err(e)) => tracing::debug!(%backend, error = %e, "endpoint refused"),
            Err(_) => tracing::debug!(%backend, "endpoint connect timed out"),
        }
        backend = ctx
            .balancer
            .next_after(backend, peer.ip(), Instant::now())?;
    }
    None
}

/// Closes `s` with a RST (zero linger), so the client sees a reset at once.
fn reset(s: TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO));
    drop(s);
}

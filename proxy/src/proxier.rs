//! [`Proxier`]: carries out the [`Desired`](crate::model::Desired)
//! listeners — binds the new ones, updates the endpoints of the kept ones
//! in place, and closes the ones no longer wanted (their established TCP
//! connections run on in their own tasks). A listener that cannot bind
//! (address in use) is retried at the next sync.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::balancer::Balancer;
use crate::config::ForwardMode;
use crate::model::{Desired, ListenKey, Protocol, Target};
use crate::stats::Stats;
use crate::tcp::{self, TcpContext};
use crate::udp;

/// How listeners forward.
#[derive(Clone, Debug)]
pub struct Settings {
    /// splice or copy.
    pub mode: ForwardMode,
    /// TCP connect timeout per endpoint.
    pub connect_timeout: Duration,
    /// UDP flow idle timeout.
    pub udp_idle: Duration,
}

struct Running {
    balancer: Arc<Balancer>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The listeners this node has open.
pub struct Proxier {
    settings: Settings,
    stats: Arc<Stats>,
    running: BTreeMap<ListenKey, Running>,
}

impl Proxier {
    /// No listeners yet.
    pub fn new(settings: Settings, stats: Arc<Stats>) -> Self {
        Self {
            settings,
            stats,
            running: BTreeMap::new(),
        }
    }

    /// The listeners open now.
    pub fn listening(&self) -> impl Iterator<Item = &ListenKey> {
        self.running.keys()
    }

    /// Makes the open listeners match `desired`; returns how many wanted
    /// listeners could not be opened (to retry).
    pub async fn sync(&mut self, desired: &Desired) -> usize {
        self.running.retain(|key, _| {
            let keep = desired.contains_key(key);
            if !keep {
                tracing::info!(protocol = key.protocol.as_str(), addr = %key.addr, "closing listener");
            }
            keep
        });
        let mut failed = 0;
        for (key, target) in desired {
            if let Some(r) = self.running.get(key) {
                if r.balancer.update(target.backends.clone(), target.affinity) {
                    tracing::info!(addr = %key.addr, service = ?target.service, backends = ?target.backends, "endpoints changed");
                }
                continue;
            }
            match self.open(*key, target).await {
                Ok(r) => {
                    tracing::info!(
                        protocol = key.protocol.as_str(),
                        addr = %key.addr,
                        service = %format!("{}/{}", target.service.namespace, target.service.name),
                        port = %target.port_name,
                        backends = ?target.backends,
                        "listening"
                    );
                    self.running.insert(*key, r);
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(protocol = key.protocol.as_str(), addr = %key.addr, error = %e, "cannot listen; will retry");
                }
            }
        }
        failed
    }

    async fn open(&self, key: ListenKey, target: &Target) -> std::io::Result<Running> {
        let balancer = Arc::new(Balancer::new(target.backends.clone(), target.affinity));
        let task = match key.protocol {
            Protocol::Tcp => {
                let listener = bind_tcp(key.addr)?;
                let ctx = TcpContext {
                    balancer: balancer.clone(),
                    mode: self.settings.mode,
                    connect_timeout: self.settings.connect_timeout,
                    stats: self.stats.clone(),
                };
                tokio::spawn(tcp::serve(listener, ctx))
            }
            Protocol::Udp => {
                let socket = bind_udp(key.addr)?;
                tokio::spawn(udp::serve(
                    socket,
                    balancer.clone(),
                    self.settings.udp_idle,
                    self.stats.clone(),
                ))
            }
        };
        Ok(Running { balancer, task })
    }

    /// Closes every listener.
    pub fn close_all(&mut self) {
        self.running.clear();
    }
}

/// A TCP listener with SO_REUSEPORT: the proxies of several nodes on one
/// machine (`capstan up`) all serve a ClusterIP, and the kernel spreads
/// connections over them; when one proxy stops, the others keep serving.
fn bind_tcp(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A UDP socket with SO_REUSEPORT, for the same reason as [`bind_tcp`]
/// (the kernel keeps one client's datagrams on one socket).
fn bind_udp(addr: std::net::SocketAddr) -> std::io::Result<UdpSocket> {
    use rustix::net::{AddressFamily, SocketType, sockopt};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket(family, SocketType::DGRAM, None)?;
    sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    let socket = std::net::UdpSocket::from(fd);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

#[cfg(test)]
mod reuse_tests {
    use super::*;

    #[tokio::test]
    async fn two_proxies_can_serve_one_cluster_ip() {
        let first = bind_tcp("127.96.250.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_tcp(addr).expect("a second listener on the same address");
        assert_eq!(second.local_addr().unwrap(), addr);
        let udp = bind_udp("127.96.250.1:0".parse().unwrap()).unwrap();
        bind_udp(udp.local_addr().unwrap()).expect("a second UDP socket");
    }
}

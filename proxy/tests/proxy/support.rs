//! Shared test harness: an apiserver, a running proxy, echo servers and
//! builders for Services and Endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client};
use capstan_proto::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proxy::stats::Stats;
use capstan_proxy::{Config, DnsConfig, ForwardMode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How long a change may take to reach the proxy.
pub const WAIT: Duration = Duration::from_secs(15);

/// An apiserver and a proxy using it.
pub struct Harness {
    /// The apiserver (kept alive).
    server: Option<TestServer>,
    /// Admin client.
    pub admin: Client,
    /// The proxy's counters.
    pub stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Harness {
    /// Starts an apiserver and a proxy for node `node` at `node_ip`.
    pub async fn start(node: &str, node_ip: &str, dns: Option<SocketAddr>) -> Harness {
        Self::start_with_upstream(node, node_ip, dns, vec![]).await
    }

    /// [`Harness::start`] with upstream resolvers for the DNS server.
    pub async fn start_with_upstream(
        node: &str,
        node_ip: &str,
        dns: Option<SocketAddr>,
        upstream: Vec<SocketAddr>,
    ) -> Harness {
        let server = TestServer::start().await;
        let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
        let mut config = Config::new(
            server.kubeconfig("system:kube-proxy", None),
            node,
            node_ip.parse().unwrap(),
        );
        config.forward = ForwardMode::Splice;
        config.shutdown_grace_seconds = 1;
        config.dns = dns.map(|listen| DnsConfig {
            listen,
            upstream,
            ttl: 5,
        });
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(capstan_proxy::run_with_stats(
            config,
            async move {
                let _ = stopped.await;
            },
            stats.clone(),
        ));
        Harness {
            server: Some(server),
            admin,
            stats,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Services in `default`.
    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.admin.clone(), "default")
    }

    /// Endpoints in `default`.
    pub fn endpoints(&self) -> Api<Endpoints> {
        Api::namespaced(self.admin.clone(), "default")
    }

    /// Stops the proxy (it must end cleanly) and the apiserver.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(WAIT, self.task.take().unwrap())
            .await
            .expect("the proxy stops within the grace time")
            .unwrap();
        result.expect("the proxy ends without an error");
        self.server.take().unwrap().stop().await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A service port.
pub fn port(name: &str, protocol: &str, port: i32, node_port: Option<i32>) -> ServicePort {
    ServicePort {
        name: name.into(),
        protocol: protocol.into(),
        port: Some(port),
        node_port,
        ..Default::default()
    }
}

/// A service of `ty` with `cluster_ip` and `ports`.
pub fn service(name: &str, ty: &str, cluster_ip: &str, ports: Vec<ServicePort>) -> Service {
    Service {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(ServiceSpec {
            r#type: ty.into(),
            cluster_ip: cluster_ip.into(),
            cluster_ips: if cluster_ip.is_empty() {
                vec![]
            } else {
                vec![cluster_ip.into()]
            },
            ports,
            ..Default::default()
        }),
        status: None,
    }
}

/// Endpoints `name` with ready and not-ready IPs and (name, protocol, port)s.
pub fn endpoints(
    name: &str,
    ready: &[&str],
    not_ready: &[&str],
    ports: &[(&str, &str, i32)],
) -> Endpoints {
    let addr = |ip: &&str| EndpointAddress {
        ip: (*ip).into(),
        ..Default::default()
    };
    Endpoints {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        subsets: if ready.is_empty() && not_ready.is_empty() {
            vec![]
        } else {
            vec![EndpointSubset {
                addresses: ready.iter().map(addr).collect(),
                not_ready_addresses: not_ready.iter().map(addr).collect(),
                ports: ports
                    .iter()
                    .map(|(n, p, port)| EndpointPort {
                        name: (*n).into(),
                        protocol: (*p).into(),
                        port: Some(*port),
                        ..Default::default()
                    })
                    .collect(),
            }]
        },
    }
}

/// Replaces the Endpoints `name`'s subsets.
pub async fn set_endpoints(api: &Api<Endpoints>, new: Endpoints) {
    let name = new.metadata.as_ref().unwrap().name.clone();
    let mut current = api.get(&name).await.unwrap();
    current.subsets = new.subsets;
    api.update(&current).await.unwrap();
}

/// A TCP server on `addr` that writes `id` first, then echoes.
pub async fn tcp_echo(addr: &str, id: u8) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if s.write_all(&[id]).await.is_err() {
                    return;
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    })
}

/// A UDP server on `addr` that answers each datagram with `id` + payload.
pub async fn udp_echo(addr: &str, id: u8) -> JoinHandle<()> {
    let socket = UdpSocket::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let mut reply = vec![id];
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from).await;
        }
    })
}

/// Connects to `addr` and reads the server's id byte.
pub async fn connect_id(addr: &str) -> std::io::Result<(TcpStream, u8)> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    let mut id = [0u8];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut id))
        .await
        .map_err(|_| std::io::Error::other("no id within 5 s"))??;
    Ok((s, id[0]))
}

/// Waits until a connection to `addr` gets an id accepted by `ok`.
pub async fn wait_for(addr: &str, ok: impl Fn(u8) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok((_, id)) = connect_id(addr).await
            && ok(id)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} never served as expected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `line` on `s` and checks it comes back.
pub async fn echo_once(s: &mut TcpStream, line: &[u8]) {
    s.write_all(line).await.unwrap();
    let mut back = vec![0u8; line.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .expect("echo within 5 s")
        .unwrap();
    assert_eq!(back, line);
}

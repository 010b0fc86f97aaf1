//! A cluster of replicas in one process that talk over real gRPC with mutual
//! TLS on loopback, with certificates from a CA generated for the test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_pki::{CertificateAuthority, TlsBundle, Usage};
use capstan_raftstore::grpc::{self, GrpcTransport, PEER_GROUP, peer_user};
use capstan_raftstore::node::{Replica, ReplicaConfig};
use capstan_raftstore::types::{Member, NodeId};
use tokio::sync::oneshot;

/// One replica and the handle that stops its peer server.
pub struct Running {
    pub replica: Replica<GrpcTransport>,
    stop: Option<oneshot::Sender<()>>,
}

/// A gRPC cluster with its CA and data dirs.
pub struct GrpcCluster {
    pub ca: CertificateAuthority,
    pub replicas: BTreeMap<NodeId, Running>,
    pub members: BTreeMap<NodeId, Member>,
    pub dir: tempfile::TempDir,
}

/// A client bundle for `user` in `group` from `ca`.
pub fn bundle(ca: &CertificateAuthority, user: &str, group: &str, usage: Usage) -> TlsBundle {
    let sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let c = ca
        .issue(user, &[group], &sans, usage, Duration::from_secs(7200))
        .unwrap();
    c.bundle(ca).unwrap()
}

impl GrpcCluster {
    /// Starts `n` replicas in `dir` (or a new temp dir), forms the group and
    /// waits for a leader.
    pub async fn start(n: u64, tune: impl Fn(&mut ReplicaConfig)) -> Self {
        let ca = CertificateAuthority::generate(Duration::from_secs(7200)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut listeners = BTreeMap::new();
        let mut members = BTreeMap::new();
        for id in 1..=n {
            let (l, addr) = capstan_pki::net::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            members.insert(
                id,
                Member {
                    peer_addr: addr.to_string(),
                    client_addr: String::new(),
                },
            );
            listeners.insert(id, l);
        }
        let mut replicas = BTreeMap::new();
        for (id, listener) in listeners {
            let tls = bundle(&ca, &peer_user(id), PEER_GROUP, Usage::ServerAndClient);
            let transport = GrpcTransport::new(tls.client_config().unwrap());
            let mut config = ReplicaConfig::new(id, dir.path().join(format!("r{id}")));
            tune(&mut config);
            let replica = Replica::open(config, transport).await.unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let handler = Arc::new(replica.clone());
            let server_tls = tls.server_config().unwrap();
            tokio::spawn(async move {
                let _ = grpc::serve(listener, server_tls, handler, async {
                    let _ = stopped.await;
                })
                .await;
            });
            replicas.insert(
                id,
                Running {
                    replica,
                    stop: Some(stop),
                },
            );
        }
        replicas[&1]
            .replica
            .initialize(members.clone())
            .await
            .unwrap();
        let cluster = Self {
            ca,
            replicas,
            members,
            dir,
        };
        cluster.wait_leader(Duration::from_secs(10)).await;
        cluster
    }

    /// Waits until every replica agrees on one leader; returns it.
    pub async fn wait_leader(&self, timeout: Duration) -> NodeId {
        let deadline = Instant::now() + timeout;
        loop {
            let leaders: Vec<_> = self.replicas.values().map(|r| r.replica.leader()).collect();
            if let Some(Some(l)) = leaders.first()
                && leaders.iter().all(|x| *x == Some(*l))
                && self.replicas[l].replica.is_leader()
            {
                return *l;
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {timeout:?}: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The replica with id `id`.
    pub fn get(&self, id: NodeId) -> &Replica<GrpcTransport> {
        &self.replicas[&id].replica
    }

    /// Stops every replica.
    pub async fn shutdown(mut self) {
        for r in self.replicas.values_mut() {
            let _ = r.replica.shutdown().await;
            if let Some(stop) = r.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

//! Three replicas over the real peer transport: gRPC with mutual TLS 1.3 on
//! loopback. Writes through a follower, linearizable and stale reads,
//! watches, and the peer port's refusal of certificates that are not peers.

mod common;

use std::time::Duration;

use bytes::Bytes;
use capstan_pki::Usage;
use capstan_raftstore::command::{Command, Compare, Condition, Op, Txn};
use capstan_raftstore::grpc::{GrpcTransport, PEER_GROUP, peer_user};
use capstan_raftstore::node::{Consistency, ReplicaError};
use capstan_raftstore::transport::{PeerRequest, PeerTransport};
use common::{GrpcCluster, bundle};

fn put(key: &'static str, value: &'static str) -> Command {
    Command::Txn(Txn {
        success: vec![Op::Put {
            key: Bytes::from_static(key.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        }],
        ..Txn::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reads_and_watches_across_replicas_over_mtls() {
    let cluster = GrpcCluster::start(3, |_| {}).await;
    let leader = cluster.wait_leader(Duration::from_secs(5)).await;
    let followers: Vec<_> = (1..=3).filter(|id| *id != leader).collect();
    let (f1, f2) = (cluster.get(followers[0]), cluster.get(followers[1]));

    // A watch on one follower, opened before the writes.
    let mut watch = f2.watch(0, Bytes::from_static(b"/k/")).unwrap();

    // A write through a follower is forwarded to the leader and committed.
    let r1 = f1.write(put("/k/a", "1")).await.unwrap();
    assert!(r1.succeeded);
    // Create-if-absent fails on an existing key and writes nothing.
    let create = Command::Txn(Txn {
        compares: vec![Compare {
            key: Bytes::from_static(b"/k/a"),
            condition: Condition::Absent,
        }],
        success: vec![Op::Put {
            key: Bytes::from_static(b"/k/a"),
            value: Bytes::from_static(b"2"),
        }],
        ..Txn::default()
    });
    let r2 = f2.write(create).await.unwrap();
    assert!(!r2.succeeded);
    assert_eq!(
        r2.revision, r1.revision,
        "a failed compare bumps no revision"
    );
    let r3 = cluster.get(leader).write(put("/k/b", "3")).await.unwrap();
    assert_eq!(r3.revision, r1.revision + 1);

    // Linearizable reads on the other follower see both writes.
    let a = f2
        .get(b"/k/a", None, Consistency::Linearizable)
        .await
        .unwrap();
    assert_eq!(a.kv.unwrap().value, Bytes::from_static(b"1"));
    let range = f2
        .range(
            &capstan_raftstore::storage::RangeRequest::prefix(Bytes::from_static(b"/k/")),
            Consistency::Linearizable,
        )
        .await
        .unwrap();
    assert_eq!(range.kvs.len(), 2);
    assert_eq!(range.revision, r3.revision);

    // The watch delivers both revisions, in order.
    for expected in [r1.revision, r3.revision] {
        let ev = tokio::time::timeout(Duration::from_secs(5), watch.recv())
            .await
            .expect("watch event in time")
            .unwrap()
            .unwrap();
        assert_eq!(ev.revision, expected);
    }

    // Oversized values are refused before they reach the log.
    let big = Command::Txn(Txn {
        success: vec![Op::Put {
            key: Bytes::from_static(b"/k/big"),
            value: Bytes::from(vec![b'x'; 1536 * 1024 + 1]),
        }],
        ..Txn::default()
    });
    assert!(matches!(f1.write(big).await, Err(ReplicaError::Invalid(_))));

    // The peer port refuses a certificate from the cluster CA that is not a
    // peer's (a kubelet's), and a peer certificate claiming another id.
    let member = cluster.members[&leader].clone();
    let kubelet = bundle(&cluster.ca, "system:node:w1", "system:nodes", Usage::Client);
    let outsider = GrpcTransport::new(kubelet.client_config().unwrap());
    let refused = outsider
        .call(
            9,
            leader,
            &member,
            PeerRequest::ReadIndex,
            Duration::from_secs(3),
        )
        .await
        .unwrap_err();
    assert!(
        refused.reason.contains("PermissionDenied") || refused.reason.contains("permission"),
        "{refused}"
    );
    let peer2 = bundle(
        &cluster.ca,
        &peer_user(followers[0]),
        PEER_GROUP,
        Usage::ServerAndClient,
    );
    let impostor = GrpcTransport::new(peer2.client_config().unwrap());
    let refused = impostor
        .call(
            followers[1],
            leader,
            &member,
            PeerRequest::ReadIndex,
            Duration::from_secs(3),
        )
        .await
        .unwrap_err();
    assert!(
        refused.reason.to_lowercase().contains("permission"),
        "{refused}"
    );
    // The genuine peer identity is accepted.
    let ok = impostor
        .call(
            followers[0],
            leader,
            &member,
            PeerRequest::ReadIndex,
            Duration::from_secs(3),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");

    cluster.shutdown().await;
}

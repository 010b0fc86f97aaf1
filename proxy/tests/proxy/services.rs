//! Services end to end through the proxy: ClusterIP and NodePort TCP
//! round-robin over ready endpoints, endpoint removal, refusal with no
//! endpoints, ClientIP affinity, UDP, LoadBalancer status.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use capstan_client::{Api, DeleteParams};
use capstan_proto::api::core::v1::{
    ClientIpConfig, Node, NodeCondition, NodeStatus, SessionAffinityConfig,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use tokio::net::{TcpSocket, UdpSocket};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_and_node_port_round_robin_endpoint_removal_and_refusal() {
    let _a = tcp_echo("127.77.1.1:8080", b'A').await;
    let _b = tcp_echo("127.77.1.2:8080", b'B').await;
    let _c = tcp_echo("127.77.1.3:8080", b'C').await;
    let h = Harness::start("n1", "127.77.1.100", None).await;
    h.services()
        .create(&service(
            "web",
            "NodePort",
            "127.96.101.10",
            vec![port("http", "TCP", 80, Some(30390))],
        ))
        .await
        .unwrap();
    h.endpoints()
        .create(&endpoints(
            "web",
            &["127.77.1.1", "127.77.1.2"],
            &["127.77.1.3"],
            &[("http", "TCP", 8080)],
        ))
        .await
        .unwrap();
    let vip = "127.96.101.10:80";
    wait_for(vip, |_| true).await;

    // Round-robin over the two ready endpoints; the not-ready one never.
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(connect_id(vip).await.unwrap().1);
    }
    assert!(
        !ids.contains(&b'C'),
        "a not-ready address was used: {ids:?}"
    );
    assert_eq!(ids.iter().filter(|i| **i == b'A').count(), 3, "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "alternates: {ids:?}");

    // The NodePort on the node address.
    let (mut s, id) = connect_id("127.77.1.100:30390").await.unwrap();
    assert!(id == b'A' || id == b'B');
    echo_once(&mut s, b"through the node port").await;

    // An established connection to B survives B leaving the Endpoints;
    // new connections go to A only.
    let mut to_b = loop {
        let (s, id) = connect_id(vip).await.unwrap();
        if id == b'B' {
            break s;
        }
    };
    set_endpoints(
        &h.endpoints(),
        endpoints("web", &["127.77.1.1"], &[], &[("http", "TCP", 8080)]),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut ids = HashSet::new();
        for _ in 0..4 {
            ids.insert(connect_id(vip).await.unwrap().1);
        }
        if ids == HashSet::from([b'A']) {
            break;
        }
        assert!(Instant::now() < deadline, "B still gets new connections");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    echo_once(&mut to_b, b"still here").await;

    // No ready endpoint: refused at once, never left hanging.
    set_endpoints(
        &h.endpoints(),
        endpoints("web", &[], &["127.77.1.1"], &[("http", "TCP", 8080)]),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let started = Instant::now();
        let r = connect_id(vip).await;
        let took = started.elapsed();
        match r {
            // A connection accepted while the listener was closing is
            // reset: the transition, not the final state.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => {
                assert!(
                    took < Duration::from_millis(100),
                    "refusal took {took:?} ({e})"
                );
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
                break;
            }
            Ok(_) => {}
        }
        assert!(Instant::now() < deadline, "still served without endpoints");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    echo_once(&mut to_b, b"established connections outlive the listener").await;

    // Endpoints back, then the service deleted: its listener closes.
    set_endpoints(
        &h.endpoints(),
        endpoints("web", &["127.77.1.2"], &[], &[("http", "TCP", 8080)]),
    )
    .await;
    wait_for(vip, |id| id == b'B').await;
    h.services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while connect_id(vip).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still open after delete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(connect_id("127.77.1.100:30390").await.is_err());
    assert!(
        capstan_proxy::stats::Stats::get(&h.stats.tcp_forwarded) >= 10,
        "connections counted"
    );
    // Shutdown closes the listeners but drains: the established connection
    // still works, and the proxy returns as soon as it ends.
    let stopping = tokio::spawn(h.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    echo_once(&mut to_b, b"during shutdown").await;
    assert!(
        !stopping.is_finished(),
        "stop waits for the established connection"
    );
    drop(to_b);
    let t = Instant::now();
    stopping.await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stop returned once drained"
    );
}

/// Connects from `client_ip` and reads the id.
async fn id_from(client_ip: &str, addr: &str) -> u8 {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{client_ip}:0").parse().unwrap())
        .unwrap();
    let mut s = socket.connect(addr.parse().unwrap()).await.unwrap();
    let mut id = [0u8];
    tokio::io::AsyncReadExt::read_exact(&mut s, &mut id)
        .await
        .unwrap();
    id[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_affinity_sticks_to_one_endpoint() {
    let _a = tcp_echo("127.77.2.1:8080", b'A').await;
    let _b = tcp_echo("127.77.2.2:8080", b'B').await;
    let h = Harness::start("n1", "127.77.2.100", None).await;
    let mut svc = service(
        "sticky",
        "ClusterIP",
        "127.96.102.10",
        vec![port("", "", 80, None)],
    );
    let spec = svc.spec.as_mut().unwrap();
    spec.session_affinity = "ClientIP".into();
    spec.session_affinity_config = Some(SessionAffinityConfig {
        client_ip: Some(ClientIpConfig {
            timeout_seconds: Some(60),
        }),
    });
    h.services().create(&svc).await.unwrap();
    h.endpoints()
        .create(&endpoints(
            "sticky",
            &["127.77.2.1", "127.77.2.2"],
            &[],
            &[("", "TCP", 8080)],
        ))
        .await
        .unwrap();
    let vip = "127.96.102.10:80";
    wait_for(vip, |_| true).await;
    let mut seen = HashSet::new();
    for client in ["127.77.2.50", "127.77.2.51", "127.77.2.52"] {
        let first = id_from(client, vip).await;
        for _ in 0..5 {
            assert_eq!(id_from(client, vip).await, first, "{client} moved");
        }
        seen.insert(first);
    }
    assert_eq!(seen.len(), 2, "clients spread over both endpoints");
    h.stop().await;
}

/// Sends `payload` to `vip`; the endpoint's id, the echo and the sender.
async fn ask(socket: &UdpSocket, vip: &str, payload: &[u8]) -> Option<(u8, Vec<u8>, SocketAddr)> {
    socket.send_to(payload, vip).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some((buf[0], buf[1..n].to_vec(), from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_round_robin_replies_from_the_service_address() {
    let _a = udp_echo("127.77.3.1:5353", b'A').await;
    let _b = udp_echo("127.77.3.2:5353", b'B').await;
    let h = Harness::start("n1", "127.77.3.100", None).await;
    h.services()
        .create(&service(
            "dns",
            "NodePort",
            "127.96.103.10",
            vec![port("dns", "UDP", 53, Some(30053))],
        ))
        .await
        .unwrap();
    h.endpoints()
        .create(&endpoints(
            "dns",
            &["127.77.3.1", "127.77.3.2"],
            &[],
            &[("dns", "UDP", 5353)],
        ))
        .await
        .unwrap();
    let vip = "127.96.103.10:53";
    let c1 = UdpSocket::bind("127.77.3.50:0").await.unwrap();
    let deadline = Instant::now() + WAIT;
    let first = loop {
        if let Some(r) = ask(&c1, vip, b"hello").await {
            break r;
        }
        assert!(Instant::now() < deadline, "udp service never answered");
    };
    assert_eq!(first.1, b"hello");
    assert_eq!(
        first.2,
        vip.parse().unwrap(),
        "reply from the service address"
    );
    // The same flow stays on its endpoint; a new client goes to the other.
    for _ in 0..3 {
        assert_eq!(ask(&c1, vip, b"again").await.unwrap().0, first.0);
    }
    let c2 = UdpSocket::bind("127.77.3.51:0").await.unwrap();
    let second = ask(&c2, vip, b"other").await.unwrap();
    assert_ne!(second.0, first.0, "round-robin over flows");
    // The NodePort too.
    c2.send_to(b"np", "127.77.3.100:30053").await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), c2.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[1..n], b"np");
    assert_eq!(from, "127.77.3.100:30053".parse().unwrap());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_gets_the_node_address_as_ingress() {
    let _a = tcp_echo("127.77.4.1:8080", b'A').await;
    let h = Harness::start("n1", "127.77.4.100", None).await;
    let nodes: Api<Node> = Api::all(h.admin.clone());
    let mut node = nodes
        .create(&Node {
            metadata: Some(ObjectMeta {
                name: "n1".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    node.status = Some(NodeStatus {
        conditions: vec![NodeCondition {
            r#type: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    nodes.update_status(&node).await.unwrap();
    h.services()
        .create(&service(
            "lb",
            "LoadBalancer",
            "127.96.104.10",
            vec![port("", "TCP", 80, Some(31080))],
        ))
        .await
        .unwrap();
    h.endpoints()
        .create(&endpoints("lb", &["127.77.4.1"], &[], &[("", "TCP", 8080)]))
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let svc = h.services().get("lb").await.unwrap();
        let ingress = svc
            .status
            .and_then(|s| s.load_balancer)
            .map(|lb| lb.ingress)
            .unwrap_or_default();
        if !ingress.is_empty() {
            assert_eq!(ingress.len(), 1);
            assert_eq!(ingress[0].ip, "127.77.4.100");
            break;
        }
        assert!(Instant::now() < deadline, "no ingress written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for("127.77.4.100:31080", |id| id == b'A').await;
    wait_for("127.96.104.10:80", |id| id == b'A').await;
    h.stop().await;
}

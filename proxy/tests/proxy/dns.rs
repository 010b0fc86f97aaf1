//! Cluster DNS answers over UDP and TCP: A for a ClusterIP service, the
//! ready pod IPs for a headless one, SRV for a named port, CNAME for
//! ExternalName, NXDOMAIN for an unknown name, REFUSED outside the domain.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::*;

const DNS: &str = "127.77.6.53:5353";

fn query(name: &str, ty: RecordType) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
    m.to_vec().unwrap()
}

async fn ask_udp(name: &str, ty: RecordType) -> Message {
    ask_udp_at(DNS, name, ty).await
}

async fn ask_udp_at(server: &str, name: &str, ty: RecordType) -> Message {
    let s = UdpSocket::bind("127.77.6.50:0").await.unwrap();
    s.send_to(&query(name, ty), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf))
        .await
        .expect("a dns reply within 2 s")
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 0x4242);
    m
}

async fn ask_tcp(name: &str, ty: RecordType) -> Message {
    let mut s = TcpStream::connect(DNS).await.unwrap();
    let q = query(name, ty);
    s.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(&q).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn ips(m: &Message) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_names_answer_from_the_watched_services() {
    let dns: SocketAddr = DNS.parse().unwrap();
    let h = Harness::start("n1", "127.77.6.100", Some(dns)).await;
    h.services()
        .create(&service(
            "web",
            "ClusterIP",
            "127.96.106.10",
            vec![port("http", "TCP", 80, None)],
        ))
        .await
        .unwrap();
    h.services()
        .create(&service(
            "db",
            "ClusterIP",
            "None",
            vec![port("pg", "TCP", 5432, None)],
        ))
        .await
        .unwrap();
    h.endpoints()
        .create(&endpoints(
            "db",
            &["127.77.6.2", "127.77.6.1"],
            &["127.77.6.3"],
            &[("pg", "TCP", 5432)],
        ))
        .await
        .unwrap();
    let mut ext = service("ext", "ExternalName", "", vec![]);
    ext.spec.as_mut().unwrap().external_name = "example.com".into();
    h.services().create(&ext).await.unwrap();

    // The stores catch up asynchronously: wait for the last object.
    let deadline = Instant::now() + WAIT;
    loop {
        let m = ask_udp("db.default.svc.cluster.local.", RecordType::A).await;
        if ips(&m).len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "headless answer never came: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = ask_udp("db.default.svc.cluster.local.", RecordType::A).await;
    assert!(m.metadata.authoritative);
    assert_eq!(
        ips(&m),
        vec![
            "127.77.6.1".parse::<IpAddr>().unwrap(),
            "127.77.6.2".parse().unwrap()
        ],
        "ready pod IPs only"
    );

    let deadline = Instant::now() + WAIT;
    loop {
        let m = ask_udp("web.default.svc.cluster.local.", RecordType::A).await;
        if m.metadata.response_code == ResponseCode::NoError {
            assert_eq!(ips(&m), vec!["127.96.106.10".parse::<IpAddr>().unwrap()]);
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // TCP too, with mixed case.
    let m = ask_tcp("Web.Default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(&m), vec!["127.96.106.10".parse::<IpAddr>().unwrap()]);

    let m = ask_udp("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await;
    assert_eq!(m.answers.len(), 1, "{m:?}");
    let RData::SRV(srv) = &m.answers[0].data else {
        panic!("{m:?}")
    };
    assert_eq!(srv.port, 80);
    assert_eq!(srv.target.to_ascii(), "web.default.svc.cluster.local.");

    let deadline = Instant::now() + WAIT;
    loop {
        let m = ask_udp("ext.default.svc.cluster.local.", RecordType::A).await;
        if let Some(r) = m.answers.first() {
            let RData::CNAME(c) = &r.data else {
                panic!("{m:?}")
            };
            assert_eq!(c.0.to_ascii(), "example.com.");
            break;
        }
        assert!(Instant::now() < deadline, "no CNAME: {m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let m = ask_udp("nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = ask_udp("example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_names_go_to_the_upstream_resolver() {
    // A fake upstream: answers every A query with 127.77.7.99.
    let upstream = UdpSocket::bind("127.77.7.2:5353").await.unwrap();
    let fake = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = upstream.recv_from(&mut buf).await else {
                return;
            };
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.metadata.recursion_available = true;
            let name = q.queries[0].name().clone();
            r.add_query(q.queries[0].clone());
            r.answers.push(Record::from_rdata(
                name,
                60,
                RData::A(A::new(127, 77, 7, 99)),
            ));
            let _ = upstream.send_to(&r.to_vec().unwrap(), from).await;
        }
    });
    let listen = "127.77.7.53:5353";
    let h = Harness::start_with_upstream(
        "n1",
        "127.77.7.100",
        Some(listen.parse().unwrap()),
        vec!["127.77.7.2:5353".parse().unwrap()],
    )
    .await;
    let deadline = Instant::now() + WAIT;
    let m = loop {
        let s = UdpSocket::bind("127.77.7.50:0").await.unwrap();
        s.send_to(&query("example.org.", RecordType::A), listen)
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(500), s.recv_from(&mut buf)).await
        {
            break Message::from_vec(&buf[..n]).unwrap();
        }
        assert!(Instant::now() < deadline, "the dns server never answered");
    };
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(!m.metadata.authoritative);
    assert_eq!(ips(&m), vec!["127.77.7.99".parse::<IpAddr>().unwrap()]);
    // Cluster names are still answered locally (NXDOMAIN, not forwarded).
    let m = ask_udp_at(listen, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    h.stop().await;
    fake.abort();
}

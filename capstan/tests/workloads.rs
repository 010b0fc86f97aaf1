//! Workloads end to end, on a real local cluster: `capstan up --replicas 3
//! --nodes 2` (apiservers, scheduler, controller-manager and two kubelets
//! running pods as processes on their own loopback addresses), driven
//! through the typed client and `capctl`.
//!
//! One test, in phases, because a cluster takes seconds to start:
//! 1. a Deployment of 4 replicas of a small HTTP server (python3's
//!    `http.server` on `$(POD_IP)`) becomes 4 processes over both nodes,
//!    each answering on its pod IP;
//! 2. a template change rolls the pods while a poller checks that at least
//!    `replicas - maxUnavailable` servers answer at every moment; `capctl
//!    rollout undo` brings the first template back;
//! 3. 100 pods: created → Running seen through a watch, p50 and p99
//!    printed (target p99 ≤ 1 s; asserted loosely, the figure goes in
//!    the notes);
//! 4. a second controller-manager runs; the leading one is killed; the
//!    second holds the Lease within 3 s;
//! 5. one kubelet is killed: its pods are replaced on the other node within
//!    the eviction timeout set here plus scheduling and start time.
//!
//! A second test does the same for Services (issue 6) on its own cluster:
//! the seed example (`nginx-pod.yaml` + `nginx-service-nodeport.yaml`,
//! unchanged) answers on the ClusterIP and on every node's port 30390; the
//! name resolves through each node's cluster DNS; a Deployment behind a
//! Service scaled 1 -> 3 gets requests on all three pods; a deleted pod
//! leaves the Endpoints and gets no more traffic.
//!
//! Needs `capctl` built next to this test's binary (the workspace test run
//! builds it) and python3 (Debian has it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use capstan_client::{Api, Client, ListParams};
use capstan_proto::api::apps::v1::RollingUpdateDeployment;
use capstan_proto::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::{
    Container, EnvVar, EnvVarSource, HttpGetAction, ObjectFieldSelector, Pod, PodSpec,
    PodTemplateSpec, Probe,
};
use capstan_proto::api::meta::v1::{LabelSelector, ObjectMeta};
use capstan_proto::intstr::IntOrString;

mod support;
use support::{fixture, free_port_base};

/// The loopback network of the workloads test's nodes (127.NET.0.N).
const NET: u8 = 91;
/// The services test's (its ClusterIPs are in 127.SERVICES_NET+1.0.0/16).
const SERVICES_NET: u8 = 93;

/// Every wait below is bounded by its own timeout; this bounds the slow ones.
const LONG: Duration = Duration::from_secs(90);

/// `capstan up`, killed (with its daemons) on drop.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    dir: PathBuf,
}

impl Up {
    fn args(dir: &Path, net: u8, api: u16, peer: u16, kubelet: u16) -> Vec<String> {
        vec![
            "up".into(),
            "--replicas".into(),
            "3".into(),
            "--nodes".into(),
            "2".into(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--api-port".into(),
            api.to_string(),
            "--peer-port".into(),
            peer.to_string(),
            "--kubelet-port".into(),
            kubelet.to_string(),
            "--loopback-net".into(),
            net.to_string(),
        ]
    }

    /// A cluster whose nodes are 127.NET.0.N and whose ClusterIPs are in
    /// 127.NET+1.0.0/16 (so two tests' clusters never share an address).
    fn start(dir: &Path, net: u8) -> Up {
        let (api, peer, kubelet) = (free_port_base(3), free_port_base(3), free_port_base(1));
        let args = Up::args(dir, net, api, peer, kubelet);
        let status = Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(&args)
            .arg("--configure-only")
            .status()
            .unwrap();
        assert!(status.success());
        for id in 1..=3 {
            append(
                &dir.join(format!("apiserver-{id}.yaml")),
                &format!("serviceClusterIPRange: 127.{}.0.0/16\n", net + 1),
            );
        }
        // Fast failure detection for the test: node leases every second,
        // NotReady after 4 s, eviction 2 s later; leader Leases of 2 s.
        for n in 1..=2 {
            append(
                &dir.join(format!("kubelet-node-{n}.yaml")),
                "nodeLeaseDurationSeconds: 4\nnodeStatusUpdateFrequencySeconds: 1\n",
            );
        }
        append(
            &dir.join("controller-manager.yaml"),
            "leaderElection: { leaseDurationSeconds: 2, renewDeadlineSeconds: 1.5, retryPeriodSeconds: 0.5 }\n\
             nodeLifecycleController: { nodeMonitorPeriodSeconds: 0.5, nodeMonitorGracePeriodSeconds: 4, podEvictionTimeoutSeconds: 2, nodeEvictionRate: 10 }\n",
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let up = Up {
            child,
            lines,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("capstan up ready in time");
            match up.lines.recv_timeout(left) {
                Ok(line) if line.contains("Capstan is up") => break,
                Ok(_) => {}
                Err(_) => panic!("capstan up ended or timed out before it was up"),
            }
        }
        up
    }

    fn client(&self) -> Client {
        Client::from_kubeconfig(Some(&self.dir.join("admin.kubeconfig")), None).unwrap()
    }

    fn pid(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.dir.join(format!("run/{name}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn stop(mut self) {
        kill("-INT", self.child.id() as i32);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "capstan up stops within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            kill("-INT", self.child.id() as i32);
            let deadline = Instant::now() + Duration::from_secs(60);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn kill(signal: &str, pid: i32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// GET / on `ip:8080` within 1 s: the body, or `None`.
fn http_get(ip: &str) -> Option<String> {
    let addr: std::net::SocketAddr = format!("{ip}:8080").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let body = out.split("\r\n\r\n").nth(1)?.to_owned();
    out.starts_with("HTTP/1.0 200").then_some(body)
}

/// The server every pod of the Deployment runs: answers `VERSION POD_NAME`.
const SERVER: &str = r#"import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ['VERSION'] + ' ' + os.environ['POD_NAME']).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()
"#;

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn deployment(version: &str) -> Deployment {
    let labels: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
    Deployment {
        metadata: Some(ObjectMeta {
            name: "web".into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(DeploymentSpec {
            replicas: Some(4),
            selector: Some(LabelSelector {
                match_labels: labels.clone(),
                ..Default::default()
            }),
            strategy: Some(DeploymentStrategy {
                r#type: "RollingUpdate".into(),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels,
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    termination_grace_period_seconds: Some(2),
                    containers: vec![Container {
                        name: "web".into(),
                        image: "python:3".into(),
                        command: vec!["python3".into(), "-c".into(), SERVER.into()],
                        env: vec![
                            EnvVar {
                                name: "VERSION".into(),
                                value: version.into(),
                                ..Default::default()
                            },
                            field_env("POD_IP", "status.podIP"),
                            field_env("POD_NAME", "metadata.name"),
                        ],
                        readiness_probe: Some(Probe {
                            http_get: Some(HttpGetAction {
                                port: Some(IntOrString::Int(8080)),
                                path: "/".into(),
                                ..Default::default()
                            }),
                            period_seconds: Some(1),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .map(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

fn node_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

/// The live (not deleting) pods of the Deployment.
async fn web_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            p.metadata
                .as_ref()
                .is_some_and(|m| m.deletion_timestamp.is_none())
        })
        .collect()
}

/// Waits until exactly `n` live web pods are Ready and every one answers
/// with `version`; returns them.
async fn wait_serving(pods: &Api<Pod>, n: usize, version: &str, timeout: Duration) -> Vec<Pod> {
    let deadline = Instant::now() + timeout;
    loop {
        let live = web_pods(pods).await;
        let ready: Vec<&Pod> = live.iter().filter(|p| is_ready(p)).collect();
        if live.len() == n && ready.len() == n {
            let answers: Vec<Option<String>> = ready.iter().map(|p| http_get(&pod_ip(p))).collect();
            if answers
                .iter()
                .all(|a| a.as_deref().is_some_and(|b| b.starts_with(version)))
            {
                return live;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{n} pods serving {version} within {timeout:?}; now: {:?}",
            live.iter()
                .map(|p| (
                    p.metadata.as_ref().unwrap().name.clone(),
                    node_of(p),
                    pod_ip(p),
                    is_ready(p),
                    p.status.as_ref().map(|s| s.phase.clone())
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `capctl` binary; the test needs it.
fn capctl() -> PathBuf {
    support::capctl().expect(
        "capctl is not built next to this test: run `cargo build -p capstan-ctl` (the workspace test run builds it)",
    )
}

fn run_capctl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(capctl())
        .arg("--kubeconfig")
        .arg(dir.join("admin.kubeconfig"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "capctl {args:?} failed: {text}");
    text
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn lease_holder(leases: &Api<Lease>) -> String {
    leases
        .get("kube-controller-manager")
        .await
        .ok()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_survives_a_dead_node_and_a_dead_controller_manager() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let up = Up::start(&dir, NET);
    let client = up.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");

    // 1. Four replicas over both nodes, each answering on its pod IP.
    deployments.create(&deployment("v1")).await.unwrap();
    let live = wait_serving(&pods, 4, "v1", LONG).await;
    let nodes: BTreeSet<String> = live.iter().map(node_of).collect();
    assert_eq!(
        nodes,
        BTreeSet::from(["node-1".to_owned(), "node-2".to_owned()]),
        "spread over both nodes"
    );
    let ips: BTreeSet<String> = live.iter().map(pod_ip).collect();
    assert_eq!(ips.len(), 4, "four distinct pod IPs: {ips:?}");
    for ip in &ips {
        assert!(ip.starts_with(&format!("127.{NET}.")), "{ip}");
    }
    let wide = run_capctl(&dir, &["get", "pods", "-o", "wide"]);
    assert!(
        wide.contains("NODE") && wide.contains("node-1") && wide.contains("node-2"),
        "{wide}"
    );

    // 2. Roll to v2 while polling: never fewer than 4 - 1 servers answer.
    let mut d = deployments.get("web").await.unwrap();
    d.spec.as_mut().unwrap().template = deployment("v2").spec.unwrap().template;
    deployments.update(&d).await.unwrap();
    let started = Instant::now();
    let mut min_answering = usize::MAX;
    let mut polls = 0;
    loop {
        let live = web_pods(&pods).await;
        let all: Vec<String> = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .iter()
            .map(pod_ip)
            .filter(|ip| !ip.is_empty())
            .collect();
        let answering = all.iter().filter(|ip| http_get(ip).is_some()).count();
        min_answering = min_answering.min(answering);
        polls += 1;
        let done = live.len() == 4
            && live.iter().all(is_ready)
            && live
                .iter()
                .all(|p| http_get(&pod_ip(p)).is_some_and(|b| b.starts_with("v2")));
        if done {
            break;
        }
        assert!(started.elapsed() < LONG, "rollout to v2 in {LONG:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "rollout v1 -> v2: {:?}, {polls} polls, at least {min_answering} servers answering",
        started.elapsed()
    );
    assert!(
        min_answering >= 3,
        "availability fell to {min_answering} < replicas - maxUnavailable = 3"
    );
    let undo = run_capctl(&dir, &["rollout", "undo", "deployment/web"]);
    assert!(undo.contains("rolled back"), "{undo}");
    wait_serving(&pods, 4, "v1", LONG).await;

    // 3. Pod startup latency: created → Running through a watch.
    let latency_pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut stream = Box::pin(capstan_client::watcher::watcher(
        latency_pods.clone(),
        ListParams::default().labels("bench=startup"),
    ));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watch = tokio::spawn(async move {
        use futures::StreamExt as _;
        while let Some(event) = stream.next().await {
            let objects = match event {
                Ok(capstan_client::watcher::Event::Applied(p)) => vec![p],
                Ok(capstan_client::watcher::Event::Restarted(ps)) => ps,
                _ => continue,
            };
            for p in objects {
                if p.status.as_ref().is_some_and(|s| s.phase == "Running") {
                    let _ = tx.send((p.metadata.unwrap().name, Instant::now()));
                }
            }
        }
    });
    let mut created_at = BTreeMap::new();
    for i in 0..100 {
        let name = format!("startup-{i}");
        let pod = Pod {
            metadata: Some(ObjectMeta {
                name: name.clone(),
                labels: [("bench".to_owned(), "startup".to_owned())].into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                termination_grace_period_seconds: Some(1),
                containers: vec![Container {
                    name: "sleep".into(),
                    image: "busybox".into(),
                    command: vec!["sleep".into(), "600".into()],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        created_at.insert(name, Instant::now());
        latency_pods.create(&pod).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut running: BTreeMap<String, Instant> = BTreeMap::new();
    let mut rx = rx;
    let deadline = Instant::now() + LONG;
    while running.len() < 100 {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("100 pods Running in time");
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((name, at))) => {
                running.entry(name).or_insert(at);
            }
            _ => panic!("{} of 100 pods Running before the deadline", running.len()),
        }
    }
    watch.abort();
    let mut latencies: Vec<Duration> = running
        .iter()
        .map(|(name, at)| at.duration_since(created_at[name]))
        .collect();
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "pod startup (created -> Running seen by a watch), 100 pods: p50 {p50:?}, p99 {p99:?} (target p99 <= 1 s)"
    );
    assert!(p99 < Duration::from_secs(10), "p99 {p99:?}");
    latency_pods
        .delete_collection(
            &ListParams::default().labels("bench=startup"),
            &Default::default(),
        )
        .await
        .unwrap();

    // 4. Controller-manager failover: a second instance takes the Lease
    //    within 3 s of the leader's death.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let second_log = std::fs::File::create(dir.join("logs/controller-manager-2.log")).unwrap();
    let mut second = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["controller-manager", "--config"])
        .arg(dir.join("controller-manager.yaml"))
        .current_dir(&dir)
        .stderr(second_log)
        .spawn()
        .unwrap();
    let first_holder = lease_holder(&leases).await;
    assert!(!first_holder.is_empty(), "a controller-manager leads");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        lease_holder(&leases).await,
        first_holder,
        "the second instance does not steal a live Lease"
    );
    kill("-KILL", up.pid("controller-manager"));
    let killed = Instant::now();
    let takeover = loop {
        let holder = lease_holder(&leases).await;
        if !holder.is_empty() && holder != first_holder {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no takeover within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("controller-manager takeover after the leader's SIGKILL: {takeover:?}");
    assert!(takeover <= Duration::from_secs(3), "takeover {takeover:?}");

    // 5. A dead kubelet: its pods are replaced on the other node.
    kill("-KILL", up.pid("kubelet-node-1"));
    let killed = Instant::now();
    loop {
        let live = web_pods(&pods).await;
        let serving = live
            .iter()
            .filter(|p| node_of(p) == "node-2" && is_ready(p))
            .filter(|p| http_get(&pod_ip(p)).is_some_and(|b| b.starts_with("v1")))
            .count();
        if live.len() == 4 && serving == 4 {
            break;
        }
        assert!(
            killed.elapsed() < LONG,
            "pods of the dead node replaced within {LONG:?}; live: {:?}",
            live.iter()
                .map(|p| (node_of(p), is_ready(p)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "kubelet node-1 killed: 4 pods serving again, all on node-2, after {:?} (NotReady after 4 s, eviction 2 s later)",
        killed.elapsed()
    );

    let _ = second.kill();
    let _ = second.wait();
    up.stop();
}

/// GET / on `addr` within 1 s: the body, or `None`.
fn http_get_at(addr: &str) -> Option<String> {
    let addr: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.contains(" 200 ")
        .then(|| out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

/// Polls `f` every 200 ms until it returns `Some`, at most `timeout`.
async fn eventually<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One DNS A query for `name` to `server` over UDP: the addresses.
fn dns_a(server: &str, name: &str) -> Vec<std::net::Ipv4Addr> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send_to(&query, server).unwrap();
    let mut buf = [0u8; 1500];
    let Ok(n) = socket.recv(&mut buf) else {
        return Vec::new();
    };
    let answers = u16::from_be_bytes([buf[6], buf[7]]);
    // Skip the header and the question, then read each answer's A data.
    let mut i = 12;
    while buf[i] != 0 {
        i += usize::from(buf[i]) + 1;
    }
    i += 5;
    let mut out = Vec::new();
    for _ in 0..answers {
        if i + 12 > n {
            break;
        }
        // A compressed name pointer (2 bytes) or a full name.
        if buf[i] & 0xc0 == 0xc0 {
            i += 2;
        } else {
            while buf[i] != 0 {
                i += usize::from(buf[i]) + 1;
            }
            i += 1;
        }
        let rtype = u16::from_be_bytes([buf[i], buf[i + 1]]);
        let len = usize::from(u16::from_be_bytes([buf[i + 8], buf[i + 9]]));
        i += 10;
        if rtype == 1 && len == 4 {
            out.push(std::net::Ipv4Addr::new(
                buf[i],
                buf[i + 1],
                buf[i + 2],
                buf[i + 3],
            ));
        }
        i += len;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_reach_pods_through_cluster_ips_node_ports_and_dns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let up = Up::start(&dir, SERVICES_NET);
    let client = up.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<capstan_proto::api::core::v1::Service> =
        Api::namespaced(client.clone(), "default");
    let node_ip = |n: u8| format!("127.{SERVICES_NET}.0.{n}");

    // The seed example, unchanged: nginx-demo (its image from the nodes'
    // catalogue: an HTTP server on port 80) and a NodePort Service on 30390.
    for manifest in ["nginx-pod.yaml", "nginx-service-nodeport.yaml"] {
        let out = run_capctl(&dir, &["apply", "-f", fixture(manifest).to_str().unwrap()]);
        assert!(out.contains("created"), "{out}");
    }
    let svc = services.get("my-service").await.unwrap();
    let cluster_ip = svc.spec.as_ref().unwrap().cluster_ip.clone();
    assert!(
        cluster_ip.starts_with(&format!("127.{}.", SERVICES_NET + 1)),
        "{cluster_ip}"
    );
    for addr in [
        format!("{cluster_ip}:80"),
        format!("{}:30390", node_ip(1)),
        format!("{}:30390", node_ip(2)),
    ] {
        eventually(&format!("an answer at {addr}"), LONG, async || {
            http_get_at(&addr)
        })
        .await;
    }

    // The DNS name resolves to the ClusterIP, on every node's DNS server.
    let dns_port = if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
    {
        53
    } else {
        10053
    };
    for n in [1, 2] {
        let server = format!("{}:{dns_port}", node_ip(n));
        let answers = dns_a(&server, "my-service.default.svc.cluster.local");
        assert_eq!(
            answers,
            vec![cluster_ip.parse::<std::net::Ipv4Addr>().unwrap()],
            "DNS at {server}"
        );
    }

    // A Deployment behind a Service, scaled 1 -> 3: requests spread over
    // all three pods.
    let mut d = deployment("v1");
    d.metadata.as_mut().unwrap().name = "echo".into();
    let labels: BTreeMap<String, String> = [("app".to_owned(), "echo".to_owned())].into();
    let spec = d.spec.as_mut().unwrap();
    spec.replicas = Some(1);
    spec.selector.as_mut().unwrap().match_labels = labels.clone();
    spec.template
        .as_mut()
        .unwrap()
        .metadata
        .as_mut()
        .unwrap()
        .labels = labels;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments.create(&d).await.unwrap();
    let out = run_capctl(
        &dir,
        &[
            "expose",
            "deployment",
            "echo",
            "--port",
            "80",
            "--target-port",
            "8080",
        ],
    );
    assert!(out.contains("exposed"), "{out}");
    let echo = services.get("echo").await.unwrap();
    let echo_addr = format!("{}:80", echo.spec.as_ref().unwrap().cluster_ip);
    eventually("the echo service answers", LONG, async || {
        http_get_at(&echo_addr)
    })
    .await;
    run_capctl(&dir, &["scale", "deployment/echo", "--replicas", "3"]);
    let echo_pods = ListParams::default().labels("app=echo");
    eventually("3 ready echo pods", LONG, async || {
        let list = pods.list(&echo_pods).await.ok()?;
        (list.items.iter().filter(|p| is_ready(p)).count() == 3).then_some(())
    })
    .await;
    let seen: BTreeSet<String> = eventually("requests reach all 3 pods", LONG, async || {
        let mut seen = BTreeSet::new();
        for _ in 0..60 {
            if let Some(body) = http_get_at(&echo_addr) {
                seen.insert(body);
            }
        }
        (seen.len() == 3).then_some(seen)
    })
    .await;
    println!("requests through the ClusterIP reached {seen:?}");

    // A killed pod leaves the Endpoints and gets no more traffic.
    let victim = pods.list(&echo_pods).await.unwrap().items[0].clone();
    let victim_name = victim.metadata.as_ref().unwrap().name.clone();
    let victim_ip = pod_ip(&victim);
    pods.delete(&victim_name, &Default::default())
        .await
        .unwrap();
    let endpoints: Api<capstan_proto::api::core::v1::Endpoints> =
        Api::namespaced(client.clone(), "default");
    eventually("the killed pod leaves the Endpoints", LONG, async || {
        let ep = endpoints.get("echo").await.ok()?;
        let ips: Vec<&str> = ep
            .subsets
            .iter()
            .flat_map(|s| &s.addresses)
            .map(|a| a.ip.as_str())
            .collect();
        (!ips.contains(&victim_ip.as_str())).then_some(())
    })
    .await;
    for _ in 0..30 {
        if let Some(body) = http_get_at(&echo_addr) {
            assert!(
                !body.ends_with(&victim_name),
                "traffic reached the deleted pod {victim_name}"
            );
        }
    }
    up.stop();
}

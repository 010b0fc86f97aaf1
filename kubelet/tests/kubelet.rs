//! The kubelet against an in-process apiserver, as `system:node:n1` (so
//! RBAC and the node authorizer are exercised), over the in-memory fake
//! runtime: registration and Lease, a pod reaching Running with its IP,
//! restarts and CrashLoopBackOff, graceful deletion in Kubernetes's order,
//! an unknown image, unenforced limits, adoption after a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client, DeleteParams};
use capstan_kubelet::fake::FakeRuntime;
use capstan_kubelet::{Config, run_with};
use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::{Container, Node, Pod, PodSpec, ResourceRequirements};
use capstan_proto::api::meta::v1::ObjectMeta;
use tokio::sync::oneshot;

const NODE: &str = "n1";

struct Kubelet {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Kubelet {
    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        self.task.await.expect("kubelet task").expect("kubelet run");
    }
}

fn config(server: &TestServer, dir: &Path) -> Config {
    let kubeconfig = server.kubeconfig(&format!("system:node:{NODE}"), Some("system:nodes"));
    let yaml = format!(
        "kubeconfig: {}\nnodeName: {NODE}\nnodeIP: 127.0.0.1\nport: 10250\nrootDir: root\npodCIDR: 10.88.0.0/24\nimageDir: images\n\
         capacity: {{cpu: '4', memory: 8Gi}}\nnodeLeaseDurationSeconds: 4\nnodeStatusUpdateFrequencySeconds: 0.5\n\
         labels: {{zone: a}}\ncrashLoopBackoffInitialSeconds: 3\n",
        kubeconfig.display()
    );
    let file = dir.join("kubelet.yaml");
    std::fs::write(&file, yaml).expect("write config");
    Config::load(&file).expect("config")
}

fn start(config: Config, runtime: Arc<FakeRuntime>) -> Kubelet {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(run_with(config, runtime, async move {
        let _ = rx.await;
    }));
    Kubelet {
        stop: Some(tx),
        task,
    }
}

fn pod(name: &str, image: &str, policy: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            node_name: NODE.into(),
            restart_policy: policy.into(),
            termination_grace_period_seconds: Some(30),
            containers: vec![Container {
                name: "c".into(),
                image: image.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

/// Polls `get` every 50 ms until `check` holds (at most `secs`).
async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut get: F, check: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
    T: std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(v) = get().await {
            if check(&v) {
                return v;
            }
            last = Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}; last seen: {last:#?}");
}

async fn wait_pod(pods: &Api<Pod>, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
    wait_for(
        what,
        15,
        || async { pods.get_opt(name).await.ok().flatten() },
        check,
    )
    .await
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .map(|s| s.phase.as_str())
        .unwrap_or_default()
}

fn container(p: &Pod) -> capstan_proto::api::core::v1::ContainerStatus {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.first().cloned())
        .unwrap_or_default()
}

fn waiting_reason(p: &Pod) -> String {
    container(p)
        .state
        .and_then(|s| s.waiting)
        .map(|w| w.reason)
        .unwrap_or_default()
}

fn condition(p: &Pod, kind: &str) -> Option<capstan_proto::api::core::v1::PodCondition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_runs_restarts_and_deletes_a_pod() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new(&["web:1"]));
    let kubelet = start(config(&server, dir.path()), runtime.clone());
    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();

    // Registration, status and Lease.
    let nodes: Api<Node> = Api::all(admin.clone());
    let node = wait_for(
        "the Node",
        10,
        || async { nodes.get_opt(NODE).await.ok().flatten() },
        |n: &Node| n.status.as_ref().is_some_and(|s| !s.conditions.is_empty()),
    )
    .await;
    let status = node.status.clone().unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "KubeletReady")
    );
    assert!(ready.last_heartbeat_time.is_some());
    assert_eq!(status.capacity["cpu"].as_str(), "4");
    assert_eq!(status.allocatable["memory"].as_str(), "8Gi");
    assert_eq!(status.capacity["pods"].as_str(), "110");
    assert!(
        status
            .addresses
            .iter()
            .any(|a| a.r#type == "InternalIP" && a.address == "127.0.0.1")
    );
    assert_eq!(
        status
            .daemon_endpoints
            .unwrap()
            .kubelet_endpoint
            .unwrap()
            .port,
        Some(10250)
    );
    let meta = node.metadata.clone().unwrap();
    assert_eq!(meta.labels["kubernetes.io/hostname"], NODE);
    assert_eq!(meta.labels["kubernetes.io/os"], "linux");
    assert_eq!(meta.labels["zone"], "a");
    assert_eq!(node.spec.unwrap().pod_cidr, "10.88.0.0/24");
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "kube-node-lease");
    let lease = wait_for(
        "the Lease",
        10,
        || async { leases.get_opt(NODE).await.ok().flatten() },
        |_| true,
    )
    .await;
    let spec = lease.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(NODE));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    let first_renew = spec.renew_time.unwrap();
    wait_for(
        "a renewed Lease",
        5,
        || async { leases.get_opt(NODE).await.ok().flatten() },
        |l: &Lease| l.spec.as_ref().and_then(|s| s.renew_time) != Some(first_renew),
    )
    .await;

    // A pod reaches Running with its IP, fast.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let created = Instant::now();
    pods.create(&pod("web", "web:1", "Always")).await.unwrap();
    let running = wait_pod(&pods, "web", "Running", |p| phase(p) == "Running").await;
    let to_running = created.elapsed();
    eprintln!("pod created -> Running seen by polling: {to_running:?}");
    assert!(
        to_running < Duration::from_secs(1),
        "pod took {to_running:?} to run"
    );
    let s = running.status.clone().unwrap();
    assert!(s.pod_ip.starts_with("10.88.0."), "podIP {:?}", s.pod_ip);
    assert_eq!(s.host_ip, "127.0.0.1");
    assert_eq!(s.qos_class, "BestEffort");
    assert!(s.start_time.is_some());
    for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(condition(&running, kind).unwrap().status, "True", "{kind}");
    }
    let c = container(&running);
    assert!(c.container_id.starts_with("capstan://"));
    assert_eq!(
        (c.ready, c.started, c.restart_count),
        (Some(true), Some(true), Some(0))
    );

    // An exit restarts at once, a second one backs off (CrashLoopBackOff).
    assert!(runtime.exit("web", "c", 1));
    let restarted = wait_pod(&pods, "web", "restart 1", |p| {
        container(p).restart_count == Some(1) && container(p).ready == Some(true)
    })
    .await;
    let last = container(&restarted)
        .last_state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((last.exit_code, last.reason.as_str()), (Some(1), "Error"));
    assert!(runtime.exit("web", "c", 2));
    let backing_off = wait_pod(&pods, "web", "CrashLoopBackOff", |p| {
        waiting_reason(p) == "CrashLoopBackOff"
    })
    .await;
    assert_eq!(
        phase(&backing_off),
        "Running",
        "Always keeps the pod Running"
    );
    assert_eq!(condition(&backing_off, "Ready").unwrap().status, "False");
    let back = wait_pod(&pods, "web", "restart 2 after the back-off", |p| {
        container(p).restart_count == Some(2) && container(p).ready == Some(true)
    })
    .await;
    assert_eq!(phase(&back), "Running");

    // Graceful deletion: containers stopped with the grace period, sandbox
    // stopped and removed, then the pod deleted for good.
    pods.delete(
        "web",
        &DeleteParams {
            grace_period_seconds: Some(7),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    wait_for(
        "the pod gone",
        10,
        || async { Some(pods.get_opt("web").await.ok().flatten().is_none()) },
        |gone| *gone,
    )
    .await;
    let calls = runtime.calls();
    let tail: Vec<_> = calls.iter().rev().take(3).rev().cloned().collect();
    assert_eq!(
        tail,
        [
            "stop_container c 7s",
            "stop_pod_sandbox web",
            "remove_pod_sandbox web"
        ],
        "{calls:?}"
    );
    assert_eq!(runtime.running(), 0);
    kubelet.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_image_errors_limits_and_adopts_after_restart() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new(&["web:1"]).without_limits());
    let kubelet = start(config(&server, dir.path()), runtime.clone());
    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");

    // An unknown image: ErrImagePull, then ImagePullBackOff, with the message
    // (seen through a watch: ErrImagePull lasts until the next sync).
    let mut seen = Vec::new();
    {
        use capstan_client::watcher::{Event, watcher};
        use futures::StreamExt as _;
        let params = capstan_client::ListParams::default().fields("metadata.name=ghost");
        let mut events = std::pin::pin!(watcher(pods.clone(), params));
        pods.create(&pod("ghost", "nothing:9", "Always"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !seen
            .iter()
            .any(|(r, _): &(String, String)| r == "ImagePullBackOff")
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = tokio::time::timeout(left, events.next())
                .await
                .expect("image errors in time");
            let pods = match event.unwrap().unwrap() {
                Event::Applied(p) => vec![p],
                Event::Restarted(ps) => ps,
                Event::Deleted(_) => vec![],
            };
            for p in pods {
                if let Some(w) = container(&p).state.and_then(|s| s.waiting) {
                    assert_eq!(phase(&p), "Pending");
                    seen.push((w.reason, w.message));
                }
            }
        }
    }
    let reasons: Vec<_> = seen
        .iter()
        .map(|(r, _)| r.as_str())
        .filter(|r| *r != "ContainerCreating")
        .collect();
    assert_eq!(reasons.first(), Some(&"ErrImagePull"), "{seen:?}");
    for (reason, message) in &seen[1..] {
        assert!(message.contains("nothing:9"), "{reason}: {message}");
    }

    // Limits the runtime cannot enforce: a clear condition.
    let mut limited = pod("limited", "web:1", "Always");
    limited.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements {
        limits: [
            ("cpu".to_owned(), "500m".parse().unwrap()),
            ("memory".to_owned(), "64Mi".parse().unwrap()),
        ]
        .into(),
        ..Default::default()
    });
    pods.create(&limited).await.unwrap();
    let p = wait_pod(&pods, "limited", "the limits condition", |p| {
        condition(p, "ResourceLimitsEnforced").is_some()
    })
    .await;
    let c = condition(&p, "ResourceLimitsEnforced").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "CgroupsUnavailable")
    );
    assert_eq!(p.status.as_ref().unwrap().qos_class, "Guaranteed");

    // A kubelet restart adopts the running pod; a pod deleted meanwhile is cleaned up.
    pods.create(&pod("keep", "web:1", "Always")).await.unwrap();
    pods.create(&pod("gone", "web:1", "Always")).await.unwrap();
    wait_pod(&pods, "keep", "Running", |p| phase(p) == "Running").await;
    wait_pod(&pods, "gone", "Running", |p| phase(p) == "Running").await;
    kubelet.stop().await;
    let starts = |calls: &[String]| {
        calls
            .iter()
            .filter(|c| c.starts_with("start_container") || c.starts_with("run_pod_sandbox"))
            .count()
    };
    let before = starts(&runtime.calls());
    pods.delete(
        "gone",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let kubelet = start(config(&server, dir.path()), runtime.clone());
    wait_for(
        "the orphan's sandbox removed",
        10,
        || async { Some(runtime.calls()) },
        |c: &Vec<String>| c.iter().any(|c| c == "remove_pod_sandbox gone"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls = runtime.calls();
    assert_eq!(starts(&calls), before, "nothing started twice: {calls:?}");
    assert_eq!(phase(&pods.get("keep").await.unwrap()), "Running");
    kubelet.stop().await;
    server.stop().await;
}

/// A certificate for `user` in `group`, saved in the test PKI as `name`.
fn issue(
    server: &TestServer,
    name: &str,
    user: &str,
    group: &str,
    usage: capstan_pki::Usage,
) -> capstan_pki::TlsPaths {
    let pki = server.pki_dir();
    capstan_pki::CertificateAuthority::load(&pki)
        .unwrap()
        .issue(
            user,
            &[group],
            &["127.0.0.1".to_owned()],
            usage,
            Duration::from_secs(3600),
        )
        .unwrap()
        .save(&pki, name)
        .unwrap();
    capstan_pki::TlsPaths::in_dir(&pki, name)
}

async fn read_logs(
    port: u16,
    tls: &capstan_pki::TlsPaths,
    req: capstan_proto::rpc::LogsRequest,
) -> Result<Vec<u8>, tonic::Status> {
    use futures::StreamExt as _;
    let config = tls.load().unwrap().client_config().unwrap();
    let channel = capstan_pki::net::channel(&format!("127.0.0.1:{port}"), config).unwrap();
    let mut client = capstan_proto::rpc::kubelet_client::KubeletClient::new(channel);
    let mut stream = client.container_logs(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("log chunk in time")
    {
        out.extend(chunk?.data);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_logs_to_peers_only() {
    use capstan_proto::rpc::LogsRequest;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new(&["web:1"]));
    let mut config = config(&server, dir.path());
    let serving = issue(
        &server,
        "node-n1",
        "system:node:n1",
        "system:nodes",
        capstan_pki::Usage::ServerAndClient,
    );
    config.port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.tls = Some(capstan_kubelet::TlsConfig {
        ca_file: serving.ca.clone(),
        cert_file: serving.cert.clone(),
        key_file: serving.key.clone(),
    });
    let port = config.port;
    let kubelet = start(config, runtime.clone());
    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    pods.create(&pod("web", "web:1", "Always")).await.unwrap();
    wait_pod(&pods, "web", "Running", |p| phase(p) == "Running").await;
    let first = runtime.log_path("web", "c").unwrap();
    std::fs::create_dir_all(first.parent().unwrap()).unwrap();
    std::fs::write(&first, "one\ntwo\nthree\n").unwrap();

    let peer = issue(
        &server,
        "peer",
        "apiserver-1",
        "capstan:peers",
        capstan_pki::Usage::Client,
    );
    let req = |container: &str| LogsRequest {
        namespace: "default".into(),
        name: "web".into(),
        container: container.into(),
        ..Default::default()
    };
    assert_eq!(
        read_logs(port, &peer, req("")).await.unwrap(),
        b"one\ntwo\nthree\n"
    );
    assert_eq!(
        read_logs(
            port,
            &peer,
            LogsRequest {
                tail_lines: 2,
                ..req("c")
            }
        )
        .await
        .unwrap(),
        b"two\nthree\n"
    );
    assert_eq!(
        read_logs(
            port,
            &peer,
            LogsRequest {
                limit_bytes: 5,
                ..req("c")
            }
        )
        .await
        .unwrap(),
        b"one\nt"
    );
    let missing = read_logs(port, &peer, req("nope")).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    assert!(
        missing.message().contains("nope") && missing.message().contains("[c]"),
        "{}",
        missing.message()
    );
    let no_pod = read_logs(
        port,
        &peer,
        LogsRequest {
            name: "ghost".into(),
            ..req("")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(no_pod.code(), tonic::Code::NotFound);
    let no_previous = read_logs(
        port,
        &peer,
        LogsRequest {
            previous: true,
            ..req("c")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(no_previous.code(), tonic::Code::NotFound);

    // follow streams appended bytes until the container exits.
    let follower = tokio::spawn({
        let peer = peer.clone();
        async move {
            read_logs(
                port,
                &peer,
                LogsRequest {
                    follow: true,
                    ..req("c")
                },
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&first)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"four\n"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(runtime.exit("web", "c", 0));
    let followed = follower.await.unwrap().unwrap();
    assert_eq!(followed, b"one\ntwo\nthree\nfour\n");

    // previous: the attempt before the restart.
    wait_pod(&pods, "web", "restarted", |p| {
        container(p).restart_count == Some(1)
    })
    .await;
    let second = runtime.log_path("web", "c").unwrap();
    assert_ne!(first, second);
    std::fs::create_dir_all(second.parent().unwrap()).unwrap();
    std::fs::write(&second, "again\n").unwrap();
    assert_eq!(read_logs(port, &peer, req("c")).await.unwrap(), b"again\n");
    assert_eq!(
        read_logs(
            port,
            &peer,
            LogsRequest {
                previous: true,
                ..req("c")
            }
        )
        .await
        .unwrap(),
        b"one\ntwo\nthree\nfour\n"
    );

    // Only peers and admins.
    let node_user = issue(
        &server,
        "other-node",
        "system:node:n2",
        "system:nodes",
        capstan_pki::Usage::Client,
    );
    let denied = read_logs(port, &node_user, req("c")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let admin_tls = issue(
        &server,
        "admin2",
        "root",
        "system:masters",
        capstan_pki::Usage::Client,
    );
    assert_eq!(
        read_logs(port, &admin_tls, req("c")).await.unwrap(),
        b"again\n"
    );
    kubelet.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_drive_readiness_and_restarts() {
    use capstan_proto::api::core::v1::{ExecAction, Probe};
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new(&["web:1"]));
    let kubelet = start(config(&server, dir.path()), runtime.clone());
    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    // The fake's exec fails for `false` and succeeds otherwise.
    let exec = |cmd: &str| Probe {
        exec: Some(ExecAction {
            command: vec![cmd.into()],
        }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    };
    let mut unready = pod("unready", "web:1", "Always");
    unready.spec.as_mut().unwrap().containers[0].readiness_probe = Some(exec("false"));
    let mut ready = pod("ready", "web:1", "Always");
    ready.spec.as_mut().unwrap().containers[0].readiness_probe = Some(exec("true"));
    let mut dying = pod("dying", "web:1", "Always");
    dying.spec.as_mut().unwrap().containers[0].liveness_probe = Some(exec("false"));
    for p in [&unready, &ready, &dying] {
        pods.create(p).await.unwrap();
    }
    let p = wait_pod(&pods, "ready", "ready", |p| {
        condition(p, "Ready").is_some_and(|c| c.status == "True")
    })
    .await;
    assert_eq!(container(&p).ready, Some(true));
    let p = wait_pod(&pods, "unready", "Running", |p| phase(p) == "Running").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p2 = pods.get("unready").await.unwrap();
    for p in [&p, &p2] {
        assert_eq!(container(p).ready, Some(false), "{p:#?}");
        let c = condition(p, "ContainersReady").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "ContainersNotReady")
        );
    }
    assert_eq!(
        container(&p2).restart_count,
        Some(0),
        "readiness never restarts"
    );
    wait_pod(&pods, "dying", "a liveness restart", |p| {
        container(p).restart_count >= Some(1)
    })
    .await;
    kubelet.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pods_are_mirrored_replaced_and_recreated() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let manifest = manifests.join("static.yaml");
    let write = |image: &str| {
        std::fs::write(
            &manifest,
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: static, namespace: kube-system}}\nspec:\n  containers:\n  - {{name: c, image: '{image}'}}\n"),
        )
        .unwrap()
    };
    write("web:1");
    let runtime = Arc::new(FakeRuntime::new(&["web:1", "web:2"]));
    let mut config = config(&server, dir.path());
    config.static_pod_path = Some(manifests.clone());
    let kubelet = start(config, runtime.clone());
    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "kube-system");
    let name = format!("static-{NODE}");
    let p = wait_pod(&pods, &name, "the mirror pod Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let meta = p.metadata.clone().unwrap();
    assert!(meta.annotations.contains_key("kubernetes.io/config.mirror"));
    assert_eq!(meta.annotations["kubernetes.io/config.source"], "file");
    let owner = &meta.owner_references[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", NODE));

    // Deleted through the API: created again.
    pods.delete(
        &name,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let again = wait_pod(&pods, &name, "the mirror pod recreated", |p| {
        p.metadata.as_ref().unwrap().uid != meta.uid && phase(p) == "Running"
    })
    .await;

    // A changed manifest replaces the pod.
    write("web:2");
    let replaced = wait_pod(&pods, &name, "the pod replaced", |p| {
        p.metadata.as_ref().unwrap().uid != again.metadata.as_ref().unwrap().uid
            && phase(p) == "Running"
    })
    .await;
    assert_eq!(replaced.spec.unwrap().containers[0].image, "web:2");

    // A removed manifest removes it.
    std::fs::remove_file(&manifest).unwrap();
    wait_for(
        "the pod gone",
        15,
        || async { Some(pods.get_opt(&name).await.ok().flatten().is_none()) },
        |g| *g,
    )
    .await;
    assert_eq!(runtime.running(), 0);
    kubelet.stop().await;
    server.stop().await;
}

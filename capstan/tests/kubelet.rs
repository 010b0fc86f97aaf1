//! The kubelet as a real `capstan kubelet` process with the process
//! runtime (the `capstan` binary as shim) against an in-process apiserver,
//! as `system:node:pn1`: a pod's process runs and answers on its pod IP,
//! an exiting container is restarted, its log is served by the kubelet's
//! gRPC port, and a restarted kubelet adopts the running process instead
//! of starting a second one. Every process is killed by guards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client};
use capstan_proto::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodSpec,
};
use capstan_proto::api::meta::v1::ObjectMeta;

const NODE: &str = "pn1";
const CIDR: &str = "127.79.5.0/24";

/// Kills the kubelet process on drop.
struct KubeletProcess(Child);

impl Drop for KubeletProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops every container recorded under the runtime folder on drop.
struct Containers(PathBuf);

impl Drop for Containers {
    fn drop(&mut self) {
        let _ = capstan_kubelet::runtime::process::stop_all(&self.0, Duration::from_secs(1));
    }
}

fn kubelet(config: &Path, dir: &Path) -> KubeletProcess {
    let log =
        std::fs::File::create(dir.join(format!("kubelet-{}.log", std::process::id()))).unwrap();
    KubeletProcess(
        Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["kubelet", "--config"])
            .arg(config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start capstan kubelet"),
    )
}

fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn field(name: &str, path: &str) -> EnvVar {
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

fn status(p: &Pod, name: &str) -> capstan_proto::api::core::v1::ContainerStatus {
    p.status
        .as_ref()
        .and_then(|s| {
            s.container_statuses
                .iter()
                .find(|c| c.name == name)
                .cloned()
        })
        .unwrap_or_default()
}

async fn wait_pod(pods: &Api<Pod>, what: &str, secs: u64, check: impl Fn(&Pod) -> bool) -> Pod {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(p) = pods.get("web").await {
            if check(&p) {
                return p;
            }
            last = Some(p);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}; last: {last:#?}");
}

fn http_get(ip: &str, port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((ip, port)).expect("connect to the pod");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_pod_runs_restarts_logs_and_is_adopted() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = server.pki_dir();
    capstan_pki::CertificateAuthority::load(&pki)
        .unwrap()
        .issue(
            &format!("system:node:{NODE}"),
            &["system:nodes"],
            &["127.0.0.1".to_owned()],
            capstan_pki::Usage::ServerAndClient,
            Duration::from_secs(3600),
        )
        .unwrap()
        .save(&pki, "kubelet-pn1")
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = server.kubeconfig(&format!("system:node:{NODE}"), Some("system:nodes"));
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    let config = dir.path().join("kubelet.yaml");
    std::fs::write(
        &config,
        format!(
            "kubeconfig: {}\nnodeName: {NODE}\nnodeIP: 127.0.0.1\nport: {port}\n\
             tls: {{caFile: {pki}/ca.crt, certFile: {pki}/kubelet-pn1.crt, keyFile: {pki}/kubelet-pn1.key}}\n\
             rootDir: root\npodCIDR: {CIDR}\nimageDir: images\nnodeStatusUpdateFrequencySeconds: 1\n\
             crashLoopBackoffInitialSeconds: 1\n",
            kubeconfig.display(),
            pki = pki.display()
        ),
    )
    .unwrap();
    let _containers = Containers(dir.path().join("root/runtime"));
    let mut first = kubelet(&config, dir.path());

    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let serve = Container {
        name: "http".into(),
        image: "python:3".into(),
        command: vec![
            python(),
            "-m".into(),
            "http.server".into(),
            "8080".into(),
            "--bind".into(),
            "$(MY_IP)".into(),
        ],
        env: vec![field("MY_IP", "status.podIP")],
        ..Default::default()
    };
    let crash = Container {
        name: "crash".into(),
        image: "shell".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo hello from $(POD_NAME); sleep 0.5; exit 3".into(),
        ],
        env: vec![field("POD_NAME", "metadata.name")],
        ..Default::default()
    };
    let created = Instant::now();
    pods.create(&Pod {
        metadata: Some(ObjectMeta {
            name: "web".into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            node_name: NODE.into(),
            termination_grace_period_seconds: Some(2),
            containers: vec![serve, crash],
            ..Default::default()
        }),
        status: None,
    })
    .await
    .unwrap();

    // Running, answering on its own pod IP.
    let running = wait_pod(&pods, "http running", 30, |p| {
        status(p, "http").ready == Some(true)
    })
    .await;
    eprintln!(
        "pod created -> http container ready (polled every 100 ms): {:?}",
        created.elapsed()
    );
    let ip = running.status.as_ref().unwrap().pod_ip.clone();
    assert!(ip.starts_with("127.79.5."), "pod IP {ip:?}");
    let mut answer = String::new();
    for _ in 0..50 {
        if std::net::TcpStream::connect((ip.as_str(), 8080)).is_ok() {
            answer = http_get(&ip, 8080);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer:?}");

    // The crashing container is restarted.
    let p = wait_pod(&pods, "crash restarted", 20, |p| {
        status(p, "crash").restart_count >= Some(1)
    })
    .await;
    let last = status(&p, "crash")
        .last_state
        .and_then(|s| s.terminated)
        .unwrap();
    assert_eq!(last.exit_code, Some(3));

    // Its log, through the kubelet's port, as an apiserver replica would ask.
    let peer = capstan_pki::CertificateAuthority::load(&pki)
        .unwrap()
        .issue(
            "apiserver-test",
            &["capstan:peers"],
            &[],
            capstan_pki::Usage::Client,
            Duration::from_secs(3600),
        )
        .unwrap();
    peer.save(&pki, "peer-test").unwrap();
    let tls = capstan_pki::TlsPaths::in_dir(&pki, "peer-test")
        .load()
        .unwrap()
        .client_config()
        .unwrap();
    let channel = capstan_pki::net::channel(&format!("127.0.0.1:{port}"), tls).unwrap();
    let mut client = capstan_proto::rpc::kubelet_client::KubeletClient::new(channel);
    let request = capstan_proto::rpc::LogsRequest {
        namespace: "default".into(),
        name: "web".into(),
        container: "crash".into(),
        previous: true,
        ..Default::default()
    };
    let mut stream = client.container_logs(request).await.unwrap().into_inner();
    let mut log = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        log.extend(chunk.unwrap().data);
    }
    assert_eq!(String::from_utf8_lossy(&log), "hello from web\n");

    // A new kubelet adopts the running server: same container, no restart.
    let before = status(&pods.get("web").await.unwrap(), "http");
    let _ = first.0.kill();
    let _ = first.0.wait();
    let _second = kubelet(&config, dir.path());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = status(&pods.get("web").await.unwrap(), "http");
    assert_eq!(
        after.container_id, before.container_id,
        "adopted, not started again"
    );
    assert_eq!(after.restart_count, Some(0));
    assert!(after.state.and_then(|s| s.running).is_some());
    assert!(http_get(&ip, 8080).starts_with("HTTP/1.0 200"));
    drop(_second);
    server.stop().await;
}

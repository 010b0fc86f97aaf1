//! `capstan up` end to end: start a 3-replica cluster, use it with the
//! credentials from `admin.kubeconfig` (a gRPC client and `capctl apply` /
//! `capctl get`), kill one apiserver (the others keep serving, capctl keeps
//! working), stop with SIGINT (no process left behind), start again on the
//! same directory (the data is still there).
//!
//! `capctl` is found next to this test's binary (cargo builds it for the
//! `capstan-ctl` package's own tests in the same workspace run) or at
//! `$CAPCTL_BIN`; the capctl steps are skipped with a message when it is
//! not built (`cargo test -p capstan` alone).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use capstan_proto::Resource as _;
use capstan_proto::api::core::v1::ConfigMap;
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{CreateRequest, GetRequest, ResourceRef};
use prost::Message as _;

mod support;
use support::{capctl, fixture, free_port_base};

struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Up {
    fn start(dir: &Path, api: u16, peer: u16) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["up", "--replicas", "3", "--data-dir"])
            .arg(dir)
            .args([
                "--api-port",
                &api.to_string(),
                "--peer-port",
                &peer.to_string(),
            ])
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
        Up { child, lines }
    }

    fn wait_for(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("capstan up did not print {text:?} within {timeout:?}");
    }

    fn interrupt_and_wait(mut self) -> Option<i32> {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "capstan up did not stop within 40 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose command line mentions `dir`.
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && entry.file_name() != std::process::id().to_string().as_str()
        {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// Servers and admin TLS from the kubeconfig `capstan up` wrote.
fn from_kubeconfig(path: &Path) -> (Vec<String>, std::sync::Arc<rustls::ClientConfig>) {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cluster = &doc["clusters"][0]["cluster"];
    let user = &doc["users"][0]["user"];
    let pem = |v: &serde_yaml_ng::Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let tls = capstan_pki::TlsBundle::from_pem(
        &pem(&cluster["certificate-authority-data"]),
        &pem(&user["client-certificate-data"]),
        &pem(&user["client-key-data"]),
    )
    .unwrap()
    .client_config()
    .unwrap();
    let servers = cluster["servers"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap()
                .trim_start_matches("https://")
                .to_owned()
        })
        .collect();
    (servers, tls)
}

/// Runs capctl with `kubeconfig`; (exit code, stdout + stderr).
fn run_capctl(bin: &Path, kubeconfig: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn cm_ref() -> Option<ResourceRef> {
    Some(ResourceRef {
        group: ConfigMap::INFO.group.into(),
        version: ConfigMap::INFO.version.into(),
        resource: ConfigMap::INFO.plural.into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_survives_a_killed_apiserver_stops_cleanly_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (api, peer) = (free_port_base(3), free_port_base(3));
    let began = Instant::now();
    let up = Up::start(dir.path(), api, peer);
    up.wait_for("Capstan is up", Duration::from_secs(120));
    eprintln!("up and ready after {:?}", began.elapsed());

    let (servers, tls) = from_kubeconfig(&dir.path().join("admin.kubeconfig"));
    assert_eq!(servers.len(), 3);
    let mut first =
        ResourcesClient::new(capstan_pki::net::channel(&servers[0], tls.clone()).unwrap());
    let cm = ConfigMap {
        metadata: Some(ObjectMeta {
            name: "kept".into(),
            ..Default::default()
        }),
        data: [("k".to_owned(), "v".to_owned())].into(),
        ..Default::default()
    };
    first
        .create(CreateRequest {
            resource: cm_ref(),
            namespace: "default".into(),
            object: cm.encode_to_vec(),
            dry_run: false,
        })
        .await
        .unwrap();

    let kubeconfig = dir.path().join("admin.kubeconfig");
    let capctl = capctl();
    if let Some(bin) = &capctl {
        let (code, out) = run_capctl(
            bin,
            &kubeconfig,
            &["apply", "-f", fixture("nginx-pod.yaml").to_str().unwrap()],
        );
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("created"), "{out}");
    } else {
        eprintln!(
            "capctl not built: skipping the capctl steps (build capstan-ctl or set CAPCTL_BIN)"
        );
    }

    // Kill replica 1; the cluster keeps serving through the others.
    let pid = std::fs::read_to_string(dir.path().join("run/apiserver-1.pid")).unwrap();
    Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    if let Some(bin) = &capctl {
        // capctl fails over past the dead first replica.
        let (code, out) = run_capctl(bin, &kubeconfig, &["get", "pods", "-o", "name"]);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("pod/nginx-demo"), "{out}");
        let (code, out) = run_capctl(bin, &kubeconfig, &["create", "namespace", "after-kill"]);
        assert_eq!(code, Some(0), "{out}");
    }
    let mut second =
        ResourcesClient::new(capstan_pki::net::channel(&servers[1], tls.clone()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = second
            .get(GetRequest {
                resource: cm_ref(),
                namespace: "default".into(),
                name: "kept".into(),
                allow_stale: false,
            })
            .await;
        match got {
            Ok(r) => {
                let back = ConfigMap::decode(r.into_inner().object.as_slice()).unwrap();
                assert_eq!(back.data["k"], "v");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the survivors: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("survivors did not serve within 30 s: {e}"),
        }
    }

    // Ctrl-C: exit 0, nothing left running.
    assert_eq!(up.interrupt_and_wait(), Some(0));
    let left = processes_using(dir.path());
    assert!(left.is_empty(), "processes left behind: {left:?}");

    // Again on the same directory: the object is still there.
    let up = Up::start(dir.path(), api, peer);
    up.wait_for("Capstan is up", Duration::from_secs(120));
    eprintln!("up again and ready after {:?}", began.elapsed());
    let mut again = ResourcesClient::new(capstan_pki::net::channel(&servers[2], tls).unwrap());
    let r = again
        .get(GetRequest {
            resource: cm_ref(),
            namespace: "default".into(),
            name: "kept".into(),
            allow_stale: false,
        })
        .await
        .unwrap();
    let back = ConfigMap::decode(r.into_inner().object.as_slice()).unwrap();
    assert_eq!(back.data["k"], "v");
    assert_eq!(up.interrupt_and_wait(), Some(0));
    assert!(processes_using(dir.path()).is_empty());
}

#[test]
fn up_refuses_an_even_replica_count() {
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args([
            "up",
            "--replicas",
            "2",
            "--data-dir",
            "/nonexistent/capstan-up",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("use 1, 3 or 5"), "{stderr}");
}

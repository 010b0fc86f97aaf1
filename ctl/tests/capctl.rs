//! The `capctl` binary against an in-process apiserver replica with real
//! mutual TLS, reached through a kubeconfig file: every valid fixture
//! applies (`created`, then `unchanged`) and reads back with the same
//! spec; every invalid fixture is refused naming its field paths and
//! creates nothing; selectors filter; delete, create namespace/configmap,
//! cluster members, and the exit statuses. Every wait is bounded.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capstan_apiserver::Config;
use serde_json::Value;

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `$CAPSTAN_FIXTURES`, or `shared/fixtures/manifests` beside the repository.
fn manifests_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAPSTAN_FIXTURES") {
        let dir = PathBuf::from(dir);
        let nested = dir.join("manifests");
        return if nested.is_dir() { nested } else { dir };
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/manifests")
}

fn fixtures(sub: &str) -> Vec<PathBuf> {
    let dir = manifests_dir().join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

/// One in-process apiserver replica and a kubeconfig for it.
struct Cluster {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A `capctl` process still running.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    /// The next stdout line, within [`WAIT`].
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no output line within {WAIT:?}: {e}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        capstan_pki::bootstrap::init(
            &dir.path().join("pki"),
            &capstan_pki::bootstrap::InitSpec {
                replicas: vec![1],
                ..Default::default()
            },
        )
        .unwrap();
        let (client_port, peer_port) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("apiserver.yaml"),
            format!(
                "id: 1\ndataDir: data\nclientAddress: 127.0.0.1:{client_port}\npeerAddress: 127.0.0.1:{peer_port}\n\
                 members: [{{ id: 1, clientAddress: \"127.0.0.1:{client_port}\", peerAddress: \"127.0.0.1:{peer_port}\" }}]\n\
                 tls: {{ caFile: pki/ca.crt, certFile: pki/apiserver.crt, keyFile: pki/apiserver.key, peerCertFile: pki/peer-1.crt, peerKeyFile: pki/peer-1.key }}\n\
                 raft: {{ heartbeatMillis: 50, electionTimeoutMillis: [150, 300] }}\n"
            ),
        )
        .unwrap();
        let kubeconfig = dir.path().join("admin.kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{client_port}\n    servers:\n    - https://127.0.0.1:{client_port}\n    certificate-authority: pki/ca.crt\n\
                 users:\n- name: admin\n  user:\n    client-certificate: pki/admin.crt\n    client-key: pki/admin.key\n\
                 contexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\n\
                 current-context: test\n"
            ),
        )
        .unwrap();
        let config = Config::load(&dir.path().join("apiserver.yaml")).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(capstan_apiserver::run(config, async {
            let _ = stopped.await;
        }));
        let cluster = Cluster {
            dir,
            kubeconfig,
            stop: Some(stop),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let out = cluster.run(&["get", "namespace", "default", "-o", "name"], None);
            if out.code == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server not ready in {WAIT:?}: {}",
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// Runs `capctl --kubeconfig … ARGS`, with `stdin` if given; bounded by [`WAIT`].
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_capctl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        // Read the pipes on threads so a large output cannot block the child.
        let mut out_pipe = child.stdout.take().unwrap();
        let mut err_pipe = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out_pipe, &mut s).unwrap();
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut err_pipe, &mut s).unwrap();
            s
        });
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("capctl {args:?} did not finish in {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            code: status.code().unwrap_or(-1),
            stdout: out_reader.join().unwrap(),
            stderr: err_reader.join().unwrap(),
        }
    }

    /// Starts a long-running `capctl` (e.g. `get -w`); its stdout lines
    /// arrive on the returned channel. Killed on drop.
    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_capctl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert_eq!(
            out.code, 0,
            "capctl {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Every object of every fixture kind, as `kind/name` lines (sorted).
    fn everything(&self) -> Vec<String> {
        let mut all = Vec::new();
        for kind in ["pods", "services", "deployments", "rc", "hpa", "configmaps"] {
            all.extend(
                self.ok(&["get", kind, "-A", "-o", "name"])
                    .lines()
                    .map(String::from),
            );
        }
        all.sort();
        all
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

/// Whether every field of `wanted` is in `stored` with the same value
/// (the server adds defaults, so `stored` may have more).
fn contains(stored: &Value, wanted: &Value, at: &str) -> Result<(), String> {
    match (stored, wanted) {
        (Value::Object(s), Value::Object(w)) => w.iter().try_for_each(|(k, wv)| match s.get(k) {
            Some(sv) => contains(sv, wv, &format!("{at}.{k}")),
            None => Err(format!("{at}.{k} is missing")),
        }),
        (Value::Array(s), Value::Array(w)) if s.len() == w.len() => s
            .iter()
            .zip(w)
            .enumerate()
            .try_for_each(|(i, (sv, wv))| contains(sv, wv, &format!("{at}[{i}]"))),
        (s, w) if s == w => Ok(()),
        (s, w) => Err(format!("{at}: stored {s}, manifest {w}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capctl_against_an_apiserver() {
    let cluster = Cluster::start().await;

    // Usage errors exit 64, before any connection.
    let out = cluster.run(&["get", "nosuchkind"], None);
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(out.stderr.contains("nosuchkind"), "{}", out.stderr);
    let out = cluster.run(&["frobnicate"], None);
    assert_eq!(out.code, 64, "{}", out.stderr);

    // Every invalid fixture is refused with its field paths; nothing is created.
    let expected: &[(&str, &[&str])] = &[
        (
            "deployment-old-group-and-typos.yaml",
            &["matadata", "spec.replica", "spec.template.matadata"],
        ),
        (
            "hpa-misspelled-keys.yaml",
            &["matadata", "spec.maxReplica", "spec.minReplica"],
        ),
        ("pod-misspelled-keys.yaml", &["apiSerdion", "matadata"]),
        ("rc-misspelled-template.yaml", &["spec.templete"]),
    ];
    let invalid = fixtures("invalid");
    for file in &invalid {
        let name = file.file_name().unwrap().to_str().unwrap();
        let out = cluster.run(&["apply", "-f", path(file)], None);
        assert_eq!(out.code, 1, "{name}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.is_empty(), "{name}: {}", out.stdout);
        let paths = expected
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[][..], |(_, p)| *p);
        for p in paths {
            assert!(
                out.stderr.contains(&format!("{p}:")),
                "{name}: {p} not named in:\n{}",
                out.stderr
            );
        }
    }
    // A valid document beside an invalid one is not applied either.
    let valid = fixtures("valid");
    let out = cluster.run(
        &["apply", "-f", path(&valid[0]), "-f", path(&invalid[0])],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(cluster.everything(), Vec::<String>::new());

    // Every valid fixture: created, then unchanged (the directory form).
    let dir = manifests_dir().join("valid");
    let first = cluster.ok(&["apply", "-f", path(&dir)]);
    assert_eq!(first.lines().count(), valid.len(), "{first}");
    assert!(first.lines().all(|l| l.ends_with(" created")), "{first}");
    assert!(first.contains("pod/nginx-demo created"), "{first}");
    let again = cluster.ok(&["apply", "-f", path(&dir)]);
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");

    // Each reads back with the same spec (plus the server's defaults).
    for file in &valid {
        let manifest = yaml(&std::fs::read_to_string(file).unwrap());
        let kind = manifest["kind"].as_str().unwrap();
        let name = manifest["metadata"]["name"].as_str().unwrap();
        let stored = yaml(&cluster.ok(&["get", kind, name, "-o", "yaml"]));
        assert_eq!(stored["kind"], manifest["kind"]);
        contains(&stored["spec"], &manifest["spec"], "spec")
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        contains(&stored["metadata"], &manifest["metadata"], "metadata")
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(stored["metadata"]["resourceVersion"].is_string());
    }

    // A changed manifest from standard input: configured.
    let nginx = std::fs::read_to_string(manifests_dir().join("valid/nginx-pod.yaml")).unwrap();
    let changed = nginx.replacen("  labels:\n", "  labels:\n    tier: web\n", 1);
    assert_ne!(changed, nginx);
    let out = cluster.run(&["apply", "-f", "-"], Some(&changed));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "pod/nginx-demo configured\n");

    // Tables.
    let pods = cluster.ok(&["get", "pods"]);
    let header: Vec<&str> = pods.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(pods.contains("nginx-demo"), "{pods}");
    let all = cluster.ok(&["get", "deploy", "-A", "--show-labels"]);
    let header: Vec<&str> = all.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "LABELS"
        ]
    );
    assert!(all.lines().nth(1).unwrap().starts_with("default"), "{all}");

    // Selectors filter.
    let by_label = cluster.ok(&["get", "pods", "-l", "tier=web", "-o", "name"]);
    assert_eq!(by_label, "pod/nginx-demo\n");
    let by_field = cluster.ok(&[
        "get",
        "pods",
        "--field-selector",
        "metadata.name=db",
        "-o",
        "name",
    ]);
    assert_eq!(by_field, "pod/db\n");
    let set_based = cluster.ok(&["get", "po", "-l", "!tier", "-o", "name"]);
    assert!(
        !set_based.contains("nginx-demo") && set_based.contains("pod/db"),
        "{set_based}"
    );

    // Several kinds at once.
    let two = cluster.ok(&["get", "pods,services", "-o", "name"]);
    assert!(
        two.contains("pod/myweb") && two.contains("service/my-service"),
        "{two}"
    );
    let all = cluster.ok(&["get", "all"]);
    assert!(
        all.contains("deployment.apps/frontend") && all.contains("pod/db"),
        "{all}"
    );

    // The server's validation: Invalid with the field path, exit 1.
    let out = cluster.run(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n"),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(
            "Error from server (Invalid): error when applying configmap/Bad_Name from -: "
        ) && out.stderr.contains("metadata.name: Invalid value"),
        "{}",
        out.stderr
    );

    // NotFound names the object and exits 1.
    let out = cluster.run(&["get", "pod", "missing"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("NotFound") && out.stderr.contains("missing"),
        "{}",
        out.stderr
    );

    // create namespace / configmap, and an AlreadyExists.
    assert_eq!(
        cluster.ok(&["create", "namespace", "team-a"]),
        "namespace/team-a created\n"
    );
    let out = cluster.run(&["create", "namespace", "team-a"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("AlreadyExists"), "{}", out.stderr);
    let file = cluster.dir.path().join("app.properties");
    std::fs::write(&file, "mode=fast\n").unwrap();
    let from_file = format!("--from-file={}", path(&file));
    assert_eq!(
        cluster.ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "team-a",
            "--from-literal=a=1",
            "--from-literal=b=two",
            &from_file,
        ]),
        "configmap/settings created\n"
    );
    let cm: Value =
        serde_json::from_str(&cluster.ok(&["get", "cm", "settings", "-n", "team-a", "-o", "json"]))
            .unwrap();
    assert_eq!(cm["data"]["a"], "1");
    assert_eq!(cm["data"]["b"], "two");
    assert_eq!(cm["data"]["app.properties"], "mode=fast\n");
    assert_eq!(cm["metadata"]["namespace"], "team-a");
    assert_eq!(
        cluster.ok(&["get", "cm", "-n", "default", "-o", "name"]),
        ""
    );

    // label / annotate / scale, through merge patches.
    assert_eq!(
        cluster.ok(&["label", "pod", "myweb", "env=prod"]),
        "pod/myweb labeled\n"
    );
    let out = cluster.run(&["label", "pod", "myweb", "env=dev"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--overwrite"), "{}", out.stderr);
    cluster.ok(&["label", "pod/myweb", "env=dev", "--overwrite"]);
    assert_eq!(
        cluster.ok(&["get", "pods", "-l", "env=dev", "-o", "name"]),
        "pod/myweb\n"
    );
    cluster.ok(&["label", "pod", "myweb", "env-"]);
    assert_eq!(cluster.ok(&["get", "pods", "-l", "env", "-o", "name"]), "");
    assert_eq!(
        cluster.ok(&["annotate", "deploy", "frontend", "note=hello world"]),
        "deployment.apps/frontend annotated\n"
    );
    assert_eq!(
        cluster.ok(&["scale", "deployment", "frontend", "--replicas=3"]),
        "deployment.apps/frontend scaled\n"
    );
    let deploy: Value =
        serde_json::from_str(&cluster.ok(&["get", "deploy/frontend", "-o", "json"])).unwrap();
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(deploy["metadata"]["annotations"]["note"], "hello world");
    assert_eq!(
        cluster.ok(&[
            "get",
            "deploy",
            "frontend",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    assert_eq!(
        cluster.ok(&[
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}"
        ]),
        "db\nmyweb\nnginx-demo\n"
    );
    let out = cluster.run(&["scale", "pod", "myweb", "--replicas=2"], None);
    assert_eq!(out.code, 64, "{}", out.stderr);
    let explain = cluster.ok(&["explain", "po.spec.containers"]);
    assert!(explain.contains("image\t<string>"), "{explain}");

    // describe: the object, then its events.
    let event = "apiVersion: v1\nkind: Event\nmetadata: {name: myweb.1}\n\
                 involvedObject: {kind: Pod, name: myweb, namespace: default}\n\
                 reason: Scheduled\nmessage: assigned to node-1\ntype: Normal\n\
                 source: {component: default-scheduler}\n";
    let out = cluster.run(&["apply", "-f", "-"], Some(event));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let described = cluster.ok(&["describe", "pod", "myweb"]);
    for want in [
        "Name:         myweb",
        "Namespace:    default",
        "Spec:\n  containers:",
        "Events:\n",
    ] {
        assert!(
            described.contains(want),
            "{want:?} missing in:\n{described}"
        );
    }
    let last = described.lines().last().unwrap();
    assert!(
        last.contains("Normal")
            && last.contains("Scheduled")
            && last.contains("default-scheduler")
            && last.contains("assigned to node-1"),
        "{described}"
    );
    let other = cluster.ok(&["describe", "deploy/frontend"]);
    assert!(other.contains("Events:       <none>"), "{other}");

    // get -w: the list, then each change as it happens.
    let watch = cluster.spawn(&["get", "configmaps", "-w", "-n", "default"]);
    let header: Vec<String> = watch
        .next_line()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"]);
    cluster.ok(&["create", "configmap", "watched", "--from-literal=a=1"]);
    let added = watch.next_line();
    assert!(
        added.starts_with("watched ") && added.contains(" 1 "),
        "{added}"
    );
    cluster.ok(&["label", "cm", "watched", "seen=yes"]);
    assert!(watch.next_line().starts_with("watched "));
    cluster.ok(&["delete", "cm", "watched"]);
    assert!(watch.next_line().starts_with("watched "));
    drop(watch);
    let named = cluster.spawn(&["get", "deploy/frontend", "-w", "-o", "name"]);
    assert_eq!(named.next_line(), "deployment.apps/frontend");
    cluster.ok(&["scale", "deploy", "frontend", "--replicas=2"]);
    assert_eq!(named.next_line(), "deployment.apps/frontend");
    drop(named);

    // delete: by name, by selector, from a file, --all.
    assert_eq!(cluster.ok(&["delete", "pod", "db"]), "pod \"db\" deleted\n");
    let out = cluster.run(&["delete", "pod", "db"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
    assert_eq!(
        cluster.ok(&["delete", "pods", "-l", "tier=web"]),
        "pod \"nginx-demo\" deleted\n"
    );
    let hpa = manifests_dir().join("valid/php-apache-hpa.yaml");
    assert_eq!(
        cluster.ok(&["delete", "-f", path(&hpa)]),
        "horizontalpodautoscaler \"php-apache\" deleted\n"
    );
    cluster.ok(&["delete", "services", "--all"]);
    assert_eq!(cluster.ok(&["get", "svc", "-o", "name"]), "");
    assert_eq!(cluster.ok(&["get", "hpa", "-o", "name"]), "");
    assert_eq!(cluster.ok(&["get", "pods", "-o", "name"]), "pod/myweb\n");

    // cluster members: one replica, the leader.
    let members = cluster.ok(&["cluster", "members"]);
    let lines: Vec<&str> = members.lines().collect();
    assert_eq!(lines.len(), 2, "{members}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("HEALTHY"),
        "{members}"
    );
    assert!(lines[1].contains("leader"), "{members}");
    let json: Value =
        serde_json::from_str(&cluster.ok(&["cluster", "members", "-o", "json"])).unwrap();
    let list = json["members"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["role"], "leader");
    assert_eq!(list[0]["healthy"], true);

    // completion: a bash script bash accepts, completing kinds.
    let script = cluster.dir.path().join("capctl.bash");
    std::fs::write(&script, cluster.ok(&["completion", "bash"])).unwrap();
    let completed = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && COMP_WORDS=(capctl get deploym) && COMP_CWORD=2 && _capctl && echo \"${COMPREPLY[@]}\"")
        .arg("bash")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&completed.stdout), "deployments\n");

    // api-resources and version.
    let resources = cluster.ok(&["api-resources"]);
    assert!(
        resources.contains("deployments") && resources.contains("deploy"),
        "{resources}"
    );
    let version = cluster.ok(&["version"]);
    assert!(version.starts_with("Client Version: capctl "), "{version}");
}

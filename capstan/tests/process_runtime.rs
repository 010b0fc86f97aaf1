//! The kubelet's process runtime against real processes: the `capstan`
//! binary is the container shim, pods get loopback addresses from
//! 127.77.x.0/24-style CIDRs, and every process a test starts is killed by
//! a guard even when the test fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use capstan_kubelet::runtime::process::{CgroupMode, ProcessRuntime, ProcessRuntimeConfig};
use capstan_kubelet::runtime::{
    ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState, ContainerStatus,
    Resources, Runtime, RuntimeError, SandboxConfig, SandboxMetadata, SandboxState,
};

/// A runtime in a temporary folder, with an image catalogue. Dropping it
/// kills every container process group and shim it recorded.
struct Harness {
    dir: tempfile::TempDir,
    cidr: String,
    cgroups: CgroupMode,
}

impl Harness {
    fn new(cidr: &str) -> Self {
        Self::with_cgroups(cidr, CgroupMode::Auto)
    }

    fn with_cgroups(cidr: &str, cgroups: CgroupMode) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        std::fs::write(
            dir.path().join("images/echo.yaml"),
            "name: capstan/echo\n\
             entrypoint: [sh, -c]\n\
             args: ['echo \"$GREETING $WHO\"; pwd']\n\
             env:\n  - {name: GREETING, value: hello}\n  - {name: WHO, value: image}\n\
             workingDir: /tmp\n",
        )
        .unwrap();
        Self {
            dir,
            cidr: cidr.to_string(),
            cgroups,
        }
    }

    fn config(&self) -> ProcessRuntimeConfig {
        ProcessRuntimeConfig {
            root_dir: self.dir.path().join("root"),
            pod_cidr: self.cidr.clone(),
            image_dir: self.dir.path().join("images"),
            shim: PathBuf::from(env!("CARGO_BIN_EXE_capstan")),
            cgroups: self.cgroups,
        }
    }

    /// A runtime on this harness's folder (call again to "restart").
    fn runtime(&self) -> ProcessRuntime {
        ProcessRuntime::new(self.config()).unwrap()
    }

    fn sandbox(&self, name: &str) -> SandboxConfig {
        SandboxConfig {
            metadata: SandboxMetadata {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("uid-{name}"),
                attempt: 0,
            },
            hostname: name.into(),
            log_directory: self.dir.path().join("logs").join(name),
            labels: BTreeMap::from([("pod".to_string(), name.to_string())]),
            annotations: BTreeMap::new(),
            resources: Resources::default(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let containers = self.dir.path().join("root/containers");
        let Ok(entries) = std::fs::read_dir(&containers) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("started.json")) else {
                continue;
            };
            for key in ["\"pid\"", "\"shimPid\""] {
                if let Some(pid) = json_u32(&text, key) {
                    let target = if key == "\"pid\"" {
                        format!("-{pid}")
                    } else {
                        pid.to_string()
                    };
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", "--", &target])
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
        }
        // cgroups made by the runtime (v1 and v2 layouts), now empty.
        std::thread::sleep(Duration::from_millis(100));
        let sandboxes: Vec<String> = std::fs::read_dir(self.dir.path().join("root/sandboxes"))
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for base in [
            "/sys/fs/cgroup/cpu/capstan",
            "/sys/fs/cgroup/memory/capstan",
            "/sys/fs/cgroup/capstan",
        ] {
            for sb in &sandboxes {
                let sb_dir = Path::new(base).join(sb);
                if let Ok(cs) = std::fs::read_dir(&sb_dir) {
                    for c in cs.flatten().filter(|c| c.path().is_dir()) {
                        let _ = std::fs::remove_dir(c.path());
                    }
                }
                let _ = std::fs::remove_dir(&sb_dir);
            }
        }
    }
}

/// The number after `"key":` in a JSON text (enough for the guard).
fn json_u32(text: &str, key: &str) -> Option<u32> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn container(name: &str, attempt: u32, image: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: ContainerMetadata {
            name: name.into(),
            attempt,
        },
        image: image.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        args: Vec::new(),
        working_dir: None,
        envs: Vec::new(),
        log_path: PathBuf::from(format!("{name}/{attempt}.log")),
        resources: Resources::default(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

/// Polls the container until `done` holds (at most 15 s).
async fn wait_status(
    rt: &ProcessRuntime,
    id: &str,
    done: impl Fn(&ContainerStatus) -> bool,
) -> ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = rt.container_status(id).await.unwrap();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} never got there: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls a file until it contains `needle` (at most 15 s).
async fn wait_log(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never had {needle:?}: {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn exited(s: &ContainerStatus) -> bool {
    s.state == ContainerState::Exited
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_ips_are_allocated_persisted_and_released() {
    let h = Harness::new("127.77.1.0/29");
    let rt = h.runtime();
    let mut ids = Vec::new();
    for n in ["a", "b", "c"] {
        ids.push(rt.run_pod_sandbox(&h.sandbox(n)).await.unwrap());
    }
    let ip = |s: &capstan_kubelet::runtime::SandboxStatus| s.ip.unwrap().to_string();
    let mut ips = Vec::new();
    for id in &ids {
        let s = rt.pod_sandbox_status(id).await.unwrap();
        assert_eq!(s.state, SandboxState::Ready);
        ips.push(ip(&s));
    }
    assert_eq!(ips, ["127.77.1.2", "127.77.1.3", "127.77.1.4"]);

    rt.stop_pod_sandbox(&ids[1]).await.unwrap();
    rt.stop_pod_sandbox(&ids[1]).await.unwrap(); // idempotent
    let stopped = rt.pod_sandbox_status(&ids[1]).await.unwrap();
    assert_eq!(stopped.state, SandboxState::NotReady);
    assert_eq!(stopped.ip, None);

    // A restarted runtime knows what is held: the freed address is reused,
    // the held ones are not.
    let rt2 = h.runtime();
    let d = rt2.run_pod_sandbox(&h.sandbox("d")).await.unwrap();
    assert_eq!(ip(&rt2.pod_sandbox_status(&d).await.unwrap()), "127.77.1.3");
    let e = rt2.run_pod_sandbox(&h.sandbox("e")).await.unwrap();
    assert_eq!(ip(&rt2.pod_sandbox_status(&e).await.unwrap()), "127.77.1.5");
    let f = rt2.run_pod_sandbox(&h.sandbox("f")).await.unwrap();
    assert_eq!(ip(&rt2.pod_sandbox_status(&f).await.unwrap()), "127.77.1.6");
    let full = rt2.run_pod_sandbox(&h.sandbox("g")).await.unwrap_err();
    assert!(full.to_string().contains("exhausted"), "{full}");

    rt2.remove_pod_sandbox(&ids[1]).await.unwrap();
    rt2.remove_pod_sandbox(&ids[1]).await.unwrap(); // idempotent
    assert!(matches!(
        rt2.pod_sandbox_status(&ids[1]).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert_eq!(rt2.list_pod_sandboxes().await.unwrap().len(), 5);

    let mut bad = h.config();
    bad.pod_cidr = "fd00:10::/64".into();
    let err = ProcessRuntime::new(bad)
        .err()
        .expect("IPv6 refused")
        .to_string();
    assert!(err.contains("only IPv4"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_run_image_entrypoint_or_explicit_command() {
    let h = Harness::new("127.77.2.0/24");
    let rt = h.runtime();
    assert_eq!(
        rt.pull_image("capstan/echo").await.unwrap(),
        "capstan/echo:latest"
    );
    match rt.pull_image("capstan/absent:1.0").await {
        Err(RuntimeError::ImageNotFound { image, message }) => {
            assert_eq!(image, "capstan/absent:1.0");
            assert!(message.contains("not in the image catalogue"), "{message}");
        }
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
    assert_eq!(rt.list_images().await.unwrap().len(), 1);
    let sb_config = h.sandbox("web");
    let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();

    // Image entrypoint, args, env and workingDir; the container's env wins.
    let mut c = container("echo", 0, "capstan/echo:latest", &[]);
    c.envs = vec![("WHO".into(), "pod".into())];
    let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
    assert_eq!(
        rt.container_status(&id).await.unwrap().state,
        ContainerState::Created
    );
    rt.start_container(&id).await.unwrap();
    assert!(
        rt.start_container(&id).await.is_err(),
        "a container starts once"
    );
    let s = wait_status(&rt, &id, exited).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (Some(0), "Completed"));
    assert!(s.started_at.is_some() && s.finished_at.is_some());
    assert_eq!(s.log_path, sb_config.log_directory.join("echo/0.log"));
    assert_eq!(
        std::fs::read_to_string(&s.log_path).unwrap(),
        "hello pod\n/tmp\n"
    );

    // An explicit command runs on the host whatever its image; stderr goes
    // to the same log.
    let c = container(
        "explicit",
        0,
        "nowhere/unknown:9",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let s = wait_status(&rt, &id, exited).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (Some(3), "Error"));
    assert_eq!(s.image, "nowhere/unknown:9");
    assert_eq!(std::fs::read_to_string(&s.log_path).unwrap(), "out\nerr\n");

    // No command and an unknown image: ImageNotFound, nothing created.
    let c = container("lost", 0, "nowhere/unknown:9", &[]);
    let err = rt.create_container(&sb, &c, &sb_config).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ImageNotFound { .. }), "{err:?}");

    // A missing executable fails the start, with the reason.
    let c = container("missing", 0, "x", &["/nonexistent/binary"]);
    let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
    let err = rt.start_container(&id).await.unwrap_err().to_string();
    assert!(err.contains("/nonexistent/binary"), "{err}");
    let s = rt.container_status(&id).await.unwrap();
    assert_eq!(
        (s.state, s.reason.as_str()),
        (ContainerState::Exited, "StartError")
    );

    let all = rt
        .list_containers(&ContainerFilter {
            sandbox_id: Some(sb.clone()),
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    rt.remove_pod_sandbox(&sb).await.unwrap();
    assert!(
        rt.list_containers(&ContainerFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !sb_config.log_directory.join("echo/0.log").exists(),
        "logs go with the sandbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_serves_on_its_pod_ip_and_exec_runs_in_its_context() {
    let h = Harness::new("127.77.3.0/24");
    let rt = h.runtime();
    let sb_config = h.sandbox("server");
    let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
    let pod_ip: IpAddr = rt.pod_sandbox_status(&sb).await.unwrap().ip.unwrap();
    let script = "import os, socket\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind((os.environ['CAPSTAN_POD_IP'], 18080)); s.listen(8)\n\
        sum(range(5_000_000))\n\
        print('listening', flush=True)\n\
        while True:\n    c, _ = s.accept(); c.sendall(b'hello from ' + os.environ['CAPSTAN_POD_IP'].encode()); c.close()\n";
    let mut c = container("server", 0, "python:3", &["python3", "-c", script]);
    // The runtime adds CAPSTAN_POD_IP itself.
    c.envs = vec![("WHO".into(), "pod".into())];
    c.working_dir = Some("/tmp".into());
    let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let s = rt.container_status(&id).await.unwrap();
    assert_eq!(s.state, ContainerState::Running);
    wait_log(&s.log_path, "listening").await;

    let mut conn =
        TcpStream::connect_timeout(&SocketAddr::new(pod_ip, 18080), Duration::from_secs(5))
            .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, format!("hello from {pod_ip}"));

    // exec: the container's env and working directory, bounded by a timeout.
    let r = rt
        .exec_sync(
            &id,
            &[
                "sh".into(),
                "-c".into(),
                "echo $WHO; pwd; echo oops >&2; exit 4".into(),
            ],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.exit_code, 4);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "pod\n/tmp\n");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "oops\n");
    let t = Instant::now();
    let err = rt
        .exec_sync(
            &id,
            &["sleep".into(), "10".into()],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // Usage of its process group (it burnt some CPU before listening).
    let stats = rt.container_stats(&id).await.unwrap();
    assert!(stats.memory_bytes > 1 << 20, "{stats:?}");
    assert!(stats.cpu_usage_nanos >= 50_000_000, "{stats:?}");

    // Stop: SIGTERM is enough for this one.
    rt.stop_container(&id, Duration::from_secs(5))
        .await
        .unwrap();
    let s = rt.container_status(&id).await.unwrap();
    assert_eq!((s.state, s.exit_code), (ContainerState::Exited, Some(143)));
    assert!(
        TcpStream::connect_timeout(&SocketAddr::new(pod_ip, 18080), Duration::from_secs(1))
            .is_err()
    );
    let err = rt
        .exec_sync(&id, &["true".into()], Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_sigterm_then_sigkill_after_the_timeout() {
    let h = Harness::new("127.77.4.0/24");
    let rt = h.runtime();
    let sb_config = h.sandbox("stubborn");
    let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
    let c = container(
        "stubborn",
        0,
        "x",
        &[
            "sh",
            "-c",
            "trap 'echo got TERM' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let log = rt.container_status(&id).await.unwrap().log_path;
    wait_log(&log, "ready").await;
    let t = Instant::now();
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "SIGKILL came before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let s = rt.container_status(&id).await.unwrap();
    assert_eq!(
        (s.state, s.exit_code, s.reason.as_str()),
        (ContainerState::Exited, Some(137), "Error")
    );
    assert!(std::fs::read_to_string(&log).unwrap().contains("got TERM"));
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap(); // idempotent
    rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_restart_attempts() {
    let h = Harness::new("127.77.5.0/24");
    let rt = h.runtime();
    let sb_config = h.sandbox("crashy");
    let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
    let mut ids = Vec::new();
    for attempt in 0..2 {
        let script = format!("echo attempt {attempt}; exit 7");
        let c = container("crashy", attempt, "x", &["sh", "-c", &script]);
        let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let s = wait_status(&rt, &id, exited).await;
        assert_eq!((s.exit_code, s.metadata.attempt), (Some(7), attempt));
        assert_eq!(
            std::fs::read_to_string(&s.log_path).unwrap(),
            format!("attempt {attempt}\n")
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    let old_log = rt.container_status(&ids[0]).await.unwrap().log_path;
    rt.remove_container(&ids[0]).await.unwrap();
    rt.remove_container(&ids[0]).await.unwrap(); // idempotent
    assert!(
        old_log.exists(),
        "a removed container's log stays until its sandbox goes"
    );
    let left = rt
        .list_containers(&ContainerFilter::default())
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![ids[1].clone()]
    );
    rt.remove_pod_sandbox(&sb).await.unwrap();
    assert!(!old_log.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_runtime_adopts_running_containers_and_sees_their_exit() {
    let h = Harness::new("127.77.6.0/24");
    let stop_file = h.dir.path().join("stop-now");
    let (sb, id, ip) = {
        let rt = h.runtime();
        let sb_config = h.sandbox("survivor");
        let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
        let mut c = container(
            "survivor",
            0,
            "x",
            &[
                "sh",
                "-c",
                "echo up; while [ ! -e \"$STOP\" ]; do sleep 0.05; done; echo bye; exit 5",
            ],
        );
        c.envs = vec![("STOP".into(), stop_file.display().to_string())];
        let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let ip = rt.pod_sandbox_status(&sb).await.unwrap().ip;
        (sb, id, ip)
        // The runtime is dropped here: the "kubelet" is gone.
    };
    let rt = h.runtime();
    let sandboxes = rt.list_pod_sandboxes().await.unwrap();
    assert_eq!(sandboxes.len(), 1);
    assert_eq!(
        (
            sandboxes[0].id.as_str(),
            sandboxes[0].state,
            sandboxes[0].ip
        ),
        (sb.as_str(), SandboxState::Ready, ip)
    );
    let cs = rt
        .list_containers(&ContainerFilter::default())
        .await
        .unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!(
        (cs[0].id.as_str(), cs[0].state),
        (id.as_str(), ContainerState::Running)
    );
    wait_log(&cs[0].log_path, "up").await;
    std::fs::File::create(&stop_file)
        .unwrap()
        .write_all(b"1")
        .unwrap();
    let s = wait_status(&rt, &id, exited).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (Some(5), "Error"));
    assert_eq!(std::fs::read_to_string(&s.log_path).unwrap(), "up\nbye\n");
    // The adopted sandbox keeps its address: a new one gets another.
    let other = rt.run_pod_sandbox(&h.sandbox("other")).await.unwrap();
    assert_ne!(rt.pod_sandbox_status(&other).await.unwrap().ip, ip);
    rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_enforced_or_reported() {
    // Disabled: the container runs, and says its limits are not enforced.
    let h = Harness::with_cgroups("127.77.7.0/24", CgroupMode::Disabled);
    let rt = h.runtime();
    let cond = rt
        .status()
        .into_iter()
        .find(|c| c.kind == "CgroupLimits")
        .unwrap();
    assert!(!cond.status);
    assert_eq!(cond.reason, "Disabled");
    let sb_config = h.sandbox("unlimited");
    let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
    let mut c = container("unlimited", 0, "x", &["true"]);
    c.resources = Resources {
        cpu_millis: Some(200),
        memory_bytes: Some(64 << 20),
    };
    let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let s = wait_status(&rt, &id, exited).await;
    assert!(!s.limits_enforced);
    assert!(s.message.contains("disabled"), "{}", s.message);
    assert_eq!(s.exit_code, Some(0));
    rt.remove_pod_sandbox(&sb).await.unwrap();

    // Auto: enforced where the host allows (a memory hog is OOMKilled),
    // otherwise reported with a reason.
    let h = Harness::new("127.77.8.0/24");
    let rt = h.runtime();
    let cond = rt
        .status()
        .into_iter()
        .find(|c| c.kind == "CgroupLimits")
        .unwrap();
    let sb_config = h.sandbox("limited");
    let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
    let mut c = container(
        "hog",
        0,
        "x",
        &[
            "python3",
            "-c",
            "b = bytearray(256 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')",
        ],
    );
    c.resources = Resources {
        cpu_millis: Some(500),
        memory_bytes: Some(32 << 20),
    };
    let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let s = wait_status(&rt, &id, exited).await;
    eprintln!(
        "CgroupLimits: {cond:?}; hog: {:?} {:?} {}",
        s.exit_code, s.reason, s.message
    );
    if cond.status {
        assert!(s.limits_enforced, "{}", s.message);
        assert_eq!((s.exit_code, s.reason.as_str()), (Some(137), "OOMKilled"));
        // The CPU limit is the CFS quota of the container's cgroup.
        let mut c = container("idle", 0, "x", &["sleep", "30"]);
        c.resources.cpu_millis = Some(250);
        let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let started = std::fs::read_to_string(
            h.dir
                .path()
                .join("root/containers")
                .join(&id)
                .join("started.json"),
        )
        .unwrap();
        let pid = json_u32(&started, "\"pid\"").unwrap();
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let quota = if cond.reason == "CgroupV1" {
            let path = cgroups
                .lines()
                .find_map(|l| l.split_once(":cpu:").map(|(_, p)| p.to_string()))
                .or_else(|| {
                    cgroups
                        .lines()
                        .find_map(|l| l.split_once(":cpu,cpuacct:").map(|(_, p)| p.to_string()))
                })
                .unwrap_or_else(|| panic!("no cpu cgroup in {cgroups}"));
            std::fs::read_to_string(format!("/sys/fs/cgroup/cpu{path}/cpu.cfs_quota_us")).unwrap()
        } else {
            let path = cgroups
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .unwrap()
                .to_string();
            std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cpu.max")).unwrap()
        };
        assert!(
            quota.starts_with("25000"),
            "cpu quota {quota:?} in {cgroups}"
        );
        assert!(cgroups.contains(&id), "{cgroups}");
    } else {
        assert!(!s.limits_enforced);
        assert!(
            !cond.message.is_empty() && s.message.contains("not enforced"),
            "{}",
            s.message
        );
    }
    rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_is_reported() {
    let h = Harness::new("127.77.9.0/24");
    let rt = h.runtime();
    let sb_config = h.sandbox("x");
    let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
    let id = rt
        .create_container(&sb, &container("x", 0, "x", &["true"]), &sb_config)
        .await
        .unwrap();
    let record = h
        .dir
        .path()
        .join("root/containers")
        .join(&id)
        .join("container.json");
    std::fs::write(&record, b"{ not json").unwrap();
    let err = rt
        .list_containers(&ContainerFilter::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("corrupt") && err.contains(&id), "{err}");
    let err = rt.container_status(&id).await.unwrap_err().to_string();
    assert!(err.contains("container.json"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_latency_and_stop_everything() {
    let h = Harness::new("127.77.10.0/24");
    let rt = h.runtime();
    let mut took = Vec::new();
    let mut pods = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        let sb_config = h.sandbox(&format!("p{i}"));
        let sb = rt.run_pod_sandbox(&sb_config).await.unwrap();
        let c = container("main", 0, "x", &["sleep", "30"]);
        let id = rt.create_container(&sb, &c, &sb_config).await.unwrap();
        rt.start_container(&id).await.unwrap();
        took.push(t.elapsed());
        pods.push((sb, id));
    }
    took.sort();
    eprintln!(
        "sandbox+create+start over {} pods: p50 {:?}, max {:?}",
        took.len(),
        took[took.len() / 2],
        took[took.len() - 1]
    );
    assert!(took[took.len() - 1] < Duration::from_secs(2), "{took:?}");
    let t = Instant::now();
    let listed = rt
        .list_containers(&ContainerFilter::default())
        .await
        .unwrap();
    eprintln!(
        "list_containers over {} containers: {:?}",
        listed.len(),
        t.elapsed()
    );
    assert!(listed.iter().all(|c| c.state == ContainerState::Running));

    // A corrupt allocations file is rebuilt from the sandbox records.
    std::fs::write(h.dir.path().join("root/ipam.json"), b"garbage").unwrap();
    let rt = h.runtime();
    let extra = rt.run_pod_sandbox(&h.sandbox("extra")).await.unwrap();
    let ips: std::collections::BTreeSet<_> = rt
        .list_pod_sandboxes()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.ip.unwrap())
        .collect();
    assert_eq!(ips.len(), 21, "every live sandbox keeps a distinct address");
    rt.stop_pod_sandbox(&extra).await.unwrap();

    // Node teardown without a runtime instance (what `capstan up` does),
    // then through the runtime (sandboxes stopped, addresses released).
    let t = Instant::now();
    let root = h.dir.path().join("root");
    let stopped = tokio::task::spawn_blocking(move || {
        capstan_kubelet::runtime::process::stop_all(&root, Duration::from_secs(5))
    })
    .await
    .unwrap()
    .unwrap();
    eprintln!("stop_all over {stopped} containers: {:?}", t.elapsed());
    assert_eq!(stopped, pods.len());
    rt.stop_everything(Duration::from_secs(5)).await.unwrap();
    for (sb, id) in &pods {
        let s = rt.container_status(id).await.unwrap();
        assert_eq!((s.state, s.exit_code), (ContainerState::Exited, Some(143)));
        assert_eq!(
            rt.pod_sandbox_status(sb).await.unwrap().state,
            SandboxState::NotReady
        );
    }
    for (sb, _) in &pods {
        rt.remove_pod_sandbox(sb).await.unwrap();
    }
}

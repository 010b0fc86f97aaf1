//! `capstan up`: a working local cluster on loopback, in one command.
//!
//! It issues the PKI (`DIR/pki`), writes one configuration per apiserver
//! replica (`DIR/apiserver-N.yaml`, client ports from `--api-port`, peer ports
//! from `--peer-port`), starts every replica as its own `capstan apiserver`
//! process (so one can be killed; logs in `DIR/logs/`, pids in `DIR/run/`),
//! writes `DIR/admin.kubeconfig` (every replica's URL, the CA and the admin
//! certificate inline), waits until every replica answers a linearizable
//! read, and prints how to point a client at it. Ctrl-C (or SIGTERM) stops
//! every process cleanly. Running it again on the same directory reuses the
//! certificates, the configurations and the data.
//!
//! Not yet started, because they are not built: the scheduler, the
//! controller-manager, and a kubelet and proxy per node (issues 5 and 6);
//! `--nodes` only issues the nodes' certificates for now.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use capstan_proto::Resource as _;
use capstan_proto::api::core::v1::Namespace;
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{GetRequest, ResourceRef};

/// What `capstan up` was asked for.
pub struct UpArgs {
    /// Where everything lives.
    pub data_dir: PathBuf,
    /// Apiserver replicas (1, 3 or 5).
    pub replicas: u64,
    /// Worker nodes (certificates only, for now).
    pub nodes: u64,
    /// Client port of replica 1; replica N listens on `api_port + N - 1`.
    pub api_port: u16,
    /// Peer port of replica 1; replica N listens on `peer_port + N - 1`.
    pub peer_port: u16,
}

/// How long the replicas may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a replica may take to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

struct Replica {
    id: u64,
    client: String,
    config: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
}

/// Runs `capstan up` until SIGINT or SIGTERM.
pub fn run(args: UpArgs) -> ExitCode {
    if ![1, 3, 5].contains(&args.replicas) {
        eprintln!(
            "capstan up: --replicas {}: use 1, 3 or 5 (an odd number, so a majority survives failures)",
            args.replicas
        );
        return ExitCode::from(crate::EXIT_USAGE);
    }
    if u32::from(args.api_port) + args.replicas as u32 > 65_536
        || u32::from(args.peer_port) + args.replicas as u32 > 65_536
    {
        eprintln!(
            "capstan up: --api-port/--peer-port leave no room for {} replicas",
            args.replicas
        );
        return ExitCode::from(crate::EXIT_USAGE);
    }
    match prepare(&args) {
        Ok(replicas) => supervise(&args, replicas),
        Err(e) => {
            eprintln!("capstan up: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// PKI, configurations and kubeconfig; nothing started yet.
fn prepare(args: &UpArgs) -> anyhow::Result<Vec<Replica>> {
    use anyhow::Context as _;
    let dir = &args.data_dir;
    for sub in ["logs", "run"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let existing = (1..=5)
        .filter(|id| dir.join(format!("apiserver-{id}.yaml")).exists())
        .count() as u64;
    if existing != 0 && existing != args.replicas {
        anyhow::bail!(
            "{} was set up with {existing} replica(s); run with --replicas {existing} or use another --data-dir",
            dir.display()
        );
    }
    let pki = dir.join("pki");
    capstan_pki::bootstrap::init(
        &pki,
        &capstan_pki::bootstrap::InitSpec {
            replicas: (1..=args.replicas).collect(),
            nodes: (1..=args.nodes).map(|n| format!("node-{n}")).collect(),
            ..Default::default()
        },
    )
    .context("issuing certificates")?;
    let replicas: Vec<Replica> = (1..=args.replicas)
        .map(|id| Replica {
            id,
            client: format!("127.0.0.1:{}", args.api_port + (id - 1) as u16),
            config: dir.join(format!("apiserver-{id}.yaml")),
            log: dir.join(format!("logs/apiserver-{id}.log")),
            pid_file: dir.join(format!("run/apiserver-{id}.pid")),
            child: None,
        })
        .collect();
    let members: String = replicas
        .iter()
        .map(|r| {
            format!(
                "  - {{ id: {}, clientAddress: \"{}\", peerAddress: \"127.0.0.1:{}\" }}\n",
                r.id,
                r.client,
                args.peer_port + (r.id - 1) as u16
            )
        })
        .collect();
    for r in &replicas {
        if r.config.exists() {
            continue; // reuse: same ports, same data
        }
        let text = format!(
            "# Written by `capstan up`; see deploy/apiserver.example.yaml.\n\
             id: {id}\n\
             dataDir: data/apiserver-{id}\n\
             clientAddress: {client}\n\
             peerAddress: 127.0.0.1:{peer}\n\
             auditLog: logs/audit-{id}.jsonl\n\
             members:\n{members}\
             tls:\n  caFile: pki/ca.crt\n  certFile: pki/apiserver.crt\n  keyFile: pki/apiserver.key\n  \
             peerCertFile: pki/peer-{id}.crt\n  peerKeyFile: pki/peer-{id}.key\n",
            id = r.id,
            client = r.client,
            peer = args.peer_port + (r.id - 1) as u16,
        );
        std::fs::write(&r.config, text)
            .with_context(|| format!("writing {}", r.config.display()))?;
    }
    write_kubeconfig(dir, &replicas)?;
    Ok(replicas)
}

/// `DIR/admin.kubeconfig`: every replica's URL, CA and admin certificate inline.
fn write_kubeconfig(dir: &Path, replicas: &[Replica]) -> anyhow::Result<()> {
    let b64 = |name: &str| -> anyhow::Result<String> {
        let bytes = std::fs::read(dir.join("pki").join(name))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let servers: Vec<String> = replicas
        .iter()
        .map(|r| format!("https://{}", r.client))
        .collect();
    let text = format!(
        "# Written by `capstan up`. `servers` lists every replica (a Capstan\n\
         # extension; `server` is the first, for other kubeconfig readers).\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: capstan-local\n  cluster:\n    server: {first}\n    servers:\n{list}    certificate-authority-data: {ca}\n\
         users:\n\
         - name: capstan-admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n\
         contexts:\n\
         - name: capstan-local\n  context:\n    cluster: capstan-local\n    user: capstan-admin\n    namespace: default\n\
         current-context: capstan-local\n",
        first = servers[0],
        list = servers
            .iter()
            .map(|s| format!("    - {s}\n"))
            .collect::<String>(),
        ca = b64("ca.crt")?,
        cert = b64("admin.crt")?,
        key = b64("admin.key")?,
    );
    let path = dir.join("admin.kubeconfig");
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

fn start(dir: &Path, r: &mut Replica) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let exe = std::env::current_exe().context("locating the capstan binary")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&r.log)
        .with_context(|| format!("opening {}", r.log.display()))?;
    let child = Command::new(exe)
        .arg("apiserver")
        .arg("--config")
        .arg(&r.config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting an apiserver")?;
    std::fs::write(&r.pid_file, child.id().to_string())?;
    r.child = Some(child);
    Ok(())
}

fn stop_all(replicas: &mut [Replica]) {
    for r in replicas.iter() {
        if let Some(child) = &r.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for r in replicas.iter_mut() {
        if let Some(mut child) = r.child.take() {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&r.pid_file);
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

async fn ready(dir: &Path, replicas: &[Replica]) -> anyhow::Result<()> {
    let tls = capstan_pki::TlsPaths::in_dir(&dir.join("pki"), "admin")
        .load()?
        .client_config()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    for r in replicas {
        let mut client = ResourcesClient::new(capstan_pki::net::channel(&r.client, tls.clone())?);
        loop {
            let request = GetRequest {
                resource: Some(ResourceRef {
                    group: Namespace::INFO.group.into(),
                    version: Namespace::INFO.version.into(),
                    resource: Namespace::INFO.plural.into(),
                }),
                name: "default".into(),
                ..Default::default()
            };
            match tokio::time::timeout(Duration::from_secs(3), client.get(request)).await {
                Ok(Ok(_)) => break,
                _ if Instant::now() > deadline => anyhow::bail!(
                    "apiserver {} not ready after {READY_TIMEOUT:?}; its log ({}):\n{}",
                    r.id,
                    r.log.display(),
                    log_tail(&r.log)
                ),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

fn supervise(args: &UpArgs, mut replicas: Vec<Replica>) -> ExitCode {
    let dir = &args.data_dir;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("capstan up: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    for r in &mut replicas {
        if let Err(e) = start(dir, r) {
            eprintln!("capstan up: {e:#}");
            stop_all(&mut replicas);
            return ExitCode::FAILURE;
        }
    }
    // The signal future lives across both phases so a Ctrl-C during start-up
    // is not lost.
    let mut signal = Box::pin(crate::shutdown_signal());
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = ready(dir, &replicas) => r.map(|()| true),
            () = &mut signal => Ok(false),
        }
    });
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("capstan up: interrupted before the cluster was ready; stopping");
            stop_all(&mut replicas);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("capstan up: {e:#}");
            stop_all(&mut replicas);
            return ExitCode::FAILURE;
        }
    }
    let urls: Vec<String> = replicas
        .iter()
        .map(|r| format!("https://{}", r.client))
        .collect();
    println!(
        "Capstan is up: {} apiserver replica(s) at {}.\n\
         Point a client at it:  export KUBECONFIG={}\n\
         Data, logs and certificates: {}. Ctrl-C stops everything.\n\
         Not started (not built yet): scheduler, controller-manager, kubelet, proxy.",
        replicas.len(),
        urls.join(", "),
        dir.join("admin.kubeconfig").display(),
        dir.display()
    );
    // Watch the children until a signal: report a replica that dies (it
    // stays down, so failover can be tried by hand).
    runtime.block_on(async {
        let mut reported = vec![false; replicas.len()];
        loop {
            tokio::select! {
                () = &mut signal => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            for (i, r) in replicas.iter_mut().enumerate() {
                if reported[i] {
                    continue;
                }
                if let Some(Ok(Some(status))) = r.child.as_mut().map(Child::try_wait) {
                    eprintln!(
                        "capstan up: apiserver {} exited ({status}); the others keep serving. Log: {}",
                        r.id,
                        r.log.display()
                    );
                    reported[i] = true;
                }
            }
        }
    });
    println!("Stopping {} apiserver replica(s)...", replicas.len());
    stop_all(&mut replicas);
    println!("Stopped.");
    ExitCode::SUCCESS
}

//! `capstan up`: a working local cluster on loopback, in one command.
//!
//! It issues the PKI (`DIR/pki`), writes every configuration
//! ([`configs`]), starts each apiserver replica as its own `capstan
//! apiserver` process (so one can be killed), waits until every replica
//! answers a linearizable read, then starts the scheduler, the
//! controller-manager and, with `--nodes N`, a kubelet and a proxy (with
//! cluster DNS) per node ([`process`]; logs in `DIR/logs/`, pids in
//! `DIR/run/`), waits until
//! every node is Ready, and prints how to point a client at it
//! (`DIR/admin.kubeconfig`). Ctrl-C (or SIGTERM) stops every process and
//! the pods' processes. Running it again on the same directory reuses the
//! certificates, the configurations and the data.

mod configs;
mod process;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use capstan_proto::api::core::v1::{Namespace, Node};
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{GetRequest, ListRequest, ResourceRef};

use process::Daemon;

/// What `capstan up` was asked for.
pub struct UpArgs {
    /// Where everything lives.
    pub data_dir: PathBuf,
    /// Apiserver replicas (1, 3 or 5).
    pub replicas: u64,
    /// Worker nodes, each with its kubelet.
    pub nodes: u64,
    /// Client port of replica 1; replica N listens on `api_port + N - 1`.
    pub api_port: u16,
    /// Peer port of replica 1; replica N listens on `peer_port + N - 1`.
    pub peer_port: u16,
    /// The kubelets' port (each node has its own address).
    pub kubelet_port: u16,
    /// The second byte of the nodes' and pods' loopback addresses.
    pub loopback_net: u8,
    /// Write the files and exit.
    pub configure_only: bool,
}

/// How long the replicas may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the nodes may take to register and become Ready.
const NODES_TIMEOUT: Duration = Duration::from_secs(60);

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
    if args.nodes > 250 {
        eprintln!(
            "capstan up: --nodes {}: at most 250 nodes on one machine",
            args.nodes
        );
        return ExitCode::from(crate::EXIT_USAGE);
    }
    if matches!(args.loopback_net, 0 | 255) {
        eprintln!(
            "capstan up: --loopback-net {}: use 1 to 254 (nodes get 127.NET.0.N)",
            args.loopback_net
        );
        return ExitCode::from(crate::EXIT_USAGE);
    }
    if let Err(e) = configs::write_all(&args) {
        eprintln!("capstan up: {e:#}");
        return ExitCode::FAILURE;
    }
    if args.configure_only {
        println!(
            "Configuration written to {}; edit it, then run `capstan up` again with the same flags.",
            args.data_dir.display()
        );
        return ExitCode::SUCCESS;
    }
    supervise(&args)
}

/// The admin's client TLS.
fn admin_tls(args: &UpArgs) -> anyhow::Result<std::sync::Arc<rustls::ClientConfig>> {
    Ok(
        capstan_pki::TlsPaths::in_dir(&args.data_dir.join("pki"), "admin")
            .load()?
            .client_config()?,
    )
}

fn resource<R: capstan_proto::Resource>() -> Option<ResourceRef> {
    Some(ResourceRef {
        group: R::INFO.group.into(),
        version: R::INFO.version.into(),
        resource: R::INFO.plural.into(),
    })
}

/// Every replica answers a linearizable read.
async fn replicas_ready(args: &UpArgs, replicas: &[Daemon]) -> anyhow::Result<()> {
    let tls = admin_tls(args)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    for (i, r) in replicas.iter().enumerate() {
        let address = configs::replica_address(args, i as u64 + 1);
        let mut client = ResourcesClient::new(capstan_pki::net::channel(&address, tls.clone())?);
        loop {
            let request = GetRequest {
                resource: resource::<Namespace>(),
                name: "default".into(),
                ..Default::default()
            };
            match tokio::time::timeout(Duration::from_secs(3), client.get(request)).await {
                Ok(Ok(_)) => break,
                _ if Instant::now() > deadline => anyhow::bail!(
                    "{} not ready after {READY_TIMEOUT:?}; its log ({}):\n{}",
                    r.name,
                    r.log.display(),
                    r.log_tail()
                ),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

/// Every node is registered with a Ready=True condition.
async fn nodes_ready(args: &UpArgs, kubelets: &[Daemon]) -> anyhow::Result<()> {
    if kubelets.is_empty() {
        return Ok(());
    }
    let tls = admin_tls(args)?;
    let mut client = ResourcesClient::new(capstan_pki::net::channel(
        &configs::replica_address(args, 1),
        tls,
    )?);
    let deadline = Instant::now() + NODES_TIMEOUT;
    loop {
        let request = ListRequest {
            resource: resource::<Node>(),
            ..Default::default()
        };
        let ready: Vec<String> = match client.list(request).await {
            Ok(list) => list
                .into_inner()
                .items
                .iter()
                .filter_map(|b| <Node as prost::Message>::decode(b.as_slice()).ok())
                .filter(|n| {
                    n.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.r#type == "Ready" && c.status == "True")
                    })
                })
                .filter_map(|n| n.metadata.map(|m| m.name))
                .collect(),
            Err(_) => Vec::new(),
        };
        let missing: Vec<&Daemon> = (1..=args.nodes)
            .zip(kubelets)
            .filter(|(n, _)| !ready.contains(&configs::node_layout(args.loopback_net, *n).name))
            .map(|(_, k)| k)
            .collect();
        let Some(first) = missing.first() else {
            return Ok(());
        };
        if Instant::now() > deadline {
            anyhow::bail!(
                "{} node(s) not Ready after {NODES_TIMEOUT:?}; {}'s log ({}):\n{}",
                missing.len(),
                first.name,
                first.log.display(),
                first.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops the pods' processes of every node (the kubelets leave them
/// running when they stop, so that a restarted kubelet adopts them).
fn stop_pods(args: &UpArgs) {
    for n in 1..=args.nodes {
        let layout = configs::node_layout(args.loopback_net, n);
        let root = args.data_dir.join("nodes").join(&layout.name);
        if let Err(e) = stop_node_pods(&root) {
            eprintln!("capstan up: stopping the pods of {}: {e:#}", layout.name);
        }
    }
}

/// Stops every container the node's process runtime recorded (SIGTERM,
/// 2 s, SIGKILL), with its kubelet already gone. The kubelet keeps the
/// runtime's records in `ROOT/runtime` (`capstan_kubelet::run`).
fn stop_node_pods(root: &std::path::Path) -> anyhow::Result<()> {
    let stopped =
        capstan_kubelet::runtime::process::stop_all(&root.join("runtime"), Duration::from_secs(2))?;
    if stopped > 0 {
        println!("Stopped {stopped} container(s) of {}", root.display());
    }
    Ok(())
}

fn supervise(args: &UpArgs) -> ExitCode {
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
    let mut replicas: Vec<Daemon> = (1..=args.replicas)
        .map(|id| Daemon::new(dir, &format!("apiserver-{id}"), "apiserver"))
        .collect();
    let mut others: Vec<Daemon> = vec![
        Daemon::new(dir, "scheduler", "scheduler"),
        Daemon::new(dir, "controller-manager", "controller-manager"),
    ];
    let kubelets: Vec<Daemon> = (1..=args.nodes)
        .map(|n| {
            let layout = configs::node_layout(args.loopback_net, n);
            Daemon::new(dir, &format!("kubelet-{}", layout.name), "kubelet")
        })
        .collect();
    others.extend((1..=args.nodes).map(|n| {
        let layout = configs::node_layout(args.loopback_net, n);
        Daemon::new(dir, &format!("proxy-{}", layout.name), "proxy")
    }));
    let first_kubelet = others.len();
    others.extend(kubelets);
    let stop_everything = |replicas: &mut Vec<Daemon>, others: &mut Vec<Daemon>| {
        process::stop_all(others.iter_mut());
        stop_pods(args);
        process::stop_all(replicas.iter_mut());
    };
    // The signal future lives across every phase so a Ctrl-C during
    // start-up is not lost.
    let mut signal = Box::pin(crate::shutdown_signal());
    let started: anyhow::Result<bool> = runtime.block_on(async {
        for r in &mut replicas {
            r.start(dir)?;
        }
        tokio::select! {
            r = replicas_ready(args, &replicas) => r?,
            () = &mut signal => return Ok(false),
        }
        for d in &mut others {
            d.start(dir)?;
        }
        tokio::select! {
            r = nodes_ready(args, &others[first_kubelet..]) => r?,
            () = &mut signal => return Ok(false),
        }
        Ok(true)
    });
    match started {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("capstan up: interrupted before the cluster was ready; stopping");
            stop_everything(&mut replicas, &mut others);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("capstan up: {e:#}");
            stop_everything(&mut replicas, &mut others);
            return ExitCode::FAILURE;
        }
    }
    let urls: Vec<String> = (1..=args.replicas)
        .map(|id| format!("https://{}", configs::replica_address(args, id)))
        .collect();
    println!(
        "Capstan is up: {} apiserver replica(s) at {}, a scheduler, a controller-manager and {} node(s).\n\
         Point a client at it:  export KUBECONFIG={}\n\
         Data, logs and certificates: {}. Ctrl-C stops everything.",
        replicas.len(),
        urls.join(", "),
        args.nodes,
        dir.join("admin.kubeconfig").display(),
        dir.display()
    );
    // Watch the children until a signal: report a daemon that dies (it
    // stays down, so failover can be tried by hand).
    runtime.block_on(async {
        loop {
            tokio::select! {
                () = &mut signal => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            for d in replicas.iter_mut().chain(others.iter_mut()) {
                if let Some(status) = d.newly_exited() {
                    eprintln!(
                        "capstan up: {} exited ({status}); the rest keeps running. Log: {}",
                        d.name,
                        d.log.display()
                    );
                }
            }
        }
    });
    println!("Stopping...");
    stop_everything(&mut replicas, &mut others);
    println!("Stopped.");
    ExitCode::SUCCESS
}

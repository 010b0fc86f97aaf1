//! The node's registration and heartbeats: creates (or adopts) the Node
//! with capacity, addresses, daemon endpoint, node info, labels and
//! podCIDR; posts its status (Ready from the runtime's conditions) every
//! `nodeStatusUpdateFrequencySeconds`; renews the Lease
//! `kube-node-lease/<nodeName>` every quarter of its duration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use capstan_client::{Api, Client};
use capstan_proto::api::coordination::v1::{Lease, LeaseSpec};
use capstan_proto::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::quantity::Quantity;
use capstan_proto::timestamp::{MicroTime, Time};

use crate::config::Config;
use crate::runtime::Runtime;

/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The host's processor count (`processor` lines of /proc/cpuinfo).
fn host_cpus() -> u64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count() as u64)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// MemTotal of /proc/meminfo, in KiB.
fn host_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Capacity (= allocatable: nothing is reserved).
pub fn capacity(config: &Config) -> BTreeMap<String, Quantity> {
    let q = |s: String| Quantity::parse(&s).unwrap_or_else(|_| Quantity::zero());
    let c = &config.capacity;
    BTreeMap::from([
        (
            "cpu".to_owned(),
            q(c.cpu.clone().unwrap_or_else(|| host_cpus().to_string())),
        ),
        (
            "memory".to_owned(),
            q(c.memory
                .clone()
                .unwrap_or_else(|| format!("{}Ki", host_memory_kib()))),
        ),
        ("pods".to_owned(), q(c.pods.unwrap_or(110).to_string())),
    ])
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn hostname() -> String {
    read_trim("/proc/sys/kernel/hostname")
}

/// The Node's desired labels.
fn node_labels(config: &Config) -> BTreeMap<String, String> {
    let mut labels = config.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), config.node_name.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert(
        "kubernetes.io/arch".into(),
        std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64"),
    );
    labels
}

/// The status fields the kubelet owns, with conditions from the runtime.
pub fn node_status<R: Runtime>(
    config: &Config,
    runtime: &R,
    old: Option<&NodeStatus>,
) -> NodeStatus {
    let version = runtime.version();
    let now = Time::now();
    let conditions_now = runtime.status();
    let runtime_ready = conditions_now.iter().find(|c| c.kind == "RuntimeReady");
    let mut conditions = vec![match runtime_ready {
        Some(c) if c.status => (
            "Ready",
            true,
            "KubeletReady".to_owned(),
            "kubelet is posting ready status".to_owned(),
        ),
        Some(c) => (
            "Ready",
            false,
            "KubeletNotReady".to_owned(),
            format!("container runtime is down: {}: {}", c.reason, c.message),
        ),
        None => (
            "Ready",
            false,
            "KubeletNotReady".to_owned(),
            "the runtime reports no RuntimeReady condition".to_owned(),
        ),
    }];
    let extra: Vec<_> = conditions_now
        .iter()
        .filter(|c| c.kind != "RuntimeReady")
        .map(|c| {
            (
                c.kind.as_str(),
                c.status,
                c.reason.clone(),
                c.message.clone(),
            )
        })
        .collect();
    conditions.extend(extra);
    let conditions = conditions
        .into_iter()
        .map(|(kind, ok, reason, message)| {
            let status = if ok { "True" } else { "False" };
            let previous = old.and_then(|o| o.conditions.iter().find(|c| c.r#type == kind));
            NodeCondition {
                r#type: kind.into(),
                status: status.into(),
                last_heartbeat_time: Some(now),
                last_transition_time: match previous {
                    Some(p) if p.status == status => p.last_transition_time,
                    _ => Some(now),
                },
                reason,
                message,
            }
        })
        .collect();
    let capacity = capacity(config);
    NodeStatus {
        allocatable: capacity.clone(),
        capacity,
        conditions,
        addresses: vec![
            NodeAddress {
                r#type: "InternalIP".into(),
                address: config.node_ip.to_string(),
            },
            NodeAddress {
                r#type: "Hostname".into(),
                address: config.node_name.clone(),
            },
        ],
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: Some(i32::from(config.port)),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            machine_id: read_trim("/etc/machine-id"),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            kernel_version: read_trim("/proc/sys/kernel/osrelease"),
            os_image: hostname_os(),
            container_runtime_version: format!("{}://{}", version.name, version.version),
            kubelet_version: env!("CARGO_PKG_VERSION").into(),
            operating_system: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn hostname_os() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| format!("Linux ({})", hostname()))
}

/// Creates the Node, or adopts an existing one (labels merged, podCIDR set
/// when empty), and posts its first status.
pub async fn register<R: Runtime>(
    client: &Client,
    config: &Config,
    runtime: &R,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = &config.node_name;
    let node = match nodes.get_opt(name).await? {
        Some(mut existing) => {
            let meta = existing.metadata.get_or_insert_with(Default::default);
            meta.labels.extend(node_labels(config));
            let spec = existing.spec.get_or_insert_with(Default::default);
            if spec.pod_cidr.is_empty() {
                spec.pod_cidr = config.pod_cidr.clone();
                spec.pod_cidrs = vec![config.pod_cidr.clone()];
            }
            nodes
                .update(&existing)
                .await
                .map_err(|e| anyhow::anyhow!("adopting Node {name}: {e}"))?
        }
        None => {
            let node = Node {
                metadata: Some(ObjectMeta {
                    name: name.clone(),
                    labels: node_labels(config),
                    ..Default::default()
                }),
                spec: Some(NodeSpec {
                    pod_cidr: config.pod_cidr.clone(),
                    pod_cidrs: vec![config.pod_cidr.clone()],
                    ..Default::default()
                }),
                status: None,
            };
            nodes
                .create(&node)
                .await
                .map_err(|e| anyhow::anyhow!("registering Node {name}: {e}"))?
        }
    };
    post_status(&nodes, node, config, runtime).await
}

async fn post_status<R: Runtime>(
    nodes: &Api<Node>,
    mut node: Node,
    config: &Config,
    runtime: &R,
) -> anyhow::Result<()> {
    node.status = Some(node_status(config, runtime, node.status.as_ref()));
    nodes
        .update_status(&node)
        .await
        .map_err(|e| anyhow::anyhow!("status of Node {}: {e}", config.node_name))?;
    Ok(())
}

/// Posts the Node's status every `nodeStatusUpdateFrequencySeconds`.
pub async fn status_loop<R: Runtime>(client: Client, config: Arc<Config>, runtime: Arc<R>) {
    let nodes: Api<Node> = Api::all(client);
    let every = Duration::from_secs_f64(config.node_status_update_frequency_seconds);
    loop {
        tokio::time::sleep(every).await;
        let result = match nodes.get(&config.node_name).await {
            Ok(node) => post_status(&nodes, node, &config, &*runtime).await,
            Err(e) => Err(anyhow::anyhow!("reading Node {}: {e}", config.node_name)),
        };
        if let Err(e) = result {
            tracing::warn!("{e:#}");
        }
    }
}

/// Renews (creating if needed) the node's Lease every quarter of its duration.
pub async fn lease_loop(client: Client, config: Arc<Config>) {
    let leases: Api<Lease> = Api::namespaced(client, NODE_LEASE_NAMESPACE);
    let every = config.lease_renew_interval();
    loop {
        if let Err(e) = renew(&leases, &config).await {
            tracing::warn!(lease = %config.node_name, "renewing the node Lease: {e:#}");
        }
        tokio::time::sleep(every).await;
    }
}

async fn renew(leases: &Api<Lease>, config: &Config) -> anyhow::Result<()> {
    let name = &config.node_name;
    let spec = |old: Option<LeaseSpec>| LeaseSpec {
        holder_identity: Some(name.clone()),
        lease_duration_seconds: Some(config.node_lease_duration_seconds as i32),
        renew_time: Some(MicroTime::now()),
        ..old.unwrap_or_default()
    };
    match leases.get_opt(name).await? {
        Some(mut lease) => {
            lease.spec = Some(spec(lease.spec.take()));
            leases.update(&lease).await?;
        }
        None => {
            leases
                .create(&Lease {
                    metadata: Some(ObjectMeta {
                        name: name.clone(),
                        namespace: NODE_LEASE_NAMESPACE.into(),
                        ..Default::default()
                    }),
                    spec: Some(spec(None)),
                })
                .await?;
        }
    }
    Ok(())
}

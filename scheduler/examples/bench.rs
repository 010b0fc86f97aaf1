//! Scheduler throughput: 5,000 Nodes and 10,000 pending pods in a
//! 3-replica cluster of real `capstan apiserver` processes (loopback, mutual
//! TLS), then the scheduler in-process as `system:kube-scheduler`; pods/s
//! from the scheduler's start to the last binding seen through a watch,
//! against the 5,000 pods/s target.
//!
//! ```text
//! cargo build -p capstan --offline        # the apiserver binary
//! cargo run -p capstan-scheduler --example bench --offline [-- NODES PODS BATCH IN_FLIGHT]
//! ```
//!
//! Creating the objects is not timed. `CAPSTAN_BIN` picks another binary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_client::{Api, Client, ListParams, WatchEvent};
use capstan_proto::api::core::v1::{
    Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements,
};
use capstan_proto::api::meta::v1::{ObjectMeta, OwnerReference};
use capstan_proto::quantity::Quantity;
use capstan_scheduler::{Config, Metrics};
use capstan_tests::apiserver::ApiCluster;
use futures::{StreamExt as _, TryStreamExt as _};

/// The target.
const TARGET_PODS_PER_SECOND: f64 = 5_000.0;
/// Concurrent creates while setting up.
const CREATE_CONCURRENCY: usize = 64;
/// Controllers the pods belong to (for spreading).
const OWNERS: usize = 100;
/// The longest the scheduling may take before the run is called failed.
const LIMIT: Duration = Duration::from_secs(600);

fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity::parse(v).unwrap()))
        .collect()
}

fn node(i: usize) -> Node {
    let allocatable = list(&[("cpu", "32"), ("memory", "128Gi"), ("pods", "110")]);
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_owned(), format!("node-{i:05}"));
    labels.insert(
        "topology.kubernetes.io/zone".to_owned(),
        format!("zone-{}", i % 3),
    );
    Node {
        metadata: Some(ObjectMeta {
            name: format!("node-{i:05}"),
            labels,
            ..Default::default()
        }),
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: allocatable.clone(),
            allocatable,
            conditions: vec![NodeCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn pod(i: usize) -> Pod {
    let owner = i % OWNERS;
    Pod {
        metadata: Some(ObjectMeta {
            name: format!("pod-{i:05}"),
            namespace: "default".into(),
            owner_references: vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: format!("rs-{owner}"),
                uid: format!("00000000-0000-0000-0000-{owner:012}"),
                controller: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: "registry.local/app:1".into(),
                resources: Some(ResourceRequirements {
                    requests: list(&[("cpu", "100m"), ("memory", "128Mi")]),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn kubeconfig(cluster: &ApiCluster, cert: &str) -> std::path::PathBuf {
    let servers: Vec<String> = cluster
        .client_addrs()
        .iter()
        .map(|a| format!("https://{a}"))
        .collect();
    let path = cluster.dir().join(format!("{cert}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: {first}\n    servers: [{all}]\n    certificate-authority: pki/ca.crt\n\
             users:\n- name: u\n  user:\n    client-certificate: pki/{cert}.crt\n    client-key: pki/{cert}.key\n\
             contexts:\n- name: bench\n  context:\n    cluster: bench\n    user: u\n    namespace: default\n\
             current-context: bench\n",
            first = servers[0],
            all = servers.join(", "),
        ),
    )
    .expect("kubeconfig");
    path
}

async fn create_all<K, F>(api: &Api<K>, n: usize, make: F) -> anyhow::Result<()>
where
    K: capstan_proto::Resource + Send + Sync + 'static,
    F: Fn(usize) -> K,
{
    futures::stream::iter((0..n).map(|i| {
        let obj = make(i);
        let api = api.clone();
        async move { api.create(&obj).await.map(|_| ()) }
    }))
    .buffer_unordered(CREATE_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

fn bound_name(p: Pod) -> Option<String> {
    let bound = p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty());
    bound.then(|| p.metadata.map(|m| m.name).unwrap_or_default())
}

async fn count_bindings(
    pods: Api<Pod>,
    mut from: String,
    bound: tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
) {
    let mut relists = 0;
    loop {
        match pods.watch(&ListParams::default(), &from).await {
            Ok(mut watch) => {
                while let Some(event) = watch.next().await {
                    match event {
                        Ok(WatchEvent::Modified(p)) => {
                            if let Some(name) = bound_name(p)
                                && bound.send((name, Instant::now())).is_err()
                            {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("bench watch ended ({e}); listing");
                            break;
                        }
                    }
                }
            }
            Err(e) => eprintln!("bench watch failed ({e}); listing"),
        }
        relists += 1;
        if relists > 20 {
            eprintln!("bench watch: too many relists");
            return;
        }
        match pods.list_all(&ListParams::default()).await {
            Ok(list) => {
                let at = Instant::now();
                for name in list.items.into_iter().filter_map(bound_name) {
                    if bound.send((name, at)).is_err() {
                        return;
                    }
                }
                from = list.resource_version;
            }
            Err(e) => {
                eprintln!("bench list failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().map_or(Ok(5_000), |a| a.parse())?;
    let pods: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let in_flight: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    println!("starting 3 apiserver replicas in {}", dir.path().display());
    let cluster = ApiCluster::start(dir.path(), 3).await?;
    let admin = Client::from_kubeconfig(Some(&kubeconfig(&cluster, "admin")), None)?;
    let node_api: Api<Node> = Api::all(admin.clone());
    let pod_api: Api<Pod> = Api::namespaced(admin.clone(), "default");

    let t = Instant::now();
    create_all(&node_api, nodes, node).await?;
    println!(
        "created {nodes} nodes in {:.1} s (not timed)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    create_all(&pod_api, pods, pod).await?;
    println!(
        "created {pods} pending pods in {:.1} s (not timed)",
        t.elapsed().as_secs_f64()
    );

    // Count bindings as the cluster reports them. A watch the server ends
    // (too far behind on this loaded machine) is resumed after a list,
    // which reports the pods bound meanwhile.
    let from = pod_api
        .list(&ListParams::default().limit(1))
        .await?
        .resource_version;
    let (bound_tx, mut bound_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let counter = tokio::spawn(count_bindings(pod_api.clone(), from, bound_tx));

    let config_path = cluster.dir().join("scheduler.yaml");
    std::fs::write(
        &config_path,
        format!(
            "kubeconfig: scheduler.kubeconfig\nbindBatchSize: {batch}\nmaxBindsInFlight: {in_flight}\n"
        ),
    )?;
    kubeconfig(&cluster, "scheduler");
    let config = Config::load(&config_path)?;
    let metrics = Arc::new(Metrics::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let scheduler = tokio::spawn(capstan_scheduler::run_with_metrics(
        config,
        async {
            let _ = stopped.await;
        },
        metrics.clone(),
    ));

    let mut seen = std::collections::HashSet::new();
    let mut first = None;
    let mut last = start;
    let deadline = tokio::time::Instant::now() + LIMIT;
    // Bindings seen; a pod is counted once even if modified again.
    while seen.len() < pods {
        let count = seen.len();
        match tokio::time::timeout_at(deadline, bound_rx.recv()).await {
            Ok(Some((name, at))) => {
                if seen.insert(name) {
                    first.get_or_insert(at);
                    last = at;
                }
            }
            Ok(None) => anyhow::bail!("the bench watch ended after {count} bindings"),
            Err(_) => anyhow::bail!("only {count} of {pods} pods bound within {LIMIT:?}"),
        }
    }
    let total = last - start;
    let _ = stop.send(());
    scheduler.await??;
    counter.abort();

    let rate = pods as f64 / total.as_secs_f64();
    let first = first.unwrap_or(start);
    let steady = pods as f64 / (last - first).as_secs_f64().max(1e-9);
    let get = Metrics::get;
    println!();
    println!("scheduler throughput: {nodes} nodes, {pods} pods, 3 apiserver replicas");
    println!(
        "  {pods} pods bound in {:.2} s: {rate:.0} pods/s = {:.2} x the {TARGET_PODS_PER_SECOND:.0} pods/s target",
        total.as_secs_f64(),
        rate / TARGET_PODS_PER_SECOND
    );
    println!(
        "  start-up (Lease, list of nodes and pods) until the first binding seen: {:.2} s; first to last binding: {:.2} s ({steady:.0} pods/s)",
        (first - start).as_secs_f64(),
        (last - first).as_secs_f64()
    );
    println!(
        "  filtering and scoring: {:.3} s for {} pods ({:.1} us/pod)",
        secs(get(&metrics.algorithm_nanos)),
        get(&metrics.scheduled),
        get(&metrics.algorithm_nanos) as f64 / 1e3 / get(&metrics.scheduled).max(1) as f64
    );
    println!(
        "  binding: {} Pods.Bind calls ({:.0} bindings/call), {:.2} s summed over calls ({:.0} ms/call), {} refused",
        get(&metrics.bind_calls),
        get(&metrics.bound) as f64 / get(&metrics.bind_calls).max(1) as f64,
        secs(get(&metrics.bind_nanos)),
        secs(get(&metrics.bind_nanos)) * 1e3 / get(&metrics.bind_calls).max(1) as f64,
        get(&metrics.bind_errors)
    );
    println!("  bindBatchSize {batch}, maxBindsInFlight {in_flight}");
    println!(
        "  profile: {}",
        if cfg!(debug_assertions) {
            "dev (debug assertions; see the report for opt-levels)"
        } else {
            "release"
        }
    );
    drop(cluster);
    Ok(())
}

//! The node lifecycle controller against an in-process apiserver, as
//! system:kube-controller-manager, with small timings: a node whose Lease
//! stops being renewed becomes Unknown and tainted, its pods are evicted
//! after the timeout (tolerating ones stay) and force-deleted since no
//! kubelet finishes their deletion; it is untainted when it comes back;
//! with 3 of 4 nodes stale nothing is evicted.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client};
use capstan_controller_manager::Config;
use capstan_controller_manager::nodelifecycle::NodeLifecycleConfig;
use capstan_proto::api::coordination::v1::{Lease, LeaseSpec};
use capstan_proto::api::core::v1::{
    Node, NodeCondition, NodeStatus, Pod, PodCondition, PodStatus, Toleration,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::timestamp::{MicroTime, Time};
use support::*;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Small timings; the default eviction rate (0.1 nodes/s: the bucket's
/// one token must not be lost to a conflicting write).
fn config(server: &TestServer) -> Config {
    let mut c = Config::new(cm_kubeconfig(server));
    c.node_lifecycle_controller = NodeLifecycleConfig {
        node_monitor_period_seconds: 0.2,
        node_monitor_grace_period_seconds: 3.0,
        pod_eviction_timeout_seconds: 1.0,
        ..Default::default()
    };
    c
}

fn ready_node(name: &str) -> Node {
    Node {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        spec: None,
        status: Some(NodeStatus {
            conditions: vec![NodeCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                reason: "KubeletReady".into(),
                last_heartbeat_time: Some(Time::now()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

/// Creates the nodes and their Leases; renews the Leases of nodes whose
/// flag is set every 200 ms until the returned flags are all cleared.
async fn nodes_with_leases(client: &Client, names: &[&str]) -> Vec<Arc<AtomicBool>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut flags = Vec::new();
    for name in names {
        nodes.create(&ready_node(name)).await.expect("create node");
        leases
            .create(&Lease {
                metadata: Some(ObjectMeta {
                    name: name.to_string(),
                    ..Default::default()
                }),
                spec: Some(LeaseSpec {
                    holder_identity: Some(name.to_string()),
                    lease_duration_seconds: Some(40),
                    renew_time: Some(MicroTime::now()),
                    ..Default::default()
                }),
            })
            .await
            .expect("create lease");
        let alive = Arc::new(AtomicBool::new(true));
        flags.push(alive.clone());
        let (leases, name) = (leases.clone(), name.to_string());
        tokio::spawn(async move {
            for _ in 0..600 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if !alive.load(Ordering::SeqCst) {
                    continue;
                }
                if let Ok(mut l) = leases.get(&name).await {
                    l.spec.get_or_insert_with(Default::default).renew_time = Some(MicroTime::now());
                    let _ = leases.update(&l).await;
                }
            }
        });
    }
    flags
}

async fn bound_pod(pods: &Api<Pod>, name: &str, node: &str, tolerate: bool) -> Pod {
    let mut t = template("app", "web:1");
    let spec = t.spec.as_mut().unwrap();
    spec.node_name = node.into();
    spec.termination_grace_period_seconds = Some(1);
    if tolerate {
        spec.tolerations.push(Toleration {
            key: UNREACHABLE.into(),
            operator: "Exists".into(),
            effect: "NoExecute".into(),
            ..Default::default()
        });
    }
    let pod = pods
        .create(&Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                labels: t.metadata.unwrap().labels,
                ..Default::default()
            }),
            spec: t.spec,
            status: None,
        })
        .await
        .expect("create pod");
    let mut running = pod.clone();
    running.status = Some(PodStatus {
        phase: "Running".into(),
        conditions: vec![PodCondition {
            r#type: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    pods.update_status(&running).await.expect("pod running")
}

fn condition(node: &Node) -> (String, String) {
    let c = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready"))
        .cloned()
        .unwrap_or_default();
    (c.status, c.reason)
}

fn taints(node: &Node) -> Vec<(String, String)> {
    let mut t: Vec<_> = node
        .spec
        .iter()
        .flat_map(|s| &s.taints)
        .map(|t| (t.key.clone(), t.effect.clone()))
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_node_is_tainted_and_its_pods_evicted_then_recovers() {
    let server = TestServer::start().await;
    let client = admin(&server);
    let flags = nodes_with_leases(&client, &["n1", "n2"]).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    bound_pod(&pods, "plain", "n1", false).await;
    bound_pod(&pods, "tolerant", "n1", true).await;
    bound_pod(&pods, "elsewhere", "n2", false).await;
    let cm = start(config(&server), only(&["nodelifecycle"]));

    // n1's kubelet dies.
    flags[0].store(false, Ordering::SeqCst);
    let n1 = eventually("n1 Unknown and tainted unreachable", || async {
        let n = nodes.get("n1").await.ok()?;
        (condition(&n) == ("Unknown".into(), "NodeStatusUnknown".into())
            && taints(&n)
                == vec![
                    (UNREACHABLE.into(), "NoExecute".into()),
                    (UNREACHABLE.into(), "NoSchedule".into()),
                ])
        .then_some(n)
    })
    .await;
    assert!(
        n1.spec
            .unwrap()
            .taints
            .iter()
            .any(|t| t.time_added.is_some())
    );
    // Its Ready pods are marked not ready.
    let tolerant = pods.get("tolerant").await.unwrap();
    assert!(!ready(&tolerant), "pods of an Unknown node are not Ready");

    // Evicted after the timeout, then force-deleted (no kubelet to finish).
    eventually("the plain pod gone", || async {
        pods.get_opt("plain").await.ok()?.is_none().then_some(())
    })
    .await;
    let tolerant = pods.get("tolerant").await.unwrap();
    assert!(tolerant.metadata.unwrap().deletion_timestamp.is_none());
    let elsewhere = pods.get("elsewhere").await.unwrap();
    assert!(elsewhere.metadata.unwrap().deletion_timestamp.is_none());
    let n2 = nodes.get("n2").await.unwrap();
    assert_eq!(condition(&n2).0, "True");
    assert!(taints(&n2).is_empty());

    // The kubelet comes back: Ready is its again, the taints go.
    flags[0].store(true, Ordering::SeqCst);
    for _ in 0..10 {
        let mut n = nodes.get("n1").await.unwrap();
        n.status = ready_node("n1").status;
        match nodes.update_status(&n).await {
            Ok(_) => break,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("kubelet status: {e}"),
        }
    }
    eventually("n1 untainted and Ready", || async {
        let n = nodes.get("n1").await.ok()?;
        (taints(&n).is_empty() && condition(&n).0 == "True").then_some(())
    })
    .await;
    for f in &flags {
        f.store(false, Ordering::SeqCst);
    }
    cm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_evicted_when_most_nodes_look_down() {
    let server = TestServer::start().await;
    let client = admin(&server);
    let flags = nodes_with_leases(&client, &["n1", "n2", "n3", "n4"]).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    for (i, node) in ["n1", "n2", "n3"].iter().enumerate() {
        bound_pod(&pods, &format!("p{i}"), node, false).await;
    }
    let cm = start(config(&server), only(&["nodelifecycle"]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for f in &flags[..3] {
        f.store(false, Ordering::SeqCst);
    }
    eventually("3 nodes Unknown", || async {
        let list = nodes.list(&Default::default()).await.ok()?;
        let unknown = list
            .items
            .iter()
            .filter(|n| condition(n).0 == "Unknown")
            .count();
        (unknown == 3).then_some(())
    })
    .await;
    // Well past grace + timeout: no pod deleted, no NoExecute taint.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..3 {
        let p = pods.get(&format!("p{i}")).await.unwrap();
        assert!(
            p.metadata.unwrap().deletion_timestamp.is_none(),
            "p{i} was evicted in disruption mode"
        );
    }
    for n in nodes.list(&Default::default()).await.unwrap().items {
        assert!(
            !taints(&n).iter().any(|(_, e)| e == "NoExecute"),
            "{:?}",
            taints(&n)
        );
    }
    let n4 = nodes.get("n4").await.unwrap();
    assert_eq!(condition(&n4).0, "True");
    for f in &flags {
        f.store(false, Ordering::SeqCst);
    }
    cm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_dead_node_are_replaced_by_their_replica_set() {
    use capstan_proto::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
    use capstan_proto::api::meta::v1::LabelSelector;
    use capstan_proto::rpc::Binding;

    let server = TestServer::start().await;
    let client = admin(&server);
    let flags = nodes_with_leases(&client, &["n1", "n2"]).await;
    let cm = start(
        config(&server),
        only(&["replicaset", "nodelifecycle", "garbagecollector"]),
    );
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut t = template("web", "web:1");
    t.spec.as_mut().unwrap().termination_grace_period_seconds = Some(1);
    sets.create(&ReplicaSet {
        metadata: Some(ObjectMeta {
            name: "web".into(),
            ..Default::default()
        }),
        spec: Some(ReplicaSetSpec {
            replicas: Some(2),
            selector: Some(LabelSelector {
                match_labels: [("app".to_owned(), "web".to_owned())].into(),
                ..Default::default()
            }),
            template: Some(t),
            ..Default::default()
        }),
        status: None,
    })
    .await
    .unwrap();
    let first = eventually("2 pods", || async {
        let live = live_pods(&pods, "web").await;
        (live.len() == 2).then_some(live)
    })
    .await;
    // The scheduler's part: both on n1.
    let bindings = first
        .iter()
        .map(|p| Binding {
            namespace: "default".into(),
            name: name(p),
            uid: p.metadata.as_ref().unwrap().uid.clone(),
            node_name: "n1".into(),
        })
        .collect();
    for r in capstan_client::pods::bind(&client, bindings).await.unwrap() {
        r.expect("bound");
    }

    flags[0].store(false, Ordering::SeqCst);
    let died = std::time::Instant::now();
    let old: Vec<String> = first.iter().map(name).collect();
    eventually("the dead node's pods gone and replaced", || async {
        let all = pods.list(&Default::default()).await.ok()?.items;
        let old_left = all.iter().any(|p| old.contains(&name(p)));
        let live = live_pods(&pods, "web").await;
        let replaced = live.len() == 2
            && live
                .iter()
                .all(|p| p.spec.as_ref().unwrap().node_name != "n1");
        (!old_left && replaced).then_some(())
    })
    .await;
    // grace 3 s + eviction timeout 1 s + the pods' grace 1 s, polled.
    eprintln!(
        "dead node's pods replaced and force-deleted {:?} after its last renewal",
        died.elapsed()
    );
    for f in &flags {
        f.store(false, Ordering::SeqCst);
    }
    cm.stop().await;
}

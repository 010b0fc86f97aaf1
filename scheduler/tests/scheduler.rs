//! The scheduler against an in-process apiserver, as `system:kube-scheduler`
//! (real mutual TLS, RBAC and the Pods.Bind RPC): pods land on the nodes
//! their requests, selectors and taints allow; an unschedulable pod gets
//! `PodScheduled=False` and a `FailedScheduling` Event, then is placed once
//! a fitting node appears; a second scheduler waits while the first leads
//! and takes over when it stops.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client, ListParams};
use capstan_proto::api::core::v1::{
    Container, Event, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec,
    ResourceRequirements, Taint,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::quantity::Quantity;
use capstan_scheduler::{Config, Metrics};
use tokio::sync::oneshot;

fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity::parse(v).unwrap()))
        .collect()
}

fn node(name: &str, cpu: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
    let allocatable = list(&[("cpu", cpu), ("memory", "16Gi"), ("pods", "110")]);
    Node {
        metadata: Some(ObjectMeta {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        spec: Some(NodeSpec {
            taints,
            ..Default::default()
        }),
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

fn pod(name: &str, cpu: &str, selector: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: "busybox".into(),
                resources: Some(ResourceRequirements {
                    requests: list(&[("cpu", cpu), ("memory", "64Mi")]),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            node_selector: selector
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        status: None,
    }
}

/// A configuration with fast Lease timings; `identity` tells the two
/// in-process instances apart (they share a pid).
fn config(dir: &Path, kubeconfig: &Path, identity: &str) -> Config {
    let path = dir.join(format!("{identity}.yaml"));
    std::fs::write(
        &path,
        format!(
            "kubeconfig: {}\nidentity: {identity}\nleaderElection: {{leaseDurationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 0.2}}\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    Config::load(&path).unwrap()
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    metrics: Arc<Metrics>,
}

fn start(config: Config) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let task = tokio::spawn(capstan_scheduler::run_with_metrics(
        config,
        async {
            let _ = stopped.await;
        },
        metrics.clone(),
    ));
    Running {
        stop,
        task,
        metrics,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("scheduler stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// Polls `pod` until it is bound; returns its node.
async fn bound_node(pods: &Api<Pod>, name: &str, within: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let p = pods.get(name).await.unwrap();
        let node = p.spec.unwrap_or_default().node_name;
        if !node.is_empty() {
            return Some(node);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_bound_and_unschedulable_pods_wait_for_a_fitting_node() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
    let nodes: Api<Node> = Api::all(admin.clone());
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");

    nodes
        .create(&node("small", "2", &[("disk", "ssd")], vec![]))
        .await
        .unwrap();
    nodes
        .create(&node("large", "8", &[], vec![]))
        .await
        .unwrap();
    let tainted = Taint {
        key: "dedicated".into(),
        value: "gpu".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    nodes
        .create(&node("gpu", "64", &[], vec![tainted]))
        .await
        .unwrap();

    let kubeconfig = server.kubeconfig("system:kube-scheduler", None);
    let first = start(config(dir.path(), &kubeconfig, "scheduler-a"));

    pods.create(&pod("big", "6", &[])).await.unwrap();
    pods.create(&pod("ssd", "500m", &[("disk", "ssd")]))
        .await
        .unwrap();
    let within = Duration::from_secs(15);
    assert_eq!(
        bound_node(&pods, "big", within).await.as_deref(),
        Some("large")
    );
    assert_eq!(
        bound_node(&pods, "ssd", within).await.as_deref(),
        Some("small")
    );
    let big = pods.get("big").await.unwrap();
    let scheduled = big
        .status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.r#type == "PodScheduled")
        .expect("a PodScheduled condition");
    assert_eq!(scheduled.status, "True");

    // 16 cores fit nowhere: large has 2 left, small 1.5, gpu is tainted.
    pods.create(&pod("huge", "16", &[])).await.unwrap();
    let expected = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu.";
    let deadline = tokio::time::Instant::now() + within;
    let condition = loop {
        let p = pods.get("huge").await.unwrap();
        let c = p
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.r#type == "PodScheduled");
        if let Some(c) = c {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no PodScheduled condition on the unschedulable pod"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "Unschedulable")
    );
    assert_eq!(condition.message, expected);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|e| {
                e.reason == "FailedScheduling"
                    && e.r#type == "Warning"
                    && e.message == expected
                    && e.involved_object.as_ref().is_some_and(|o| o.name == "huge")
            });
        if found {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no FailedScheduling event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A node that fits appears: the pod is retried and placed there.
    nodes.create(&node("xl", "32", &[], vec![])).await.unwrap();
    assert_eq!(
        bound_node(&pods, "huge", within).await.as_deref(),
        Some("xl")
    );
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let scheduled_event = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|e| {
                e.reason == "Scheduled" && e.message == "Successfully assigned default/huge to xl"
            });
        if scheduled_event {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no Scheduled event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A second scheduler waits while the first leads ...
    let second = start(config(dir.path(), &kubeconfig, "scheduler-b"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    pods.create(&pod("while-first-leads", "100m", &[]))
        .await
        .unwrap();
    assert!(
        bound_node(&pods, "while-first-leads", within)
            .await
            .is_some()
    );
    assert_eq!(Metrics::get(&second.metrics.scheduled), 0);
    assert!(Metrics::get(&first.metrics.scheduled) >= 4);
    // ... and takes over once the first stops (it releases the Lease).
    first.stop().await;
    pods.create(&pod("after-first-stops", "100m", &[]))
        .await
        .unwrap();
    assert!(
        bound_node(&pods, "after-first-stops", within)
            .await
            .is_some()
    );
    assert_eq!(Metrics::get(&second.metrics.scheduled), 1);
    second.stop().await;
}

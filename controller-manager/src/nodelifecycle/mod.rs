//! The node lifecycle controller (Kubernetes's `nodelifecycle`, with its
//! taint-based eviction): watches Nodes, their Leases in `kube-node-lease`
//! and pods; every `nodeMonitorPeriod` it plans one pass ([`plan`]) and
//! carries it out here.
//!
//! - [`config`]: the `nodeLifecycleController` settings.
//! - [`health`]: staleness on this controller's own clock; Ready Unknown.
//! - [`taints`]: the not-ready/unreachable taints and tolerations.
//! - [`disruption`]: zone state and the eviction token bucket.
//! - [`plan`]: one pass as pure logic, returning [`plan::Intent`]s.
//!
//! What it writes: node status (conditions Unknown, `NodeStatusUnknown`),
//! node taints (spec), pods' Ready condition (False, when their node goes
//! Unknown, so Services stop sending them traffic), pod deletions
//! (evictions with the pod's grace period; force deletions with grace 0
//! of pods stuck terminating on an unreachable node). Events:
//! `NodeNotReady`, `DeletingAllPods`, `EvictionSuspended` on nodes,
//! `TaintManagerEviction` and `DeletionByPodGC` on pods. Every write
//! carries the resourceVersion or uid it was planned from, so a kubelet's
//! fresh status is never overwritten: the conflict is skipped and the next
//! pass sees the new state.

pub mod config;
pub mod disruption;
pub mod health;
pub mod plan;
pub mod taints;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_client::events::{EventType, Recorder};
use capstan_client::{Api, DeleteParams};
use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::{Node, Pod};
use capstan_proto::timestamp::Time;

use crate::controller::{Context, Shutdown};
use plan::{Intent, Monitor};

pub use config::NodeLifecycleConfig;

/// The namespace of the nodes' Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Runs until `stop`.
pub async fn run(ctx: Context, stop: Shutdown) -> anyhow::Result<()> {
    let config = ctx.config.node_lifecycle_controller.clone();
    let nodes = ctx.informers.get::<Node>().store();
    let leases = ctx.informers.get::<Lease>().store();
    let pods = ctx.informers.get::<Pod>().store();
    while !(nodes.is_ready() && leases.is_ready() && pods.is_ready()) {
        tokio::select! {
            () = stop.requested() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let recorder = ctx.recorder("node-controller");
    let mut monitor = Monitor::new(config.clone(), Instant::now());
    let mut tick = tokio::time::interval(config.monitor_period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.requested() => return Ok(()),
            _ = tick.tick() => {}
        }
        let node_list = nodes.list();
        let lease_map: HashMap<String, Arc<Lease>> = leases
            .list()
            .into_iter()
            .filter_map(|l| {
                let m = l.metadata.as_ref()?;
                (m.namespace == NODE_LEASE_NAMESPACE).then(|| (m.name.clone(), l.clone()))
            })
            .collect();
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in pods.list() {
            if let Some(node) = p.spec.as_ref().map(|s| s.node_name.clone())
                && !node.is_empty()
            {
                by_node.entry(node).or_default().push(p);
            }
        }
        let intents = monitor.plan(
            &node_list,
            &lease_map,
            &by_node,
            Instant::now(),
            Time::now(),
        );
        let mut written = HashMap::new();
        for intent in intents {
            execute(&ctx, &recorder, intent, &mut written).await;
        }
    }
}

fn pod_key(pod: &Pod) -> (String, String, String) {
    pod.metadata.as_ref().map_or_else(Default::default, |m| {
        (m.namespace.clone(), m.name.clone(), m.uid.clone())
    })
}

/// Carries out one intent; failures are logged (the next pass plans
/// again). `written`: nodes as written earlier in this pass, by name.
async fn execute(
    ctx: &Context,
    recorder: &Recorder,
    intent: Intent,
    written: &mut HashMap<String, Node>,
) {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    match intent {
        Intent::MarkUnknown { node, ready_pods } => {
            let name = node
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            match nodes.update_status(&node).await {
                Ok(stored) => {
                    written.insert(name.clone(), stored);
                    tracing::warn!(node = %name, "node stopped posting status; Ready is Unknown");
                    recorder.publish(
                        &node,
                        EventType::Normal,
                        "NodeNotReady",
                        &format!("Node {name} status is now: NodeNotReady"),
                    );
                    for pod in ready_pods {
                        mark_pod_not_ready(ctx, recorder, &pod).await;
                    }
                }
                Err(e) => {
                    tracing::info!(node = %name, error = %e, "marking node Unknown failed; retrying next pass")
                }
            }
        }
        Intent::SetTaints(node) => {
            let name = node
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            if let Err(e) = set_taints(&nodes, node, written.remove(&name)).await {
                tracing::info!(node = %name, error = %e, "updating node taints failed; retrying next pass");
            }
        }
        Intent::Evict(pod) => {
            let (ns, name, uid) = pod_key(&pod);
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let params = DeleteParams {
                precondition_uid: uid,
                ..Default::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => {
                    tracing::info!(pod = %format!("{ns}/{name}"), "evicted from its unreachable or not-ready node");
                    recorder.publish(
                        pod.as_ref(),
                        EventType::Normal,
                        "TaintManagerEviction",
                        &format!("Marking for deletion Pod {ns}/{name}"),
                    );
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::info!(pod = %format!("{ns}/{name}"), error = %e, "eviction failed; retrying")
                }
            }
        }
        Intent::ForceDelete(pod) => {
            let (ns, name, uid) = pod_key(&pod);
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                precondition_uid: uid,
                ..Default::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => {
                    tracing::info!(pod = %format!("{ns}/{name}"), "force-deleted: terminating on an unreachable node past its grace period");
                    recorder.publish(
                        pod.as_ref(),
                        EventType::Normal,
                        "DeletionByPodGC",
                        &format!("Force-deleting Pod {ns}/{name}: its node is unreachable and its grace period has passed"),
                    );
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::info!(pod = %format!("{ns}/{name}"), error = %e, "force deletion failed; retrying")
                }
            }
        }
        Intent::NodeEvent {
            node,
            warning,
            reason,
            message,
        } => {
            let kind = if warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            recorder.publish(node.as_ref(), kind, reason, &message);
        }
    }
}

/// Writes the lifecycle taints of `planned` onto the node: onto `fresher`
/// (this pass's own status write) if any, and on a conflict (the kubelet
/// posted status meanwhile) onto a freshly read copy, keeping other
/// writers' taints.
async fn set_taints(nodes: &Api<Node>, planned: Node, fresher: Option<Node>) -> anyhow::Result<()> {
    let wanted = planned
        .spec
        .as_ref()
        .map(|s| s.taints.clone())
        .unwrap_or_default();
    let name = planned
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let mut node = fresher.unwrap_or(planned);
    for _ in 0..3 {
        let spec = node.spec.get_or_insert_with(Default::default);
        spec.taints = taints::merge_lifecycle(&spec.taints, &wanted);
        match nodes.update(&node).await {
            Err(e) if e.is_conflict() => node = nodes.get(&name).await?,
            other => return other.map(|_| ()).map_err(Into::into),
        }
    }
    anyhow::bail!("node {name}: taints not written after 3 conflicting updates")
}

/// Sets the pod's Ready condition False (Kubernetes's `MarkPodsNotReady`).
async fn mark_pod_not_ready(ctx: &Context, recorder: &Recorder, pod: &Pod) {
    let (ns, name, _) = pod_key(pod);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut updated = pod.clone();
    let Some(status) = updated.status.as_mut() else {
        return;
    };
    for c in status.conditions.iter_mut().filter(|c| c.r#type == "Ready") {
        c.status = "False".into();
        c.last_transition_time = Some(Time::now());
    }
    match api.update_status(&updated).await {
        Ok(_) => recorder.publish(pod, EventType::Warning, "NodeNotReady", "Node is not ready"),
        Err(e) => {
            tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "marking pod not ready failed")
        }
    }
}

//! One monitoring pass as pure logic: given the informers' snapshot and
//! the time, [`Monitor::plan`] updates the controller's memory (probe
//! timestamps, eviction timers, the token bucket, the zone state) and
//! returns the [`Intent`]s the runtime carries out. No IO here.
//!
//! Per node, in order: stale (no Lease or status heartbeat change seen for
//! the grace period) → conditions Unknown; the zone state from every
//! node's readiness; the lifecycle taints (NoSchedule at once, NoExecute
//! through the token bucket, and none while the eviction rate is 0); pods past their toleration of the NoExecute
//! taint evicted (never while the zone is disrupted); pods already
//! terminating on an unreachable node force-deleted once their grace
//! period has passed on this controller's clock (the node's kubelet cannot
//! finish the deletion — Kubernetes's PodGC does this for out-of-service
//! nodes).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::{Node, Pod};
use capstan_proto::timestamp::Time;

use super::config::NodeLifecycleConfig;
use super::disruption::{TokenBucket, ZoneState, eviction_rate, zone_state};
use super::health::{HealthTracker, Readiness, mark_unknown, readiness};
use super::taints::{eviction_delay, key_for, no_execute_taint, with_lifecycle_taints};

/// How long an eviction just asked for is not asked for again (the
/// informer may not show the pod terminating yet).
const RETRY_EVICTION_AFTER: Duration = Duration::from_secs(5);

/// Something the runtime should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    /// Write this status (Ready Unknown); mark these pods not Ready; Event NodeNotReady.
    MarkUnknown {
        /// The node with its new status.
        node: Node,
        /// Its pods whose Ready condition is True.
        ready_pods: Vec<Arc<Pod>>,
    },
    /// Write the node with these taints.
    SetTaints(Node),
    /// Delete the pod (its default grace period); Event TaintManagerEviction.
    Evict(Arc<Pod>),
    /// Delete the terminating pod with grace 0.
    ForceDelete(Arc<Pod>),
    /// An Event about a node.
    NodeEvent {
        /// The node.
        node: Arc<Node>,
        /// Normal or Warning.
        warning: bool,
        /// The reason.
        reason: &'static str,
        /// The message.
        message: String,
    },
}

/// The controller's memory between passes.
#[derive(Debug)]
pub struct Monitor {
    config: NodeLifecycleConfig,
    health: HealthTracker,
    bucket: TokenBucket,
    zone: ZoneState,
    /// Node → when this controller first saw it with the NoExecute taint.
    no_execute_since: HashMap<String, Instant>,
    /// Nodes whose DeletingAllPods Event was sent.
    announced: HashSet<String>,
    /// Pod uid → when first seen terminating on an unreachable node.
    terminating_since: HashMap<String, Instant>,
    /// Pod uid → when its eviction was last asked for.
    evicted: HashMap<String, Instant>,
}

fn name_of(node: &Node) -> &str {
    node.metadata.as_ref().map_or("", |m| m.name.as_str())
}

fn pod_meta(pod: &Pod) -> (&str, bool) {
    pod.metadata.as_ref().map_or(("", false), |m| {
        (m.uid.as_str(), m.deletion_timestamp.is_some())
    })
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

impl Monitor {
    /// A controller that has seen nothing yet.
    pub fn new(config: NodeLifecycleConfig, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(config.node_eviction_rate, now),
            config,
            health: HealthTracker::default(),
            zone: ZoneState::Normal,
            no_execute_since: HashMap::new(),
            announced: HashSet::new(),
            terminating_since: HashMap::new(),
            evicted: HashMap::new(),
        }
    }

    /// The zone state after the last pass.
    pub fn zone(&self) -> ZoneState {
        self.zone
    }

    /// One pass over `nodes` (with `leases` by node name and `pods` by node
    /// name) at `now` (`wall`: the same instant as a timestamp to write).
    pub fn plan(
        &mut self,
        nodes: &[Arc<Node>],
        leases: &HashMap<String, Arc<Lease>>,
        pods: &HashMap<String, Vec<Arc<Pod>>>,
        now: Instant,
        wall: Time,
    ) -> Vec<Intent> {
        let mut intents = Vec::new();
        let mut nodes: Vec<&Arc<Node>> = nodes.iter().collect();
        nodes.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        let no_pods = Vec::new();
        let pods_on = |name: &str| pods.get(name).unwrap_or(&no_pods);

        // Health, judged on this controller's clock.
        for node in &nodes {
            self.health
                .observe(node, leases.get(name_of(node)).map(|l| l.as_ref()), now);
        }
        let names: HashSet<&str> = nodes.iter().map(|n| name_of(n)).collect();
        self.health.retain(|n| names.contains(n));
        self.no_execute_since
            .retain(|n, _| names.contains(n.as_str()));
        self.announced.retain(|n| names.contains(n.as_str()));

        let grace = self.config.grace_period();
        let mut states = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let name = name_of(node);
            let stale = self.health.is_stale(name, now, grace);
            let state = if stale {
                if let Some(updated) = mark_unknown(node, wall) {
                    let ready_pods = pods_on(name)
                        .iter()
                        .filter(|p| pod_ready(p))
                        .cloned()
                        .collect();
                    intents.push(Intent::MarkUnknown {
                        node: updated,
                        ready_pods,
                    });
                }
                Readiness::Unknown
            } else {
                readiness(node)
            };
            states.push(state);
        }

        // The zone state, and the eviction rate it allows.
        let ready = states.iter().filter(|s| **s == Readiness::Ready).count();
        let state = zone_state(
            ready,
            states.len() - ready,
            self.config.unhealthy_zone_threshold,
        );
        if state != self.zone {
            tracing::warn!(
                from = self.zone.as_str(),
                to = state.as_str(),
                ready,
                not_ready = states.len() - ready,
                "node lifecycle: cluster disruption state changed"
            );
            if state == ZoneState::Normal {
                // The outage may have been this side's: every node gets a
                // fresh grace period and eviction timers restart.
                self.health.reset_all(now);
                self.no_execute_since.values_mut().for_each(|t| *t = now);
            } else {
                for (node, s) in nodes.iter().zip(&states) {
                    if *s != Readiness::Ready {
                        intents.push(Intent::NodeEvent {
                            node: Arc::clone(node),
                            warning: true,
                            reason: "EvictionSuspended",
                            message: format!(
                                "{} of {} nodes are not ready ({}): no pod is evicted until fewer are",
                                states.len() - ready,
                                states.len(),
                                state.as_str()
                            ),
                        });
                    }
                }
            }
            self.zone = state;
        }
        let rate = eviction_rate(state, nodes.len(), &self.config);
        self.bucket.set_rate(rate, now);

        // Taints and evictions, node by node.
        let timeout = self.config.eviction_timeout();
        let mut terminating_seen = HashSet::new();
        for (node, r) in nodes.iter().zip(&states) {
            let name = name_of(node);
            let taints = node
                .spec
                .as_ref()
                .map(|s| s.taints.as_slice())
                .unwrap_or(&[]);
            let key = key_for(*r);
            let has_no_execute = no_execute_taint(taints).is_some();
            // While evictions are suspended no node carries the NoExecute
            // taint (Kubernetes removes them in full disruption), so
            // nothing acts on it; it comes back through the bucket after.
            let no_execute =
                key.is_some() && rate > 0.0 && (has_no_execute || self.bucket.try_take(now));
            let wanted = with_lifecycle_taints(taints, key, no_execute, wall);
            if wanted != taints {
                let mut updated = (***node).clone();
                updated.spec.get_or_insert_with(Default::default).taints = wanted.clone();
                intents.push(Intent::SetTaints(updated));
            }

            let Some(taint) = no_execute_taint(&wanted) else {
                self.no_execute_since.remove(name);
                self.announced.remove(name);
                continue;
            };
            let since = *self.no_execute_since.entry(name.to_owned()).or_insert(now);
            if state != ZoneState::Normal {
                continue;
            }
            let tainted_for = now.saturating_duration_since(since);
            for pod in pods_on(name) {
                let (uid, terminating) = pod_meta(pod);
                if terminating {
                    if *r != Readiness::Unknown {
                        continue;
                    }
                    terminating_seen.insert(uid.to_owned());
                    let first = *self.terminating_since.entry(uid.to_owned()).or_insert(now);
                    let grace = pod
                        .metadata
                        .as_ref()
                        .and_then(|m| m.deletion_grace_period_seconds)
                        .unwrap_or(0)
                        .max(0) as u64;
                    // Asked apart from its eviction (which was just asked for).
                    if now.saturating_duration_since(first) >= Duration::from_secs(grace)
                        && self.may_ask(&format!("{uid}/force"), now)
                    {
                        intents.push(Intent::ForceDelete(Arc::clone(pod)));
                    }
                    continue;
                }
                let due = eviction_delay(pod, taint, timeout).is_some_and(|d| tainted_for >= d);
                if due && self.may_ask(uid, now) {
                    if self.announced.insert(name.to_owned()) {
                        intents.push(Intent::NodeEvent {
                            node: Arc::clone(node),
                            warning: false,
                            reason: "DeletingAllPods",
                            message: format!("Deleting all Pods from Node {name}."),
                        });
                    }
                    intents.push(Intent::Evict(Arc::clone(pod)));
                }
            }
        }
        self.terminating_since
            .retain(|uid, _| terminating_seen.contains(uid));
        self.evicted
            .retain(|_, at| now.saturating_duration_since(*at) < RETRY_EVICTION_AFTER);
        intents
    }

    /// Whether a delete of pod `uid` may be asked for now (not asked for
    /// within [`RETRY_EVICTION_AFTER`]); records it.
    fn may_ask(&mut self, uid: &str, now: Instant) -> bool {
        match self.evicted.get(uid) {
            Some(at) if now.saturating_duration_since(*at) < RETRY_EVICTION_AFTER => false,
            _ => {
                self.evicted.insert(uid.to_owned(), now);
                true
            }
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

//! Node health as this controller judges it, on its own clock: a node is
//! healthy while its Lease's `renewTime` or its Ready condition's
//! `lastHeartbeatTime` keeps *changing*; the instant of the last change
//! seen (the "probe timestamp" of Kubernetes's node lifecycle controller)
//! is local, so a skewed clock on the node or an apiserver cannot make a
//! dead node look alive or a live one dead. Also: the Node status a stale
//! node gets (conditions Unknown, `NodeStatusUnknown`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::{Node, NodeCondition};
use capstan_proto::timestamp::{MicroTime, Time};

/// The Ready condition's reason when this controller stopped hearing from the kubelet.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// Its message.
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// The reason for a node whose kubelet never posted a Ready condition.
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
/// Its message.
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";

/// The node conditions the kubelet owns, set Unknown together with Ready.
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The Ready condition as one of three states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// `Ready=True`.
    Ready,
    /// `Ready=False`: the kubelet is alive and says the node is not ready.
    NotReady,
    /// `Ready=Unknown` or no Ready condition: nobody knows.
    Unknown,
}

/// The node's Ready condition.
pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
}

/// The node's [`Readiness`] as its status says.
pub fn readiness(node: &Node) -> Readiness {
    match ready_condition(node).map(|c| c.status.as_str()) {
        Some("True") => Readiness::Ready,
        Some("False") => Readiness::NotReady,
        _ => Readiness::Unknown,
    }
}

#[derive(Clone, Debug)]
struct Observed {
    /// When this controller last saw a heartbeat change.
    probe: Instant,
    heartbeat: Option<Time>,
    renew: Option<MicroTime>,
}

/// The last heartbeat seen per node, by name.
#[derive(Debug, Default)]
pub struct HealthTracker {
    nodes: HashMap<String, Observed>,
}

impl HealthTracker {
    /// Records what `node` and its `lease` show at `now`: a node seen for
    /// the first time, or whose heartbeat or lease renewal differs from the
    /// last seen, is probed at `now`.
    pub fn observe(&mut self, node: &Node, lease: Option<&Lease>, now: Instant) {
        let name = node
            .metadata
            .as_ref()
            .map(|m| m.name.as_str())
            .unwrap_or("");
        let heartbeat = ready_condition(node).and_then(|c| c.last_heartbeat_time);
        let renew = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time);
        match self.nodes.get_mut(name) {
            Some(seen) => {
                if seen.heartbeat != heartbeat || seen.renew != renew {
                    seen.probe = now;
                    seen.heartbeat = heartbeat;
                    seen.renew = renew;
                }
            }
            None => {
                self.nodes.insert(
                    name.to_owned(),
                    Observed {
                        probe: now,
                        heartbeat,
                        renew,
                    },
                );
            }
        }
    }

    /// Whether nothing changed for `node` for longer than `grace` (false for
    /// a node never observed).
    pub fn is_stale(&self, node: &str, now: Instant, grace: Duration) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|o| now.saturating_duration_since(o.probe) > grace)
    }

    /// Gives every node a fresh grace period (on leaving disruption mode,
    /// as Kubernetes does: the outage may have been this side's).
    pub fn reset_all(&mut self, now: Instant) {
        for o in self.nodes.values_mut() {
            o.probe = now;
        }
    }

    /// Forgets nodes not in `names`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.nodes.retain(|name, _| keep(name));
    }
}

/// The node with its kubelet-owned conditions set Unknown (Ready with
/// [`REASON_UNKNOWN`], or [`REASON_NEVER_UPDATED`] when it had none), or
/// `None` when Ready is Unknown already. `lastHeartbeatTime` is kept;
/// `lastTransitionTime` becomes `now` for each condition that changes.
pub fn mark_unknown(node: &Node, now: Time) -> Option<Node> {
    if ready_condition(node).is_some_and(|c| c.status == "Unknown") {
        return None;
    }
    let mut node = node.clone();
    let status = node.status.get_or_insert_with(Default::default);
    if !status.conditions.iter().any(|c| c.r#type == "Ready") {
        status.conditions.push(NodeCondition {
            r#type: "Ready".into(),
            status: "Unknown".into(),
            last_transition_time: Some(now),
            reason: REASON_NEVER_UPDATED.into(),
            message: MESSAGE_NEVER_UPDATED.into(),
            ..Default::default()
        });
    }
    for c in status
        .conditions
        .iter_mut()
        .filter(|c| KUBELET_CONDITIONS.contains(&c.r#type.as_str()) && c.status != "Unknown")
    {
        c.status = "Unknown".into();
        c.reason = REASON_UNKNOWN.into();
        c.message = MESSAGE_UNKNOWN.into();
        c.last_transition_time = Some(now);
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::coordination::v1::LeaseSpec;
    use capstan_proto::api::core::v1::NodeStatus;
    use capstan_proto::api::meta::v1::ObjectMeta;

    pub(crate) fn node(name: &str, ready: &str, heartbeat: i64) -> Node {
        Node {
            metadata: Some(ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: None,
            status: Some(NodeStatus {
                conditions: vec![
                    NodeCondition {
                        r#type: "Ready".into(),
                        status: ready.into(),
                        last_heartbeat_time: Some(Time::from_unix_seconds(heartbeat)),
                        reason: "KubeletReady".into(),
                        ..Default::default()
                    },
                    NodeCondition {
                        r#type: "MemoryPressure".into(),
                        status: "False".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        }
    }

    fn lease(renew: i64) -> Lease {
        Lease {
            metadata: None,
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime::from_unix_seconds(renew)),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn staleness_is_judged_on_the_local_clock_from_changes() {
        let grace = Duration::from_secs(40);
        let t0 = Instant::now();
        let mut h = HealthTracker::default();
        // A heartbeat from 1970 is not "old": it is what was seen at t0.
        h.observe(&node("n", "True", 1), Some(&lease(1)), t0);
        assert!(!h.is_stale("n", t0 + Duration::from_secs(40), grace));
        assert!(h.is_stale("n", t0 + Duration::from_secs(41), grace));
        // A renewed lease (status unchanged) refreshes the probe.
        h.observe(
            &node("n", "True", 1),
            Some(&lease(2)),
            t0 + Duration::from_secs(30),
        );
        assert!(!h.is_stale("n", t0 + Duration::from_secs(60), grace));
        // The same lease seen again does not.
        h.observe(
            &node("n", "True", 1),
            Some(&lease(2)),
            t0 + Duration::from_secs(60),
        );
        assert!(h.is_stale("n", t0 + Duration::from_secs(71), grace));
        // A status heartbeat alone also counts.
        h.observe(
            &node("n", "True", 5),
            Some(&lease(2)),
            t0 + Duration::from_secs(71),
        );
        assert!(!h.is_stale("n", t0 + Duration::from_secs(100), grace));
        // Unknown nodes are not stale; a reset gives a fresh grace period.
        assert!(!h.is_stale("other", t0 + Duration::from_secs(1000), grace));
        h.reset_all(t0 + Duration::from_secs(500));
        assert!(!h.is_stale("n", t0 + Duration::from_secs(530), grace));
        h.retain(|n| n != "n");
        assert!(!h.is_stale("n", t0 + Duration::from_secs(1000), grace));
    }

    #[test]
    fn unknown_status_keeps_heartbeat_and_is_idempotent() {
        let now = Time::from_unix_seconds(100);
        let marked = mark_unknown(&node("n", "True", 7), now).unwrap();
        let ready = ready_condition(&marked).unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason, REASON_UNKNOWN);
        assert_eq!(ready.message, MESSAGE_UNKNOWN);
        assert_eq!(ready.last_heartbeat_time, Some(Time::from_unix_seconds(7)));
        assert_eq!(ready.last_transition_time, Some(now));
        let mem = &marked.status.as_ref().unwrap().conditions[1];
        assert_eq!(mem.status, "Unknown");
        assert_eq!(readiness(&marked), Readiness::Unknown);
        assert!(mark_unknown(&marked, now).is_none());

        let mut bare = node("n", "True", 7);
        bare.status = None;
        let marked = mark_unknown(&bare, now).unwrap();
        assert_eq!(
            ready_condition(&marked).unwrap().reason,
            REASON_NEVER_UPDATED
        );
        assert_eq!(readiness(&node("n", "False", 1)), Readiness::NotReady);
    }
}

//! Scenarios for [`Monitor::plan`]: nodes going stale, taints, evictions
//! after the timeout, the rate limit, disruption mode, recovery.

use super::*;
use crate::nodelifecycle::taints::{NO_EXECUTE, NO_SCHEDULE, UNREACHABLE};
use capstan_proto::api::coordination::v1::LeaseSpec;
use capstan_proto::api::core::v1::{NodeCondition, NodeStatus, PodSpec, Toleration};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::timestamp::MicroTime;

fn node(name: &str) -> Arc<Node> {
    Arc::new(Node {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        spec: None,
        status: Some(NodeStatus {
            conditions: vec![NodeCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                last_heartbeat_time: Some(Time::from_unix_seconds(1)),
                ..Default::default()
            }],
            ..Default::default()
        }),
    })
}

fn pod(name: &str, uid: &str, tolerate_forever: bool) -> Arc<Pod> {
    let tolerations = if tolerate_forever {
        vec![Toleration {
            key: UNREACHABLE.into(),
            operator: "Exists".into(),
            effect: NO_EXECUTE.into(),
            ..Default::default()
        }]
    } else {
        vec![]
    };
    Arc::new(Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            uid: uid.into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            tolerations,
            ..Default::default()
        }),
        status: None,
    })
}

struct World {
    monitor: Monitor,
    nodes: Vec<Arc<Node>>,
    leases: HashMap<String, Arc<Lease>>,
    pods: HashMap<String, Vec<Arc<Pod>>>,
    t0: Instant,
    renewals: i64,
}

impl World {
    fn new(n: usize, config: NodeLifecycleConfig) -> Self {
        let t0 = Instant::now();
        Self {
            monitor: Monitor::new(config, t0),
            nodes: (0..n).map(|i| node(&format!("n{i}"))).collect(),
            leases: HashMap::new(),
            pods: HashMap::new(),
            t0,
            renewals: 0,
        }
    }

    /// Renews the leases of the nodes in `alive`.
    fn renew(&mut self, alive: &[&str]) {
        self.renewals += 1;
        for n in alive {
            self.leases.insert(
                n.to_string(),
                Arc::new(Lease {
                    metadata: None,
                    spec: Some(LeaseSpec {
                        renew_time: Some(MicroTime::from_unix_seconds(self.renewals)),
                        ..Default::default()
                    }),
                }),
            );
        }
    }

    /// A pass at t0 + `secs`, its intents applied to the world.
    fn pass(&mut self, secs: f64) -> Vec<Intent> {
        let now = self.t0 + Duration::from_secs_f64(secs);
        let intents = self.monitor.plan(
            &self.nodes,
            &self.leases,
            &self.pods,
            now,
            Time::from_unix_seconds(1000),
        );
        for i in &intents {
            match i {
                Intent::MarkUnknown { node, .. } => self.replace(node, true),
                Intent::SetTaints(node) => self.replace(node, false),
                _ => {}
            }
        }
        intents
    }

    fn replace(&mut self, updated: &Node, status: bool) {
        let slot = self
            .nodes
            .iter_mut()
            .find(|n| name_of(n) == name_of(updated))
            .unwrap();
        let mut n = (**slot).clone();
        if status {
            n.status = updated.status.clone();
        } else {
            n.spec = updated.spec.clone();
        }
        *slot = Arc::new(n);
    }

    fn taints(&self, name: &str) -> Vec<(String, String)> {
        let n = self.nodes.iter().find(|n| name_of(n) == name).unwrap();
        n.spec
            .iter()
            .flat_map(|s| &s.taints)
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect()
    }
}

fn evicted(intents: &[Intent]) -> Vec<String> {
    intents
        .iter()
        .filter_map(|i| match i {
            Intent::Evict(p) => Some(p.metadata.as_ref().unwrap().name.clone()),
            _ => None,
        })
        .collect()
}

fn config() -> NodeLifecycleConfig {
    NodeLifecycleConfig {
        node_monitor_grace_period_seconds: 40.0,
        pod_eviction_timeout_seconds: 300.0,
        ..Default::default()
    }
}

#[test]
fn a_stale_node_is_unknown_tainted_then_evicted_after_the_timeout() {
    let mut w = World::new(4, config());
    w.pods.insert(
        "n0".into(),
        vec![pod("plain", "u1", false), pod("tolerant", "u2", true)],
    );
    let all = ["n0", "n1", "n2", "n3"];
    w.renew(&all);
    assert!(w.pass(0.0).is_empty());
    // n0 stops renewing; the others keep on.
    for t in 1..=40 {
        w.renew(&all[1..]);
        assert!(
            w.pass(t as f64).is_empty(),
            "nothing within the grace period"
        );
    }
    w.renew(&all[1..]);
    let intents = w.pass(41.0);
    assert!(matches!(&intents[0], Intent::MarkUnknown { node, .. } if name_of(node) == "n0"));
    assert_eq!(
        w.taints("n0"),
        vec![
            (UNREACHABLE.into(), NO_SCHEDULE.into()),
            (UNREACHABLE.into(), NO_EXECUTE.into())
        ]
    );
    assert!(evicted(&intents).is_empty());
    w.renew(&all[1..]);
    assert!(evicted(&w.pass(340.0)).is_empty(), "before the timeout");
    w.renew(&all[1..]);
    let intents = w.pass(341.0);
    assert_eq!(evicted(&intents), vec!["plain"], "the tolerant pod stays");
    assert!(intents.iter().any(|i| matches!(
        i,
        Intent::NodeEvent {
            reason: "DeletingAllPods",
            ..
        }
    )));
    // Not asked again at once; the kubelet is gone so it stays terminating:
    // force-deleted once its grace period passed on our clock.
    assert!(evicted(&w.pass(342.0)).is_empty());
    let mut terminating = (*pod("plain", "u1", false)).clone();
    let m = terminating.metadata.as_mut().unwrap();
    m.deletion_timestamp = Some(Time::from_unix_seconds(1));
    m.deletion_grace_period_seconds = Some(30);
    w.pods.insert(
        "n0".into(),
        vec![Arc::new(terminating), pod("tolerant", "u2", true)],
    );
    let force = |i: &Vec<Intent>| i.iter().any(|i| matches!(i, Intent::ForceDelete(_)));
    assert!(!force(&w.pass(350.0)));
    assert!(!force(&w.pass(379.0)));
    assert!(force(&w.pass(380.0)));

    // The kubelet comes back: Ready again, taints gone.
    w.nodes[0] = node("n0");
    w.renew(&all);
    let intents = w.pass(400.0);
    assert!(w.taints("n0").is_empty(), "{intents:?}");
}

#[test]
fn no_eviction_when_most_nodes_look_down() {
    let mut w = World::new(4, config());
    w.pods.insert("n0".into(), vec![pod("a", "u1", false)]);
    w.pods.insert("n1".into(), vec![pod("b", "u2", false)]);
    let all = ["n0", "n1", "n2", "n3"];
    w.renew(&all);
    w.pass(0.0);
    // n0 goes first (and gets the NoExecute taint), then n1 and n2.
    w.renew(&all[1..]);
    w.pass(20.0);
    w.renew(&["n3"]);
    w.pass(41.0);
    assert!(
        w.taints("n0")
            .contains(&(UNREACHABLE.into(), NO_EXECUTE.into()))
    );
    let mut events = 0;
    for t in 42..=1000 {
        w.renew(&["n3"]);
        let intents = w.pass(t as f64);
        assert!(evicted(&intents).is_empty(), "evicted at {t}: {intents:?}");
        events += intents
            .iter()
            .filter(|i| {
                matches!(
                    i,
                    Intent::NodeEvent {
                        reason: "EvictionSuspended",
                        ..
                    }
                )
            })
            .count();
    }
    assert_eq!(w.monitor.zone(), ZoneState::PartialDisruption);
    assert_eq!(
        events, 3,
        "one Event per not-ready node on entering disruption"
    );
    // Unreachable and unschedulable, but no NoExecute taint (n0's removed).
    assert_eq!(
        w.taints("n0"),
        vec![(UNREACHABLE.into(), NO_SCHEDULE.into())]
    );

    // All down: full disruption, still nothing.
    for t in 1001..=1400 {
        assert!(evicted(&w.pass(t as f64)).is_empty());
    }
    assert_eq!(w.monitor.zone(), ZoneState::FullDisruption);

    // Two come back: normal again, and the others get a fresh grace period.
    w.nodes[2] = node("n2");
    w.nodes[3] = node("n3");
    w.renew(&["n2", "n3"]);
    let intents = w.pass(1401.0);
    assert_eq!(w.monitor.zone(), ZoneState::Normal);
    assert!(evicted(&intents).is_empty());
    assert_eq!(
        w.taints("n0"),
        vec![(UNREACHABLE.into(), NO_SCHEDULE.into())]
    );
}

#[test]
fn nodes_start_eviction_at_the_configured_rate() {
    let mut w = World::new(10, config());
    let all: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let alive: Vec<&str> = all[2..].iter().map(|s| s.as_str()).collect();
    let every: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    w.renew(&every);
    w.pass(0.0);
    w.renew(&alive);
    w.pass(41.0);
    let ne = |w: &World, n: &str| {
        w.taints(n)
            .contains(&(UNREACHABLE.into(), NO_EXECUTE.into()))
    };
    assert!(ne(&w, "n0"));
    assert!(!ne(&w, "n1"), "one node per 10 s at 0.1 nodes/s");
    w.renew(&alive);
    w.pass(50.0);
    assert!(!ne(&w, "n1"));
    w.renew(&alive);
    w.pass(51.0);
    assert!(ne(&w, "n1"));
}

//! The scores: how good a feasible node is for a pod, each from 0 to
//! [`MAX_NODE_SCORE`], combined with Kubernetes's default plugin weights.
//!
//! - **NodeResourcesFit, LeastAllocated** (weight 1): the mean over CPU and
//!   memory of `(allocatable - requested) * 100 / allocatable`, counting
//!   the pod itself and the per-container defaults for missing requests.
//! - **Spreading** (weight 2, Kubernetes's default weight for pod topology
//!   spreading): a node holding fewer pods of the pod's controller scores
//!   higher: `100 * (max - count) / max` over the feasible nodes.
//! - **TaintToleration** (weight 3): fewer untolerated `PreferNoSchedule`
//!   taints score higher: `100 * (max - count) / max`.
//!
//! Spreading and taints are normalised over the nodes being scored, so a
//! cycle gathers [`Raw`] figures first and [`combine`]s them after.

use crate::cache::NodeInfo;
use crate::filters::tolerates;
use crate::node_info::TaintEffect;
use crate::pod_info::PodInfo;

/// The highest score of one plugin.
pub const MAX_NODE_SCORE: i64 = 100;
/// Weight of least-allocated.
pub const LEAST_ALLOCATED_WEIGHT: i64 = 1;
/// Weight of spreading.
pub const SPREAD_WEIGHT: i64 = 2;
/// Weight of PreferNoSchedule taints.
pub const TAINT_WEIGHT: i64 = 3;

/// One node's figures before normalisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raw {
    /// Least-allocated score (already 0..=100).
    pub least_allocated: i64,
    /// Pods of the same controller on the node.
    pub same_owner: i64,
    /// Untolerated PreferNoSchedule taints.
    pub prefer_no_schedule: i64,
}

/// The figures of `node` for `pod`; `owner` is the pod's interned
/// controller id when any of its pods are counted.
pub fn raw(pod: &PodInfo, node: &NodeInfo, owner: Option<u32>) -> Raw {
    Raw {
        least_allocated: least_allocated(pod, node),
        same_owner: owner.map_or(0, |o| i64::from(node.owner_count(o))),
        prefer_no_schedule: prefer_no_schedule(pod, node),
    }
}

fn least_allocated_one(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated over CPU and memory.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let Some(data) = node.data.as_ref() else {
        return 0;
    };
    let requested = node.non_zero_requested.plus(pod.requests.non_zero);
    (least_allocated_one(requested.milli_cpu, data.allocatable.milli_cpu)
        + least_allocated_one(requested.memory, data.allocatable.memory))
        / 2
}

/// Untolerated PreferNoSchedule taints of `node`.
pub fn prefer_no_schedule(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let Some(data) = node.data.as_ref() else {
        return 0;
    };
    let count = data
        .taints
        .iter()
        .filter(|t| t.effect == TaintEffect::PreferNoSchedule)
        .filter(|t| {
            !pod.tolerations.iter().any(|tol| {
                (tol.effect.is_empty() || tol.effect == "PreferNoSchedule")
                    && tolerates(tol, &t.key, &t.value, t.effect)
            })
        })
        .count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The maxima of the figures that are normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maxima {
    /// Largest `same_owner`.
    pub same_owner: i64,
    /// Largest `prefer_no_schedule`.
    pub prefer_no_schedule: i64,
}

impl Maxima {
    /// Takes `raw` into account.
    pub fn observe(&mut self, raw: &Raw) {
        self.same_owner = self.same_owner.max(raw.same_owner);
        self.prefer_no_schedule = self.prefer_no_schedule.max(raw.prefer_no_schedule);
    }
}

fn reverse_normalised(value: i64, max: i64) -> i64 {
    if max == 0 {
        MAX_NODE_SCORE
    } else {
        MAX_NODE_SCORE * (max - value) / max
    }
}

/// The weighted total of one node.
pub fn combine(raw: &Raw, max: &Maxima) -> i64 {
    LEAST_ALLOCATED_WEIGHT * raw.least_allocated
        + SPREAD_WEIGHT * reverse_normalised(raw.same_owner, max.same_owner)
        + TAINT_WEIGHT * reverse_normalised(raw.prefer_no_schedule, max.prefer_no_schedule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::testutil::{node, pod};
    use capstan_proto::api::core::v1::{Taint, Toleration};
    use capstan_proto::api::meta::v1::OwnerReference;
    use std::sync::Arc;

    fn info(p: capstan_proto::api::core::v1::Pod) -> PodInfo {
        PodInfo::new(Arc::new(p)).unwrap()
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("n1", "4", "8Gi"));
        let slot = cache.slot_of("n1").unwrap();
        let p = info(pod("a", "1", "2Gi"));
        // (3/4 cpu free -> 75, 6/8 memory free -> 75).
        assert_eq!(least_allocated(&p, cache.slot(slot)), 75);
        cache.assume(&info(pod("b", "2", "4Gi")), slot);
        assert_eq!(least_allocated(&p, cache.slot(slot)), 25);
        // More requested than allocatable scores 0, not negative.
        cache.assume(&info(pod("c", "2", "4Gi")), slot);
        assert_eq!(least_allocated(&p, cache.slot(slot)), 0);
        // A pod without requests counts 100m / 200Mi.
        let mut empty = pod("d", "0", "0");
        empty.spec.as_mut().unwrap().containers[0].resources = None;
        let mut cache = Cache::new();
        cache.upsert_node(&node("n2", "1", "2000Mi"));
        let slot = cache.slot_of("n2").unwrap();
        assert_eq!(least_allocated(&info(empty), cache.slot(slot)), 90);
    }

    #[test]
    fn spreading_prefers_nodes_with_fewer_pods_of_the_owner() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("n1", "4", "8Gi"));
        cache.upsert_node(&node("n2", "4", "8Gi"));
        let owned = |name: &str| {
            let mut p = pod(name, "100m", "1Mi");
            p.metadata
                .as_mut()
                .unwrap()
                .owner_references
                .push(OwnerReference {
                    uid: "rs".into(),
                    controller: Some(true),
                    ..Default::default()
                });
            info(p)
        };
        let (n1, n2) = (cache.slot_of("n1").unwrap(), cache.slot_of("n2").unwrap());
        cache.assume(&owned("a"), n1);
        cache.assume(&owned("b"), n1);
        cache.assume(&owned("c"), n2);
        let p = owned("d");
        let owner = cache.owner_id("rs");
        let (r1, r2) = (
            raw(&p, cache.slot(n1), owner),
            raw(&p, cache.slot(n2), owner),
        );
        assert_eq!((r1.same_owner, r2.same_owner), (2, 1));
        let mut max = Maxima::default();
        max.observe(&r1);
        max.observe(&r2);
        assert!(combine(&r2, &max) > combine(&r1, &max));
        assert_eq!(
            combine(&r2, &max) - combine(&r1, &max),
            SPREAD_WEIGHT * 50 + (r2.least_allocated - r1.least_allocated)
        );
        // A pod without a controller is not spread.
        let lone = info(pod("e", "100m", "1Mi"));
        assert_eq!(raw(&lone, cache.slot(n1), None).same_owner, 0);
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let mut tainted = node("n1", "4", "8Gi");
        tainted.spec.as_mut().unwrap().taints.push(Taint {
            key: "soft".into(),
            value: "x".into(),
            effect: "PreferNoSchedule".into(),
            ..Default::default()
        });
        let mut cache = Cache::new();
        cache.upsert_node(&tainted);
        cache.upsert_node(&node("n2", "4", "8Gi"));
        let (n1, n2) = (cache.slot_of("n1").unwrap(), cache.slot_of("n2").unwrap());
        let p = info(pod("a", "1", "1Gi"));
        let (r1, r2) = (raw(&p, cache.slot(n1), None), raw(&p, cache.slot(n2), None));
        assert_eq!((r1.prefer_no_schedule, r2.prefer_no_schedule), (1, 0));
        let mut max = Maxima::default();
        max.observe(&r1);
        max.observe(&r2);
        assert_eq!(combine(&r2, &max) - combine(&r1, &max), TAINT_WEIGHT * 100);
        // Tolerated, it no longer counts; a NoSchedule-only toleration does not help.
        let mut q = pod("b", "1", "1Gi");
        q.spec.as_mut().unwrap().tolerations = vec![Toleration {
            key: "soft".into(),
            operator: "Exists".into(),
            ..Default::default()
        }];
        assert_eq!(prefer_no_schedule(&info(q.clone()), cache.slot(n1)), 0);
        q.spec.as_mut().unwrap().tolerations[0].effect = "NoSchedule".into();
        assert_eq!(prefer_no_schedule(&info(q), cache.slot(n1)), 1);
    }
}

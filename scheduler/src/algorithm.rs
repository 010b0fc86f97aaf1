//! One scheduling cycle, without IO: walk the nodes from where the last
//! cycle stopped, filter until enough feasible nodes are found
//! (Kubernetes's `percentageOfNodesToScore`), score those, pick the best
//! (ties broken at random), or explain why no node fits.

use std::collections::BTreeMap;
use std::fmt;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use crate::cache::Cache;
use crate::filters;
use crate::pod_info::PodInfo;
use crate::scores::{self, Maxima, Raw};

/// Below this many nodes every node is filtered (Kubernetes's
/// `minFeasibleNodesToFind`).
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The floor of the adaptive percentage.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// How many feasible nodes to find among `all` before scoring:
/// `percentage` of them (0: adaptive, `50 - all/125`, at least 5%), and at
/// least 100 (Kubernetes's `numFeasibleNodesToFind`).
pub fn feasible_nodes_to_find(all: usize, percentage: u32) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return all;
    }
    let percentage = if percentage == 0 {
        50usize
            .saturating_sub(all / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    } else {
        percentage as usize
    };
    (all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// No node fits: how many nodes there were and why each was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    /// Nodes considered.
    pub nodes: usize,
    /// Reason message → number of nodes refused for it.
    pub reasons: BTreeMap<String, usize>,
}

impl fmt::Display for FitError {
    /// Kubernetes's message: `0/3 nodes are available: 1 node(s) had
    /// untolerated taint {k: v}, 2 Insufficient cpu.` (reasons sorted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        parts.sort();
        write!(
            f,
            "0/{} nodes are available: {}.",
            self.nodes,
            parts.join(", ")
        )
    }
}

/// The scheduling algorithm and its state between cycles.
#[derive(Debug)]
pub struct Algorithm {
    percentage: u32,
    next_start: usize,
    rng: SmallRng,
    /// Reused per cycle: feasible slots and their raw figures.
    feasible: Vec<(usize, Raw)>,
}

impl Algorithm {
    /// With `percentage_of_nodes_to_score` (0: adaptive) and a random seed
    /// for tie-breaking.
    pub fn new(percentage_of_nodes_to_score: u32, seed: u64) -> Self {
        Self {
            percentage: percentage_of_nodes_to_score,
            next_start: 0,
            rng: SmallRng::seed_from_u64(seed),
            feasible: Vec::new(),
        }
    }

    /// Picks the node slot for `pod`.
    pub fn schedule(&mut self, cache: &Cache, pod: &PodInfo) -> Result<usize, FitError> {
        let nodes = cache.nodes();
        let all = nodes.len();
        if all == 0 {
            return Err(FitError {
                nodes: 0,
                reasons: BTreeMap::new(),
            });
        }
        let want = feasible_nodes_to_find(all, self.percentage);
        let owner = pod.owner.as_deref().and_then(|o| cache.owner_id(o));
        self.feasible.clear();
        let mut unfit: Vec<filters::Unfit> = Vec::new();
        let start = self.next_start % all;
        let mut visited = 0;
        while visited < all && self.feasible.len() < want {
            let slot = nodes[(start + visited) % all];
            visited += 1;
            let node = cache.slot(slot);
            match filters::check(pod, node) {
                Ok(()) => self.feasible.push((slot, scores::raw(pod, node, owner))),
                Err(why) => unfit.push(why),
            }
        }
        self.next_start = (start + visited) % all;
        if self.feasible.is_empty() {
            let mut reasons = BTreeMap::new();
            for why in unfit {
                for m in why.messages() {
                    *reasons.entry(m).or_insert(0) += 1;
                }
            }
            return Err(FitError {
                nodes: all,
                reasons,
            });
        }
        if self.feasible.len() == 1 {
            return Ok(self.feasible[0].0);
        }
        let mut max = Maxima::default();
        for (_, raw) in &self.feasible {
            max.observe(raw);
        }
        // Reservoir sampling among the best, as Kubernetes's selectHost.
        let mut best = (self.feasible[0].0, i64::MIN);
        let mut ties = 0u32;
        for (slot, raw) in &self.feasible {
            let score = scores::combine(raw, &max);
            if score > best.1 {
                best = (*slot, score);
                ties = 1;
            } else if score == best.1 {
                ties += 1;
                if self.rng.random_range(0..ties) == 0 {
                    best.0 = *slot;
                }
            }
        }
        Ok(best.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};
    use capstan_proto::api::core::v1::Taint;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn info(p: capstan_proto::api::core::v1::Pod) -> PodInfo {
        PodInfo::new(Arc::new(p)).unwrap()
    }

    #[test]
    fn adaptive_percentage_as_kubernetes() {
        assert_eq!(feasible_nodes_to_find(50, 0), 50);
        assert_eq!(feasible_nodes_to_find(150, 0), 100);
        // 5,000 nodes: 50 - 40 = 10% = 500.
        assert_eq!(feasible_nodes_to_find(5000, 0), 500);
        // 10,000 nodes: 50 - 80 < 5 -> 5% = 500.
        assert_eq!(feasible_nodes_to_find(10_000, 0), 500);
        assert_eq!(feasible_nodes_to_find(5000, 30), 1500);
        assert_eq!(feasible_nodes_to_find(5000, 100), 5000);
        assert_eq!(feasible_nodes_to_find(5000, 1), 100);
    }

    #[test]
    fn picks_the_least_allocated_node() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("small", "2", "4Gi"));
        cache.upsert_node(&node("large", "16", "64Gi"));
        let mut alg = Algorithm::new(0, 1);
        let slot = alg.schedule(&cache, &info(pod("a", "1", "1Gi"))).unwrap();
        assert_eq!(cache.slot(slot).name, "large");
    }

    #[test]
    fn spreads_a_controllers_pods_and_breaks_ties_at_random() {
        let mut cache = Cache::new();
        for i in 0..4 {
            cache.upsert_node(&node(&format!("n{i}"), "64", "256Gi"));
        }
        let mut alg = Algorithm::new(0, 7);
        let mut used = HashSet::new();
        for i in 0..4 {
            let mut p = pod(&format!("p{i}"), "100m", "1Mi");
            p.metadata.as_mut().unwrap().owner_references.push(
                capstan_proto::api::meta::v1::OwnerReference {
                    uid: "rs".into(),
                    controller: Some(true),
                    ..Default::default()
                },
            );
            let p = info(p);
            let slot = alg.schedule(&cache, &p).unwrap();
            cache.assume(&p, slot);
            used.insert(slot);
        }
        assert_eq!(used.len(), 4, "four replicas on four nodes");
    }

    #[test]
    fn unschedulable_message_counts_reasons() {
        let mut cache = Cache::new();
        let mut tainted = node("t", "8", "8Gi");
        tainted.spec.as_mut().unwrap().taints.push(Taint {
            key: "k".into(),
            value: "v".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
        cache.upsert_node(&tainted);
        cache.upsert_node(&node("s1", "1", "8Gi"));
        cache.upsert_node(&node("s2", "1", "8Gi"));
        let mut alg = Algorithm::new(0, 1);
        let err = alg
            .schedule(&cache, &info(pod("a", "2", "1Gi")))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu."
        );
        let empty = Cache::new();
        let err = alg
            .schedule(&empty, &info(pod("a", "2", "1Gi")))
            .unwrap_err();
        assert_eq!(err.to_string(), "no nodes available to schedule pods");
    }

    #[test]
    fn stops_after_enough_feasible_nodes_and_resumes_there() {
        let mut cache = Cache::new();
        for i in 0..1000 {
            cache.upsert_node(&node(&format!("n{i:04}"), "4", "8Gi"));
        }
        // 1,000 nodes: 50 - 8 = 42% = 420 feasible nodes per cycle.
        let mut alg = Algorithm::new(0, 3);
        let p = info(pod("a", "1", "1Gi"));
        alg.schedule(&cache, &p).unwrap();
        assert_eq!(alg.next_start, 420);
        alg.schedule(&cache, &p).unwrap();
        assert_eq!(alg.next_start, 840);
        alg.schedule(&cache, &p).unwrap();
        assert_eq!(alg.next_start, 260);
    }
}

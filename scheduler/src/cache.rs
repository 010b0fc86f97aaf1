//! The scheduler's cache: every node with what the pods on it already
//! request, kept from the Node and Pod watches, plus the pods this
//! scheduler has **assumed** onto a node while their binding is in flight
//! (Kubernetes's assume cache). Assuming counts a pod's requests at once,
//! so the next cycles see the node as fuller without waiting for the
//! binding to come back through the watch; the watch then confirms the
//! pod, or a failed binding forgets it.
//!
//! Nodes live in slots that never move (a slot index is a cheap, stable
//! handle for a scheduling cycle); a node deleted while pods still point
//! at it keeps its slot without node data (Kubernetes's "ghost" node info)
//! and is never offered for scheduling.

use std::collections::{HashMap, HashSet};

use capstan_proto::api::core::v1::{Node, Pod};

use crate::node_info::NodeData;
use crate::pod_info::{PodInfo, PodKey};
use crate::resources::{PodRequests, Resources};

/// A node and the pods counted against it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// The node as last seen; `None` once it is deleted.
    pub data: Option<NodeData>,
    /// The sum of the requests of its pods (bound and assumed).
    pub requested: Resources,
    /// The same with per-container defaults, for scoring.
    pub non_zero_requested: Resources,
    /// How many pods it holds.
    pub pod_count: i64,
    /// Pods per controller (interned owner uid → count), for spreading.
    owners: HashMap<u32, u32>,
}

impl NodeInfo {
    /// How many pods of `owner` the node holds.
    pub fn owner_count(&self, owner: u32) -> u32 {
        self.owners.get(&owner).copied().unwrap_or(0)
    }

    fn add(&mut self, requests: &PodRequests, owner: Option<u32>) {
        self.requested = self.requested.plus(requests.requests);
        self.non_zero_requested = self.non_zero_requested.plus(requests.non_zero);
        self.pod_count += 1;
        if let Some(o) = owner {
            *self.owners.entry(o).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, requests: &PodRequests, owner: Option<u32>) {
        self.requested = self.requested.minus(requests.requests);
        self.non_zero_requested = self.non_zero_requested.minus(requests.non_zero);
        self.pod_count -= 1;
        if let Some(o) = owner
            && let Some(n) = self.owners.get_mut(&o)
        {
            *n -= 1;
            if *n == 0 {
                self.owners.remove(&o);
            }
        }
    }
}

/// A pod counted against a node.
#[derive(Clone, Debug)]
struct CachedPod {
    uid: String,
    slot: usize,
    requests: PodRequests,
    owner: Option<u32>,
    /// Placed by this scheduler; its binding is not yet seen.
    assumed: bool,
}

/// What a node event changed, for requeueing unschedulable pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeChange {
    /// A node appeared.
    Added,
    /// Something a filter or score reads changed.
    Updated,
    /// Nothing the scheduler reads changed (a heartbeat).
    Unchanged,
}

/// Nodes, bound pods and assumed pods.
#[derive(Debug, Default)]
pub struct Cache {
    slots: Vec<NodeInfo>,
    by_name: HashMap<String, usize>,
    /// Slots with node data, in the order cycles walk them.
    present: Vec<usize>,
    pods: HashMap<PodKey, CachedPod>,
    owner_ids: HashMap<String, u32>,
}

/// Whether the pod is bound and still holds its node's resources (a pod
/// that has succeeded or failed does not).
pub fn holds_resources(pod: &Pod) -> bool {
    let bound = pod.spec.as_ref().is_some_and(|s| !s.node_name.is_empty());
    let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
    bound && phase != "Succeeded" && phase != "Failed"
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The slots of the schedulable-candidate nodes (those with data), in
    /// walking order.
    pub fn nodes(&self) -> &[usize] {
        &self.present
    }

    /// The node in `slot`.
    pub fn slot(&self, slot: usize) -> &NodeInfo {
        &self.slots[slot]
    }

    /// The slot of the node called `name`, if known.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// How many pods are counted (bound and assumed).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The interned id of an owner uid, if any pod of it is counted.
    pub fn owner_id(&self, uid: &str) -> Option<u32> {
        self.owner_ids.get(uid).copied()
    }

    fn intern(&mut self, uid: &str) -> u32 {
        if let Some(id) = self.owner_ids.get(uid) {
            return *id;
        }
        let id = u32::try_from(self.owner_ids.len()).unwrap_or(u32::MAX);
        self.owner_ids.insert(uid.to_owned(), id);
        id
    }

    fn slot_for(&mut self, name: &str) -> usize {
        if let Some(slot) = self.by_name.get(name) {
            return *slot;
        }
        let slot = self.slots.len();
        self.slots.push(NodeInfo {
            name: name.to_owned(),
            ..Default::default()
        });
        self.by_name.insert(name.to_owned(), slot);
        slot
    }

    /// Adds or updates a node.
    pub fn upsert_node(&mut self, node: &Node) -> NodeChange {
        let name = node
            .metadata
            .as_ref()
            .map(|m| m.name.as_str())
            .unwrap_or("");
        let data = NodeData::of(node);
        let slot = self.slot_for(name);
        let info = &mut self.slots[slot];
        match &info.data {
            Some(old) if *old == data => NodeChange::Unchanged,
            Some(_) => {
                info.data = Some(data);
                NodeChange::Updated
            }
            None => {
                info.data = Some(data);
                self.present.push(slot);
                NodeChange::Added
            }
        }
    }

    /// Forgets a node's data (its pods stay counted until they go).
    pub fn remove_node(&mut self, name: &str) {
        if let Some(&slot) = self.by_name.get(name)
            && self.slots[slot].data.take().is_some()
        {
            self.present.retain(|s| *s != slot);
        }
    }

    /// Replaces every node (after a relist).
    pub fn replace_nodes(&mut self, nodes: &[Node]) {
        let names: HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n.metadata.as_ref().map(|m| m.name.as_str()))
            .collect();
        let gone: Vec<String> = self
            .present
            .iter()
            .map(|s| self.slots[*s].name.clone())
            .filter(|n| !names.contains(n.as_str()))
            .collect();
        for name in gone {
            self.remove_node(&name);
        }
        for node in nodes {
            self.upsert_node(node);
        }
    }

    /// Counts a bound pod seen through the watch (confirming it if it was
    /// assumed). A pod that no longer holds resources is removed instead.
    /// Returns whether resources were freed (worth retrying pods for).
    pub fn add_pod(&mut self, pod: &Pod) -> bool {
        let key = PodKey::of(pod);
        if !holds_resources(pod) {
            return self.remove_pod(&key);
        }
        let uid = pod.metadata.as_ref().map(|m| m.uid.as_str()).unwrap_or("");
        let node = pod
            .spec
            .as_ref()
            .map(|s| s.node_name.as_str())
            .unwrap_or("");
        if let Some(cached) = self.pods.get_mut(&key)
            && cached.uid == uid
            && self.slots[cached.slot].name == node
        {
            cached.assumed = false;
            return false;
        }
        let freed = self.remove_pod(&key);
        let requests = PodRequests::of(pod);
        let owner = pod
            .metadata
            .as_ref()
            .and_then(|m| {
                m.owner_references
                    .iter()
                    .find(|o| o.controller == Some(true))
            })
            .map(|o| o.uid.clone());
        let owner = owner.map(|o| self.intern(&o));
        let slot = self.slot_for(node);
        self.slots[slot].add(&requests, owner);
        self.pods.insert(
            key,
            CachedPod {
                uid: uid.to_owned(),
                slot,
                requests,
                owner,
                assumed: false,
            },
        );
        freed
    }

    /// Stops counting a pod; returns whether it was counted.
    pub fn remove_pod(&mut self, key: &PodKey) -> bool {
        let Some(cached) = self.pods.remove(key) else {
            return false;
        };
        self.slots[cached.slot].remove(&cached.requests, cached.owner);
        true
    }

    /// Counts `pod` on the node in `slot` before its binding is seen.
    pub fn assume(&mut self, pod: &PodInfo, slot: usize) {
        self.remove_pod(&pod.key);
        let owner = pod.owner.as_deref().map(|o| self.intern(o));
        self.slots[slot].add(&pod.requests, owner);
        self.pods.insert(
            pod.key.clone(),
            CachedPod {
                uid: pod.uid.clone(),
                slot,
                requests: pod.requests,
                owner,
                assumed: true,
            },
        );
    }

    /// Undoes [`Cache::assume`] after a failed binding (only if the pod is
    /// still assumed: a binding seen meanwhile stands).
    pub fn forget(&mut self, key: &PodKey, uid: &str) {
        if self
            .pods
            .get(key)
            .is_some_and(|c| c.assumed && c.uid == uid)
        {
            self.remove_pod(key);
        }
    }

    /// Whether `key` is assumed and waiting for its binding.
    pub fn is_assumed(&self, key: &PodKey) -> bool {
        self.pods.get(key).is_some_and(|c| c.assumed)
    }

    /// Replaces every bound pod (after a relist), keeping assumed pods
    /// the list does not show bound yet.
    pub fn replace_pods<'a>(&mut self, pods: impl IntoIterator<Item = &'a Pod>) {
        let mut keep: HashSet<PodKey> = HashSet::new();
        let listed: Vec<&Pod> = pods.into_iter().filter(|p| holds_resources(p)).collect();
        for pod in &listed {
            keep.insert(PodKey::of(pod));
        }
        let stale: Vec<PodKey> = self
            .pods
            .iter()
            .filter(|(k, c)| !c.assumed && !keep.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.remove_pod(&key);
        }
        for pod in listed {
            self.add_pod(pod);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{node, pod};
    use std::sync::Arc;

    #[test]
    fn bound_pods_count_against_their_node() {
        let mut cache = Cache::new();
        assert_eq!(
            cache.upsert_node(&node("n1", "4", "8Gi")),
            NodeChange::Added
        );
        assert_eq!(
            cache.upsert_node(&node("n1", "4", "8Gi")),
            NodeChange::Unchanged
        );
        assert_eq!(
            cache.upsert_node(&node("n1", "8", "8Gi")),
            NodeChange::Updated
        );
        let mut p = pod("a", "500m", "1Gi");
        p.spec.as_mut().unwrap().node_name = "n1".into();
        cache.add_pod(&p);
        let slot = cache.slot_of("n1").unwrap();
        assert_eq!(cache.slot(slot).requested.milli_cpu, 500);
        assert_eq!(cache.slot(slot).pod_count, 1);
        // The same pod again is not counted twice.
        cache.add_pod(&p);
        assert_eq!(cache.slot(slot).pod_count, 1);
        // A finished pod frees its node.
        p.status.get_or_insert_with(Default::default).phase = "Succeeded".into();
        assert!(cache.add_pod(&p));
        assert_eq!(cache.slot(slot).requested, Resources::default());
        assert_eq!(cache.slot(slot).pod_count, 0);
    }

    #[test]
    fn assume_then_confirm_or_forget() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("n1", "4", "8Gi"));
        let slot = cache.slot_of("n1").unwrap();
        let mut p = pod("a", "1", "1Gi");
        p.metadata.as_mut().unwrap().owner_references.push(
            capstan_proto::api::meta::v1::OwnerReference {
                uid: "rs-1".into(),
                controller: Some(true),
                ..Default::default()
            },
        );
        let info = PodInfo::new(Arc::new(p.clone())).unwrap();
        cache.assume(&info, slot);
        assert!(cache.is_assumed(&info.key));
        assert_eq!(cache.slot(slot).requested.milli_cpu, 1000);
        let owner = cache.owner_id("rs-1").unwrap();
        assert_eq!(cache.slot(slot).owner_count(owner), 1);
        // The binding comes back through the watch: confirmed, not doubled.
        p.spec.as_mut().unwrap().node_name = "n1".into();
        cache.add_pod(&p);
        assert!(!cache.is_assumed(&info.key));
        assert_eq!(cache.slot(slot).requested.milli_cpu, 1000);
        // Forgetting a confirmed pod does nothing.
        cache.forget(&info.key, &info.uid);
        assert_eq!(cache.slot(slot).pod_count, 1);

        let other = PodInfo::new(Arc::new(pod("b", "1", "1Gi"))).unwrap();
        cache.assume(&other, slot);
        assert_eq!(cache.slot(slot).pod_count, 2);
        cache.forget(&other.key, &other.uid);
        assert_eq!(cache.slot(slot).pod_count, 1);
        assert_eq!(cache.slot(slot).requested.milli_cpu, 1000);
    }

    #[test]
    fn relist_replaces_bound_pods_but_keeps_assumed_ones() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("n1", "4", "8Gi"));
        let slot = cache.slot_of("n1").unwrap();
        let mut gone = pod("gone", "1", "0");
        gone.spec.as_mut().unwrap().node_name = "n1".into();
        cache.add_pod(&gone);
        let assumed = PodInfo::new(Arc::new(pod("assumed", "2", "0"))).unwrap();
        cache.assume(&assumed, slot);
        let mut kept = pod("kept", "100m", "0");
        kept.spec.as_mut().unwrap().node_name = "n1".into();
        cache.replace_pods([&kept]);
        assert_eq!(cache.pod_count(), 2);
        assert_eq!(cache.slot(slot).requested.milli_cpu, 2100);
    }

    #[test]
    fn deleted_node_keeps_its_pods_but_is_not_offered() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("n1", "4", "8Gi"));
        cache.upsert_node(&node("n2", "4", "8Gi"));
        let mut p = pod("a", "1", "0");
        p.spec.as_mut().unwrap().node_name = "n1".into();
        cache.add_pod(&p);
        cache.remove_node("n1");
        assert_eq!(cache.nodes().len(), 1);
        assert_eq!(cache.slot(cache.nodes()[0]).name, "n2");
        assert_eq!(cache.slot(cache.slot_of("n1").unwrap()).pod_count, 1);
        cache.replace_nodes(&[node("n1", "4", "8Gi")]);
        assert_eq!(cache.nodes().len(), 1);
        assert_eq!(cache.slot(cache.nodes()[0]).name, "n1");
    }
}

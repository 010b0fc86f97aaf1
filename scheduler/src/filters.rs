//! The filters: whether a pod may run on a node at all. Each is a pure
//! function of the pod's [`PodInfo`] and the node's [`NodeInfo`]; the first
//! that fails gives the node's [`Unfit`] reason, which the unschedulable
//! message counts per reason as Kubernetes does.
//!
//! Order and meaning follow Kubernetes's default plugins:
//! NodeUnschedulable (cordoned nodes, unless the pod tolerates
//! `node.kubernetes.io/unschedulable:NoSchedule`), TaintToleration (with a
//! node whose `Ready` condition is not `True` treated as tainted
//! `node.kubernetes.io/not-ready:NoSchedule`, as the node lifecycle
//! controller would taint it), NodeAffinity (nodeSelector and the required
//! node affinity), NodeResourcesFit (pod count, cpu, memory,
//! ephemeral-storage against allocatable minus what bound and assumed pods
//! request).

use std::fmt;

use capstan_proto::api::core::v1::Toleration;

use crate::cache::NodeInfo;
use crate::node_info::{NodeData, Taint, TaintEffect};
use crate::pod_info::PodInfo;

/// The taint a not-ready node is treated as carrying.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The taint a cordoned node's pods may tolerate.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Resources a node is short of (a set: several may be short at once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shortage {
    /// Too many pods already.
    pub pods: bool,
    /// Not enough CPU.
    pub cpu: bool,
    /// Not enough memory.
    pub memory: bool,
    /// Not enough ephemeral storage.
    pub ephemeral_storage: bool,
}

impl Shortage {
    /// Kubernetes's messages, one per short resource.
    pub fn messages(self) -> impl Iterator<Item = &'static str> {
        [
            (self.pods, "Too many pods"),
            (self.cpu, "Insufficient cpu"),
            (self.memory, "Insufficient memory"),
            (self.ephemeral_storage, "Insufficient ephemeral-storage"),
        ]
        .into_iter()
        .filter_map(|(short, m)| short.then_some(m))
    }
}

/// Why a node cannot take a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unfit {
    /// The node is cordoned (`spec.unschedulable`).
    Unschedulable,
    /// A NoSchedule/NoExecute taint the pod does not tolerate.
    UntoleratedTaint {
        /// Its key.
        key: String,
        /// Its value.
        value: String,
    },
    /// nodeSelector or required node affinity does not match.
    NodeAffinity,
    /// Requests exceed what is left.
    Insufficient(Shortage),
}

impl Unfit {
    /// Kubernetes's reason messages for this node (several for a resource
    /// shortage), as counted in "0/3 nodes are available: ...".
    pub fn messages(&self) -> Vec<String> {
        match self {
            Unfit::Unschedulable => vec!["node(s) were unschedulable".to_owned()],
            Unfit::UntoleratedTaint { key, value } => {
                vec![format!("node(s) had untolerated taint {{{key}: {value}}}")]
            }
            Unfit::NodeAffinity => {
                vec!["node(s) didn't match Pod's node affinity/selector".to_owned()]
            }
            Unfit::Insufficient(s) => s.messages().map(str::to_owned).collect(),
        }
    }
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages().join(", "))
    }
}

/// Runs every filter; `Ok` when the node can take the pod.
pub fn check(pod: &PodInfo, node: &NodeInfo) -> Result<(), Unfit> {
    let Some(data) = node.data.as_ref() else {
        return Err(Unfit::Unschedulable);
    };
    node_unschedulable(pod, data)?;
    taint_toleration(pod, data)?;
    node_affinity(pod, &node.name, data)?;
    resources_fit(pod, node, data)
}

/// Whether `toleration` tolerates a taint `key=value:effect` (Kubernetes's
/// `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, key: &str, value: &str, effect: TaintEffect) -> bool {
    if !toleration.effect.is_empty() && toleration.effect != effect.as_str() {
        return false;
    }
    if !toleration.key.is_empty() && toleration.key != key {
        return false;
    }
    match toleration.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => toleration.value == value,
        _ => false,
    }
}

fn tolerated(pod: &PodInfo, taint: &Taint) -> bool {
    pod.tolerations
        .iter()
        .any(|t| tolerates(t, &taint.key, &taint.value, taint.effect))
}

/// NodeUnschedulable.
pub fn node_unschedulable(pod: &PodInfo, node: &NodeData) -> Result<(), Unfit> {
    if node.unschedulable
        && !pod
            .tolerations
            .iter()
            .any(|t| tolerates(t, UNSCHEDULABLE_TAINT, "", TaintEffect::NoSchedule))
    {
        return Err(Unfit::Unschedulable);
    }
    Ok(())
}

/// TaintToleration (filter part): NoSchedule and NoExecute taints, and
/// not-ready as a NoSchedule taint.
pub fn taint_toleration(pod: &PodInfo, node: &NodeData) -> Result<(), Unfit> {
    if !node.ready
        && !pod
            .tolerations
            .iter()
            .any(|t| tolerates(t, NOT_READY_TAINT, "", TaintEffect::NoSchedule))
    {
        return Err(Unfit::UntoleratedTaint {
            key: NOT_READY_TAINT.to_owned(),
            value: String::new(),
        });
    }
    match node
        .taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .find(|t| !tolerated(pod, t))
    {
        Some(t) => Err(Unfit::UntoleratedTaint {
            key: t.key.clone(),
            value: t.value.clone(),
        }),
        None => Ok(()),
    }
}

/// NodeAffinity: every nodeSelector label, and one of the required terms.
pub fn node_affinity(pod: &PodInfo, name: &str, node: &NodeData) -> Result<(), Unfit> {
    let selector_ok = pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let affinity_ok = pod
        .required_affinity
        .as_ref()
        .is_none_or(|terms| terms.iter().any(|t| t.matches(name, &node.labels)));
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(Unfit::NodeAffinity)
    }
}

/// NodeResourcesFit: pod count always; cpu, memory and ephemeral storage
/// when the pod requests them.
pub fn resources_fit(pod: &PodInfo, node: &NodeInfo, data: &NodeData) -> Result<(), Unfit> {
    let want = pod.requests.requests;
    let free = data.allocatable.minus(node.requested);
    let shortage = Shortage {
        pods: node.pod_count + 1 > data.allowed_pods,
        cpu: want.milli_cpu > 0 && want.milli_cpu > free.milli_cpu,
        memory: want.memory > 0 && want.memory > free.memory,
        ephemeral_storage: want.ephemeral_storage > 0
            && want.ephemeral_storage > free.ephemeral_storage,
    };
    if shortage == Shortage::default() {
        Ok(())
    } else {
        Err(Unfit::Insufficient(shortage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::testutil::{node, pod};
    use capstan_proto::api::core::v1::{
        Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    };
    use std::sync::Arc;

    fn info(p: Pod) -> PodInfo {
        PodInfo::new(Arc::new(p)).unwrap()
    }

    fn one(n: Node) -> (Cache, usize) {
        let mut cache = Cache::new();
        let name = n.metadata.as_ref().unwrap().name.clone();
        cache.upsert_node(&n);
        let slot = cache.slot_of(&name).unwrap();
        (cache, slot)
    }

    fn toleration(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: key.into(),
            operator: op.into(),
            value: value.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn taint(n: &mut Node, key: &str, value: &str, effect: &str) {
        n.spec.get_or_insert_with(Default::default).taints.push(
            capstan_proto::api::core::v1::Taint {
                key: key.into(),
                value: value.into(),
                effect: effect.into(),
                ..Default::default()
            },
        );
    }

    #[test]
    fn not_ready_nodes_are_filtered_unless_tolerated() {
        let mut n = node("n1", "4", "8Gi");
        n.status.as_mut().unwrap().conditions[0].status = "False".into();
        let (cache, slot) = one(n);
        let p = info(pod("a", "1", "1Gi"));
        let err = check(&p, cache.slot(slot)).unwrap_err();
        assert_eq!(
            err.messages(),
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        );
        let mut tolerant = pod("b", "1", "1Gi");
        tolerant.spec.as_mut().unwrap().tolerations =
            vec![toleration(NOT_READY_TAINT, "Exists", "", "NoSchedule")];
        assert!(check(&info(tolerant), cache.slot(slot)).is_ok());

        // A node without conditions is not Ready either.
        let mut bare = node("n2", "4", "8Gi");
        bare.status.as_mut().unwrap().conditions.clear();
        let (cache, slot) = one(bare);
        assert!(check(&p, cache.slot(slot)).is_err());
    }

    #[test]
    fn cordoned_nodes_are_filtered() {
        let mut n = node("n1", "4", "8Gi");
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        let (cache, slot) = one(n);
        let p = info(pod("a", "1", "1Gi"));
        assert_eq!(check(&p, cache.slot(slot)), Err(Unfit::Unschedulable));
        let mut tolerant = pod("b", "1", "1Gi");
        tolerant.spec.as_mut().unwrap().tolerations =
            vec![toleration(UNSCHEDULABLE_TAINT, "Exists", "", "")];
        assert!(check(&info(tolerant), cache.slot(slot)).is_ok());
    }

    #[test]
    fn requests_must_fit_what_is_left() {
        let (mut cache, slot) = one(node("n1", "2", "4Gi"));
        let big = info(pod("big", "1500m", "1Gi"));
        assert!(check(&big, cache.slot(slot)).is_ok());
        cache.assume(&big, slot);
        let second = info(pod("second", "1", "4Gi"));
        let err = check(&second, cache.slot(slot)).unwrap_err();
        assert_eq!(err.messages(), ["Insufficient cpu", "Insufficient memory"]);
        // A pod without requests still fits (counts 0) ...
        let mut empty = pod("empty", "0", "0");
        empty.spec.as_mut().unwrap().containers[0].resources = None;
        assert!(check(&info(empty.clone()), cache.slot(slot)).is_ok());
        // ... until the pod count is reached.
        let mut full = node("n2", "2", "4Gi");
        full.status
            .as_mut()
            .unwrap()
            .allocatable
            .insert("pods".into(), "1".parse().unwrap());
        let (mut cache, slot) = one(full);
        let e = info(empty);
        assert!(check(&e, cache.slot(slot)).is_ok());
        cache.assume(&e, slot);
        let other = info(pod("x", "0", "0"));
        assert_eq!(
            check(&other, cache.slot(slot)).unwrap_err().messages(),
            ["Too many pods"]
        );
    }

    #[test]
    fn node_selector_must_match_labels() {
        let mut n = node("n1", "4", "8Gi");
        n.metadata
            .as_mut()
            .unwrap()
            .labels
            .insert("disk".into(), "ssd".into());
        let (cache, slot) = one(n);
        let mut p = pod("a", "1", "1Gi");
        p.spec
            .as_mut()
            .unwrap()
            .node_selector
            .insert("disk".into(), "ssd".into());
        assert!(check(&info(p.clone()), cache.slot(slot)).is_ok());
        p.spec
            .as_mut()
            .unwrap()
            .node_selector
            .insert("disk".into(), "hdd".into());
        assert_eq!(
            check(&info(p), cache.slot(slot)).unwrap_err().messages(),
            ["node(s) didn't match Pod's node affinity/selector"]
        );
    }

    #[test]
    fn taints_need_tolerations_except_prefer_no_schedule() {
        let mut n = node("n1", "4", "8Gi");
        taint(&mut n, "dedicated", "gpu", "NoSchedule");
        taint(&mut n, "soft", "x", "PreferNoSchedule");
        let (cache, slot) = one(n.clone());
        let p = pod("a", "1", "1Gi");
        assert_eq!(
            check(&info(p.clone()), cache.slot(slot)),
            Err(Unfit::UntoleratedTaint {
                key: "dedicated".into(),
                value: "gpu".into()
            })
        );
        for (t, ok) in [
            (toleration("dedicated", "Equal", "gpu", "NoSchedule"), true),
            (toleration("dedicated", "", "gpu", ""), true),
            (toleration("dedicated", "Exists", "", ""), true),
            (toleration("", "Exists", "", ""), true),
            (toleration("dedicated", "Equal", "cpu", "NoSchedule"), false),
            (toleration("dedicated", "Exists", "", "NoExecute"), false),
            (toleration("other", "Exists", "", ""), false),
        ] {
            let mut q = p.clone();
            q.spec.as_mut().unwrap().tolerations = vec![t.clone()];
            assert_eq!(check(&info(q), cache.slot(slot)).is_ok(), ok, "{t:?}");
        }
        taint(&mut n, "evict", "", "NoExecute");
        let (cache, slot) = one(n);
        let mut q = p;
        q.spec.as_mut().unwrap().tolerations =
            vec![toleration("dedicated", "Exists", "", "NoSchedule")];
        assert_eq!(
            check(&info(q), cache.slot(slot)).unwrap_err().messages(),
            ["node(s) had untolerated taint {evict: }"]
        );
    }

    fn with_affinity(terms: Vec<NodeSelectorTerm>) -> Pod {
        let mut p = pod("a", "1", "1Gi");
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn expr(reqs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: reqs,
            ..Default::default()
        }
    }

    #[test]
    fn required_node_affinity_operators() {
        let mut n = node("n1", "4", "8Gi");
        let labels = &mut n.metadata.as_mut().unwrap().labels;
        labels.insert("zone".into(), "a".into());
        labels.insert("cores".into(), "16".into());
        let (cache, slot) = one(n);
        let fits = |terms| check(&info(with_affinity(terms)), cache.slot(slot)).is_ok();
        assert!(fits(vec![expr(vec![req("zone", "In", &["a", "b"])])]));
        assert!(!fits(vec![expr(vec![req("zone", "NotIn", &["a"])])]));
        assert!(fits(vec![expr(vec![req("zone", "NotIn", &["b"])])]));
        assert!(fits(vec![expr(vec![req("zone", "Exists", &[])])]));
        assert!(!fits(vec![expr(vec![req("zone", "DoesNotExist", &[])])]));
        assert!(fits(vec![expr(vec![req("gpu", "DoesNotExist", &[])])]));
        assert!(fits(vec![expr(vec![req("cores", "Gt", &["8"])])]));
        assert!(!fits(vec![expr(vec![req("cores", "Lt", &["8"])])]));
        assert!(fits(vec![expr(vec![req("cores", "Lt", &["32"])])]));
        // Terms are ORed, expressions in a term ANDed.
        assert!(fits(vec![
            expr(vec![req("zone", "In", &["b"])]),
            expr(vec![req("zone", "In", &["a"])]),
        ]));
        assert!(!fits(vec![expr(vec![
            req("zone", "In", &["a"]),
            req("cores", "Gt", &["16"]),
        ])]));
        // An empty term matches nothing; no term matches nothing.
        assert!(!fits(vec![NodeSelectorTerm::default()]));
        assert!(!fits(vec![]));
        // matchFields on metadata.name.
        let field = |op: &str, names: &[&str]| NodeSelectorTerm {
            match_fields: vec![req("metadata.name", op, names)],
            ..Default::default()
        };
        assert!(fits(vec![field("In", &["n1"])]));
        assert!(!fits(vec![field("In", &["n2"])]));
        assert!(fits(vec![field("NotIn", &["n2"])]));
    }

    #[test]
    fn malformed_affinity_names_the_field() {
        let err = PodInfo::new(Arc::new(with_affinity(vec![NodeSelectorTerm {
            match_fields: vec![req("metadata.labels", "In", &["x"])],
            ..Default::default()
        }])))
        .unwrap_err();
        assert!(err.contains("nodeSelectorTerms[0].matchFields[0]"), "{err}");
        let err = PodInfo::new(Arc::new(with_affinity(vec![expr(vec![req(
            "zone",
            "Near",
            &["a"],
        )])])))
        .unwrap_err();
        assert!(
            err.contains("matchExpressions[0]") && err.contains("Near"),
            "{err}"
        );
    }
}

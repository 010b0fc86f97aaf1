//! [`PodInfo`]: what the scheduler needs of a pending pod, worked out once
//! when the pod is queued (requests, compiled node affinity, owner) so a
//! scheduling cycle reads plain fields instead of walking the Pod again for
//! every node.

use std::collections::BTreeMap;
use std::sync::Arc;

use capstan_proto::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Pod, Toleration};
use capstan_proto::labels::{Operator, Requirement};

use crate::resources::PodRequests;

/// A pod's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl PodKey {
    /// The key of `pod`.
    pub fn of(pod: &Pod) -> Self {
        let meta = pod.metadata.as_ref();
        Self {
            namespace: meta.map(|m| m.namespace.clone()).unwrap_or_default(),
            name: meta.map(|m| m.name.clone()).unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One `matchFields` requirement: Kubernetes supports only `metadata.name`
/// with `In` or `NotIn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRequirement {
    /// `In` (true) or `NotIn` (false).
    pub within: bool,
    /// The node names.
    pub names: Vec<String>,
}

impl NameRequirement {
    /// Whether a node called `name` satisfies it.
    pub fn matches(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name) == self.within
    }
}

/// One `nodeSelectorTerm`: every expression and field requirement must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityTerm {
    /// The `matchExpressions` on node labels.
    pub expressions: Vec<Requirement>,
    /// The `matchFields` on the node's name.
    pub fields: Vec<NameRequirement>,
}

impl AffinityTerm {
    /// Whether a node with `name` and `labels` satisfies the term. An empty
    /// term matches no node, as in Kubernetes.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.expressions.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.expressions.iter().all(|r| r.matches(labels))
            && self.fields.iter().all(|f| f.matches(name))
    }
}

/// A pending pod, ready to be placed.
#[derive(Clone, Debug)]
pub struct PodInfo {
    /// The pod as last seen.
    pub pod: Arc<Pod>,
    /// Its namespace and name.
    pub key: PodKey,
    /// Its uid (bindings carry it so a recreated pod is not bound by mistake).
    pub uid: String,
    /// What it asks of a node.
    pub requests: PodRequests,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`
    /// (any term may match); `None`: no requirement.
    pub required_affinity: Option<Vec<AffinityTerm>>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
    /// The uid of its controller (`ownerReferences[].controller: true`).
    pub owner: Option<String>,
    /// `spec.priority` (0 when unset); higher is scheduled first.
    pub priority: i32,
}

impl PodInfo {
    /// Works out `pod`'s scheduling needs; an error names the malformed
    /// field (the pod can never be scheduled as written).
    pub fn new(pod: Arc<Pod>) -> Result<Self, String> {
        let key = PodKey::of(&pod);
        let meta = pod.metadata.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let required_affinity = match spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }) {
            None => None,
            Some(selector) => Some(
                selector
                    .node_selector_terms
                    .iter()
                    .enumerate()
                    .map(|(i, t)| compile_term(i, t))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let owner = meta
            .owner_references
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        Ok(Self {
            requests: PodRequests::of(&pod),
            key,
            uid: meta.uid,
            node_selector: spec.node_selector,
            required_affinity,
            tolerations: spec.tolerations,
            owner,
            priority: spec.priority.unwrap_or(0),
            pod,
        })
    }
}

const TERMS: &str =
    "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";

fn compile_term(i: usize, term: &NodeSelectorTerm) -> Result<AffinityTerm, String> {
    let expressions = term
        .match_expressions
        .iter()
        .enumerate()
        .map(|(j, r)| {
            compile_expression(r).map_err(|e| format!("{TERMS}[{i}].matchExpressions[{j}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let fields = term
        .match_fields
        .iter()
        .enumerate()
        .map(|(j, r)| compile_field(r).map_err(|e| format!("{TERMS}[{i}].matchFields[{j}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AffinityTerm {
        expressions,
        fields,
    })
}

fn compile_expression(r: &NodeSelectorRequirement) -> Result<Requirement, String> {
    let operator = Operator::from_node_selector_operator(&r.operator).ok_or_else(|| {
        format!(
            "operator {:?} is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt",
            r.operator
        )
    })?;
    Requirement::new(r.key.clone(), operator, r.values.iter().cloned()).map_err(|e| e.to_string())
}

fn compile_field(r: &NodeSelectorRequirement) -> Result<NameRequirement, String> {
    if r.key != "metadata.name" {
        return Err(format!(
            "key {:?} is not supported; matchFields supports only metadata.name",
            r.key
        ));
    }
    let within = match r.operator.as_str() {
        "In" => true,
        "NotIn" => false,
        other => {
            return Err(format!(
                "operator {other:?} is not supported on metadata.name; use In or NotIn"
            ));
        }
    };
    Ok(NameRequirement {
        within,
        names: r.values.clone(),
    })
}

//! [`NodeData`]: what the scheduler needs of a Node object (readiness,
//! allocatable, labels, taints), read once per Node event so that
//! filtering thousands of nodes per pod touches only plain fields.

use std::collections::BTreeMap;

use capstan_proto::api::core::v1::Node;

use crate::resources::Resources;

/// A taint's effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaintEffect {
    /// New pods that do not tolerate it are not scheduled there.
    NoSchedule,
    /// The scheduler avoids the node for pods that do not tolerate it.
    PreferNoSchedule,
    /// Like `NoSchedule`, and running pods are evicted (by the node
    /// lifecycle controller).
    NoExecute,
}

impl TaintEffect {
    /// The effect named as in the API; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "NoSchedule" => Some(Self::NoSchedule),
            "PreferNoSchedule" => Some(Self::PreferNoSchedule),
            "NoExecute" => Some(Self::NoExecute),
            _ => None,
        }
    }

    /// The effect's API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSchedule => "NoSchedule",
            Self::PreferNoSchedule => "PreferNoSchedule",
            Self::NoExecute => "NoExecute",
        }
    }
}

/// A node's taint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    /// The key.
    pub key: String,
    /// The value (may be empty).
    pub value: String,
    /// The effect.
    pub effect: TaintEffect,
}

/// The scheduling-relevant part of a Node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeData {
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.taints` with a known effect.
    pub taints: Vec<Taint>,
    /// `status.allocatable` cpu, memory, ephemeral-storage.
    pub allocatable: Resources,
    /// `status.allocatable.pods`: how many pods the node takes.
    pub allowed_pods: i64,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
}

impl NodeData {
    /// Reads `node`.
    pub fn of(node: &Node) -> Self {
        let labels = node
            .metadata
            .as_ref()
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.as_ref();
        let allocatable = status.map(|s| &s.allocatable);
        Self {
            labels,
            taints: spec
                .taints
                .iter()
                .filter_map(|t| {
                    Some(Taint {
                        key: t.key.clone(),
                        value: t.value.clone(),
                        effect: TaintEffect::parse(&t.effect)?,
                    })
                })
                .collect(),
            allocatable: allocatable.map(Resources::from_list).unwrap_or_default(),
            allowed_pods: allocatable
                .and_then(|a| a.get("pods"))
                .map_or(0, |q| q.value()),
            ready: status.is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.r#type == "Ready" && c.status == "True")
            }),
            unschedulable: spec.unschedulable == Some(true),
        }
    }
}

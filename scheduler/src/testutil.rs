//! Builders of Nodes and Pods for the unit tests.

use std::collections::BTreeMap;

use capstan_proto::api::core::v1::{
    Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::quantity::Quantity;

fn list(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    let mut l = BTreeMap::new();
    l.insert("cpu".to_owned(), Quantity::parse(cpu).unwrap());
    l.insert("memory".to_owned(), Quantity::parse(memory).unwrap());
    l
}

/// A Ready node with `cpu` and `memory` allocatable and room for 110 pods.
pub fn node(name: &str, cpu: &str, memory: &str) -> Node {
    let mut allocatable = list(cpu, memory);
    allocatable.insert("pods".to_owned(), Quantity::parse("110").unwrap());
    Node {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: allocatable.clone(),
            allocatable,
            conditions: vec![NodeCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

/// A pending pod in `default` with one container requesting `cpu` and
/// `memory` ("0" for none).
pub fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            uid: format!("{name}-uid"),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests: list(cpu, memory),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

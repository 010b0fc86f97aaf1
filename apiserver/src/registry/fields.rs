//! Field selectors: `metadata.name=web,status.phase!=Running`.
//!
//! Each kind supports `metadata.name` and `metadata.namespace`, plus the
//! fields Kubernetes indexes for it (`spec.nodeName` and `status.phase` for
//! pods, `involvedObject.*` for events, ...). Operators are `=`, `==` and
//! `!=`. A selector naming a field the kind does not support is refused,
//! as Kubernetes refuses it, instead of silently matching nothing.

use capstan_proto::{KindInfo, Object};

/// One `field=value` or `field!=value` requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path.
    pub field: String,
    /// Whether the field must equal (`true`) or differ from the value.
    pub equals: bool,
    /// The value.
    pub value: String,
}

/// A parsed field selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `text` for objects of `info`. Errors name the offending part.
    pub fn parse(info: &KindInfo, text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equals, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid field selector {part:?}: expected field=value, field==value or field!=value"
                ));
            };
            let field = field.trim();
            if !supported(info, field) {
                return Err(format!(
                    "field label not supported for {}: {field:?} (supported: {})",
                    info.plural,
                    supported_fields(info).join(", ")
                ));
            }
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                equals,
                value: value.trim().to_owned(),
            });
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// The `field=value` requirements (what an authorizer may rely on).
    pub fn exact(&self) -> Vec<(String, String)> {
        self.requirements
            .iter()
            .filter(|r| r.equals)
            .map(|r| (r.field.clone(), r.value.clone()))
            .collect()
    }

    /// Whether `obj` satisfies every requirement.
    pub fn matches(&self, obj: &Object) -> bool {
        self.requirements.iter().all(|r| {
            let value = field_value(obj, &r.field).unwrap_or_default();
            (value == r.value) == r.equals
        })
    }
}

/// The fields `info` can be selected on.
pub fn supported_fields(info: &KindInfo) -> Vec<&'static str> {
    let mut fields = vec!["metadata.name", "metadata.namespace"];
    fields.extend_from_slice(match info.kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ][..],
        "Node" => &["spec.unschedulable"][..],
        "Namespace" => &["status.phase"][..],
        "Secret" => &["type"][..],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.fieldPath",
            "reason",
            "source",
            "type",
        ][..],
        "ReplicationController" | "ReplicaSet" => &["status.replicas"][..],
        _ => &[][..],
    });
    fields
}

fn supported(info: &KindInfo, field: &str) -> bool {
    supported_fields(info).contains(&field)
}

/// The value of a selectable field of `obj`, as a string.
pub fn field_value(obj: &Object, field: &str) -> Option<String> {
    match field {
        "metadata.name" => return Some(obj.name().to_owned()),
        "metadata.namespace" => return Some(obj.namespace().to_owned()),
        _ => {}
    }
    match obj {
        Object::Pod(p) => {
            let spec = p.spec.as_ref();
            let status = p.status.as_ref();
            match field {
                "spec.nodeName" => spec.map(|s| s.node_name.clone()),
                "spec.restartPolicy" => spec.map(|s| s.restart_policy.clone()),
                "spec.schedulerName" => spec.map(|s| s.scheduler_name.clone()),
                "spec.serviceAccountName" => spec.map(|s| s.service_account_name.clone()),
                "status.phase" => status.map(|s| s.phase.clone()),
                "status.podIP" => status.map(|s| s.pod_ip.clone()),
                _ => None,
            }
        }
        Object::Node(n) if field == "spec.unschedulable" => Some(
            n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
                .to_string(),
        ),
        Object::Namespace(n) if field == "status.phase" => {
            n.status.as_ref().map(|s| s.phase.clone())
        }
        Object::Secret(s) if field == "type" => Some(s.r#type.clone()),
        Object::Event(e) => {
            let io = e.involved_object.as_ref();
            match field {
                "involvedObject.kind" => io.map(|o| o.kind.clone()),
                "involvedObject.namespace" => io.map(|o| o.namespace.clone()),
                "involvedObject.name" => io.map(|o| o.name.clone()),
                "involvedObject.uid" => io.map(|o| o.uid.clone()),
                "involvedObject.apiVersion" => io.map(|o| o.api_version.clone()),
                "involvedObject.fieldPath" => io.map(|o| o.field_path.clone()),
                "reason" => Some(e.reason.clone()),
                "source" => e.source.as_ref().map(|s| s.component.clone()),
                "type" => Some(e.r#type.clone()),
                _ => None,
            }
        }
        Object::ReplicationController(rc) if field == "status.replicas" => Some(
            rc.status
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(0)
                .to_string(),
        ),
        Object::ReplicaSet(rs) if field == "status.replicas" => Some(
            rs.status
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(0)
                .to_string(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::Resource;
    use capstan_proto::api::core::v1::{Pod, PodSpec, PodStatus};
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn pod(name: &str, node: &str, phase: &str) -> Object {
        Object::Pod(Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_name: node.into(),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn selects_pods_by_node_and_phase() {
        let s = FieldSelector::parse(&Pod::INFO, "spec.nodeName=w1,status.phase!=Failed").unwrap();
        assert!(s.matches(&pod("a", "w1", "Running")));
        assert!(!s.matches(&pod("b", "w2", "Running")));
        assert!(!s.matches(&pod("c", "w1", "Failed")));
        assert_eq!(s.exact(), vec![("spec.nodeName".into(), "w1".into())]);
        let unbound = FieldSelector::parse(&Pod::INFO, "spec.nodeName==").unwrap();
        assert!(unbound.matches(&pod("d", "", "Pending")));
        assert!(!unbound.matches(&pod("e", "w1", "Pending")));
    }

    #[test]
    fn unsupported_field_and_bad_syntax_are_refused() {
        let e = FieldSelector::parse(&Pod::INFO, "spec.image=nginx").unwrap_err();
        assert!(
            e.contains("field label not supported for pods: \"spec.image\""),
            "{e}"
        );
        let e = FieldSelector::parse(&Pod::INFO, "status.phase").unwrap_err();
        assert!(e.contains("expected field=value"), "{e}");
        assert!(FieldSelector::parse(&Pod::INFO, "").unwrap().is_empty());
    }
}

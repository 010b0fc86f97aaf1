//! What a Service's Endpoints should be, from the pods its selector matches
//! — Kubernetes's endpoints controller logic, as a pure function.
//!
//! - Only Services with a non-empty selector are managed (a Service without
//!   one has its Endpoints written by hand).
//! - A pod counts when it is in the Service's namespace, matches the
//!   selector, has a podIP, is not terminal (Succeeded/Failed), and is not
//!   being deleted (unless `publishNotReadyAddresses`).
//! - Ready pods (condition Ready=True, or any pod with
//!   `publishNotReadyAddresses`) go to `addresses`, the others to
//!   `notReadyAddresses`.
//! - Each Service port's `targetPort` is resolved per pod: a number as
//!   is, a name through the pod's container ports with that name and the
//!   port's protocol; a pod lacking the named port is left out of that
//!   port only.
//! - Addresses with the same resolved port set share a subset; subsets,
//!   addresses and ports are sorted so the result is stable (an unchanged
//!   input gives an identical object, hence no write).

use std::collections::BTreeMap;

use capstan_proto::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service, ServicePort,
};
use capstan_proto::intstr::IntOrString;
use capstan_proto::labels::Selector;

/// Whether the Service's Endpoints are this controller's to write.
pub fn managed(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| !s.selector.is_empty())
}

/// The label selector of a managed Service.
pub fn selector(svc: &Service) -> Option<Selector> {
    let spec = svc.spec.as_ref()?;
    if spec.selector.is_empty() {
        return None;
    }
    Selector::from_labels(&spec.selector).ok()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

/// The pod's port for a Service port's targetPort, if it has it.
fn resolve(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        Some(IntOrString::Int(n)) if *n > 0 => Some(*n),
        Some(IntOrString::String(name)) if !name.is_empty() => {
            let protocol = if port.protocol.is_empty() {
                "TCP"
            } else {
                port.protocol.as_str()
            };
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .find(|p| {
                    p.name == *name
                        && (p.protocol.is_empty() && protocol == "TCP" || p.protocol == protocol)
                })
                .and_then(|p| p.container_port)
        }
        _ => port.port,
    }
}

/// The subsets of `svc`'s Endpoints given the pods of its namespace.
pub fn subsets<'a>(svc: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<EndpointSubset> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    let Some(selector) = selector(svc) else {
        return Vec::new();
    };
    let namespace = svc
        .metadata
        .as_ref()
        .map(|m| m.namespace.as_str())
        .unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    // Port set → (ready addresses, not-ready addresses).
    type Group = (Vec<EndpointAddress>, Vec<EndpointAddress>);
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Group> = BTreeMap::new();
    for pod in pods {
        let Some(meta) = pod.metadata.as_ref() else {
            continue;
        };
        if meta.namespace != namespace || !selector.matches(&meta.labels) {
            continue;
        }
        let status = pod.status.clone().unwrap_or_default();
        if status.pod_ip.is_empty() || matches!(status.phase.as_str(), "Succeeded" | "Failed") {
            continue;
        }
        if meta.deletion_timestamp.is_some() && !publish_not_ready {
            continue;
        }
        let ports: Vec<(String, i32, String)> = spec
            .ports
            .iter()
            .filter_map(|p| {
                let protocol = if p.protocol.is_empty() {
                    "TCP".to_owned()
                } else {
                    p.protocol.clone()
                };
                resolve(pod, p).map(|n| (p.name.clone(), n, protocol))
            })
            .collect();
        if ports.is_empty() && !spec.ports.is_empty() {
            continue;
        }
        let pod_spec = pod.spec.clone().unwrap_or_default();
        let hostname = if !pod_spec.hostname.is_empty()
            && pod_spec.subdomain == svc.metadata.as_ref().map_or("", |m| m.name.as_str())
        {
            pod_spec.hostname.clone()
        } else {
            String::new()
        };
        let address = EndpointAddress {
            ip: status.pod_ip.clone(),
            hostname,
            node_name: (!pod_spec.node_name.is_empty()).then(|| pod_spec.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: "Pod".into(),
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
                uid: meta.uid.clone(),
                ..Default::default()
            }),
        };
        let group = groups.entry(ports).or_default();
        if publish_not_ready || pod_ready(pod) {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: ready,
                not_ready_addresses: not_ready,
                ports: ports
                    .into_iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name,
                        port: Some(port),
                        protocol,
                        app_protocol: None,
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use capstan_proto::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServiceSpec,
    };
    use capstan_proto::api::meta::v1::ObjectMeta;

    use super::*;

    fn service(target: IntOrString) -> Service {
        Service {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(ServiceSpec {
                selector: [("app".to_owned(), "web".to_owned())].into(),
                ports: vec![ServicePort {
                    name: "http".into(),
                    port: Some(80),
                    protocol: "TCP".into(),
                    target_port: Some(target),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        }
    }

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str, port: i32) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("uid-{name}"),
                labels: [("app".to_owned(), "web".to_owned())].into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_name: "n1".into(),
                containers: vec![Container {
                    name: "c".into(),
                    ports: vec![ContainerPort {
                        name: port_name.into(),
                        container_port: Some(port),
                        protocol: "TCP".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: ip.into(),
                phase: "Running".into(),
                conditions: vec![PodCondition {
                    r#type: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ready_and_not_ready_apart_with_numeric_target() {
        let svc = service(IntOrString::Int(8080));
        let pods = [
            pod("b", "127.1.1.3", true, "", 0),
            pod("a", "127.1.1.2", true, "", 0),
            pod("c", "127.1.1.4", false, "", 0),
            pod("pending", "", true, "", 0),
        ];
        let subsets = subsets(&svc, &pods);
        assert_eq!(subsets.len(), 1);
        let ips: Vec<&str> = subsets[0].addresses.iter().map(|a| a.ip.as_str()).collect();
        assert_eq!(ips, ["127.1.1.2", "127.1.1.3"], "sorted, ready only");
        assert_eq!(subsets[0].not_ready_addresses[0].ip, "127.1.1.4");
        assert_eq!(subsets[0].ports[0].port, Some(8080));
        assert_eq!(subsets[0].ports[0].name, "http");
        let target = subsets[0].addresses[0].target_ref.as_ref().unwrap();
        assert_eq!((target.kind.as_str(), target.name.as_str()), ("Pod", "a"));
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc = service(IntOrString::String("web".into()));
        let pods = [
            pod("a", "127.1.1.2", true, "web", 8080),
            pod("b", "127.1.1.3", true, "web", 9090),
            pod("c", "127.1.1.4", true, "other", 7070),
        ];
        let subsets = subsets(&svc, &pods);
        assert_eq!(
            subsets.len(),
            2,
            "one subset per resolved port: {subsets:?}"
        );
        let by_port: BTreeMap<i32, &str> = subsets
            .iter()
            .map(|s| (s.ports[0].port.unwrap(), s.addresses[0].ip.as_str()))
            .collect();
        assert_eq!(
            by_port,
            BTreeMap::from([(8080, "127.1.1.2"), (9090, "127.1.1.3")])
        );
    }

    #[test]
    fn deleted_terminal_and_foreign_pods_are_left_out() {
        let svc = service(IntOrString::Int(80));
        let mut deleting = pod("d", "127.1.1.5", true, "", 0);
        deleting.metadata.as_mut().unwrap().deletion_timestamp =
            Some(capstan_proto::timestamp::Time::now());
        let mut done = pod("e", "127.1.1.6", true, "", 0);
        done.status.as_mut().unwrap().phase = "Succeeded".into();
        let mut other_ns = pod("f", "127.1.1.7", true, "", 0);
        other_ns.metadata.as_mut().unwrap().namespace = "prod".into();
        let mut other_app = pod("g", "127.1.1.8", true, "", 0);
        other_app.metadata.as_mut().unwrap().labels = [("app".to_owned(), "db".to_owned())].into();
        assert!(subsets(&svc, &[deleting, done, other_ns, other_app]).is_empty());
        let mut no_selector = svc.clone();
        no_selector.spec.as_mut().unwrap().selector.clear();
        assert!(!managed(&no_selector));
    }
}

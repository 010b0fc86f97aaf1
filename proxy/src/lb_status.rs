//! LoadBalancer services: Capstan has no cloud load balancer, so a
//! LoadBalancer service is a NodePort service whose
//! `status.loadBalancer.ingress` names a node's address.
//!
//! One proxy writes it, so that proxies do not overwrite each other's
//! address: the proxy of the node whose name sorts first among the Ready
//! nodes (every proxy sees the same nodes, so they agree without talking;
//! when that node stops being Ready the next one takes over and rewrites
//! the status with its own address). The write is a merge patch of the
//! status subresource, made only when the status differs.

use std::sync::Arc;

use capstan_client::watcher::Store;
use capstan_client::{Api, Client, Patch};
use capstan_proto::api::core::v1::{Node, Service};

/// Whether a node's `Ready` condition is `True`.
pub fn node_ready(node: &Node) -> bool {
    node.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

/// The name of the node whose proxy writes LoadBalancer statuses.
pub fn status_writer<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Option<String> {
    nodes
        .into_iter()
        .filter(|n| node_ready(n))
        .filter_map(|n| n.metadata.as_ref().map(|m| m.name.clone()))
        .min()
}

/// Whether `svc` is a LoadBalancer whose ingress is not exactly `[{ip}]`.
pub fn needs_ingress(svc: &Service, ip: &str) -> bool {
    if svc.spec.as_ref().is_none_or(|s| s.r#type != "LoadBalancer") {
        return false;
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .map(|lb| lb.ingress.as_slice())
        .unwrap_or_default();
    !(ingress.len() == 1 && ingress[0].ip == ip && ingress[0].hostname.is_empty())
}

/// Writes the ingress of every LoadBalancer service that needs it, if this
/// node is the writer. Returns how many writes failed (to retry).
pub async fn sync(
    client: &Client,
    node_name: &str,
    node_ip: &str,
    nodes: &Store<Node>,
    services: &[Arc<Service>],
) -> usize {
    let nodes = nodes.list();
    if status_writer(nodes.iter().map(|n| n.as_ref())).as_deref() != Some(node_name) {
        return 0;
    }
    let mut failed = 0;
    for svc in services.iter().filter(|s| needs_ingress(s, node_ip)) {
        let Some(meta) = &svc.metadata else { continue };
        let api: Api<Service> = Api::namespaced(client.clone(), &meta.namespace);
        let patch = Patch::Merge(serde_json::json!({
            "status": {"loadBalancer": {"ingress": [{"ip": node_ip}]}}
        }));
        match api.patch_status(&meta.name, &patch).await {
            Ok(_) => tracing::info!(
                service = %format!("{}/{}", meta.namespace, meta.name),
                ip = node_ip,
                "set LoadBalancer ingress"
            ),
            Err(e) => {
                failed += 1;
                tracing::warn!(
                    service = %format!("{}/{}", meta.namespace, meta.name),
                    error = %e,
                    "cannot set LoadBalancer ingress"
                );
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, NodeCondition, NodeStatus, ServiceSpec,
        ServiceStatus,
    };
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn node(name: &str, ready: &str) -> Node {
        Node {
            metadata: Some(ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: vec![NodeCondition {
                    r#type: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn first_ready_node_writes() {
        let nodes = [node("a", "False"), node("c", "True"), node("b", "True")];
        assert_eq!(status_writer(&nodes).as_deref(), Some("b"));
        assert_eq!(status_writer(&nodes[..1]), None);
    }

    #[test]
    fn ingress_written_only_when_different() {
        let mut svc = Service {
            spec: Some(ServiceSpec {
                r#type: "LoadBalancer".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(needs_ingress(&svc, "127.0.9.1"));
        svc.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: vec![LoadBalancerIngress {
                    ip: "127.0.9.1".into(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        });
        assert!(!needs_ingress(&svc, "127.0.9.1"));
        assert!(needs_ingress(&svc, "127.0.9.2"));
        svc.spec.as_mut().unwrap().r#type = "NodePort".into();
        assert!(!needs_ingress(&svc, "127.0.9.2"));
    }
}

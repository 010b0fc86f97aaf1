//! The node authorizer: what a kubelet may do, decided from the request and
//! the objects it touches rather than from roles.
//!
//! It speaks only for callers named `system:node:NAME` that are also in the
//! group `system:nodes` (see [`node_name`]); for everyone else, and for
//! resources it does not know, it has no opinion and RBAC decides (the
//! bootstrap `system:node` ClusterRole grants reading services and
//! endpoints). For a node `NAME`:
//!
//! - **nodes**: get its own Node; list/watch only with the field
//!   requirement `metadata.name=NAME`; create, update and patch its own Node
//!   and its `status`. Anything else — another Node, delete,
//!   deletecollection, other subresources — is denied.
//! - **leases** (`coordination.k8s.io`) in `kube-node-lease`: get, create,
//!   update, patch and delete the Lease named `NAME`; list/watch only with
//!   `metadata.name=NAME`. Other Leases there are denied. Leases in other
//!   namespaces get no opinion (Kubernetes answers no opinion for every
//!   Lease it does not allow; denying another node's heartbeat outright is
//!   stricter, and RBAC default-denies the rest anyway).
//! - **pods** and `pods/status`: get, update, patch and delete only when the
//!   stored object (`existing`) is a Pod whose `spec.nodeName` is `NAME`,
//!   and, for update and patch, the written object (`new`) is too, so a
//!   node cannot move a pod to another node. A missing stored object is
//!   denied with the same reason as a pod bound elsewhere, so a node can
//!   learn nothing about pods that are not its own, not even whether they
//!   exist. Create only a `new` Pod bound to itself (mirror pods of static
//!   pods); list/watch only with the field requirement `spec.nodeName=NAME`;
//!   deletecollection and other subresources are denied.
//! - **events**: create, update, patch are allowed (any namespace); other
//!   verbs get no opinion.
//! - **services**, **endpoints**: no opinion (RBAC's `system:node` role).
//! - **configmaps**, **secrets**, **persistentvolumeclaims**,
//!   **persistentvolumes**: denied. Kubernetes allows a node exactly those
//!   referenced by pods bound to it, which needs a graph of pod → object
//!   references kept from watches. That graph is **not implemented yet**, so
//!   kubelets cannot read them at all (pods with configMap/secret/PVC
//!   volumes cannot start their volumes); the denial says so.
//!
//! Also not done here (Kubernetes does it in the NodeRestriction admission
//! plugin): restricting which labels a node may set on its Node, and
//! requiring the mirror-pod annotation on pods a node creates.
//!
//! Every denial says why, naming the node and the object.

use capstan_pki::bootstrap::NODES_GROUP;
use capstan_proto::Object;

use super::{Attributes, Decision, User, Verb};

/// The prefix of node user names (`system:node:NAME`), as
/// [`capstan_pki::bootstrap::node_user`] builds them.
pub const NODE_USER_PREFIX: &str = "system:node:";

/// The namespace of node heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The API group of Leases.
const COORDINATION_GROUP: &str = "coordination.k8s.io";

/// The node a caller speaks for: `NAME` if the user is `system:node:NAME`
/// (non-empty) and in `system:nodes`, else `None`.
pub fn node_name(user: &User) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.in_group(NODES_GROUP)).then_some(name)
}

/// Decides for `system:node:NAME` identities; no opinion for anyone else
/// and for resources a node's access to is left to RBAC.
pub fn authorize(attrs: &Attributes<'_>) -> Decision {
    let Some(node) = node_name(attrs.user) else {
        return Decision::NoOpinion;
    };
    match (attrs.group, attrs.resource) {
        ("", "nodes") => nodes(node, attrs),
        ("", "pods") => pods(node, attrs),
        (COORDINATION_GROUP, "leases") => leases(node, attrs),
        ("", "events") => match attrs.verb {
            Verb::Create | Verb::Update | Verb::Patch => Decision::Allow,
            _ => Decision::NoOpinion,
        },
        ("", "configmaps" | "secrets" | "persistentvolumeclaims" | "persistentvolumes") => {
            deny(format!(
                "node {node:?} may not access {}: access to objects referenced by the \
                 node's pods is not implemented yet",
                attrs.resource
            ))
        }
        _ => Decision::NoOpinion,
    }
}

fn deny(reason: String) -> Decision {
    Decision::Deny(reason)
}

/// Whether a list/watch selects exactly `value` of `field`.
fn requires(attrs: &Attributes<'_>, field: &str, value: &str) -> bool {
    attrs
        .field_requirements
        .iter()
        .any(|(f, v)| f == field && v == value)
}

/// Whether the request concerns the object named `name` and no other: the
/// request's name and the new object's name, where set, are `name`, and at
/// least one is set.
fn names_only(attrs: &Attributes<'_>, name: &str) -> bool {
    let new_name = attrs
        .new
        .and_then(Object::metadata)
        .map(|m| m.name.as_str());
    let mut names = [Some(attrs.name), new_name]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .peekable();
    names.peek().is_some() && names.all(|n| n == name)
}

/// The name to report: the request's, else the new object's.
fn shown_name<'a>(attrs: &Attributes<'a>) -> &'a str {
    if attrs.name.is_empty() {
        attrs
            .new
            .and_then(Object::metadata)
            .map_or("", |m| m.name.as_str())
    } else {
        attrs.name
    }
}

fn nodes(node: &str, attrs: &Attributes<'_>) -> Decision {
    if !matches!(attrs.subresource, "" | "status") {
        return deny(format!(
            "node {node:?} may only access its Node and its status, not nodes/{}",
            attrs.subresource
        ));
    }
    let verb = attrs.verb;
    match verb {
        Verb::List | Verb::Watch => {
            if requires(attrs, "metadata.name", node) {
                Decision::Allow
            } else {
                deny(format!(
                    "node {node:?} may only {} its own Node (field selector metadata.name={node})",
                    verb.as_str()
                ))
            }
        }
        Verb::Create if !attrs.subresource.is_empty() => deny(format!(
            "node {node:?} may not create nodes/{}",
            attrs.subresource
        )),
        Verb::Get | Verb::Create | Verb::Update | Verb::Patch => {
            if names_only(attrs, node) {
                Decision::Allow
            } else {
                deny(format!(
                    "node {node:?} may only {} its own Node, not {:?}",
                    verb.as_str(),
                    shown_name(attrs)
                ))
            }
        }
        Verb::Delete | Verb::DeleteCollection => {
            deny(format!("node {node:?} may not {} nodes", verb.as_str()))
        }
    }
}

fn leases(node: &str, attrs: &Attributes<'_>) -> Decision {
    if attrs.namespace != NODE_LEASE_NAMESPACE {
        return Decision::NoOpinion;
    }
    if !attrs.subresource.is_empty() {
        return deny(format!(
            "node {node:?} may not access leases/{}",
            attrs.subresource
        ));
    }
    let verb = attrs.verb;
    match verb {
        Verb::List | Verb::Watch => {
            if requires(attrs, "metadata.name", node) {
                Decision::Allow
            } else {
                deny(format!(
                    "node {node:?} may only {} its own Lease \
                     (field selector metadata.name={node})",
                    verb.as_str()
                ))
            }
        }
        Verb::Get | Verb::Create | Verb::Update | Verb::Patch | Verb::Delete => {
            if names_only(attrs, node) {
                Decision::Allow
            } else {
                deny(format!(
                    "node {node:?} may only {} its own Lease {NODE_LEASE_NAMESPACE}/{node}, \
                     not {:?}",
                    verb.as_str(),
                    shown_name(attrs)
                ))
            }
        }
        Verb::DeleteCollection => deny(format!("node {node:?} may not deletecollection leases")),
    }
}

/// The node a Pod is bound to, if the object is a Pod.
fn bound_node(obj: Option<&Object>) -> Option<&str> {
    match obj? {
        Object::Pod(pod) => Some(pod.spec.as_ref().map_or("", |s| s.node_name.as_str())),
        _ => None,
    }
}

/// `namespace/name` of a pod, for reasons.
struct PodRef<'a>(&'a str, &'a str);

impl std::fmt::Display for PodRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

fn pods(node: &str, attrs: &Attributes<'_>) -> Decision {
    if !matches!(attrs.subresource, "" | "status") {
        return deny(format!(
            "node {node:?} may only access pods and pods/status, not pods/{}",
            attrs.subresource
        ));
    }
    let verb = attrs.verb;
    // Formatted only for a denial.
    let pod = PodRef(attrs.namespace, shown_name(attrs));
    match verb {
        Verb::List | Verb::Watch => {
            if requires(attrs, "spec.nodeName", node) {
                Decision::Allow
            } else {
                deny(format!(
                    "node {node:?} may only {} pods bound to it \
                     (field selector spec.nodeName={node})",
                    verb.as_str()
                ))
            }
        }
        Verb::Create => {
            if !attrs.subresource.is_empty() {
                deny(format!(
                    "node {node:?} may not create pods/{}",
                    attrs.subresource
                ))
            } else if bound_node(attrs.new) == Some(node) {
                Decision::Allow
            } else {
                deny(format!(
                    "node {node:?} may only create pods bound to it (mirror pods); \
                     pod {pod} is not bound to {node:?}"
                ))
            }
        }
        Verb::Get | Verb::Update | Verb::Patch | Verb::Delete => {
            let action = if verb == Verb::Get {
                "read"
            } else {
                verb.as_str()
            };
            // Absent and bound elsewhere read the same, so that the reason
            // does not tell whether the pod exists.
            if bound_node(attrs.existing) != Some(node) {
                return deny(format!(
                    "node {node:?} may only {action} pods bound to it; \
                     pod {pod} is not bound to {node:?}"
                ));
            }
            if matches!(verb, Verb::Update | Verb::Patch) {
                match bound_node(attrs.new) {
                    Some(n) if n == node => {}
                    Some(other) => {
                        return deny(format!(
                            "node {node:?} may not move pod {pod} to node {other:?}"
                        ));
                    }
                    None => {
                        return deny(format!(
                            "node {node:?} may only {action} pods bound to it; \
                             the new pod {pod} is missing"
                        ));
                    }
                }
            }
            Decision::Allow
        }
        Verb::DeleteCollection => deny(format!("node {node:?} may not deletecollection pods")),
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;

//! Defaults and validation of every served kind, as Kubernetes does them
//! (`pkg/apis/*/v1/defaults.go`, `pkg/apis/*/validation`): a Kubernetes-
//! faithful subset, each problem a [`FieldError`] with the field's path
//! (`spec.containers[0].image`) and Kubernetes's message.
//!
//! The registry calls, for a create: [`defaults`], then [`validate`]; for an
//! update: [`defaults`], then [`validate`] and [`validate_update`] (which
//! adds only the rules about what may change). Nothing here does IO.
//!
//! Layout, one file per responsibility:
//! - `field`: error constructors and the string rules (DNS labels, port
//!   names, config keys, IPs) the label helpers of `capstan_proto` lack.
//! - `meta`: `metadata` (names per kind, namespace, labels, annotations,
//!   ownerReferences, finalizers) and label selectors.
//! - `pod`: Pod and pod template specs.
//! - `workloads`: ReplicationController, ReplicaSet, Deployment,
//!   StatefulSet.
//! - `service`: Service.
//! - `core`: the other core kinds, ControllerRevision, HPA and Lease.
//! - `rbac`: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

mod core;
mod field;
mod meta;
mod pod;
mod rbac;
mod service;
#[cfg(test)]
mod tests;
mod workloads;

use capstan_proto::{FieldError, Object};

use self::field::NameRule;

/// Fills defaults as Kubernetes does (on create and on update): e.g. a
/// Pod's `restartPolicy: Always`, a Deployment's `replicas: 1` and
/// `RollingUpdate` 25%/25% strategy, a Service's `type: ClusterIP`.
pub fn defaults(obj: &mut Object) {
    match obj {
        Object::Namespace(o) => core::default_namespace(o),
        Object::Pod(o) => pod::default_pod(o),
        Object::Service(o) => service::default_service(o),
        Object::Endpoints(o) => core::default_endpoints(o),
        Object::Secret(o) => core::default_secret(o),
        Object::PersistentVolume(o) => core::default_persistent_volume(o),
        Object::PersistentVolumeClaim(o) => core::default_persistent_volume_claim(o),
        Object::ReplicationController(o) => workloads::default_replication_controller(o),
        Object::ReplicaSet(o) => workloads::default_replica_set(o),
        Object::Deployment(o) => workloads::default_deployment(o),
        Object::StatefulSet(o) => workloads::default_stateful_set(o),
        Object::HorizontalPodAutoscaler(o) => core::default_hpa(o),
        Object::RoleBinding(o) => rbac::default_binding(&mut o.role_ref, &mut o.subjects),
        Object::ClusterRoleBinding(o) => rbac::default_binding(&mut o.role_ref, &mut o.subjects),
        Object::Node(_)
        | Object::Event(_)
        | Object::ServiceAccount(_)
        | Object::ConfigMap(_)
        | Object::ControllerRevision(_)
        | Object::Role(_)
        | Object::ClusterRole(_)
        | Object::Lease(_) => {}
    }
}

/// The rule `metadata.name` of this object's kind follows.
fn name_rule(obj: &Object) -> NameRule {
    match obj {
        Object::Namespace(_) => NameRule::Label,
        Object::Service(_) => NameRule::Dns1035Label,
        Object::Role(_)
        | Object::ClusterRole(_)
        | Object::RoleBinding(_)
        | Object::ClusterRoleBinding(_)
        | Object::HorizontalPodAutoscaler(_) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Validates an object about to be stored (after [`defaults`]): its
/// metadata and its spec. Returns every problem found; empty means valid.
pub fn validate(obj: &Object) -> Vec<FieldError> {
    let mut errors =
        meta::validate_object_meta(obj.metadata(), obj.info().namespaced, name_rule(obj));
    errors.extend(match obj {
        Object::Namespace(o) => core::validate_namespace(o),
        Object::Node(o) => core::validate_node(o),
        Object::Pod(o) => pod::validate_pod(o),
        Object::Service(o) => service::validate_service(o),
        Object::Endpoints(o) => core::validate_endpoints(o),
        Object::Event(o) => core::validate_event(o),
        Object::ServiceAccount(_) => Vec::new(),
        Object::Secret(o) => core::validate_secret(o),
        Object::ConfigMap(o) => core::validate_config_map(o),
        Object::PersistentVolume(o) => core::validate_persistent_volume(o),
        Object::PersistentVolumeClaim(o) => core::validate_persistent_volume_claim(o),
        Object::ReplicationController(o) => workloads::validate_replication_controller(o),
        Object::ReplicaSet(o) => workloads::validate_replica_set(o),
        Object::Deployment(o) => workloads::validate_deployment(o),
        Object::StatefulSet(o) => workloads::validate_stateful_set(o),
        Object::ControllerRevision(o) => core::validate_controller_revision(o),
        Object::HorizontalPodAutoscaler(o) => core::validate_hpa(o),
        Object::Role(o) => rbac::validate_rules(&o.rules, true),
        Object::ClusterRole(o) => rbac::validate_cluster_role(o),
        Object::RoleBinding(o) => rbac::validate_binding(o.role_ref.as_ref(), &o.subjects, true),
        Object::ClusterRoleBinding(o) => {
            rbac::validate_binding(o.role_ref.as_ref(), &o.subjects, false)
        }
        Object::Lease(o) => core::validate_lease(o),
    });
    errors
}

/// The rules about what an update may change, beyond [`validate`]:
/// `metadata.name`, `namespace`, `uid` and `creationTimestamp` never change;
/// per kind, immutable fields (apps/v1 selectors, a Service's clusterIP, a
/// binding's roleRef, immutable Secrets and ConfigMaps, most of a Pod's
/// spec). `new` and `old` must be of the same kind; if they are not, the
/// update is refused on `kind`.
pub fn validate_update(new: &Object, old: &Object) -> Vec<FieldError> {
    if new.info().kind != old.info().kind {
        return vec![field::invalid(
            "kind",
            new.info().kind,
            "field is immutable",
        )];
    }
    let mut errors = meta::validate_object_meta_update(new.metadata(), old.metadata());
    errors.extend(match (new, old) {
        (Object::Pod(n), Object::Pod(o)) => pod::validate_pod_update(n, o),
        (Object::Service(n), Object::Service(o)) => service::validate_service_update(n, o),
        (Object::Secret(n), Object::Secret(o)) => core::validate_secret_update(n, o),
        (Object::ConfigMap(n), Object::ConfigMap(o)) => core::validate_config_map_update(n, o),
        (Object::PersistentVolume(n), Object::PersistentVolume(o)) => {
            core::validate_persistent_volume_update(n, o)
        }
        (Object::PersistentVolumeClaim(n), Object::PersistentVolumeClaim(o)) => {
            core::validate_persistent_volume_claim_update(n, o)
        }
        (Object::ReplicaSet(n), Object::ReplicaSet(o)) => workloads::selector_immutable(
            n.spec.as_ref().and_then(|s| s.selector.as_ref()),
            o.spec.as_ref().and_then(|s| s.selector.as_ref()),
        ),
        (Object::Deployment(n), Object::Deployment(o)) => workloads::selector_immutable(
            n.spec.as_ref().and_then(|s| s.selector.as_ref()),
            o.spec.as_ref().and_then(|s| s.selector.as_ref()),
        ),
        (Object::StatefulSet(n), Object::StatefulSet(o)) => {
            workloads::validate_stateful_set_update(n, o)
        }
        (Object::ControllerRevision(n), Object::ControllerRevision(o)) => {
            core::validate_controller_revision_update(n, o)
        }
        (Object::RoleBinding(n), Object::RoleBinding(o)) => {
            rbac::role_ref_immutable(n.role_ref.as_ref(), o.role_ref.as_ref())
        }
        (Object::ClusterRoleBinding(n), Object::ClusterRoleBinding(o)) => {
            rbac::role_ref_immutable(n.role_ref.as_ref(), o.role_ref.as_ref())
        }
        _ => Vec::new(),
    });
    errors
}

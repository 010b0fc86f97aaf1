//! The spec/status split and generation, per kind.
//!
//! Kinds with a `status` are served with a status subresource, as in
//! Kubernetes: an update of the main resource keeps the stored status, an
//! update-status keeps the stored spec and metadata, and `metadata.generation`
//! counts spec changes (1 on create, +1 whenever an update changes the spec).
//! What a create resets follows Kubernetes's strategies: controllers' status
//! is cleared, a Pod starts `Pending`, a Namespace `Active`; a Node keeps the
//! status its kubelet registers it with.

use capstan_proto::Object;
use capstan_proto::api::core::v1::{
    NamespaceStatus, PersistentVolumeClaimStatus, PersistentVolumeStatus, PodStatus,
};

/// Calls `$m!(Variant, ...)` with every kind that has both spec and status.
macro_rules! with_spec_and_status {
    ($m:ident) => {
        $m!(
            Namespace,
            Node,
            Pod,
            Service,
            PersistentVolume,
            PersistentVolumeClaim,
            ReplicationController,
            ReplicaSet,
            Deployment,
            StatefulSet,
            HorizontalPodAutoscaler
        )
    };
}

/// Whether `obj`'s kind has a spec whose changes bump the generation.
pub fn has_generation(obj: &Object) -> bool {
    macro_rules! check {
        ($($v:ident),*) => { matches!(obj, $(Object::$v(_))|*) };
    }
    with_spec_and_status!(check)
}

/// Whether the specs of two objects of the same kind differ (false for
/// kinds without spec).
fn spec_differs(new: &Object, old: &Object) -> bool {
    macro_rules! cmp {
        ($($v:ident),*) => {
            match (new, old) {
                $((Object::$v(n), Object::$v(o)) => n.spec != o.spec,)*
                _ => false,
            }
        };
    }
    with_spec_and_status!(cmp)
}

/// The finalizer every namespace gets on creation, in `spec.finalizers`;
/// the namespace controller removes it once the namespace is empty.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

/// Whether `obj` is a Namespace whose `spec.finalizers` still hold it.
pub fn held_by_spec_finalizers(obj: &Object) -> bool {
    matches!(obj, Object::Namespace(n)
        if n.spec.as_ref().is_some_and(|s| !s.finalizers.is_empty()))
}

/// What marking an object for deletion changes beyond its metadata: a
/// Namespace turns `Terminating`.
pub fn prepare_deletion(obj: &mut Object) {
    if let Object::Namespace(n) = obj {
        n.status.get_or_insert_with(Default::default).phase = "Terminating".into();
    }
}

/// Prepares a new object for create: generation 1, status as Kubernetes
/// resets it.
pub fn prepare_create(obj: &mut Object) {
    if has_generation(obj) {
        obj.metadata_mut().generation = Some(1);
    }
    match obj {
        Object::Pod(p) => {
            p.status = Some(PodStatus {
                phase: "Pending".into(),
                ..Default::default()
            })
        }
        Object::Namespace(n) => {
            n.status = Some(NamespaceStatus {
                phase: "Active".into(),
                ..Default::default()
            });
            // The namespace controller's finalizer: a deleted namespace
            // stays (Terminating) until its contents are gone.
            n.spec.get_or_insert_with(Default::default).finalizers =
                vec![NAMESPACE_FINALIZER.to_owned()];
        }
        Object::PersistentVolume(pv) => {
            pv.status = Some(PersistentVolumeStatus {
                phase: "Pending".into(),
                ..Default::default()
            })
        }
        Object::PersistentVolumeClaim(pvc) => {
            pvc.status = Some(PersistentVolumeClaimStatus {
                phase: "Pending".into(),
                ..Default::default()
            })
        }
        Object::Service(s) => s.status = None,
        Object::ReplicationController(o) => o.status = None,
        Object::ReplicaSet(o) => o.status = None,
        Object::Deployment(o) => o.status = None,
        Object::StatefulSet(o) => o.status = None,
        Object::HorizontalPodAutoscaler(o) => o.status = None,
        _ => {}
    }
}

/// Prepares an update of the main resource: the stored status is kept and
/// the generation bumped if the spec changed.
pub fn prepare_update(new: &mut Object, old: &Object) {
    macro_rules! keep_status {
        ($($v:ident),*) => {
            match (&mut *new, old) {
                $((Object::$v(n), Object::$v(o)) => n.status = o.status.clone(),)*
                _ => {}
            }
        };
    }
    with_spec_and_status!(keep_status);
    set_generation(new, old);
}

/// Prepares an update of the status subresource: the stored spec and
/// metadata are kept (only the resourceVersion the caller sent is used, for
/// the conflict check), so only the status can change.
pub fn prepare_status_update(new: &mut Object, old: &Object) {
    macro_rules! keep_spec {
        ($($v:ident),*) => {
            match (&mut *new, old) {
                $((Object::$v(n), Object::$v(o)) => n.spec = o.spec.clone(),)*
                _ => {}
            }
        };
    }
    with_spec_and_status!(keep_spec);
    let rv = std::mem::take(&mut new.metadata_mut().resource_version);
    *new.metadata_mut() = old.metadata().cloned().unwrap_or_default();
    new.metadata_mut().resource_version = rv;
}

fn set_generation(new: &mut Object, old: &Object) {
    if !has_generation(new) {
        new.metadata_mut().generation = None;
        return;
    }
    let current = old.metadata().and_then(|m| m.generation).unwrap_or(1);
    let next = if spec_differs(new, old) {
        current + 1
    } else {
        current
    };
    new.metadata_mut().generation = Some(next);
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
    use capstan_proto::api::core::v1::ConfigMap;
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn deployment(replicas: i32, ready: i32) -> Object {
        Object::Deployment(Deployment {
            metadata: Some(ObjectMeta {
                name: "d".into(),
                generation: Some(3),
                ..Default::default()
            }),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                ready_replicas: Some(ready),
                ..Default::default()
            }),
        })
    }

    fn parts(o: &Object) -> (Option<i32>, Option<i32>, Option<i64>) {
        let Object::Deployment(d) = o else { panic!() };
        (
            d.spec.as_ref().and_then(|s| s.replicas),
            d.status.as_ref().and_then(|s| s.ready_replicas),
            d.metadata.as_ref().and_then(|m| m.generation),
        )
    }

    #[test]
    fn update_keeps_status_and_bumps_generation_on_spec_change() {
        let old = deployment(1, 1);
        let mut new = deployment(5, 9);
        prepare_update(&mut new, &old);
        assert_eq!(parts(&new), (Some(5), Some(1), Some(4)));

        let mut same = deployment(1, 7);
        prepare_update(&mut same, &old);
        assert_eq!(
            parts(&same),
            (Some(1), Some(1), Some(3)),
            "no spec change, no bump"
        );
    }

    #[test]
    fn status_update_keeps_spec_and_metadata() {
        let old = deployment(1, 1);
        let mut new = deployment(5, 9);
        new.metadata_mut().labels.insert("x".into(), "y".into());
        new.metadata_mut().resource_version = "42".into();
        prepare_status_update(&mut new, &old);
        assert_eq!(parts(&new), (Some(1), Some(9), Some(3)));
        assert!(new.metadata().unwrap().labels.is_empty());
        assert_eq!(new.metadata().unwrap().resource_version, "42");
    }

    #[test]
    fn create_resets_status_and_sets_generation() {
        let mut d = deployment(2, 2);
        prepare_create(&mut d);
        assert_eq!(parts(&d), (Some(2), None, Some(1)));
        let mut cm = Object::ConfigMap(ConfigMap {
            metadata: Some(ObjectMeta::default()),
            ..Default::default()
        });
        prepare_create(&mut cm);
        assert_eq!(
            cm.metadata().unwrap().generation,
            None,
            "no spec, no generation"
        );
    }
}

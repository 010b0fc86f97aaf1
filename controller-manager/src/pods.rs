//! Pod facts the workload controllers share, with Kubernetes's
//! definitions: active (`FilterActivePods`), ready, available
//! (`IsPodAvailable`), controller references (`GetControllerOf`).

use capstan_proto::Resource;
use capstan_proto::api::core::v1::Pod;
use capstan_proto::api::meta::v1::{ObjectMeta, OwnerReference};
use capstan_proto::timestamp::Time;

/// Whether `meta` is marked for deletion.
pub fn is_being_deleted(meta: Option<&ObjectMeta>) -> bool {
    meta.is_some_and(|m| m.deletion_timestamp.is_some())
}

/// Not finished (Succeeded/Failed) and not being deleted: counts toward
/// replicas. A pod being deleted is replaced at once.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && !is_being_deleted(pod.metadata.as_ref())
}

/// The `Ready` condition's last transition time when it is `True`.
pub fn ready_since(pod: &Pod) -> Option<Option<Time>> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time)
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` by `now` (a ready pod without a
/// transition time counts as available only when `min_ready_seconds` is 0).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Time) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since.seconds + i64::from(min_ready_seconds) <= now.seconds,
    }
}

/// Seconds until a ready pod becomes available, if it is not yet.
pub fn seconds_until_available(pod: &Pod, min_ready_seconds: i32, now: Time) -> Option<i64> {
    let since = ready_since(pod)??;
    let at = since.seconds + i64::from(min_ready_seconds);
    (at > now.seconds).then(|| at - now.seconds)
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: Option<&ObjectMeta>) -> Option<&OwnerReference> {
    meta?
        .owner_references
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (controller and blockOwnerDeletion
/// true), as Kubernetes's `NewControllerRef`.
pub fn controller_ref<K: Resource>(owner: &K) -> OwnerReference {
    let meta = owner.metadata().cloned().unwrap_or_default();
    OwnerReference {
        api_version: K::INFO.api_version.to_owned(),
        kind: K::INFO.kind.to_owned(),
        name: meta.name,
        uid: meta.uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `meta`'s controller is the object `owner` (same kind and uid).
pub fn is_controlled_by<K: Resource>(meta: Option<&ObjectMeta>, owner: &K) -> bool {
    let uid = owner.metadata().map(|m| m.uid.as_str()).unwrap_or("");
    controller_of(meta).is_some_and(|r| r.kind == K::INFO.kind && r.uid == uid && !uid.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{PodCondition, PodStatus};

    fn ready_pod(since: i64) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: "Running".into(),
                conditions: vec![PodCondition {
                    r#type: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time::from_unix_seconds(since)),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let now = Time::from_unix_seconds(100);
        let p = ready_pod(95);
        assert!(is_ready(&p));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 10, now));
        assert_eq!(seconds_until_available(&p, 10, now), Some(5));
        assert!(!is_available(&Pod::default(), 0, now));
        assert!(is_active(&p));
        let mut done = p.clone();
        done.status.as_mut().unwrap().phase = "Succeeded".into();
        assert!(!is_active(&done));
    }
}

//! The taints this controller manages and who tolerates them.
//!
//! A node's Ready condition maps to one key: `False` →
//! `node.kubernetes.io/not-ready`, `Unknown` → `node.kubernetes.io/unreachable`,
//! `True` → none. The key's `NoSchedule` taint is set at once; its
//! `NoExecute` taint only when the eviction rate limiter allows (see
//! `disruption`). Pods on a node with the `NoExecute` taint are evicted
//! after the time they tolerate it (taint-based eviction, as Kubernetes):
//! a matching toleration with `tolerationSeconds` tolerates that long,
//! one without tolerates forever, and a pod with no matching toleration
//! tolerates it for `podEvictionTimeout` — what Kubernetes's
//! DefaultTolerationSeconds admission plugin gives every pod, which Capstan
//! applies here instead of at admission.

use std::time::Duration;

use capstan_proto::api::core::v1::{Pod, Taint, Toleration};
use capstan_proto::timestamp::Time;

use super::health::Readiness;

/// The taint of a node whose kubelet says it is not ready.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of a node this controller no longer hears from.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Keeps new pods off.
pub const NO_SCHEDULE: &str = "NoSchedule";
/// Evicts running pods that do not tolerate it.
pub const NO_EXECUTE: &str = "NoExecute";

/// The lifecycle taint key a node in `readiness` should carry.
pub fn key_for(readiness: Readiness) -> Option<&'static str> {
    match readiness {
        Readiness::Ready => None,
        Readiness::NotReady => Some(NOT_READY),
        Readiness::Unknown => Some(UNREACHABLE),
    }
}

/// Whether `t` is one of this controller's taints.
pub fn is_lifecycle(t: &Taint) -> bool {
    t.key == NOT_READY || t.key == UNREACHABLE
}

/// `current` (a fresher copy of the node's taints) with its lifecycle
/// taints replaced by those of `wanted`: other writers' taints are kept.
pub fn merge_lifecycle(current: &[Taint], wanted: &[Taint]) -> Vec<Taint> {
    current
        .iter()
        .filter(|t| !is_lifecycle(t))
        .chain(wanted.iter().filter(|t| is_lifecycle(t)))
        .cloned()
        .collect()
}

/// The node's `NoExecute` lifecycle taint, if it has one.
pub fn no_execute_taint(taints: &[Taint]) -> Option<&Taint> {
    taints
        .iter()
        .find(|t| is_lifecycle(t) && t.effect == NO_EXECUTE)
}

/// `taints` with the lifecycle taints for `key` (NoSchedule, and NoExecute
/// when `no_execute`) and no other lifecycle taint; other taints untouched,
/// existing ones kept as they are (with their `timeAdded`).
pub fn with_lifecycle_taints(
    taints: &[Taint],
    key: Option<&str>,
    no_execute: bool,
    now: Time,
) -> Vec<Taint> {
    let wanted = |t: &Taint| {
        key == Some(t.key.as_str())
            && (t.effect == NO_SCHEDULE || (no_execute && t.effect == NO_EXECUTE))
    };
    let mut out: Vec<Taint> = taints
        .iter()
        .filter(|t| !is_lifecycle(t) || wanted(t))
        .cloned()
        .collect();
    if let Some(key) = key {
        let mut effects = vec![NO_SCHEDULE];
        if no_execute {
            effects.push(NO_EXECUTE);
        }
        for effect in effects {
            if !out.iter().any(|t| t.key == key && t.effect == effect) {
                out.push(Taint {
                    key: key.into(),
                    value: String::new(),
                    effect: effect.into(),
                    time_added: (effect == NO_EXECUTE).then_some(now),
                });
            }
        }
    }
    out
}

/// Whether `toleration` tolerates `taint` (Kubernetes's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if !toleration.effect.is_empty() && toleration.effect != taint.effect {
        return false;
    }
    if !toleration.key.is_empty() && toleration.key != taint.key {
        return false;
    }
    match toleration.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => !toleration.key.is_empty() && toleration.value == taint.value,
        _ => false,
    }
}

/// How long after the `NoExecute` `taint` appeared `pod` is evicted;
/// `None`: never (it tolerates the taint without a time limit).
pub fn eviction_delay(pod: &Pod, taint: &Taint, default: Duration) -> Option<Duration> {
    let tolerations = pod
        .spec
        .as_ref()
        .map(|s| s.tolerations.as_slice())
        .unwrap_or(&[]);
    let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
    if matching.is_empty() {
        return Some(default);
    }
    if matching.iter().any(|t| t.toleration_seconds.is_none()) {
        return None;
    }
    let secs = matching
        .iter()
        .filter_map(|t| t.toleration_seconds)
        .min()
        .unwrap_or(0);
    Some(Duration::from_secs(secs.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::PodSpec;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn keys(taints: &[Taint]) -> Vec<(String, String)> {
        let mut v: Vec<_> = taints
            .iter()
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lifecycle_taints_follow_readiness() {
        let now = Time::from_unix_seconds(5);
        let user = taint("gpu", NO_SCHEDULE);
        let t = with_lifecycle_taints(
            std::slice::from_ref(&user),
            key_for(Readiness::Unknown),
            false,
            now,
        );
        assert_eq!(
            keys(&t),
            vec![
                ("gpu".into(), NO_SCHEDULE.into()),
                (UNREACHABLE.into(), NO_SCHEDULE.into())
            ]
        );
        let t = with_lifecycle_taints(&t, key_for(Readiness::Unknown), true, now);
        assert_eq!(no_execute_taint(&t).unwrap().time_added, Some(now));
        // Unknown → NotReady swaps the key; Ready removes them, user taints stay.
        let t2 = with_lifecycle_taints(&t, key_for(Readiness::NotReady), true, now);
        assert_eq!(
            keys(&t2),
            vec![
                ("gpu".into(), NO_SCHEDULE.into()),
                (NOT_READY.into(), NO_EXECUTE.into()),
                (NOT_READY.into(), NO_SCHEDULE.into())
            ]
        );
        assert_eq!(with_lifecycle_taints(&t2, None, true, now), vec![user]);
        // Merged into a fresher copy, other writers' taints stay.
        let fresh = [taint("disk", NO_EXECUTE), taint(NOT_READY, NO_SCHEDULE)];
        assert_eq!(
            keys(&merge_lifecycle(&fresh, &t)),
            vec![
                ("disk".into(), NO_EXECUTE.into()),
                (UNREACHABLE.into(), NO_EXECUTE.into()),
                (UNREACHABLE.into(), NO_SCHEDULE.into())
            ]
        );
        // Idempotent: an existing taint keeps its timeAdded.
        let later = Time::from_unix_seconds(99);
        assert_eq!(
            with_lifecycle_taints(&t, key_for(Readiness::Unknown), true, later),
            t
        );
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn eviction_delay_follows_tolerations() {
        let t = taint(UNREACHABLE, NO_EXECUTE);
        let default = Duration::from_secs(300);
        assert_eq!(eviction_delay(&pod(vec![]), &t, default), Some(default));
        let forever = Toleration {
            key: UNREACHABLE.into(),
            operator: "Exists".into(),
            effect: NO_EXECUTE.into(),
            ..Default::default()
        };
        assert_eq!(
            eviction_delay(&pod(vec![forever.clone()]), &t, default),
            None
        );
        let sixty = Toleration {
            toleration_seconds: Some(60),
            ..forever.clone()
        };
        assert_eq!(
            eviction_delay(&pod(vec![sixty.clone()]), &t, default),
            Some(Duration::from_secs(60))
        );
        // A toleration of the other key or effect does not count.
        let other = Toleration {
            key: NOT_READY.into(),
            ..forever.clone()
        };
        assert_eq!(
            eviction_delay(&pod(vec![other]), &t, default),
            Some(default)
        );
        let no_schedule_only = Toleration {
            effect: NO_SCHEDULE.into(),
            ..forever
        };
        assert!(!tolerates(&no_schedule_only, &t));
        // An empty key with Exists tolerates everything.
        let all = Toleration {
            operator: "Exists".into(),
            ..Default::default()
        };
        assert!(tolerates(&all, &t));
        // Equal needs the key and value.
        let equal = Toleration {
            key: UNREACHABLE.into(),
            value: "x".into(),
            ..Default::default()
        };
        assert!(!tolerates(&equal, &t));
    }
}

//! A Deployment's status and conditions from its ReplicaSets, without IO
//! (Kubernetes's `calculateStatus`, `syncRolloutStatus` and the condition
//! helpers of deployment util).
//!
//! Conditions: `Available` (MinimumReplicasAvailable when at least
//! `replicas - maxUnavailable` are available, else
//! MinimumReplicasUnavailable) and `Progressing` (NewReplicaSetCreated,
//! FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable,
//! ProgressDeadlineExceeded, DeploymentPaused, DeploymentResumed).

use capstan_proto::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use capstan_proto::timestamp::Time;

use super::rolling::{desired, max_unavailable};

/// Condition types.
pub const AVAILABLE: &str = "Available";
/// Condition types.
pub const PROGRESSING: &str = "Progressing";
/// Progressing reasons, as Kubernetes's.
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// A ReplicaSet with the template existed already.
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// The rollout moved.
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
/// The rollout is complete.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// No progress within progressDeadlineSeconds.
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Paused.
pub const PAUSED: &str = "DeploymentPaused";
/// Resumed.
pub const RESUMED: &str = "DeploymentResumed";
/// Creating the new ReplicaSet failed.
pub const FAILED_RS_CREATE: &str = "FailedRSCreate";

/// A condition stamped `now`.
pub fn condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Time,
) -> DeploymentCondition {
    DeploymentCondition {
        r#type: kind.to_owned(),
        status: status.to_owned(),
        last_update_time: Some(now),
        last_transition_time: Some(now),
        reason: reason.to_owned(),
        message,
    }
}

/// The condition of `kind`, if set.
pub fn get<'a>(status: &'a DeploymentStatus, kind: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.iter().find(|c| c.r#type == kind)
}

/// Sets `cond` (Kubernetes's `SetDeploymentCondition`): unchanged when
/// status and reason are the same; the transition time kept when only the
/// reason changes.
pub fn set(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get(status, &cond.r#type) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time;
        }
    }
    status.conditions.retain(|c| c.r#type != cond.r#type);
    status.conditions.push(cond);
}

/// Removes the condition of `kind`.
pub fn remove(status: &mut DeploymentStatus, kind: &str) {
    status.conditions.retain(|c| c.r#type != kind);
}

/// `spec.progressDeadlineSeconds` unless unset or "never" (MaxInt32).
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

fn sum(
    sets: &[&ReplicaSet],
    f: impl Fn(&capstan_proto::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    sets.iter()
        .map(|rs| rs.status.as_ref().and_then(&f).unwrap_or(0))
        .sum()
}

/// The counters and the Available condition (Kubernetes's `calculateStatus`).
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Time,
) -> DeploymentStatus {
    let old = d.status.clone().unwrap_or_default();
    let available = sum(all, |s| s.available_replicas);
    let total: i32 = all.iter().map(|rs| super::rolling::replicas(rs)).sum();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.as_ref().and_then(|m| m.generation),
        replicas: Some(sum(all, |s| s.replicas)),
        updated_replicas: Some(new.map_or(0, |n| sum(&[n], |s| s.replicas))),
        ready_replicas: Some(sum(all, |s| s.ready_replicas)),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        conditions: old.conditions.clone(),
        collision_count: old.collision_count,
    };
    let cond = if available >= desired(d) - max_unavailable(d) {
        condition(
            AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set(&mut status, cond);
    status
}

/// Every replica updated and available, and the spec observed.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = desired(d);
    s.updated_replicas == Some(want)
        && s.replicas == Some(want)
        && s.available_replicas == Some(want)
        && s.observed_generation >= d.metadata.as_ref().and_then(|m| m.generation)
}

/// Whether `new` shows progress over the Deployment's current status.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Seconds until the progress deadline passes (≤ 0: passed); `None` when
/// there is no deadline to watch.
pub fn deadline_in(d: &Deployment, status: &DeploymentStatus, now: Time) -> Option<i64> {
    let deadline = progress_deadline(d)?;
    let cond = get(status, PROGRESSING)?;
    if cond.reason == NEW_RS_AVAILABLE || cond.reason == TIMED_OUT {
        return None;
    }
    let from = cond.last_update_time?;
    Some(from.seconds + i64::from(deadline) - now.seconds)
}

/// Kubernetes's `syncRolloutStatus` conditions: Progressing moves to
/// NewReplicaSetAvailable, ReplicaSetUpdated or ProgressDeadlineExceeded.
pub fn rollout_conditions(
    d: &Deployment,
    new_rs_name: Option<&str>,
    status: &mut DeploymentStatus,
    now: Time,
) {
    if progress_deadline(d).is_none() {
        remove(status, PROGRESSING);
        return;
    }
    let current = d.status.as_ref().and_then(|s| get(s, PROGRESSING)).cloned();
    let is_complete = status.replicas == status.updated_replicas
        && current
            .as_ref()
            .is_some_and(|c| c.reason == NEW_RS_AVAILABLE);
    if is_complete {
        return;
    }
    let rs = new_rs_name.unwrap_or("");
    if complete(d, status) {
        set(
            status,
            condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                format!("ReplicaSet \"{rs}\" has successfully progressed."),
                now,
            ),
        );
    } else if progressing(d, status) {
        let mut cond = condition(
            PROGRESSING,
            "True",
            RS_UPDATED,
            format!("ReplicaSet \"{rs}\" is progressing."),
            now,
        );
        if let Some(c) = &current
            && c.status == "True"
        {
            cond.last_transition_time = c.last_transition_time;
        }
        remove(status, PROGRESSING);
        status.conditions.push(cond);
    } else if deadline_in(d, status, now).is_some_and(|s| s < 0)
        || current.as_ref().is_some_and(|c| c.reason == TIMED_OUT)
    {
        set(
            status,
            condition(
                PROGRESSING,
                "False",
                TIMED_OUT,
                format!("ReplicaSet \"{rs}\" has timed out progressing."),
                now,
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn d(replicas: i32, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: Some(ObjectMeta {
                generation: Some(2),
                ..Default::default()
            }),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(600),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    fn rs(replicas: i32, ready: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: Some(replicas),
                ready_replicas: Some(ready),
                available_replicas: Some(available),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn counts_and_conditions_through_a_rollout() {
        let now = Time::from_unix_seconds(1000);
        let dep = d(4, DeploymentStatus::default());
        let (old, new) = (rs(3, 3, 3), rs(2, 1, 1));
        let mut st = calculate(&dep, &[&old, &new], Some(&new), now);
        assert_eq!(st.replicas, Some(5));
        assert_eq!(st.updated_replicas, Some(2));
        assert_eq!(st.available_replicas, Some(4));
        assert_eq!(st.unavailable_replicas, Some(1));
        assert_eq!(st.observed_generation, Some(2));
        assert_eq!(get(&st, AVAILABLE).unwrap().status, "True");
        rollout_conditions(&dep, Some("web-x"), &mut st, now);
        assert_eq!(get(&st, PROGRESSING).unwrap().reason, RS_UPDATED);

        let done = rs(4, 4, 4);
        let dep2 = d(4, st.clone());
        let mut st2 = calculate(&dep2, &[&done], Some(&done), now);
        rollout_conditions(&dep2, Some("web-x"), &mut st2, now);
        let p = get(&st2, PROGRESSING).unwrap();
        assert_eq!(
            (p.status.as_str(), p.reason.as_str()),
            ("True", NEW_RS_AVAILABLE)
        );
    }

    #[test]
    fn no_progress_past_the_deadline_times_out() {
        let start = Time::from_unix_seconds(1000);
        let mut before = DeploymentStatus {
            replicas: Some(2),
            updated_replicas: Some(2),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            ..Default::default()
        };
        set(
            &mut before,
            condition(PROGRESSING, "True", RS_UPDATED, String::new(), start),
        );
        let dep = d(2, before);
        let stuck = rs(2, 0, 0);
        let mut st = calculate(&dep, &[&stuck], Some(&stuck), Time::from_unix_seconds(1200));
        assert_eq!(
            get(&st, AVAILABLE).unwrap().reason,
            "MinimumReplicasUnavailable"
        );
        assert_eq!(
            deadline_in(&dep, &st, Time::from_unix_seconds(1200)),
            Some(400)
        );
        let later = Time::from_unix_seconds(1601);
        rollout_conditions(&dep, Some("web-x"), &mut st, later);
        let p = get(&st, PROGRESSING).unwrap();
        assert_eq!((p.status.as_str(), p.reason.as_str()), ("False", TIMED_OUT));
    }
}

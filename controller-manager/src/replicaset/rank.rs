//! Which surplus pods to delete first, as Kubernetes's `getPodsToDelete`
//! with `ActivePodsWithRanks`: the cheapest pod to lose goes first.
//!
//! Order (earlier rule decides):
//! 1. not yet scheduled before scheduled;
//! 2. phase Pending before Unknown before Running;
//! 3. not ready before ready;
//! 4. on a node holding more of the controller's pods before fewer
//!    (spreads what stays);
//! 5. ready more recently before ready longer;
//! 6. more container restarts before fewer;
//! 7. newer before older (creationTimestamp).

use std::cmp::Ordering;
use std::collections::HashMap;

use capstan_proto::api::core::v1::Pod;

use crate::pods::ready_since;

fn node(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .map(|s| s.node_name.as_str())
        .unwrap_or("")
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("") {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .map(|s| {
            s.container_statuses
                .iter()
                .filter_map(|c| c.restart_count)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn created(pod: &Pod) -> Option<(i64, i32)> {
    pod.metadata
        .as_ref()?
        .creation_timestamp
        .map(|t| (t.seconds, t.nanos))
}

/// `Less` when `a` should be deleted before `b`; `rank` is how many of
/// the controller's pods share each pod's node.
fn delete_first(a: &Pod, b: &Pod, rank_a: usize, rank_b: usize) -> Ordering {
    let (na, nb) = (node(a), node(b));
    if na.is_empty() != nb.is_empty() {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let phase = phase_rank(a).cmp(&phase_rank(b));
    if phase != Ordering::Equal {
        return phase;
    }
    let (ra, rb) = (ready_since(a), ready_since(b));
    if ra.is_some() != rb.is_some() {
        return if ra.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if let (Some(Some(ta)), Some(Some(tb))) = (ra, rb)
        && ta != tb
    {
        return tb.cmp(&ta);
    }
    let restarts = restarts(b).cmp(&restarts(a));
    if restarts != Ordering::Equal {
        return restarts;
    }
    created(b).cmp(&created(a))
}

/// The `count` pods of `pods` to delete, cheapest to lose first.
pub fn pods_to_delete<'a>(pods: &[&'a Pod], count: usize) -> Vec<&'a Pod> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in pods {
        if !node(p).is_empty() {
            *per_node.entry(node(p)).or_default() += 1;
        }
    }
    let rank = |p: &Pod| per_node.get(node(p)).copied().unwrap_or(0);
    let mut ranked: Vec<&'a Pod> = pods.to_vec();
    ranked.sort_by(|a, b| delete_first(a, b, rank(a), rank(b)));
    ranked.truncate(count);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use capstan_proto::api::meta::v1::ObjectMeta;
    use capstan_proto::timestamp::Time;

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                creation_timestamp: Some(Time::from_unix_seconds(created)),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_name: node.into(),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: phase.into(),
                conditions: ready_at
                    .map(|t| PodCondition {
                        r#type: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time::from_unix_seconds(t)),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
        }
    }

    fn names(pods: &[&Pod]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.as_ref().unwrap().name.clone())
            .collect()
    }

    #[test]
    fn unscheduled_then_pending_then_not_ready_go_first() {
        let ready = pod("ready", "n1", "Running", Some(10), 1);
        let unready = pod("unready", "n2", "Running", None, 1);
        let pending = pod("pending", "n3", "Pending", None, 1);
        let unscheduled = pod("unscheduled", "", "Pending", None, 1);
        let all = [&ready, &unready, &pending, &unscheduled];
        assert_eq!(
            names(&pods_to_delete(&all, 4)),
            ["unscheduled", "pending", "unready", "ready"]
        );
        assert_eq!(names(&pods_to_delete(&all, 1)), ["unscheduled"]);
    }

    #[test]
    fn doubled_up_then_recently_ready_then_restarts_then_newer() {
        let a1 = pod("a1", "a", "Running", Some(10), 1);
        let a2 = pod("a2", "a", "Running", Some(10), 1);
        let b = pod("b", "b", "Running", Some(10), 5);
        assert_eq!(
            names(&pods_to_delete(&[&b, &a1, &a2], 1))[0].chars().next(),
            Some('a')
        );

        let old_ready = pod("old", "x", "Running", Some(10), 1);
        let new_ready = pod("new", "y", "Running", Some(20), 1);
        assert_eq!(
            names(&pods_to_delete(&[&old_ready, &new_ready], 1)),
            ["new"]
        );

        let mut crashy = pod("crashy", "x", "Running", Some(10), 1);
        crashy.status.as_mut().unwrap().container_statuses = vec![ContainerStatus {
            restart_count: Some(3),
            ..Default::default()
        }];
        let calm = pod("calm", "y", "Running", Some(10), 1);
        assert_eq!(names(&pods_to_delete(&[&calm, &crashy], 1)), ["crashy"]);

        let older = pod("older", "x", "Running", Some(10), 1);
        let newer = pod("newer", "y", "Running", Some(10), 2);
        assert_eq!(names(&pods_to_delete(&[&older, &newer], 1)), ["newer"]);
    }
}

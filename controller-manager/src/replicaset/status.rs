//! The status counters a ReplicaSet's (or ReplicationController's) pods
//! add up to, as Kubernetes's `calculateStatus`.

use std::collections::BTreeMap;

use capstan_proto::api::core::v1::Pod;
use capstan_proto::timestamp::Time;

use crate::pods::{is_available, is_ready, seconds_until_available};

/// The counters of a replica controller's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// Active pods owned.
    pub replicas: i32,
    /// Of those, pods carrying every label of the template.
    pub fully_labeled_replicas: i32,
    /// Of those, pods Ready.
    pub ready_replicas: i32,
    /// Of those, pods Ready for at least minReadySeconds.
    pub available_replicas: i32,
    /// The generation this status describes.
    pub observed_generation: i64,
}

/// What `pods` (the active pods owned) add up to.
pub fn calculate(
    pods: &[&Pod],
    template_labels: &BTreeMap<String, String>,
    min_ready_seconds: i32,
    generation: i64,
    now: Time,
) -> ReplicaStatus {
    let mut st = ReplicaStatus {
        observed_generation: generation,
        ..Default::default()
    };
    for pod in pods {
        st.replicas += 1;
        let labels = pod.metadata.as_ref().map(|m| &m.labels);
        if template_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            st.fully_labeled_replicas += 1;
        }
        if is_ready(pod) {
            st.ready_replicas += 1;
            if is_available(pod, min_ready_seconds, now) {
                st.available_replicas += 1;
            }
        }
    }
    st
}

/// The soonest a ready pod of `pods` becomes available, in seconds.
pub fn next_available_in(pods: &[&Pod], min_ready_seconds: i32, now: Time) -> Option<i64> {
    pods.iter()
        .filter_map(|p| seconds_until_available(p, min_ready_seconds, now))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{PodCondition, PodStatus};
    use capstan_proto::api::meta::v1::ObjectMeta;

    #[test]
    fn counts_labels_readiness_and_availability() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let ready = |since: i64, labelled: bool| Pod {
            metadata: Some(ObjectMeta {
                labels: if labelled {
                    labels.clone()
                } else {
                    BTreeMap::new()
                },
                ..Default::default()
            }),
            status: Some(PodStatus {
                conditions: vec![PodCondition {
                    r#type: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time::from_unix_seconds(since)),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let (a, b, c) = (ready(0, true), ready(95, false), Pod::default());
        let now = Time::from_unix_seconds(100);
        let st = calculate(&[&a, &b, &c], &labels, 10, 7, now);
        assert_eq!(
            st,
            ReplicaStatus {
                replicas: 3,
                fully_labeled_replicas: 1,
                ready_replicas: 2,
                available_replicas: 1,
                observed_generation: 7,
            }
        );
        assert_eq!(next_available_in(&[&a, &b, &c], 10, now), Some(5));
    }
}

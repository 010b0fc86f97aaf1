//! Telling users why a pod waits: the `PodScheduled=False` condition with
//! reason `Unschedulable` and the scheduler's message, written through the
//! pod's status (in the background, a bounded number at a time, skipped
//! when the pod already says exactly that).

use std::sync::Arc;

use capstan_client::{Api, Client};
use capstan_proto::api::core::v1::{Pod, PodCondition};
use capstan_proto::timestamp::Time;
use tokio::sync::Semaphore;

/// The condition type.
pub const POD_SCHEDULED: &str = "PodScheduled";
/// The reason of a pod no node fits.
pub const UNSCHEDULABLE: &str = "Unschedulable";

/// Status writes in flight at most.
const CONCURRENT_WRITES: usize = 16;

/// Sets `PodScheduled=False` on `pod`; returns false when the pod already
/// carries this exact condition (nothing to write).
pub fn set_unschedulable(pod: &mut Pod, message: &str) -> bool {
    let status = pod.status.get_or_insert_with(Default::default);
    let now = Time::now();
    match status
        .conditions
        .iter_mut()
        .find(|c| c.r#type == POD_SCHEDULED)
    {
        Some(c) if c.status == "False" && c.reason == UNSCHEDULABLE && c.message == message => {
            false
        }
        Some(c) => {
            if c.status != "False" {
                c.last_transition_time = Some(now);
            }
            c.status = "False".into();
            c.reason = UNSCHEDULABLE.into();
            c.message = message.into();
            c.last_probe_time = None;
            true
        }
        None => {
            status.conditions.push(PodCondition {
                r#type: POD_SCHEDULED.into(),
                status: "False".into(),
                last_transition_time: Some(now),
                reason: UNSCHEDULABLE.into(),
                message: message.into(),
                ..Default::default()
            });
            true
        }
    }
}

/// Writes unschedulable conditions in the background.
#[derive(Clone, Debug)]
pub struct StatusWriter {
    client: Client,
    permits: Arc<Semaphore>,
}

impl StatusWriter {
    /// A writer through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            permits: Arc::new(Semaphore::new(CONCURRENT_WRITES)),
        }
    }

    /// Records `message` on `pod` unless it already says so. A conflict
    /// (the pod changed meanwhile) is retried once on a fresh copy; a pod
    /// bound or deleted meanwhile is left alone.
    pub fn unschedulable(&self, pod: &Pod, message: String) {
        let mut updated = pod.clone();
        if !set_unschedulable(&mut updated, &message) {
            return;
        }
        let (client, permits) = (self.client.clone(), self.permits.clone());
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let meta = updated.metadata.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client, &meta.namespace);
            match api.update_status(&updated).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {
                    let Ok(mut fresh) = api.get(&meta.name).await else {
                        return;
                    };
                    let unbound = fresh.spec.as_ref().is_some_and(|s| s.node_name.is_empty());
                    let same = fresh.metadata.as_ref().is_some_and(|m| m.uid == meta.uid);
                    if unbound
                        && same
                        && set_unschedulable(&mut fresh, &message)
                        && let Err(e) = api.update_status(&fresh).await
                    {
                        tracing::debug!(pod = %meta.name, error = %e, "could not set PodScheduled=False");
                    }
                }
                Err(e) => {
                    tracing::debug!(pod = %meta.name, error = %e, "could not set PodScheduled=False")
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pod;

    #[test]
    fn condition_is_set_once_per_message() {
        let mut p = pod("a", "1", "1Gi");
        assert!(set_unschedulable(
            &mut p,
            "0/1 nodes are available: 1 Insufficient cpu."
        ));
        let c = &p.status.as_ref().unwrap().conditions[0];
        assert_eq!(
            (c.r#type.as_str(), c.status.as_str(), c.reason.as_str()),
            ("PodScheduled", "False", "Unschedulable")
        );
        assert!(c.last_transition_time.is_some());
        assert!(!set_unschedulable(
            &mut p,
            "0/1 nodes are available: 1 Insufficient cpu."
        ));
        assert!(set_unschedulable(
            &mut p,
            "0/2 nodes are available: 2 Insufficient cpu."
        ));
        assert_eq!(p.status.as_ref().unwrap().conditions.len(), 1);
    }
}

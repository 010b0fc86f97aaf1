//! The ReplicationController controller: the ReplicaSet controller's
//! implementation ([`crate::replicaset`]) over the core/v1 kind, whose
//! selector is a plain label map.

use capstan_proto::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerStatus,
};
use capstan_proto::labels::Selector;

use crate::controller::{Context, Shutdown};
use crate::replicaset::{ReplicaStatus, Replicated, sync};

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";

    fn desired_replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    /// `spec.selector`, or the template's labels when it is empty (as the
    /// apiserver's defaulting would have made it); nothing when both are.
    fn pod_selector(&self) -> Result<Option<Selector>, String> {
        let Some(spec) = self.spec.as_ref() else {
            return Ok(None);
        };
        let labels = if spec.selector.is_empty() {
            match spec.template.as_ref().and_then(|t| t.metadata.as_ref()) {
                Some(m) if !m.labels.is_empty() => &m.labels,
                _ => return Ok(None),
            }
        } else {
            &spec.selector
        };
        Selector::from_labels(labels)
            .map(Some)
            .map_err(|e| format!("invalid selector: {e}"))
    }

    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn replica_status(&self) -> ReplicaStatus {
        let s = self.status.clone().unwrap_or_default();
        ReplicaStatus {
            replicas: s.replicas.unwrap_or(0),
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
        }
    }

    fn with_replica_status(&self, st: ReplicaStatus) -> Self {
        let mut rc = self.clone();
        let old = rc.status.take().unwrap_or_default();
        rc.status = Some(ReplicationControllerStatus {
            replicas: Some(st.replicas),
            fully_labeled_replicas: Some(st.fully_labeled_replicas),
            ready_replicas: Some(st.ready_replicas),
            available_replicas: Some(st.available_replicas),
            observed_generation: Some(st.observed_generation),
            conditions: old.conditions,
        });
        rc
    }
}

/// Runs the ReplicationController controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let workers = ctx.config.concurrent_rc_syncs;
    sync::run::<ReplicationController>(ctx, shutdown, workers).await
}

//! The ReplicaSet controller, and (parameterised by kind through
//! [`Replicated`]) the ReplicationController's: keep `spec.replicas` active
//! pods matching the selector, as Kubernetes's `ReplicaSetController`.
//!
//! - [`handlers`]: informer events to work-queue keys and expectations.
//! - [`sync`]: one reconcile — claim (adopt/release) pods, create or delete
//!   the difference, write status.
//! - [`manage`]: the creates and deletes of one sync (slow-start batches,
//!   at most [`BURST_REPLICAS`] per sync, Events).
//! - [`status`]: the status a set of pods adds up to.
//! - [`rank`]: which surplus pods go first.

pub mod handlers;
pub mod manage;
pub mod rank;
pub mod status;
pub mod sync;

use capstan_proto::Resource;
use capstan_proto::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use capstan_proto::api::core::v1::PodTemplateSpec;
use capstan_proto::labels::Selector;

use crate::controller::{Context, Shutdown};

pub use status::ReplicaStatus;

/// At most this many pods created or deleted per sync (Kubernetes's
/// `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// What the replica controller needs from the kind it manages (ReplicaSet,
/// ReplicationController).
pub trait Replicated: Resource + Send + Sync {
    /// The Events' source component (`replicaset-controller`).
    const COMPONENT: &'static str;
    /// `spec.replicas` (default 1).
    fn desired_replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The pods this object selects; `Ok(None)` when it selects nothing
    /// (no selector); `Err` names what is wrong with it.
    fn pod_selector(&self) -> Result<Option<Selector>, String>;
    /// `spec.template`.
    fn pod_template(&self) -> Option<&PodTemplateSpec>;
    /// The counters of `status`.
    fn replica_status(&self) -> ReplicaStatus;
    /// This object with its status counters set to `status` (conditions kept).
    fn with_replica_status(&self, status: ReplicaStatus) -> Self;
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";

    fn desired_replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn pod_selector(&self) -> Result<Option<Selector>, String> {
        let Some(sel) = self.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            return Ok(None);
        };
        crate::selector::from_label_selector(sel).map(Some)
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
        let mut rs = self.clone();
        let old = rs.status.take().unwrap_or_default();
        rs.status = Some(ReplicaSetStatus {
            replicas: Some(st.replicas),
            fully_labeled_replicas: Some(st.fully_labeled_replicas),
            ready_replicas: Some(st.ready_replicas),
            available_replicas: Some(st.available_replicas),
            observed_generation: Some(st.observed_generation),
            conditions: old.conditions,
        });
        rs
    }
}

/// Runs the ReplicaSet controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let workers = ctx.config.concurrent_replica_set_syncs;
    sync::run::<ReplicaSet>(ctx, shutdown, workers).await
}

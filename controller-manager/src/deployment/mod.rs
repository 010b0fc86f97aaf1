//! The Deployment controller, as Kubernetes's `DeploymentController`: a
//! Deployment owns one ReplicaSet per pod template it has run, named
//! `<deployment>-<pod-template-hash>`; rolling out moves replicas from the
//! old sets to the new one within maxSurge/maxUnavailable (or, with
//! Recreate, all old pods go first).
//!
//! - [`hash`]: the pod-template-hash and template matching.
//! - [`revision`]: revision and replicas annotations on ReplicaSets.
//! - [`rolling`]: rollout arithmetic (fenceposts, scale up/down steps,
//!   proportional scaling), pure.
//! - [`status`]: status counters and conditions, pure.
//! - [`sync`]: one reconcile (claim ReplicaSets, pause, scaling events,
//!   dispatch to a strategy, status).
//! - [`new_rs`]: finding or creating the new ReplicaSet, revision bumps.
//! - [`rollout`]: the strategies (RollingUpdate, Recreate), scaling and
//!   history cleanup.

pub mod hash;
pub mod new_rs;
pub mod revision;
pub mod rolling;
pub mod rollout;
pub mod status;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use capstan_client::runtime::{RateLimit, WorkQueue, run_workers};
use capstan_client::watcher::{ObjectKey, Store};
use capstan_proto::api::apps::v1::{Deployment, ReplicaSet};
use capstan_proto::api::core::v1::Pod;
use capstan_proto::api::meta::v1::OwnerReference;

use crate::controller::{Context, Shutdown};
use crate::informer::Change;
use crate::pods::controller_of;

/// The Events' source component.
pub const COMPONENT: &str = "deployment-controller";
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the Deployment controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let deployments = ctx.informers.get::<Deployment>();
    let sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new(RateLimit::default());
    let controller = Arc::new(sync::DeploymentController {
        client: ctx.client.clone(),
        deployments: deployments.store(),
        sets: sets.store(),
        pods: pods.store(),
        recorder: ctx.recorder(COMPONENT),
    });
    {
        let queue = queue.clone();
        deployments.add_handler(move |change: Change<'_, Deployment>| match change {
            Change::Restarted(all) => all.iter().for_each(|d| queue.add(ObjectKey::of(d))),
            Change::Applied { new, .. } => queue.add(ObjectKey::of(new)),
            Change::Deleted(d) => queue.add(ObjectKey::of(d)),
        });
    }
    {
        let (queue, ds) = (queue.clone(), deployments.store());
        sets.add_handler(move |change: Change<'_, ReplicaSet>| on_replica_set(&queue, &ds, change));
    }
    {
        let (queue, ds, rss) = (queue.clone(), deployments.store(), sets.store());
        pods.add_handler(move |change: Change<'_, Pod>| {
            // Recreate waits for old pods to be gone: their deletion wakes it.
            if let Change::Deleted(pod) = change
                && let Some(r) = controller_of(pod.metadata.as_ref())
                && r.kind == "ReplicaSet"
            {
                let ns = pod
                    .metadata
                    .as_ref()
                    .map(|m| m.namespace.as_str())
                    .unwrap_or("");
                if let Some(rs) = rss.get(ns, &r.name)
                    && let Some(key) =
                        controller_of(rs.metadata.as_ref()).and_then(|r| resolve(&ds, ns, r))
                {
                    queue.add(key);
                }
            }
        });
    }
    tokio::select! {
        _ = shutdown.requested() => return Ok(()),
        synced = async {
            deployments.store().wait_until_ready(CACHE_SYNC_TIMEOUT).await
                && sets.store().wait_until_ready(CACHE_SYNC_TIMEOUT).await
                && pods.store().wait_until_ready(CACHE_SYNC_TIMEOUT).await
        } => if !synced {
            anyhow::bail!("{COMPONENT}: informers not synced within {CACHE_SYNC_TIMEOUT:?}");
        },
    }
    let workers = ctx.config.concurrent_deployment_syncs;
    tracing::info!(controller = COMPONENT, workers, "started");
    let task = tokio::spawn(run_workers(queue.clone(), workers, move |key| {
        let controller = controller.clone();
        async move { controller.sync(&key).await }
    }));
    shutdown.requested().await;
    queue.shutdown();
    let _ = task.await;
    Ok(())
}

/// The Deployment `reference` names, if it is known with that uid.
fn resolve(
    ds: &Store<Deployment>,
    namespace: &str,
    reference: &OwnerReference,
) -> Option<ObjectKey> {
    if reference.kind != "Deployment" {
        return None;
    }
    let d = ds.get(namespace, &reference.name)?;
    (d.metadata.as_ref().map(|m| m.uid.as_str()) == Some(reference.uid.as_str()))
        .then(|| ObjectKey::of(&*d))
}

/// A ReplicaSet change wakes its Deployment (old and new owner), or for an
/// orphan every Deployment whose selector matches it.
fn on_replica_set(
    queue: &WorkQueue<ObjectKey>,
    ds: &Store<Deployment>,
    change: Change<'_, ReplicaSet>,
) {
    let wake = |rs: &ReplicaSet| {
        let Some(meta) = rs.metadata.as_ref() else {
            return;
        };
        match controller_of(Some(meta)) {
            Some(r) => {
                if let Some(key) = resolve(ds, &meta.namespace, r) {
                    queue.add(key);
                }
            }
            None => {
                for d in ds.list() {
                    let same_ns = d
                        .metadata
                        .as_ref()
                        .is_some_and(|m| m.namespace == meta.namespace);
                    let matches = d
                        .spec
                        .as_ref()
                        .and_then(|s| s.selector.as_ref())
                        .and_then(|s| crate::selector::from_label_selector(s).ok())
                        .is_some_and(|s| !s.is_empty() && s.matches(&meta.labels));
                    if same_ns && matches {
                        queue.add(ObjectKey::of(&*d));
                    }
                }
            }
        }
    };
    match change {
        Change::Restarted(all) => all.iter().for_each(wake),
        Change::Applied { old, new } => {
            if let Some(old) = old
                && controller_of(old.metadata.as_ref()) != controller_of(new.metadata.as_ref())
            {
                wake(&old);
            }
            wake(new);
        }
        Change::Deleted(rs) => wake(rs),
    }
}

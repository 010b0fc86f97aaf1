//! One reconcile of a ReplicaSet or ReplicationController (Kubernetes's
//! `syncReplicaSet`), and the controller loop around it.
//!
//! A sync is idempotent and reads only the informers' stores:
//! 1. claim the active pods of the namespace — keep owned pods that still
//!    match, adopt matching orphans (controller reference), release owned
//!    pods that no longer match;
//! 2. if the expectations of earlier syncs are met, create or delete the
//!    difference ([`super::manage`]);
//! 3. write status when it changed; come back when a ready pod is due to
//!    become available (minReadySeconds).

use std::sync::Arc;
use std::time::Duration;

use capstan_client::events::{EventType, Recorder};
use capstan_client::runtime::{Action, RateLimit, WorkQueue, run_workers};
use capstan_client::watcher::{ObjectKey, Store};
use capstan_client::{Api, Client};
use capstan_proto::api::core::v1::Pod;
use capstan_proto::labels::Selector;
use capstan_proto::timestamp::Time;

use super::{Replicated, handlers, manage, status};
use crate::controller::{Context, Shutdown};
use crate::expectations::Expectations;
use crate::pods::{controller_of, controller_ref, is_active, is_being_deleted};

/// How long to wait for the informers' first lists before giving up (the
/// supervisor restarts the controller).
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// The replica controller of kind `K`.
pub struct ReplicaController<K> {
    /// The client.
    pub client: Client,
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every owner object.
    pub owners: Store<K>,
    /// Pending creations and deletions per owner.
    pub expectations: Expectations,
    /// Events about owners.
    pub recorder: Recorder,
}

/// Runs the replica controller of kind `K` with `workers` concurrent syncs
/// until `shutdown`.
pub async fn run<K: Replicated>(
    ctx: Context,
    shutdown: Shutdown,
    workers: usize,
) -> anyhow::Result<()> {
    let pods = ctx.informers.get::<Pod>();
    let owners = ctx.informers.get::<K>();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new(RateLimit::default());
    let controller = Arc::new(ReplicaController {
        client: ctx.client.clone(),
        pods: pods.store(),
        owners: owners.store(),
        expectations: Expectations::default(),
        recorder: ctx.recorder(K::COMPONENT),
    });
    owners.add_handler(handlers::on_owner::<K>(queue.clone()));
    pods.add_handler(handlers::on_pod::<K>(
        queue.clone(),
        owners.store(),
        controller.expectations.clone(),
    ));
    tokio::select! {
        _ = shutdown.requested() => return Ok(()),
        synced = async {
            pods.store().wait_until_ready(CACHE_SYNC_TIMEOUT).await
                && owners.store().wait_until_ready(CACHE_SYNC_TIMEOUT).await
        } => if !synced {
            anyhow::bail!("{}: informers not synced within {CACHE_SYNC_TIMEOUT:?}", K::COMPONENT);
        },
    }
    tracing::info!(controller = K::COMPONENT, workers, "started");
    let workers = tokio::spawn(run_workers(queue.clone(), workers, move |key| {
        let controller = controller.clone();
        async move { controller.sync(&key).await }
    }));
    shutdown.requested().await;
    queue.shutdown();
    let _ = workers.await;
    Ok(())
}

impl<K: Replicated> ReplicaController<K> {
    /// Reconciles the owner `key`.
    pub async fn sync(&self, key: &ObjectKey) -> anyhow::Result<Action> {
        let Some(owner) = self.owners.get(&key.namespace, &key.name) else {
            self.expectations.forget(key);
            return Ok(Action::Done);
        };
        let selector = match owner.pod_selector() {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Action::Done),
            Err(e) => {
                self.recorder
                    .publish(&*owner, EventType::Warning, "InvalidSelector", &e);
                return Ok(Action::Done);
            }
        };
        let needs_sync = self.expectations.satisfied(key);
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| {
                p.metadata
                    .as_ref()
                    .is_some_and(|m| m.namespace == key.namespace)
            })
            .filter(|p| is_active(p))
            .collect();
        let claimed = self.claim(&owner, &selector, candidates).await?;
        let manage_result = if needs_sync && !is_being_deleted(owner.metadata()) {
            manage::manage_replicas(self, &owner, key, &claimed).await
        } else {
            Ok(())
        };

        let refs: Vec<&Pod> = claimed.iter().map(|p| &**p).collect();
        let now = Time::now();
        let template_labels = owner
            .pod_template()
            .and_then(|t| t.metadata.as_ref())
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        let min_ready = owner.min_ready_seconds();
        let generation = owner.metadata().and_then(|m| m.generation).unwrap_or(0);
        let new_status = status::calculate(&refs, &template_labels, min_ready, generation, now);
        if new_status != owner.replica_status() {
            let api: Api<K> = Api::all(self.client.clone());
            api.update_status(&owner.with_replica_status(new_status))
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{} {}/{}: status update: {e}",
                        K::INFO.kind,
                        key.namespace,
                        key.name
                    )
                })?;
        }
        manage_result?;
        if min_ready > 0
            && new_status.ready_replicas != new_status.available_replicas
            && let Some(secs) = status::next_available_in(&refs, min_ready, now)
        {
            return Ok(Action::RequeueAfter(
                Duration::from_secs(secs.max(1) as u64),
            ));
        }
        Ok(Action::Done)
    }

    /// Kubernetes's `ClaimPods`: the pods `owner` controls after adopting
    /// matching orphans and releasing owned pods that no longer match.
    async fn claim(
        &self,
        owner: &K,
        selector: &Selector,
        candidates: Vec<Arc<Pod>>,
    ) -> anyhow::Result<Vec<Arc<Pod>>> {
        let meta = owner.metadata().cloned().unwrap_or_default();
        let deleting = is_being_deleted(Some(&meta));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &meta.namespace);
        let mut claimed = Vec::with_capacity(candidates.len());
        for pod in candidates {
            let pm = pod.metadata.as_ref();
            let matches = selector.matches(&pm.map(|m| m.labels.clone()).unwrap_or_default());
            match controller_of(pm) {
                Some(r) if r.uid == meta.uid && r.kind == K::INFO.kind => {
                    if matches || deleting {
                        claimed.push(pod);
                        continue;
                    }
                    let mut released = (*pod).clone();
                    released
                        .metadata
                        .get_or_insert_with(Default::default)
                        .owner_references
                        .retain(|r| r.uid != meta.uid);
                    match api.update(&released).await {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => anyhow::bail!(
                            "releasing pod {}: {e}",
                            pm.map(|m| m.name.as_str()).unwrap_or("")
                        ),
                    }
                }
                Some(_) => {}
                None if matches && !deleting => {
                    let mut adopted = (*pod).clone();
                    adopted
                        .metadata
                        .get_or_insert_with(Default::default)
                        .owner_references
                        .push(controller_ref(owner));
                    match api.update(&adopted).await {
                        Ok(updated) => claimed.push(Arc::new(updated)),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => anyhow::bail!(
                            "adopting pod {}: {e}",
                            pm.map(|m| m.name.as_str()).unwrap_or("")
                        ),
                    }
                }
                None => {}
            }
        }
        Ok(claimed)
    }
}

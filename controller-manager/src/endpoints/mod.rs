//! The endpoints controller: one Endpoints object per Service with a
//! selector, named like the Service, listing the pods the selector matches
//! (ready and not-ready addresses apart, named target ports resolved per
//! pod — see [`desired`]), rewritten on every relevant pod, Service or
//! Endpoints change, and deleted with its Service.
//!
//! Triggers: a Service change enqueues it; a pod change enqueues every
//! Service of its namespace whose selector matches the pod's labels before
//! or after the change; an Endpoints change or deletion enqueues its
//! Service (so a hand edit is put right). The reconcile compares with the
//! informer's copy and writes only when the subsets or labels differ.

pub mod desired;

use std::sync::Arc;

use capstan_client::runtime::{Action, RateLimit, WorkQueue, run_workers};
use capstan_client::watcher::ObjectKey;
use capstan_client::{Api, DeleteParams};
use capstan_proto::api::core::v1::{Endpoints, Pod, Service};
use capstan_proto::api::meta::v1::ObjectMeta;

use crate::controller::{Context, Shutdown};
use crate::informer::Change;

/// Services reconciled at once (Kubernetes's `--concurrent-endpoint-syncs`).
const WORKERS: usize = 5;

/// Runs until `stop`.
pub async fn run(ctx: Context, stop: Shutdown) -> anyhow::Result<()> {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
    let queue: WorkQueue<ObjectKey> = WorkQueue::new(RateLimit::default());

    let q = queue.clone();
    services.add_handler(move |change| match change {
        Change::Restarted(all) => all.iter().for_each(|s| q.add(ObjectKey::of(s))),
        Change::Applied { new, .. } => q.add(ObjectKey::of(new)),
        Change::Deleted(old) => q.add(ObjectKey::of(old)),
    });
    let (q, service_store) = (queue.clone(), services.store());
    pods.add_handler(move |change| {
        let enqueue_for = |pod: &Pod| {
            let Some(meta) = pod.metadata.as_ref() else {
                return;
            };
            for svc in service_store.list() {
                let same_ns = svc
                    .metadata
                    .as_ref()
                    .is_some_and(|m| m.namespace == meta.namespace);
                if same_ns && desired::selector(&svc).is_some_and(|s| s.matches(&meta.labels)) {
                    q.add(ObjectKey::of(svc.as_ref()));
                }
            }
        };
        match change {
            Change::Restarted(all) => all.iter().for_each(enqueue_for),
            Change::Applied { old, new } => {
                if let Some(old) = old {
                    enqueue_for(&old);
                }
                enqueue_for(new);
            }
            Change::Deleted(old) => enqueue_for(old),
        }
    });
    let q = queue.clone();
    endpoints.add_handler(move |change| match change {
        Change::Restarted(_) => {}
        Change::Applied { new, .. } => q.add(ObjectKey::of(new)),
        Change::Deleted(old) => q.add(ObjectKey::of(old)),
    });

    let shared = Arc::new(Shared {
        services: services.store(),
        pods: pods.store(),
        endpoints: endpoints.store(),
        ctx,
    });
    let workers = run_workers(queue.clone(), WORKERS, move |key: ObjectKey| {
        let shared = Arc::clone(&shared);
        async move { shared.reconcile(&key).await }
    });
    tokio::select! {
        () = workers => {}
        () = stop.requested() => queue.shutdown(),
    }
    Ok(())
}

struct Shared {
    services: capstan_client::watcher::Store<Service>,
    pods: capstan_client::watcher::Store<Pod>,
    endpoints: capstan_client::watcher::Store<Endpoints>,
    ctx: Context,
}

impl Shared {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, capstan_client::Error> {
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let current = self.endpoints.get(&key.namespace, &key.name);
        let Some(svc) = self.services.get(&key.namespace, &key.name) else {
            // The Service is gone: so are its Endpoints.
            if current.is_some() {
                match api.delete(&key.name, &DeleteParams::default()).await {
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => {}
                }
            }
            return Ok(Action::Done);
        };
        if !desired::managed(&svc) {
            return Ok(Action::Done);
        }
        let pods = self.pods.list();
        let subsets = desired::subsets(&svc, pods.iter().map(|p| p.as_ref()));
        let labels = svc
            .metadata
            .as_ref()
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        match current {
            Some(cur)
                if cur.subsets == subsets
                    && cur.metadata.as_ref().map(|m| &m.labels) == Some(&labels) =>
            {
                Ok(Action::Done)
            }
            Some(cur) => {
                let mut updated = (*cur).clone();
                updated.subsets = subsets;
                updated.metadata.get_or_insert_with(Default::default).labels = labels;
                // A Conflict means a stale copy: retried with back-off, by
                // when the informer has the new one.
                api.update(&updated).await.map(|_| Action::Done)
            }
            None => {
                let created = Endpoints {
                    metadata: Some(ObjectMeta {
                        name: key.name.clone(),
                        namespace: key.namespace.clone(),
                        labels,
                        ..Default::default()
                    }),
                    subsets,
                };
                api.create(&created).await.map(|_| Action::Done)
            }
        }
    }
}

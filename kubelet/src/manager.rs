//! The pod manager: watches the pods bound to this node and hands each to
//! its own worker at once (no polling on the start path); removes the
//! sandboxes of pods no longer bound here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use capstan_client::watcher::{Event, watcher};
use capstan_client::{Api, ListParams};
use capstan_proto::api::core::v1::Pod;
use futures::StreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::labels;
use crate::runtime::Runtime;
use crate::worker::{Context, PodUpdate, PodWorker};

struct Handle {
    updates: watch::Sender<PodUpdate>,
    task: JoinHandle<()>,
}

/// Runs until the task is dropped.
pub async fn run<R: Runtime>(ctx: Arc<Context<R>>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={}", ctx.node_name));
    let mut events = std::pin::pin!(watcher(api, params));
    let mut workers: HashMap<String, Handle> = HashMap::new();
    while let Some(event) = events.next().await {
        workers.retain(|_, h| !h.task.is_finished());
        match event {
            Ok(Event::Applied(pod)) => apply(&ctx, &mut workers, pod),
            Ok(Event::Deleted(pod)) => {
                if let Some(h) = workers.get(&uid(&pod)) {
                    let _ = h.updates.send(None);
                }
            }
            Ok(Event::Restarted(pods)) => {
                let bound: HashSet<String> = pods.iter().map(uid).collect();
                for (u, h) in &workers {
                    if !bound.contains(u) {
                        let _ = h.updates.send(None);
                    }
                }
                for pod in pods {
                    apply(&ctx, &mut workers, pod);
                }
                remove_orphans(&ctx, &bound).await;
            }
            Err(e) => tracing::warn!(node = %ctx.node_name, "watching pods: {e}"),
        }
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata
        .as_ref()
        .map(|m| m.uid.clone())
        .unwrap_or_default()
}

fn apply<R: Runtime>(ctx: &Arc<Context<R>>, workers: &mut HashMap<String, Handle>, pod: Pod) {
    let u = uid(&pod);
    let pod = Some(Arc::new(pod));
    if let Some(h) = workers.get(&u) {
        let _ = h.updates.send(pod);
        return;
    }
    let (tx, rx) = watch::channel(pod);
    let worker = PodWorker::new(ctx.clone(), u.clone());
    let task = tokio::spawn(worker.run(rx));
    workers.insert(u, Handle { updates: tx, task });
}

/// Stops and removes sandboxes of pods that are not bound here any more
/// (e.g. deleted while the kubelet was down).
async fn remove_orphans<R: Runtime>(ctx: &Context<R>, bound: &HashSet<String>) {
    let sandboxes = match ctx.runtime.list_pod_sandboxes().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("listing sandboxes: {e}");
            return;
        }
    };
    for s in sandboxes {
        let owner = s.labels.get(labels::POD_UID).cloned().unwrap_or_default();
        if bound.contains(&owner) {
            continue;
        }
        tracing::info!(sandbox = %s.id, pod = %s.metadata.name, "removing the sandbox of a pod no longer bound here");
        if let Err(e) = ctx.runtime.stop_pod_sandbox(&s.id).await {
            tracing::warn!("stopping sandbox {}: {e}", s.id);
        }
        if let Err(e) = ctx.runtime.remove_pod_sandbox(&s.id).await {
            tracing::warn!("removing sandbox {}: {e}", s.id);
        }
    }
}

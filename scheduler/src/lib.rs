//! Capstan's scheduler: places pending pods on nodes, as kube-scheduler
//! does, from an in-memory snapshot kept by informers, and commits
//! bindings in batches.
//!
//! # Layout
//!
//! Decision logic, without IO, unit-tested beside the code:
//! - [`resources`]: a pod's requests (init containers as max, overhead)
//!   and a node's allocatable as integers.
//! - [`pod_info`], [`node_info`]: what the cycles read of a Pod or Node,
//!   worked out once per watch event.
//! - [`cache`]: nodes and the pods counted against them, including pods
//!   assumed while their binding is in flight.
//! - [`queue`]: active (priority, FIFO) / backoff / unschedulable queues.
//! - [`filters`], [`scores`]: Kubernetes's default plugins in this subset.
//! - [`algorithm`]: one cycle: `percentageOfNodesToScore`, filter, score,
//!   pick, or the "0/N nodes are available" explanation.
//!
//! The runtime:
//! - [`scheduler`]: the state owned by the scheduling task and its
//!   reactions to watch events and binding outcomes.
//! - [`binder`]: one `Pods.Bind` call per batch, in a task.
//! - [`status`]: `PodScheduled=False` on unschedulable pods.
//! - this file, [`run`]: the client, the Lease, the two watches and the
//!   loop.
//!
//! Not built: preemption, pod (anti-)affinity, topology spread
//! constraints, preferred node affinity, extended resources and host
//! ports; multiple profiles.

pub mod algorithm;
pub mod binder;
pub mod cache;
mod config;
pub mod filters;
pub mod metrics;
pub mod node_info;
pub mod pod_info;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod scores;
pub mod status;
#[cfg(test)]
mod testutil;

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use capstan_client::events::Recorder;
use capstan_client::leader::LeaderElector;
use capstan_client::watcher::{self, Event};
use capstan_client::{Api, Client, ListParams};
use capstan_proto::Resource;
use futures::StreamExt as _;
use tokio::sync::{mpsc, watch};

pub use config::{Config, ConfigError, LeaderElection};
pub use metrics::Metrics;

use crate::scheduler::{Input, Scheduler};

/// Scheduling cycles between two looks at the watches.
const BURST: usize = 256;
/// How long shutdown waits for binding calls in flight.
const DRAIN: Duration = Duration::from_secs(5);
/// Watch events buffered between the watch tasks and the loop.
const INPUT_BUFFER: usize = 4096;

/// Runs until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_metrics(config, shutdown, Arc::new(Metrics::default())).await
}

/// This host's name, for the leader-election identity and Events.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Feeds one kind's watcher into the loop until the loop is gone.
fn spawn_watch<K, F>(api: Api<K>, tx: mpsc::Sender<Input>, wrap: F) -> tokio::task::JoinHandle<()>
where
    K: Resource + Send + Sync + 'static,
    F: Fn(Event<K>) -> Input + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = pin!(watcher::watcher(api, ListParams::default().limit(1000)));
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    if tx.send(wrap(event)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(kind = K::INFO.kind, error = %e, "watch failed; retrying"),
            }
        }
    })
}

/// [`run`], updating `metrics` as it works.
pub async fn run_with_metrics(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("scheduler configuration: {e}"))?;
    let client = Client::from_kubeconfig(Some(&config.kubeconfig), None)?;
    let host = hostname();
    let identity = config.identity(&host);

    // Leadership: a Lease, or always leading when election is off.
    let le = &config.leader_election;
    let (_always, leadership, mut leading) = if le.leader_elect {
        let elector = LeaderElector::new(
            Api::namespaced(client.clone(), &le.resource_namespace),
            &le.resource_name,
            &identity,
            le.lease_config()
                .map_err(|e| anyhow::anyhow!("scheduler configuration: {e}"))?,
        )?;
        let leadership = elector.spawn();
        let rx = leadership.subscribe();
        (None, Some(leadership), rx)
    } else {
        let (tx, rx) = watch::channel(true);
        (Some(tx), None, rx)
    };

    let (tx, mut rx) = mpsc::channel(INPUT_BUFFER);
    let node_watch = spawn_watch(Api::all(client.clone()), tx.clone(), |e| {
        Input::Nodes(Box::new(e))
    });
    let pod_watch = spawn_watch(Api::all(client.clone()), tx, |e| Input::Pods(Box::new(e)));
    let (bind_tx, mut bind_rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(client.clone(), &config.scheduler_name, &host);
    let mut sched = Scheduler::new(config, client, recorder, metrics, bind_tx);
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = pin!(shutdown);
    tracing::info!(%identity, "scheduler started");

    loop {
        while let Ok(input) = rx.try_recv() {
            sched.handle_input(input);
        }
        while let Ok(outcome) = bind_rx.try_recv() {
            sched.handle_outcome(outcome);
        }
        let is_leader = *leading.borrow();
        if !is_leader {
            sched.drop_pending();
        } else if sched.synced() {
            let ran = sched.schedule_burst(BURST);
            sched.flush_bindings();
            if ran > 0 {
                tokio::task::yield_now().await;
                continue;
            }
        }
        let wake = sched
            .next_backoff_deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            changed = leading.changed() => {
                if changed.is_err() {
                    anyhow::bail!("leader election stopped");
                }
                tracing::info!(leading = *leading.borrow(), "scheduler leadership changed");
            }
            Some(outcome) = bind_rx.recv() => sched.handle_outcome(outcome),
            Some(input) = rx.recv() => sched.handle_input(input),
            _ = retry.tick() => sched.flush_unschedulable(),
            _ = tokio::time::sleep_until(wake) => {}
        }
    }

    tracing::info!("scheduler stopping");
    sched.drop_pending();
    let drain = async {
        while sched.in_flight() > 0 {
            match bind_rx.recv().await {
                Some(outcome) => sched.handle_outcome(outcome),
                None => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN, drain).await;
    node_watch.abort();
    pod_watch.abort();
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    Ok(())
}

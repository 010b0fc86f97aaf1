//! The scheduler's state and its reactions, owned by one task so nothing
//! is locked: watch events update the [`Cache`] and the
//! [`SchedulingQueue`]; a scheduling cycle pops a pod, runs the
//! [`Algorithm`] on the cache and either assumes the pod onto the chosen
//! node (its binding joins the next batch) or records why it cannot be
//! placed; batch outcomes confirm or undo assumptions. [`crate::run`]
//! drives it.

use std::sync::Arc;
use std::time::Instant;

use capstan_client::Client;
use capstan_client::events::{EventType, Recorder};
use capstan_client::watcher::Event;
use capstan_proto::api::core::v1::{Node, Pod};
use tokio::sync::mpsc;

use crate::algorithm::Algorithm;
use crate::binder::{self, BatchOutcome, Placement};
use crate::cache::{Cache, NodeChange, holds_resources};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pod_info::{PodInfo, PodKey};
use crate::queue::{QueuedPod, SchedulingQueue};
use crate::status::StatusWriter;

/// A change seen by one of the watches.
#[derive(Debug)]
pub enum Input {
    /// A Node watch event (boxed, as the Pod one).
    Nodes(Box<Event<Node>>),
    /// A Pod watch event (boxed: a Pod is large).
    Pods(Box<Event<Pod>>),
}

/// The scheduler's state.
pub struct Scheduler {
    config: Config,
    client: Client,
    cache: Cache,
    queue: SchedulingQueue,
    algorithm: Algorithm,
    recorder: Recorder,
    status: StatusWriter,
    metrics: Arc<Metrics>,
    nodes_synced: bool,
    pods_synced: bool,
    /// Placements waiting for the next batch.
    pending: Vec<Placement>,
    in_flight: usize,
    bind_tx: mpsc::UnboundedSender<BatchOutcome>,
}

/// Whether this scheduler should place `pod` (Kubernetes's
/// `responsibleForPod` and the unassigned-pod filter).
pub fn is_pending_for(pod: &Pod, scheduler_name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let deleting = pod
        .metadata
        .as_ref()
        .is_some_and(|m| m.deletion_timestamp.is_some());
    let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
    let ours = spec.scheduler_name.is_empty() || spec.scheduler_name == scheduler_name;
    ours && spec.node_name.is_empty()
        && spec.scheduling_gates.is_empty()
        && !deleting
        && phase != "Succeeded"
        && phase != "Failed"
}

impl Scheduler {
    /// A scheduler with empty state; binding outcomes go to `bind_tx`.
    pub fn new(
        config: Config,
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        bind_tx: mpsc::UnboundedSender<BatchOutcome>,
    ) -> Self {
        let queue = SchedulingQueue::new(
            std::time::Duration::from_secs(config.pod_initial_backoff_seconds),
            std::time::Duration::from_secs(config.pod_max_backoff_seconds),
        );
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            algorithm: Algorithm::new(config.percentage_of_nodes_to_score, seed),
            status: StatusWriter::new(client.clone()),
            config,
            client,
            cache: Cache::new(),
            queue,
            recorder,
            metrics,
            nodes_synced: false,
            pods_synced: false,
            pending: Vec::new(),
            in_flight: 0,
            bind_tx,
        }
    }

    /// Both watches have delivered their first list.
    pub fn synced(&self) -> bool {
        self.nodes_synced && self.pods_synced
    }

    /// Binding calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// When the earliest back-off ends.
    pub fn next_backoff_deadline(&self) -> Option<Instant> {
        self.queue.next_backoff_deadline()
    }

    /// Applies one watch event.
    pub fn handle_input(&mut self, input: Input) {
        let now = Instant::now();
        let input = match input {
            Input::Pods(event) => Ok(*event),
            Input::Nodes(event) => Err(*event),
        };
        match input {
            Err(Event::Restarted(nodes)) => {
                self.cache.replace_nodes(&nodes);
                self.nodes_synced = true;
                self.queue.move_all_to_active(now);
            }
            Err(Event::Applied(node)) => {
                if self.cache.upsert_node(&node) != NodeChange::Unchanged {
                    self.queue.move_all_to_active(now);
                }
            }
            Err(Event::Deleted(node)) => {
                let name = node
                    .metadata
                    .as_ref()
                    .map(|m| m.name.as_str())
                    .unwrap_or("");
                self.cache.remove_node(name);
            }
            Ok(Event::Restarted(pods)) => {
                self.cache.replace_pods(pods.iter());
                let pending: std::collections::HashSet<PodKey> = pods
                    .iter()
                    .filter(|p| is_pending_for(p, &self.config.scheduler_name))
                    .map(PodKey::of)
                    .collect();
                self.queue.retain(|k| pending.contains(k));
                for pod in pods {
                    self.pod_applied(pod, now);
                }
                self.pods_synced = true;
                self.queue.move_all_to_active(now);
            }
            Ok(Event::Applied(pod)) => self.pod_applied(pod, now),
            Ok(Event::Deleted(pod)) => {
                let key = PodKey::of(&pod);
                self.queue.remove(&key);
                if self.cache.remove_pod(&key) {
                    self.queue.move_all_to_active(now);
                }
            }
        }
    }

    fn pod_applied(&mut self, pod: Pod, now: Instant) {
        let key = PodKey::of(&pod);
        let bound = pod.spec.as_ref().is_some_and(|s| !s.node_name.is_empty());
        if bound {
            self.queue.remove(&key);
            if self.cache.add_pod(&pod) && !holds_resources(&pod) {
                // A pod finished and freed its node.
                self.queue.move_all_to_active(now);
            }
            return;
        }
        if self.cache.is_assumed(&key) {
            // Being bound by us: the binding's outcome decides.
            return;
        }
        if !is_pending_for(&pod, &self.config.scheduler_name) {
            self.queue.remove(&key);
            return;
        }
        let pod = Arc::new(pod);
        match PodInfo::new(pod.clone()) {
            Ok(info) => self.queue.add(Arc::new(info), now),
            Err(message) => {
                self.queue.remove(&key);
                self.report_unschedulable(&pod, &message);
            }
        }
    }

    fn report_unschedulable(&self, pod: &Pod, message: &str) {
        self.recorder
            .publish(pod, EventType::Warning, "FailedScheduling", message);
        self.status.unschedulable(pod, message.to_owned());
    }

    /// Runs up to `max` scheduling cycles; returns how many ran.
    pub fn schedule_burst(&mut self, max: usize) -> usize {
        let now = Instant::now();
        let started = Instant::now();
        let mut n = 0;
        while n < max {
            let Some(pod) = self.queue.pop(now) else {
                break;
            };
            n += 1;
            self.schedule_one(pod, now);
        }
        if n > 0 {
            Metrics::add_time(&self.metrics.algorithm_nanos, started.elapsed());
        }
        n
    }

    fn schedule_one(&mut self, pod: QueuedPod, now: Instant) {
        match self.algorithm.schedule(&self.cache, &pod.info) {
            Ok(slot) => {
                Metrics::add(&self.metrics.scheduled, 1);
                self.cache.assume(&pod.info, slot);
                let node = self.cache.slot(slot).name.clone();
                self.pending.push(Placement { pod, node });
            }
            Err(fit) => {
                Metrics::add(&self.metrics.unschedulable, 1);
                let message = fit.to_string();
                tracing::debug!(pod = %pod.info.key, %message, "unschedulable");
                self.report_unschedulable(&pod.info.pod, &message);
                self.queue.add_unschedulable(pod, now);
            }
        }
    }

    /// Sends pending placements while fewer than `maxBindsInFlight` calls
    /// are out.
    pub fn flush_bindings(&mut self) {
        while !self.pending.is_empty() && self.in_flight < self.config.max_binds_in_flight {
            let take = self.pending.len().min(self.config.bind_batch_size);
            let batch: Vec<Placement> = if take == self.pending.len() {
                std::mem::take(&mut self.pending)
            } else {
                self.pending.drain(..take).collect()
            };
            self.in_flight += 1;
            binder::spawn_bind(
                self.client.clone(),
                batch,
                self.metrics.clone(),
                self.bind_tx.clone(),
            );
        }
    }

    /// Applies a batch's outcome: successes wait for the watch to confirm
    /// them; failures are forgotten and retried after a back-off.
    pub fn handle_outcome(&mut self, outcome: BatchOutcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let now = Instant::now();
        for (placement, result) in outcome.results {
            let info = &placement.pod.info;
            match result {
                Ok(()) => {
                    Metrics::add(&self.metrics.bound, 1);
                    let message = format!(
                        "Successfully assigned {}/{} to {}",
                        info.key.namespace, info.key.name, placement.node
                    );
                    self.recorder
                        .publish(&*info.pod, EventType::Normal, "Scheduled", &message);
                }
                Err(failure) => {
                    Metrics::add(&self.metrics.bind_errors, 1);
                    tracing::info!(pod = %info.key, node = %placement.node, error = %failure.message, "binding failed");
                    self.cache.forget(&info.key, &info.uid);
                    if failure.retry && !self.queue.contains(&info.key) {
                        self.queue.add_backoff(placement.pod, now);
                    }
                }
            }
        }
    }

    /// Leadership lost: placements not yet sent are undone and requeued
    /// (a new leader may place them elsewhere).
    pub fn drop_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let now = Instant::now();
        for placement in std::mem::take(&mut self.pending) {
            self.cache
                .forget(&placement.pod.info.key, &placement.pod.info.uid);
            self.queue.add(placement.pod.info, now);
        }
    }

    /// The periodic retry of long-unschedulable pods.
    pub fn flush_unschedulable(&mut self) {
        let moved = self
            .queue
            .flush_unschedulable(Instant::now(), self.config.unschedulable_retry());
        if moved > 0 {
            tracing::debug!(moved, "retrying unschedulable pods");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pod;

    #[test]
    fn pending_means_unbound_ours_and_alive() {
        let p = pod("a", "1", "1Gi");
        assert!(is_pending_for(&p, "default-scheduler"));
        let mut named = p.clone();
        named.spec.as_mut().unwrap().scheduler_name = "default-scheduler".into();
        assert!(is_pending_for(&named, "default-scheduler"));
        named.spec.as_mut().unwrap().scheduler_name = "other".into();
        assert!(!is_pending_for(&named, "default-scheduler"));
        let mut bound = p.clone();
        bound.spec.as_mut().unwrap().node_name = "n1".into();
        assert!(!is_pending_for(&bound, "default-scheduler"));
        let mut deleting = p.clone();
        deleting.metadata.as_mut().unwrap().deletion_timestamp =
            Some(capstan_proto::timestamp::Time::now());
        assert!(!is_pending_for(&deleting, "default-scheduler"));
        let mut gated = p.clone();
        gated
            .spec
            .as_mut()
            .unwrap()
            .scheduling_gates
            .push(Default::default());
        assert!(!is_pending_for(&gated, "default-scheduler"));
        let mut failed = p;
        failed.status.get_or_insert_with(Default::default).phase = "Failed".into();
        assert!(!is_pending_for(&failed, "default-scheduler"));
    }
}

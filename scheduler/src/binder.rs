//! Committing bindings: the scheduling loop hands over a batch of
//! placements; one task sends them in one `Pods.Bind` call and reports the
//! outcome of each back to the loop, which keeps scheduling meanwhile.

use std::sync::Arc;
use std::time::Instant;

use capstan_client::{Client, pods};
use capstan_proto::rpc::Binding;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::queue::QueuedPod;

/// A pod placed on a node, waiting for its binding.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The pod.
    pub pod: QueuedPod,
    /// The node's name.
    pub node: String,
}

/// Why a binding did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindFailure {
    /// What went wrong.
    pub message: String,
    /// Worth retrying (false when the pod is gone).
    pub retry: bool,
}

impl BindFailure {
    fn of(e: &capstan_client::Error) -> Self {
        Self {
            message: e.to_string(),
            retry: !e.is_not_found(),
        }
    }
}

/// The outcome of one batch.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Each placement with its binding's result; `Err` when refused or
    /// when the whole call failed.
    pub results: Vec<(Placement, Result<(), BindFailure>)>,
}

/// Sends `batch` in one call, in a task; the outcome arrives on `done`.
pub fn spawn_bind(
    client: Client,
    batch: Vec<Placement>,
    metrics: Arc<Metrics>,
    done: mpsc::UnboundedSender<BatchOutcome>,
) {
    tokio::spawn(async move {
        let bindings: Vec<Binding> = batch
            .iter()
            .map(|p| Binding {
                namespace: p.pod.info.key.namespace.clone(),
                name: p.pod.info.key.name.clone(),
                uid: p.pod.info.uid.clone(),
                node_name: p.node.clone(),
            })
            .collect();
        let started = Instant::now();
        let outcome = pods::bind(&client, bindings).await;
        Metrics::add_time(&metrics.bind_nanos, started.elapsed());
        Metrics::add(&metrics.bind_calls, 1);
        let results = match outcome {
            Ok(results) if results.len() == batch.len() => batch
                .into_iter()
                .zip(results)
                .map(|(p, r)| (p, r.map(|_| ()).map_err(|e| BindFailure::of(&e))))
                .collect(),
            Ok(results) => {
                let message = format!(
                    "Pods.Bind answered {} results for {} bindings",
                    results.len(),
                    batch.len()
                );
                batch
                    .into_iter()
                    .map(|p| {
                        let failure = BindFailure {
                            message: message.clone(),
                            retry: true,
                        };
                        (p, Err(failure))
                    })
                    .collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, bindings = batch.len(), "binding call failed");
                let failure = BindFailure::of(&e);
                batch
                    .into_iter()
                    .map(|p| (p, Err(failure.clone())))
                    .collect()
            }
        };
        let _ = done.send(BatchOutcome { results });
    });
}

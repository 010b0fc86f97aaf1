//! Group commit on followers: client transactions that reach a follower
//! while its previous forward to the leader is in flight are forwarded
//! together, as one peer call ([`PeerRequest::ForwardBatch`]).
//!
//! Without it every write taken by a follower costs its own gRPC call to
//! the leader (encode, TLS, HTTP/2 stream, decode on both sides); with two
//! followers in three taking client traffic that was most of the peer
//! traffic. The leader proposes each transaction of a batch through its own
//! proposer, so they join the leader's next log batch and each gets its own
//! result and revision, exactly as if forwarded alone. One forward is in
//! flight per follower; a batch is bounded in count and bytes.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::command::{CommandResult, Txn};
use crate::proposer::{MAX_BATCH_BYTES, size};
use crate::transport::{ForwardError, PeerRequest, PeerResponse, PeerTransport};
use crate::types::{Member, NodeId};

/// Most transactions in one forwarded batch.
const MAX_BATCH: usize = 256;

/// What became of one forwarded transaction.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Handed to the leader: applied there at `log_index` with `result`, or
    /// (error) the outcome is unknown.
    Sent {
        log_index: Option<u64>,
        result: Result<CommandResult, String>,
    },
    /// Certainly not proposed (the receiver was not the leader): retry.
    Retry(String),
}

struct Pending {
    txn: Txn,
    leader: NodeId,
    member: Member,
    reply: oneshot::Sender<Outcome>,
}

/// The forward queue of one replica. The task ends when this is dropped.
pub(crate) struct Forwarder {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Forwarder {
    /// Starts the forwarding task of replica `id`.
    pub(crate) fn start<T: PeerTransport>(id: NodeId, transport: T, timeout: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(id, transport, timeout, rx));
        Self { tx }
    }

    /// Forwards `txn` to `leader` (in the next batch) and waits for the outcome.
    pub(crate) async fn forward(&self, leader: NodeId, member: Member, txn: Txn) -> Outcome {
        let (reply, answer) = oneshot::channel();
        if self
            .tx
            .send(Pending {
                txn,
                leader,
                member,
                reply,
            })
            .is_err()
        {
            return Outcome::Retry("the replica is shutting down".into());
        }
        answer.await.unwrap_or_else(|_| Outcome::Sent {
            log_index: None,
            result: Err("the forwarding task stopped".into()),
        })
    }
}

async fn run<T: PeerTransport>(
    id: NodeId,
    transport: T,
    timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let (leader, member) = (first.leader, first.member.clone());
        let mut bytes = size(&first.txn);
        let mut batch = vec![first];
        // Everything queued for the same leader joins; a write for another
        // leader (leadership just moved) starts the next batch.
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(next) = rx.try_recv() else { break };
            if next.leader != leader {
                carried = Some(next);
                break;
            }
            bytes += size(&next.txn);
            batch.push(next);
        }
        let (txns, replies): (Vec<Txn>, Vec<_>) =
            batch.into_iter().map(|p| (p.txn, p.reply)).unzip();
        let response = transport
            .call(
                id,
                leader,
                &member,
                PeerRequest::ForwardBatch(txns),
                timeout,
            )
            .await;
        let unknown = |reason: String| Outcome::Sent {
            log_index: None,
            result: Err(reason),
        };
        match response {
            // The batch may have reached the leader: outcomes unknown.
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(unknown(e.to_string()));
                }
            }
            Ok(PeerResponse::ForwardBatch(Ok(results))) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(match result {
                        Ok(r) => Outcome::Sent {
                            log_index: r.log_index,
                            result: Ok(r.result),
                        },
                        Err(e) => unknown(e),
                    });
                }
            }
            Ok(PeerResponse::ForwardBatch(Err(ForwardError::NotLeader { leader }))) => {
                for reply in replies {
                    let _ = reply.send(Outcome::Retry(format!(
                        "replica is not the leader (leader hint: {leader:?})"
                    )));
                }
            }
            Ok(other) => {
                let reason = format!("unexpected answer to a forwarded batch: {other:?}");
                for reply in replies {
                    let _ = reply.send(unknown(reason.clone()));
                }
            }
        }
    }
}

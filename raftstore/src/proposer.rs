//! Group commit above Raft: transactions that arrive while a proposal is in
//! flight are proposed together as one log entry.
//!
//! openraft 0.9 issues one log append per client write and waits for its
//! flush before the next one (measured: every WAL sync completed exactly one
//! append), so proposing each transaction on its own costs the leader one
//! fsync per write. The [`Proposer`] keeps one proposal in flight; everything
//! queued meanwhile becomes the next [`Command::Batch`] (bounded in count and
//! bytes). Each transaction of a batch is applied exactly as if proposed
//! alone, with its own revision, and gets its own result.

use tokio::sync::{mpsc, oneshot};

use crate::command::{Command, CommandResult, Op, Txn};
use crate::types::Raft;

/// Most transactions in one batch.
const MAX_BATCH: usize = 512;
/// Stop adding to a batch once its keys and values exceed this many bytes
/// (also the forwarder's bound).
pub(crate) const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// A transaction applied on the leader: its log index and result.
#[derive(Debug)]
pub(crate) struct Proposed {
    pub(crate) log_index: u64,
    pub(crate) result: CommandResult,
}

struct Pending {
    txn: Txn,
    reply: oneshot::Sender<Result<Proposed, String>>,
}

/// The proposal queue of one replica. The task ends when this is dropped.
pub(crate) struct Proposer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    /// Starts the proposal task for `raft`.
    pub(crate) fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Self { tx }
    }

    /// Proposes `txn` (in the next batch) and waits for its result. An error
    /// means the outcome is unknown: the transaction may still commit.
    pub(crate) async fn propose(&self, txn: Txn) -> Result<Proposed, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { txn, reply })
            .map_err(|_| "the replica is shutting down".to_owned())?;
        answer
            .await
            .map_err(|_| "the proposal task stopped".to_owned())?
    }
}

/// Bytes of keys and values a transaction carries (what batches are bounded by).
pub(crate) fn size(txn: &Txn) -> usize {
    let ops = txn.success.iter().chain(&txn.failure).map(|op| match op {
        Op::Put { key, value } => key.len() + value.len(),
        Op::Delete { key } => key.len(),
    });
    txn.compares.iter().map(|c| c.key.len()).chain(ops).sum()
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut bytes = size(&first.txn);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(next) = rx.try_recv() else { break };
            bytes += size(&next.txn);
            batch.push(next);
        }
        let (mut txns, replies): (Vec<Txn>, Vec<_>) =
            batch.into_iter().map(|p| (p.txn, p.reply)).unzip();
        let single = txns.len() == 1;
        let command = if single {
            Command::Txn(txns.remove(0))
        } else {
            Command::Batch(txns)
        };
        match raft.client_write(command).await {
            Ok(resp) => {
                let log_index = resp.log_id.index;
                let results = if single {
                    vec![resp.data]
                } else {
                    resp.data.batch
                };
                debug_assert_eq!(results.len(), replies.len());
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(Proposed { log_index, result }));
                }
            }
            Err(e) => {
                // ForwardToLeader included: openraft also answers it when a new
                // leader truncated the proposed entry, which may still commit
                // elsewhere. The outcome is unknown; never retry blindly.
                let reason = format!("{e}; the write may still commit");
                for reply in replies {
                    let _ = reply.send(Err(reason.clone()));
                }
            }
        }
    }
}

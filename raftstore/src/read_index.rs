//! Batched read-index: concurrent linearizable reads share one round.
//!
//! A linearizable read needs a read index: the leader confirms with a
//! quorum that it still leads (openraft's `get_read_log_id` sends a
//! heartbeat round) and names its commit index; the reader then waits
//! until that index is applied locally. Doing a round per read made 100
//! concurrent readers cost 100 heartbeat rounds (and, on a follower, 100
//! `ReadIndex` peer calls). As etcd does, reads that arrive while a round
//! is in flight wait for the *next* round, which starts after they arrived,
//! so its answer is still a valid read index for each of them; one round
//! serves them all.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::types::LogId;

type Answer = Result<Option<LogId>, String>;

#[derive(Default)]
struct State {
    /// A round is running.
    in_flight: bool,
    /// Reads waiting for the next round.
    waiting: Vec<oneshot::Sender<Answer>>,
}

/// Coalesces read-index requests of one replica.
#[derive(Clone, Default)]
pub(crate) struct ReadIndexer {
    state: Arc<Mutex<State>>,
}

impl ReadIndexer {
    /// The read index for a read that starts now. `round` performs one
    /// read-index round (locally on the leader, or through the leader).
    pub(crate) async fn read_index<F, Fut>(&self, round: F) -> Answer
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().expect("read-index state poisoned");
            state.waiting.push(tx);
            !std::mem::replace(&mut state.in_flight, true)
        };
        if start {
            let state = Arc::clone(&self.state);
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut s = state.lock().expect("read-index state poisoned");
                        if s.waiting.is_empty() {
                            s.in_flight = false;
                            return;
                        }
                        std::mem::take(&mut s.waiting)
                    };
                    let answer = round().await;
                    for waiter in batch {
                        let _ = waiter.send(answer.clone());
                    }
                }
            });
        }
        rx.await
            .unwrap_or_else(|_| Err("the read-index task stopped".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_reads_share_rounds_and_late_reads_wait_for_a_new_one() {
        let indexer = ReadIndexer::default();
        let rounds = Arc::new(AtomicU64::new(0));
        let round = {
            let rounds = Arc::clone(&rounds);
            move || {
                let rounds = Arc::clone(&rounds);
                async move {
                    let n = rounds.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), n)))
                }
            }
        };
        let mut reads = Vec::new();
        for _ in 0..50 {
            let indexer = indexer.clone();
            let round = round.clone();
            reads.push(tokio::spawn(async move { indexer.read_index(round).await }));
        }
        let mut answers = Vec::new();
        for r in reads {
            answers.push(r.await.unwrap().unwrap().unwrap().index);
        }
        let total = rounds.load(Ordering::SeqCst);
        assert!(total <= 2, "50 concurrent reads took {total} rounds");
        // A read issued after a round completed gets a later round.
        let later = indexer.read_index(round).await.unwrap().unwrap().index;
        assert!(later > *answers.iter().max().unwrap());
    }
}

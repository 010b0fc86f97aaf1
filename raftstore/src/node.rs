//! A replica: one member of the Raft group with its RocksDB store.
//!
//! [`Replica`] is what the apiserver holds. It opens the data dir, runs
//! openraft over a [`PeerTransport`], and offers the store's operations with
//! their consistency rules:
//!
//! - [`Replica::write`]: a transaction, acknowledged only once committed on a
//!   quorum (each member fsyncs its log before acknowledging) and applied
//!   here. A follower forwards the write to the leader; the caller does not
//!   notice.
//! - [`Replica::get`] / [`Replica::range`]: linearizable by default through
//!   Raft read-index — the leader confirms its leadership with a quorum round
//!   and names a log index, this replica waits until it has applied that far,
//!   then reads locally. Never a lease read. [`Consistency::Stale`] skips the
//!   round and reads whatever this replica has applied.
//! - [`Replica::watch`]: served from this replica's applied state.
//! - membership: add a learner, promote to voter, remove (on the leader).
//! - auto-compaction: the leader periodically proposes `Compact` so that
//!   history older than the configured window is forgotten on every replica.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, RaftMetrics, ServerState};

use crate::command::{Command, CommandResult, InvalidCommand};
use crate::forwarder::{Forwarder, Outcome};
use crate::grpc::PeerHandler;
use crate::proposer::Proposer;
use crate::read_index::ReadIndexer;
use crate::storage::{
    self, GetResponse, OpenError, RangeRequest, RangeResponse, ReadError, StorageOptions,
    StoreReader, WatchStream,
};
use crate::transport::{ForwardError, Network, PeerRequest, PeerResponse, PeerTransport};
use crate::types::{LogId, Member, NodeId, Raft};

/// How a read may be served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Linearizable: read-index through the leader, then a local read.
    #[default]
    Linearizable,
    /// Whatever this replica has applied; may be stale. Explicit opt-in.
    Stale,
}

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This replica's id.
    pub id: NodeId,
    /// Where its RocksDB lives.
    pub data_dir: PathBuf,
    /// Storage tunables.
    pub storage: StorageOptions,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout range (randomised between the two).
    pub election_timeout: (Duration, Duration),
    /// Build a snapshot after this many log entries since the last one.
    pub snapshot_after_logs: u64,
    /// Log entries kept behind a snapshot for slow followers.
    pub logs_kept_after_snapshot: u64,
    /// Keep this many revisions of history; the leader compacts older ones.
    /// 0 disables auto-compaction.
    pub history_revisions: u64,
    /// How often the leader considers compacting.
    pub compaction_interval: Duration,
    /// How long a write or read may wait for a leader before failing.
    pub request_timeout: Duration,
}

impl ReplicaConfig {
    /// Defaults for replica `id` storing in `data_dir`.
    pub fn new(id: NodeId, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            id,
            data_dir: data_dir.into(),
            storage: StorageOptions::default(),
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(500), Duration::from_millis(1000)),
            snapshot_after_logs: 20_000,
            logs_kept_after_snapshot: 1_000,
            history_revisions: 100_000,
            compaction_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }

    fn raft_config(&self) -> Result<openraft::Config, ReplicaError> {
        let ms = |d: Duration| d.as_millis() as u64;
        let config = openraft::Config {
            cluster_name: "capstan".into(),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_timeout.0),
            election_timeout_max: ms(self.election_timeout.1),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_after_logs),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            max_payload_entries: 256,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| ReplicaError::Config(e.to_string()))
    }
}

/// What can go wrong with a replica operation.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The replica's configuration is invalid.
    #[error("invalid replica configuration: {0}")]
    Config(String),
    /// The data dir could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The command breaks a store limit; nothing was written.
    #[error(transparent)]
    Invalid(#[from] InvalidCommand),
    /// No leader could be reached before the deadline; nothing was written.
    #[error("no leader available: {0}")]
    Unavailable(String),
    /// The write may or may not have been applied (the answer was lost or
    /// the deadline passed after it was handed to a leader).
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
    /// A membership operation was sent to a replica that is not the leader.
    #[error("replica is not the leader; leader is {leader:?}")]
    NotLeader {
        /// The leader this replica knows of.
        leader: Option<NodeId>,
    },
    /// A read failed (compacted revision, future revision, storage error).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// openraft stopped or refused.
    #[error("raft: {0}")]
    Raft(String),
}

struct Inner<T> {
    id: NodeId,
    raft: Raft,
    proposer: Proposer,
    forwarder: Forwarder,
    read_indexer: ReadIndexer,
    reader: StoreReader,
    transport: T,
    config: ReplicaConfig,
}

/// One running replica. Cheap to clone.
pub struct Replica<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Replica<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: PeerTransport> Replica<T> {
    /// Opens the data dir and starts Raft. The replica does nothing until it
    /// is [`initialize`](Self::initialize)d or added to a group by a leader.
    pub async fn open(config: ReplicaConfig, transport: T) -> Result<Self, ReplicaError> {
        let raft_config = Arc::new(config.raft_config()?);
        let dir = config.data_dir.clone();
        let opts = config.storage.clone();
        let (log, sm) = tokio::task::spawn_blocking(move || storage::open(&dir, opts))
            .await
            .map_err(|e| ReplicaError::Raft(format!("open task: {e}")))??;
        let reader = sm.reader();
        let network = Network::new(config.id, transport.clone());
        let raft = Raft::new(config.id, raft_config, network, log, sm)
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))?;
        let replica = Self {
            inner: Arc::new(Inner {
                id: config.id,
                proposer: Proposer::start(raft.clone()),
                read_indexer: ReadIndexer::default(),
                forwarder: Forwarder::start(config.id, transport.clone(), config.request_timeout),
                raft,
                reader,
                transport,
                config,
            }),
        };
        if replica.inner.config.history_revisions > 0 {
            tokio::spawn(auto_compact(Arc::downgrade(&replica.inner)));
        }
        Ok(replica)
    }

    /// Forms a new group of `members` (on a pristine replica). Returns
    /// `Ok(false)` if the replica already belongs to a group.
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, Member>,
    ) -> Result<bool, ReplicaError> {
        if self.raft().is_initialized().await.map_err(raft_err)? {
            return Ok(false);
        }
        match self.raft().initialize(members).await {
            Ok(()) => Ok(true),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(false),
            Err(e) => Err(raft_err(e)),
        }
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The openraft handle (metrics, waits).
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The local read handle (stale reads, watches, revisions).
    pub fn reader(&self) -> &StoreReader {
        &self.inner.reader
    }

    /// A snapshot of the Raft metrics.
    pub fn metrics(&self) -> RaftMetrics<NodeId, Member> {
        self.raft().metrics().borrow().clone()
    }

    /// The leader this replica currently knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft().metrics().borrow().current_leader
    }

    fn leader_member(&self) -> Option<(NodeId, Member)> {
        let m = self.raft().metrics();
        let m = m.borrow();
        let leader = m.current_leader?;
        let member = m.membership_config.membership().get_node(&leader)?.clone();
        Some((leader, member))
    }

    /// The leader to name to a peer that asked the wrong replica (never this one).
    fn leader_hint(&self) -> Option<(NodeId, Member)> {
        self.leader_member().filter(|(id, _)| *id != self.inner.id)
    }

    /// Proposes a command and waits until it is committed and applied here.
    pub async fn write(&self, command: Command) -> Result<CommandResult, ReplicaError> {
        command.validate()?;
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let mut backoff = Duration::from_millis(10);
        let mut last = String::from("no leader elected");
        while Instant::now() < deadline {
            let target = self.leader_member();
            let result = match target {
                Some((leader, _)) if leader == self.inner.id && self.is_leader() => {
                    self.write_local(command.clone(), deadline).await
                }
                Some((leader, _)) if leader == self.inner.id => {
                    Err(Retry("leadership is changing".into()))
                }
                Some((leader, member)) => match &command {
                    Command::Txn(txn) => {
                        self.write_forward_batched(leader, member, txn.clone(), deadline)
                            .await
                    }
                    other => {
                        self.write_forward(leader, &member, other.clone(), deadline)
                            .await
                    }
                },
                None => Err(Retry(last.clone())),
            };
            match result {
                Ok(applied) => return self.settle(applied, deadline).await,
                Err(Retry(reason)) => last = reason,
            }
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
        Err(ReplicaError::Unavailable(last))
    }

    /// After a write was applied on the leader, waits until it is applied
    /// here too, so a read through this replica that follows sees it.
    async fn settle(
        &self,
        applied: Applied,
        deadline: Instant,
    ) -> Result<CommandResult, ReplicaError> {
        let result = applied.result.map_err(ReplicaError::Indeterminate)?;
        if let Some(index) = applied.log_index {
            self.wait_applied(index, deadline).await.map_err(|e| {
                ReplicaError::Indeterminate(format!("committed but not yet applied here: {e}"))
            })?;
        }
        Ok(result)
    }

    async fn write_local(&self, command: Command, deadline: Instant) -> Result<Applied, Retry> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Command::Txn(txn) = command {
            return Ok(
                match tokio::time::timeout(remaining, self.inner.proposer.propose(txn)).await {
                    Err(_) => Applied::unknown("deadline passed before the write committed"),
                    Ok(Ok(p)) => Applied {
                        log_index: Some(p.log_index),
                        result: Ok(p.result),
                    },
                    Ok(Err(reason)) => Applied::unknown(reason),
                },
            );
        }
        match tokio::time::timeout(remaining, self.raft().client_write(command)).await {
            Err(_) => Ok(Applied::unknown(
                "deadline passed before the write committed",
            )),
            Ok(Ok(resp)) => Ok(Applied {
                log_index: Some(resp.log_id.index),
                result: Ok(resp.data),
            }),
            // openraft answers ForwardToLeader both when it refuses a proposal
            // and when a new leader truncated the proposed entry; in the second
            // case a copy may still commit elsewhere, so the outcome is unknown.
            // Retrying here could apply the write twice.
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Ok(Applied::unknown(format!(
                    "leadership moved (to {:?}) after the write was proposed; it may still commit",
                    f.leader_id
                )))
            }
            Ok(Err(e)) => Ok(Applied::unknown(e.to_string())),
        }
    }

    /// Forwards one transaction through the [`Forwarder`] (batched with
    /// others taken meanwhile).
    async fn write_forward_batched(
        &self,
        leader: NodeId,
        member: Member,
        txn: crate::command::Txn,
        deadline: Instant,
    ) -> Result<Applied, Retry> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let forwarded = self.inner.forwarder.forward(leader, member, txn);
        match tokio::time::timeout(remaining, forwarded).await {
            Err(_) => Ok(Applied::unknown(
                "deadline passed while forwarding to the leader",
            )),
            Ok(Outcome::Retry(reason)) => Err(Retry(reason)),
            Ok(Outcome::Sent { log_index, result }) => Ok(Applied { log_index, result }),
        }
    }

    async fn write_forward(
        &self,
        leader: NodeId,
        member: &Member,
        command: Command,
        deadline: Instant,
    ) -> Result<Applied, Retry> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let resp = self
            .inner
            .transport
            .call(
                self.inner.id,
                leader,
                member,
                PeerRequest::Forward(command),
                remaining,
            )
            .await;
        match resp {
            // The request may have reached the leader: the outcome is unknown.
            Err(e) => Ok(Applied::unknown(e.to_string())),
            Ok(PeerResponse::Forward(Ok(result))) => Ok(Applied {
                log_index: result.log_index,
                result: Ok(result.result),
            }),
            Ok(PeerResponse::Forward(Err(ForwardError::NotLeader { leader }))) => {
                Err(Retry(format!("replica {leader:?} is not the leader")))
            }
            Ok(PeerResponse::Forward(Err(ForwardError::Failed(e)))) => Ok(Applied::unknown(e)),
            Ok(other) => Ok(Applied::unknown(format!("unexpected answer {other:?}"))),
        }
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), String> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft()
            .wait(Some(remaining))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Makes a following local read linearizable (no-op for stale reads).
    pub async fn read_barrier(&self, consistency: Consistency) -> Result<(), ReplicaError> {
        if consistency == Consistency::Stale {
            return Ok(());
        }
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let mut backoff = Duration::from_millis(10);
        let mut last = String::from("no leader elected");
        while Instant::now() < deadline {
            let replica = self.clone();
            let round = move || {
                let replica = replica.clone();
                async move { replica.read_index_round().await }
            };
            let index = self.inner.read_indexer.read_index(round).await;
            match index {
                Ok(Some(log_id)) => {
                    return self
                        .wait_applied(log_id.index, deadline)
                        .await
                        .map_err(ReplicaError::Unavailable);
                }
                Ok(None) => return Ok(()),
                Err(reason) => last = reason,
            }
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
        Err(ReplicaError::Unavailable(last))
    }

    /// Confirms leadership with a quorum and returns the read index.
    /// One read-index round: locally on the leader, or through it. Shared
    /// by every read waiting for it, so it has its own timeout.
    async fn read_index_round(&self) -> Result<Option<LogId>, String> {
        match self.leader_member() {
            Some((leader, _)) if leader == self.inner.id => self.read_index_local().await,
            Some((leader, member)) => {
                let remaining = self.inner.config.request_timeout;
                match self
                    .inner
                    .transport
                    .call(
                        self.inner.id,
                        leader,
                        &member,
                        PeerRequest::ReadIndex,
                        remaining,
                    )
                    .await
                {
                    Ok(PeerResponse::ReadIndex(Ok(index))) => Ok(index),
                    Ok(PeerResponse::ReadIndex(Err(e))) => Err(e.to_string()),
                    Ok(other) => Err(format!("unexpected answer {other:?}")),
                    Err(e) => Err(e.to_string()),
                }
            }
            None => Err("no leader elected".to_owned()),
        }
    }

    async fn read_index_local(&self) -> Result<Option<LogId>, String> {
        let (read_log_id, _applied) = self
            .raft()
            .get_read_log_id()
            .await
            .map_err(|e| e.to_string())?;
        Ok(read_log_id)
    }

    /// Reads one key (at `revision`, or the current one).
    pub async fn get(
        &self,
        key: &[u8],
        revision: Option<u64>,
        consistency: Consistency,
    ) -> Result<GetResponse, ReplicaError> {
        self.read_barrier(consistency).await?;
        Ok(self.reader().get(key, revision)?)
    }

    /// Reads a range of keys by prefix, with limit and continue token.
    pub async fn range(
        &self,
        req: &RangeRequest,
        consistency: Consistency,
    ) -> Result<RangeResponse, ReplicaError> {
        self.read_barrier(consistency).await?;
        Ok(self.reader().range(req)?)
    }

    /// Watches keys under `prefix` from `from_revision` (0: from now on).
    pub fn watch(&self, from_revision: u64, prefix: Bytes) -> Result<WatchStream, ReplicaError> {
        Ok(self.reader().watch(from_revision, prefix)?)
    }

    /// Forgets history before `revision` on every replica.
    pub async fn compact(&self, revision: u64) -> Result<CommandResult, ReplicaError> {
        self.write(Command::Compact { revision }).await
    }

    fn require_leader(&self) -> Result<(), ReplicaError> {
        match self.leader() {
            Some(l) if l == self.inner.id => Ok(()),
            leader => Err(ReplicaError::NotLeader { leader }),
        }
    }

    /// Adds a learner and waits until it has caught up (leader only).
    pub async fn add_learner(&self, id: NodeId, member: Member) -> Result<(), ReplicaError> {
        self.require_leader()?;
        self.raft()
            .add_learner(id, member, true)
            .await
            .map_err(raft_err)?;
        Ok(())
    }

    /// Promotes learners to voters (leader only).
    pub async fn promote(&self, ids: BTreeSet<NodeId>) -> Result<(), ReplicaError> {
        self.require_leader()?;
        self.raft()
            .change_membership(ChangeMembers::AddVoterIds(ids), false)
            .await
            .map_err(raft_err)?;
        Ok(())
    }

    /// Removes a member (voter or learner) from the group (leader only).
    pub async fn remove(&self, id: NodeId) -> Result<(), ReplicaError> {
        self.require_leader()?;
        let ids = BTreeSet::from([id]);
        self.raft()
            .change_membership(ChangeMembers::RemoveVoters(ids.clone()), false)
            .await
            .map_err(raft_err)?;
        let m = self.metrics();
        if m.membership_config.membership().get_node(&id).is_some() {
            self.raft()
                .change_membership(ChangeMembers::RemoveNodes(ids), false)
                .await
                .map_err(raft_err)?;
        }
        Ok(())
    }

    /// Whether this replica is the leader right now (by its own metrics).
    pub fn is_leader(&self) -> bool {
        self.raft().metrics().borrow().state == ServerState::Leader
    }

    /// Stops Raft. The data dir stays consistent and can be reopened.
    pub async fn shutdown(&self) -> Result<(), ReplicaError> {
        self.raft()
            .shutdown()
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))
    }
}

/// A write handed to a leader: applied with this result, or unknown.
struct Applied {
    /// The log index at which it was applied on the leader.
    log_index: Option<u64>,
    result: Result<CommandResult, String>,
}

impl Applied {
    fn unknown(reason: impl Into<String>) -> Self {
        Self {
            log_index: None,
            result: Err(reason.into()),
        }
    }
}

/// The write certainly did not happen; try again (maybe elsewhere).
struct Retry(String);

fn raft_err<E: std::fmt::Display>(e: E) -> ReplicaError {
    ReplicaError::Raft(e.to_string())
}

/// The leader's periodic compaction: keep `history_revisions` revisions.
async fn auto_compact<T: PeerTransport>(inner: std::sync::Weak<Inner<T>>) {
    let interval = match inner.upgrade() {
        Some(i) => i.config.compaction_interval,
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        let replica = Replica { inner };
        if !replica.is_leader() {
            continue;
        }
        let (Ok(current), Ok(compacted)) = (
            replica.reader().current_revision(),
            replica.reader().compacted_revision(),
        ) else {
            continue;
        };
        let keep = replica.inner.config.history_revisions;
        let target = current.saturating_sub(keep);
        if target > compacted
            && let Err(e) = replica.compact(target).await
        {
            tracing::warn!(error = %e, target, "auto-compaction failed");
        }
    }
}

/// A forwarded write's result with the log index it was applied at, so the
/// forwarding replica can wait to apply it too before answering.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ForwardedResult {
    /// The log index of the write on the leader.
    pub log_index: Option<u64>,
    /// What applying it returned.
    pub result: CommandResult,
}

impl<T: PeerTransport> PeerHandler for Replica<T> {
    async fn handle(&self, _from: NodeId, req: PeerRequest) -> PeerResponse {
        let raft = self.raft();
        match req {
            PeerRequest::AppendEntries(r) => {
                PeerResponse::AppendEntries(raft.append_entries(r).await)
            }
            PeerRequest::Vote(r) => PeerResponse::Vote(raft.vote(r).await),
            PeerRequest::InstallSnapshot(r) => {
                PeerResponse::InstallSnapshot(raft.install_snapshot(r).await)
            }
            PeerRequest::Forward(command) => {
                // Only a replica that believes it leads proposes; otherwise the
                // sender may safely retry elsewhere (nothing was proposed).
                if !self.is_leader() {
                    return PeerResponse::Forward(Err(ForwardError::NotLeader {
                        leader: self.leader_hint(),
                    }));
                }
                let written = match command {
                    Command::Txn(txn) => self
                        .inner
                        .proposer
                        .propose(txn)
                        .await
                        .map(|p| (p.log_index, p.result)),
                    other => raft
                        .client_write(other)
                        .await
                        .map(|resp| (resp.log_id.index, resp.data))
                        .map_err(|e| e.to_string()),
                };
                let result = match written {
                    Ok((log_index, result)) => Ok(ForwardedResult {
                        log_index: Some(log_index),
                        result,
                    }),
                    // Proposed, then refused or truncated: the outcome is unknown
                    // (see `write_local`), so the sender must not retry.
                    Err(e) => Err(ForwardError::Failed(e)),
                };
                PeerResponse::Forward(result)
            }
            PeerRequest::ForwardBatch(txns) => {
                if !self.is_leader() {
                    return PeerResponse::ForwardBatch(Err(ForwardError::NotLeader {
                        leader: self.leader_hint(),
                    }));
                }
                // Each joins the proposer's queue now, so they share the
                // leader's next log batch; answers come back in order.
                let proposals = txns.into_iter().map(|txn| self.inner.proposer.propose(txn));
                let results = futures::future::join_all(proposals)
                    .await
                    .into_iter()
                    .map(|r| {
                        r.map(|p| ForwardedResult {
                            log_index: Some(p.log_index),
                            result: p.result,
                        })
                    })
                    .collect();
                PeerResponse::ForwardBatch(Ok(results))
            }
            PeerRequest::ReadIndex => {
                let result = match raft.get_read_log_id().await {
                    Ok((read_log_id, _)) => Ok(read_log_id),
                    Err(RaftError::APIError(e)) => Err(ForwardError::NotLeader {
                        leader: self.leader_hint(),
                    })
                    .inspect_err(|_| tracing::debug!(error = %e, "read index refused")),
                    Err(e) => Err(ForwardError::Failed(e.to_string())),
                };
                PeerResponse::ReadIndex(result)
            }
        }
    }
}

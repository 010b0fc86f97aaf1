//! The Raft peer protocol, independent of how bytes travel.
//!
//! Replicas talk to each other with [`PeerRequest`]s: openraft's three RPCs,
//! plus two of Capstan's own — a client write forwarded by a follower to the
//! leader, and a read-index request with which a follower serves a
//! linearizable read. A [`PeerTransport`] delivers a request to a target
//! replica and returns its [`PeerResponse`]; the production transport is gRPC
//! over mutual TLS (`grpc`), tests use an in-process router that can
//! partition, drop and delay messages. [`Network`] adapts any transport to
//! openraft's `RaftNetworkFactory`.

use std::future::Future;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::command::{Command, Txn};
use crate::node::ForwardedResult;
use crate::types::{LogId, Member, NodeId, TypeConfig};

/// A message from one replica to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// openraft AppendEntries (also the heartbeat).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// openraft RequestVote.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client write, forwarded to the replica believed to be the leader.
    Forward(Command),
    /// Transactions a follower collected while its previous forward was in
    /// flight, forwarded together; each is proposed (and answered) on its
    /// own, as if forwarded alone.
    ForwardBatch(Vec<Txn>),
    /// Asks the leader for a log id up to which a follower must apply before
    /// serving a linearizable read (Raft read-index; never a lease).
    ReadIndex,
}

/// The answer to a [`PeerRequest`], variant for variant.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    /// Answer to AppendEntries.
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to RequestVote.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to a snapshot chunk.
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// Outcome of a forwarded write.
    Forward(Result<ForwardedResult, ForwardError>),
    /// Outcome of each transaction of a forwarded batch, in order (an error
    /// string: that transaction's outcome is unknown), or why none was
    /// proposed.
    ForwardBatch(Result<Vec<Result<ForwardedResult, String>>, ForwardError>),
    /// The read index: the log id to apply up to before reading.
    ReadIndex(Result<Option<LogId>, ForwardError>),
}

/// Why the receiving replica could not serve a forwarded write or read index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    /// The receiver is not the leader; it names the leader it knows of, if any.
    #[error("replica is not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader the receiver believes in.
        leader: Option<(NodeId, Member)>,
    },
    /// The receiver failed for another reason; the write's outcome is unknown.
    #[error("{0}")]
    Failed(String),
}

/// The request could not be delivered or its answer was lost. For a
/// forwarded write this means the outcome is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("replica {target} unreachable: {reason}")]
pub struct Unavailable {
    /// The replica that was addressed.
    pub target: NodeId,
    /// What failed.
    pub reason: String,
}

/// Delivers peer requests. Implementations must be cheap to clone.
pub trait PeerTransport: Clone + Send + Sync + 'static {
    /// Sends `req` from replica `from` to replica `target` (reachable at
    /// `member`) and waits at most `timeout` for the answer.
    fn call(
        &self,
        from: NodeId,
        target: NodeId,
        member: &Member,
        req: PeerRequest,
        timeout: Duration,
    ) -> impl Future<Output = Result<PeerResponse, Unavailable>> + Send;
}

/// openraft's network factory over a [`PeerTransport`].
#[derive(Clone)]
pub struct Network<T> {
    from: NodeId,
    transport: T,
}

impl<T: PeerTransport> Network<T> {
    /// A factory for replica `from`.
    pub fn new(from: NodeId, transport: T) -> Self {
        Self { from, transport }
    }
}

/// A connection to one target replica (connectionless: each call is sent
/// through the transport, which keeps its own channels).
pub struct Connection<T> {
    from: NodeId,
    target: NodeId,
    member: Member,
    transport: T,
}

impl<T: PeerTransport> RaftNetworkFactory<TypeConfig> for Network<T> {
    type Network = Connection<T>;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Self::Network {
        Connection {
            from: self.from,
            target,
            member: node.clone(),
            transport: self.transport.clone(),
        }
    }
}

type RpcResult<R, E> = Result<R, RPCError<NodeId, Member, E>>;

impl<T: PeerTransport> Connection<T> {
    async fn send(
        &self,
        req: PeerRequest,
        option: &RPCOption,
    ) -> Result<PeerResponse, Unreachable> {
        self.transport
            .call(self.from, self.target, &self.member, req, option.hard_ttl())
            .await
            .map_err(|e| Unreachable::new(&e))
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RemoteError<NodeId, Member, E> {
        RemoteError::new_with_node(self.target, self.member.clone(), e)
    }
}

fn mismatched<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, Member, E> {
    let e = std::io::Error::other(format!("replica {target} answered a different request"));
    RPCError::Network(NetworkError::new(&e))
}

impl<T: PeerTransport> RaftNetwork<TypeConfig> for Connection<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        match self.send(PeerRequest::AppendEntries(rpc), &option).await? {
            PeerResponse::AppendEntries(r) => r.map_err(|e| self.remote(e).into()),
            _ => Err(mismatched(self.target)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self
            .send(PeerRequest::InstallSnapshot(rpc), &option)
            .await?
        {
            PeerResponse::InstallSnapshot(r) => r.map_err(|e| self.remote(e).into()),
            _ => Err(mismatched(self.target)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        match self.send(PeerRequest::Vote(rpc), &option).await? {
            PeerResponse::Vote(r) => r.map_err(|e| self.remote(e).into()),
            _ => Err(mismatched(self.target)),
        }
    }
}

/// Encodes a peer message for the wire.
pub fn encode<M: Serialize>(msg: &M) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(msg)
}

/// Decodes a peer message from the wire.
pub fn decode<'a, M: Deserialize<'a>>(bytes: &'a [u8]) -> Result<M, postcard::Error> {
    postcard::from_bytes(bytes)
}

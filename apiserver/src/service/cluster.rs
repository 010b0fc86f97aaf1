//! The `Cluster` service: the replicas, membership changes, and whoami.
//!
//! `Members` answers from this replica's view: the leader knows every
//! member's replication progress (its `commitIndex` is the quorum-matched
//! index, a member is healthy when it is within [`HEALTHY_LAG`] entries of
//! the leader's log); a follower knows only itself, reports its applied
//! index as a lower bound of the commit index, and reports the others as
//! not known healthy — ask the leader for the whole picture.
//! `AddMember`/`RemoveMember` need `system:masters` and the leader.

use std::collections::BTreeSet;
use std::sync::Arc;

use capstan_proto::rpc::cluster_server::Cluster;
use capstan_proto::rpc::{
    AddMemberRequest, Member as MemberInfo, MembersRequest, MembersResponse, RemoveMemberRequest,
    WhoAmIRequest, WhoAmIResponse,
};
use capstan_raftstore::node::Replica;
use capstan_raftstore::transport::PeerTransport;
use capstan_raftstore::types::Member;
use openraft::ServerState;
use tonic::{Request, Response, Status};

use super::Api;
use super::errors::ApiError;
use crate::auth::User;
use crate::metrics::RaftSnapshot;

/// Log entries a member may lag behind the leader and still be healthy.
pub const HEALTHY_LAG: u64 = 1000;

/// The `Cluster` gRPC service of one replica.
pub struct ClusterService<T> {
    api: Arc<Api<T>>,
}

impl<T> ClusterService<T> {
    /// The service over shared replica state.
    pub fn new(api: Arc<Api<T>>) -> Self {
        Self { api }
    }

    /// The authenticated caller of `request`.
    fn caller<R>(&self, request: &Request<R>) -> Result<User, Status> {
        Ok(self
            .api
            .authenticator
            .authenticate(request)
            .map_err(ApiError::unauthorized)?)
    }
}

/// The Raft figures of `replica` for `/metrics` and `Members`.
pub fn raft_snapshot<T: PeerTransport>(replica: &Replica<T>) -> RaftSnapshot {
    let metrics = replica.raft().metrics();
    let m = metrics.borrow();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let commit = quorum_matched(&m).unwrap_or(applied);
    let reader = replica.reader();
    RaftSnapshot {
        term: m.current_term,
        leader: m.current_leader.unwrap_or(0),
        is_leader: m.state == ServerState::Leader,
        commit_index: commit.max(applied),
        applied_index: applied,
        revision: reader.current_revision().unwrap_or(0),
        compacted_revision: reader.compacted_revision().unwrap_or(0),
        store_size_bytes: 0,
    }
}

/// On the leader: the highest index matched by a majority of voters.
fn quorum_matched(m: &openraft::RaftMetrics<u64, Member>) -> Option<u64> {
    let replication = m.replication.as_ref()?;
    let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let mut matched: Vec<u64> = voters
        .iter()
        .map(|id| {
            if *id == m.id {
                m.last_log_index.unwrap_or(0)
            } else {
                replication
                    .get(id)
                    .and_then(|l| l.as_ref())
                    .map_or(0, |l| l.index)
            }
        })
        .collect();
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched.get(voters.len() / 2).copied()
}

fn members<T: PeerTransport>(replica: &Replica<T>) -> MembersResponse {
    let snapshot = raft_snapshot(replica);
    let metrics = replica.raft().metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let last_log = m.last_log_index.unwrap_or(0);
    let mut out = Vec::new();
    for (id, node) in membership.nodes() {
        let role = if Some(*id) == m.current_leader {
            "leader"
        } else if voters.contains(id) {
            "follower"
        } else {
            "learner"
        };
        let (matched, healthy) = if *id == m.id {
            (snapshot.applied_index, m.current_leader.is_some())
        } else if let Some(replication) = &m.replication {
            let matched = replication
                .get(id)
                .and_then(|l| l.as_ref())
                .map_or(0, |l| l.index);
            (
                matched,
                last_log.saturating_sub(matched) <= HEALTHY_LAG && matched > 0,
            )
        } else {
            (0, false)
        };
        out.push(MemberInfo {
            id: *id,
            role: role.into(),
            client_address: node.client_addr.clone(),
            peer_address: node.peer_addr.clone(),
            term: m.current_term,
            commit_index: if *id == m.id {
                snapshot.commit_index
            } else {
                matched.min(snapshot.commit_index)
            },
            applied_index: matched,
            healthy,
        });
    }
    MembersResponse {
        members: out,
        answered_by: m.id,
        leader: m.current_leader.unwrap_or(0),
    }
}

fn require_master(user: &User) -> Result<(), ApiError> {
    if user.in_group(capstan_pki::bootstrap::MASTERS_GROUP) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "User {:?} cannot change cluster membership: only {} may",
            user.name,
            capstan_pki::bootstrap::MASTERS_GROUP
        )))
    }
}

fn membership_error(e: capstan_raftstore::node::ReplicaError) -> Status {
    match e {
        capstan_raftstore::node::ReplicaError::NotLeader { leader } => {
            ApiError::unavailable(format!(
                "membership changes go to the leader; this replica is not it (leader: {leader:?})"
            ))
            .into()
        }
        other => ApiError::internal(other.to_string()).into(),
    }
}

#[tonic::async_trait]
impl<T: PeerTransport> Cluster for ClusterService<T> {
    async fn members(
        &self,
        request: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        self.caller(&request)?;
        Ok(Response::new(members(self.api.store.replica())))
    }

    async fn add_member(
        &self,
        request: Request<AddMemberRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let user = self.caller(&request)?;
        require_master(&user)?;
        let r = request.into_inner();
        if r.id == 0 || r.client_address.is_empty() || r.peer_address.is_empty() {
            return Err(
                ApiError::bad_request("id, clientAddress and peerAddress are required").into(),
            );
        }
        let replica = self.api.store.replica();
        replica
            .add_learner(
                r.id,
                Member {
                    peer_addr: r.peer_address,
                    client_addr: r.client_address,
                },
            )
            .await
            .map_err(membership_error)?;
        if !r.learner {
            replica
                .promote(BTreeSet::from([r.id]))
                .await
                .map_err(membership_error)?;
        }
        Ok(Response::new(members(replica)))
    }

    async fn remove_member(
        &self,
        request: Request<RemoveMemberRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let user = self.caller(&request)?;
        require_master(&user)?;
        let replica = self.api.store.replica();
        replica
            .remove(request.into_inner().id)
            .await
            .map_err(membership_error)?;
        Ok(Response::new(members(replica)))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let user = self.caller(&request)?;
        Ok(Response::new(WhoAmIResponse {
            user: user.name,
            groups: user.groups,
        }))
    }
}

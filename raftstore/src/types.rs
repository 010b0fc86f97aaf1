//! The openraft type configuration and the identity of a replica.
//!
//! Every replica is a Raft member with a numeric [`NodeId`] and a [`Member`]
//! record that says where its peers reach it (the Raft peer port) and where
//! clients reach it (the API port). The membership, and therefore these
//! addresses, is itself replicated through the log.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandResult};

/// A replica's identity in the Raft group. Never reused for another replica.
pub type NodeId = u64;

/// Where one replica listens. Stored in the replicated membership config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `host:port` of the Raft peer listener (gRPC over mutual TLS).
    pub peer_addr: String,
    /// `host:port` of the client API listener, for redirects and `cluster members`.
    pub client_addr: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer={} client={}", self.peer_addr, self.client_addr)
    }
}

openraft::declare_raft_types!(
    /// Capstan's openraft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The openraft handle with Capstan's types.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log id with Capstan's node id type.
pub type LogId = openraft::LogId<NodeId>;
/// A storage error with Capstan's node id type.
pub type StorageError = openraft::StorageError<NodeId>;
/// A log entry with Capstan's types.
pub type Entry = openraft::Entry<TypeConfig>;
/// A membership record as stored by the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
/// A snapshot with Capstan's types.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// Snapshot metadata with Capstan's types.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
/// A vote with Capstan's node id type.
pub type Vote = openraft::Vote<NodeId>;

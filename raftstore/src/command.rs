//! What goes through the Raft log: small transactions over the MVCC key space,
//! and compaction of its history.
//!
//! A transaction is etcd's: a list of [`Compare`]s; if all hold, the
//! `success` operations are applied, otherwise the `failure` operations. A
//! transaction that writes anything creates exactly one new store revision,
//! shared by all its writes (so a watcher sees them together). A transaction
//! that writes nothing (a failed compare with no `failure` ops) leaves the
//! revision unchanged, as in etcd.
//!
//! Keys are arbitrary bytes except that they must be non-empty and must not
//! contain a NUL byte (the on-disk encoding relies on it, see `mvcc`). Values
//! are at most [`MAX_VALUE_BYTES`] bytes, etcd's default request limit.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Largest value accepted in a put: 1.5 MiB, as etcd's `--max-request-bytes`.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// A command replicated through the Raft log and applied to every replica's
/// state machine in log order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A conditional multi-key write.
    Txn(Txn),
    /// Several independent transactions proposed as one log entry (group
    /// commit above Raft). Applied in order, each exactly as if proposed on
    /// its own — each writing transaction gets its own revision — and the
    /// result's `batch` holds one result per transaction.
    Batch(Vec<Txn>),
    /// Forget history (old versions and watch events) older than `revision`.
    /// Reads and watches at revisions below it then fail with `Expired`.
    Compact {
        /// The new compacted revision; must not exceed the current revision.
        revision: u64,
    },
}

/// An etcd-style transaction: if every compare holds, apply `success`, else `failure`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Conditions evaluated against the state before this transaction.
    pub compares: Vec<Compare>,
    /// Applied when every compare holds.
    pub success: Vec<Op>,
    /// Applied when any compare fails.
    pub failure: Vec<Op>,
}

/// A condition on one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The key the condition is about.
    pub key: Bytes,
    /// What must be true of it.
    pub condition: Condition,
}

/// What a [`Compare`] checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// The key does not exist (create-if-absent).
    Absent,
    /// The key exists.
    Present,
    /// The key exists and was last modified at exactly this revision
    /// (compare-and-swap on resourceVersion).
    ModRevision(u64),
    /// The key exists and holds exactly this value.
    Value(Bytes),
}

/// A write inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Create or replace the value of a key.
    Put {
        /// The key.
        key: Bytes,
        /// The new value, at most [`MAX_VALUE_BYTES`].
        value: Bytes,
    },
    /// Delete a key; deleting an absent key is a no-op that writes nothing.
    Delete {
        /// The key.
        key: Bytes,
    },
}

/// One version of one key, as stored and as returned by reads and watches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: Bytes,
    /// The value (empty in a delete event).
    pub value: Bytes,
    /// Revision at which the key was created (since its last deletion).
    pub create_revision: u64,
    /// Revision of the last modification (for a delete event: the deletion revision).
    pub mod_revision: u64,
    /// Number of modifications since creation, 1 for a fresh key, 0 after a delete.
    pub version: u64,
}

/// The outcome of one applied [`Command`], returned to the proposer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// Whether every compare held (always true for `Compact`).
    pub succeeded: bool,
    /// The store revision after this command: the revision of its writes if it
    /// wrote anything, otherwise the unchanged current revision.
    pub revision: u64,
    /// For each executed op, the key's previous version, if it existed.
    pub prev_kvs: Vec<Option<KeyValue>>,
    /// Set when the command was rejected by the state machine without effect
    /// (e.g. compacting to a future revision); every replica rejects it alike.
    pub error: Option<String>,
    /// For a [`Command::Batch`]: one result per transaction, in order.
    #[serde(default)]
    pub batch: Vec<CommandResult>,
}

/// Why a command is refused before it is proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCommand {
    /// A put's value exceeds [`MAX_VALUE_BYTES`].
    #[error("value for key {key:?} is {size} bytes, over the limit of {MAX_VALUE_BYTES} bytes")]
    ValueTooLarge {
        /// The key, lossily decoded.
        key: String,
        /// The value's size.
        size: usize,
    },
    /// A key is empty or contains a NUL byte.
    #[error("invalid key {key:?}: keys must be non-empty and contain no NUL byte")]
    BadKey {
        /// The key, lossily decoded.
        key: String,
    },
}

impl Command {
    /// Checks the limits every replica relies on; called before proposing.
    pub fn validate(&self) -> Result<(), InvalidCommand> {
        match self {
            Command::Txn(txn) => validate_txn(txn),
            Command::Batch(txns) => txns.iter().try_for_each(validate_txn),
            Command::Compact { .. } => Ok(()),
        }
    }
}

fn validate_txn(txn: &Txn) -> Result<(), InvalidCommand> {
    let keys = txn
        .compares
        .iter()
        .map(|c| &c.key)
        .chain(txn.success.iter().chain(&txn.failure).map(Op::key));
    for key in keys {
        if key.is_empty() || key.contains(&0) {
            return Err(InvalidCommand::BadKey {
                key: String::from_utf8_lossy(key).into_owned(),
            });
        }
    }
    for op in txn.success.iter().chain(&txn.failure) {
        if let Op::Put { key, value } = op
            && value.len() > MAX_VALUE_BYTES
        {
            return Err(InvalidCommand::ValueTooLarge {
                key: String::from_utf8_lossy(key).into_owned(),
                size: value.len(),
            });
        }
    }
    Ok(())
}

impl Op {
    /// The key this op writes.
    pub fn key(&self) -> &Bytes {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Txn(t) => write!(
                f,
                "txn(compares={}, success={}, failure={})",
                t.compares.len(),
                t.success.len(),
                t.failure.len()
            ),
            Command::Batch(txns) => write!(f, "batch({} txns)", txns.len()),
            Command::Compact { revision } => write!(f, "compact({revision})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_oversized_values_and_bad_keys() {
        let big = Command::Txn(Txn {
            success: vec![Op::Put {
                key: Bytes::from_static(b"/a"),
                value: Bytes::from(vec![0u8; MAX_VALUE_BYTES + 1]),
            }],
            ..Txn::default()
        });
        assert!(matches!(
            big.validate(),
            Err(InvalidCommand::ValueTooLarge { size, .. }) if size == MAX_VALUE_BYTES + 1
        ));
        let at_limit = Command::Txn(Txn {
            success: vec![Op::Put {
                key: Bytes::from_static(b"/a"),
                value: Bytes::from(vec![0u8; MAX_VALUE_BYTES]),
            }],
            ..Txn::default()
        });
        assert_eq!(at_limit.validate(), Ok(()));
        let nul = Command::Txn(Txn {
            compares: vec![Compare {
                key: Bytes::from_static(b"/a\0b"),
                condition: Condition::Absent,
            }],
            ..Txn::default()
        });
        assert!(matches!(nul.validate(), Err(InvalidCommand::BadKey { .. })));
        let empty = Command::Txn(Txn {
            failure: vec![Op::Delete { key: Bytes::new() }],
            ..Txn::default()
        });
        assert!(matches!(
            empty.validate(),
            Err(InvalidCommand::BadKey { .. })
        ));
    }
}

//! RocksDB storage: the Raft log store and the MVCC state machine.
//!
//! [`open`] opens (or initialises) a data dir and returns the two halves
//! openraft needs. Both share one RocksDB instance (one WAL), laid out as
//! described in `keys`. The state machine is etcd's MVCC key space: one global
//! revision, every version of every key kept until compacted, watch history per
//! revision. Reads and watches go through a [`StoreReader`] taken from the
//! state machine before it is handed to openraft.
//!
//! Layout:
//! - `keys`: column families and key encodings.
//! - `mvcc`: the transaction rules, without IO.
//! - `db`: the shared handle and snapshot-pinned views.
//! - `log_store`: openraft's `RaftLogStorage`.
//! - `state_machine`: openraft's `RaftStateMachine` (apply in batches).
//! - `compact`: forgetting old history.
//! - `read`: gets and paginated ranges at any retained revision.
//! - `watch`: fan-out of applied revisions to bounded watchers.
//! - `snapshot`: building, installing and persisting snapshots.
//! - `open`: opening a data dir and refusing damaged ones.

mod compact;
mod db;
mod error;
mod keys;
mod log_store;
mod mvcc;
mod open;
mod read;
mod snapshot;
mod state_machine;
mod watch;

#[cfg(test)]
mod tests;

pub use error::{OpenError, ReadError, WatchError};
pub use log_store::LogStore;
pub use open::open;
pub use read::{ContinueToken, GetResponse, RangeRequest, RangeResponse, StoreReader};
pub use snapshot::SnapshotBuilder;
pub use state_machine::StateMachineStore;
pub use watch::{Event, EventKind, RevisionEvents, WatchStream};

/// Tunables of [`open`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct StorageOptions {
    /// How many live revisions the watch ring holds; a watcher further
    /// behind catches up from the database instead. Default 1024.
    pub watch_queue: usize,
    /// Read and check every stored byte at open (RocksDB block checksums and
    /// decoding of every record). Default true; costs one full scan.
    pub verify_on_open: bool,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            watch_queue: 1024,
            verify_on_open: true,
        }
    }
}

impl StorageOptions {
    /// Checks the options; `open` refuses invalid ones.
    pub fn validate(&self) -> Result<(), String> {
        if self.watch_queue == 0 {
            return Err("watch-queue must be at least 1".into());
        }
        Ok(())
    }
}

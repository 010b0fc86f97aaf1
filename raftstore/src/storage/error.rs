//! Typed errors of the storage layer: opening a data dir, reading the key
//! space, and watching it.

use std::path::PathBuf;

use openraft::{AnyError, StorageIOError};

use crate::types::StorageError;

/// Why [`super::open`] refused a data dir. Every variant names the dir.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The dir holds something other than a Capstan store.
    #[error("{dir}: not a Capstan store: {reason}")]
    NotAStore {
        /// The data dir.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The store was written in a format this build does not read.
    #[error("{dir}: unsupported store format {found:?}, this build reads {expected:?}")]
    Format {
        /// The data dir.
        dir: PathBuf,
        /// The marker found.
        found: String,
        /// The marker this build writes.
        expected: String,
    },
    /// RocksDB refused to open the database (missing or damaged files,
    /// checksum mismatch, …).
    #[error("{dir}: cannot open the database: {source}")]
    Database {
        /// The data dir.
        dir: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The database opened but its content is inconsistent or undecodable.
    #[error("{dir}: the store is corrupt: {problem}")]
    Corrupt {
        /// The data dir.
        dir: PathBuf,
        /// What was found wrong.
        problem: String,
    },
    /// The [`super::StorageOptions`] are invalid.
    #[error("{dir}: invalid storage options: {problem}")]
    Options {
        /// The data dir.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A filesystem operation failed.
    #[error("{dir}: {what}: {source}")]
    Io {
        /// The data dir.
        dir: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Why a read (get, range, watch start) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted (compacted revision is {compacted})")]
    Expired {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision still readable.
        compacted: u64,
    },
    /// The requested revision is newer than anything applied here.
    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: u64,
        /// The current revision of this replica.
        current: u64,
    },
    /// The store has been shut down.
    #[error("the store is closed")]
    Closed,
    /// RocksDB failed or returned undecodable data.
    #[error("storage error: {0}")]
    Storage(String),
}

/// Why a watch stream ended. After any of these the watcher must relist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The next revision the watcher needs was compacted away (for instance
    /// while it replayed history, or by an installed snapshot).
    #[error("revision {requested} has been compacted (compacted revision is {compacted}); relist")]
    Expired {
        /// The next revision the watcher needed.
        requested: u64,
        /// The oldest revision still available.
        compacted: u64,
    },
    /// The store's state was replaced by one that does not continue this
    /// watcher's history.
    #[error("store state replaced by a snapshot that does not continue this watch: {0}; relist")]
    Reset(String),
    /// RocksDB failed or returned undecodable data.
    #[error("storage error: {0}")]
    Storage(String),
}

impl From<ReadError> for WatchError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Expired {
                requested,
                compacted,
            } => WatchError::Expired {
                requested,
                compacted,
            },
            other => WatchError::Storage(other.to_string()),
        }
    }
}

/// Internal failure of a storage operation, before it is mapped to
/// openraft's [`StorageError`] or to [`ReadError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    /// RocksDB returned an error.
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    /// A stored value did not decode.
    #[error("undecodable {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// postcard's error.
        source: postcard::Error,
    },
    /// Stored data contradicts itself.
    #[error("{0}")]
    Invalid(String),
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Fault {
    /// As an openraft error about reading the log.
    pub(crate) fn read_logs(&self) -> StorageError {
        StorageIOError::read_logs(AnyError::new(self)).into()
    }
    /// As an openraft error about writing the log.
    pub(crate) fn write_logs(&self) -> StorageError {
        StorageIOError::write_logs(AnyError::new(self)).into()
    }
    /// As an openraft error about reading the vote.
    pub(crate) fn read_vote(&self) -> StorageError {
        StorageIOError::read_vote(AnyError::new(self)).into()
    }
    /// As an openraft error about writing the vote.
    pub(crate) fn write_vote(&self) -> StorageError {
        StorageIOError::write_vote(AnyError::new(self)).into()
    }
    /// As an openraft error about reading the state machine.
    pub(crate) fn read_sm(&self) -> StorageError {
        StorageIOError::read_state_machine(AnyError::new(self)).into()
    }
    /// As an openraft error about writing the state machine.
    pub(crate) fn write_sm(&self) -> StorageError {
        StorageIOError::write_state_machine(AnyError::new(self)).into()
    }
    /// As an openraft error about reading a snapshot.
    pub(crate) fn read_snapshot(&self) -> StorageError {
        StorageIOError::read_snapshot(None, AnyError::new(self)).into()
    }
    /// As an openraft error about writing a snapshot.
    pub(crate) fn write_snapshot(&self) -> StorageError {
        StorageIOError::write_snapshot(None, AnyError::new(self)).into()
    }
}

impl From<Fault> for ReadError {
    fn from(f: Fault) -> Self {
        ReadError::Storage(f.to_string())
    }
}

impl From<rocksdb::Error> for ReadError {
    fn from(e: rocksdb::Error) -> Self {
        ReadError::Storage(e.to_string())
    }
}

/// Decodes a postcard value, naming it on failure.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, Fault> {
    postcard::from_bytes(bytes).map_err(|source| Fault::Decode { what, source })
}

/// Encodes a value with postcard. Encoding our own types into a `Vec` cannot fail.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("postcard encoding into a Vec is infallible")
}

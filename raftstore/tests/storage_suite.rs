//! openraft's storage conformance suite against the RocksDB log store and
//! state machine, each test on a fresh temp data dir.

use capstan_raftstore::storage::{LogStore, StateMachineStore, StorageOptions, open};
use capstan_raftstore::types::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

/// Opens a store in a new temp dir; the dir lives as long as the guard.
struct TempStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for TempStores {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm) = open(dir.path(), StorageOptions::default()).expect("open a fresh store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(TempStores) {
        panic!("openraft storage suite failed: {e}");
    }
}

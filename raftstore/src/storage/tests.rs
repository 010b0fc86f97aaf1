//! Unit tests of the storage layer against real RocksDB data dirs: MVCC
//! semantics, ranges, compaction, watches, snapshots, restarts and refusal of
//! damaged dirs. `fixture` drives the state machine the way openraft does:
//! append entries to the log, then apply them.

mod corrupt;
mod kv;
mod snapshots;
mod watches;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use openraft::storage::{RaftLogStorageExt, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, Membership};
use tempfile::TempDir;

use super::{LogStore, StateMachineStore, StorageOptions, StoreReader, open};
use crate::command::{Command, CommandResult, Compare, Condition, Op, Txn};
use crate::types::{Entry, LogId, Member};

/// A store in a temp dir, with a log index counter.
pub(super) struct Fixture {
    pub dir: TempDir,
    pub log: LogStore,
    pub sm: StateMachineStore,
    pub next_index: u64,
}

pub(super) fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

pub(super) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(super) fn put(k: &str, v: &str) -> Op {
    Op::Put {
        key: b(k),
        value: b(v),
    }
}

pub(super) fn del(k: &str) -> Op {
    Op::Delete { key: b(k) }
}

pub(super) fn cmp(k: &str, condition: Condition) -> Compare {
    Compare {
        key: b(k),
        condition,
    }
}

pub(super) fn opts() -> StorageOptions {
    StorageOptions::default()
}

impl Fixture {
    pub(super) fn new() -> Self {
        Self::with(opts())
    }

    pub(super) fn with(o: StorageOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (log, sm) = open(dir.path(), o).unwrap();
        Fixture {
            dir,
            log,
            sm,
            next_index: 0,
        }
    }

    pub(super) fn reader(&self) -> StoreReader {
        self.sm.reader()
    }

    /// Appends and applies entries, one log index each, in one apply batch.
    pub(super) async fn apply_payloads(
        &mut self,
        payloads: Vec<EntryPayload<crate::types::TypeConfig>>,
    ) -> Vec<CommandResult> {
        let entries: Vec<Entry> = payloads
            .into_iter()
            .map(|payload| {
                let e = Entry {
                    log_id: log_id(self.next_index),
                    payload,
                };
                self.next_index += 1;
                e
            })
            .collect();
        self.log.blocking_append(entries.clone()).await.unwrap();
        self.sm.apply(entries).await.unwrap()
    }

    pub(super) async fn apply(&mut self, cmds: Vec<Command>) -> Vec<CommandResult> {
        self.apply_payloads(cmds.into_iter().map(EntryPayload::Normal).collect())
            .await
    }

    pub(super) async fn txn(&mut self, txn: Txn) -> CommandResult {
        self.apply(vec![Command::Txn(txn)]).await.remove(0)
    }

    pub(super) async fn ops(&mut self, ops: Vec<Op>) -> CommandResult {
        self.txn(Txn {
            success: ops,
            ..Txn::default()
        })
        .await
    }

    pub(super) async fn compact(&mut self, revision: u64) -> CommandResult {
        self.apply(vec![Command::Compact { revision }])
            .await
            .remove(0)
    }

    pub(super) async fn membership(&mut self, ids: &[u64]) {
        let nodes: BTreeMap<u64, Member> = ids.iter().map(|i| (*i, Member::default())).collect();
        let config: BTreeSet<u64> = ids.iter().copied().collect();
        self.apply_payloads(vec![EntryPayload::Membership(Membership::new(
            vec![config],
            nodes,
        ))])
        .await;
    }

    /// Drops the store and opens the same dir again.
    pub(super) fn reopen(self) -> Self {
        let Fixture {
            dir,
            log,
            sm,
            next_index,
        } = self;
        drop(log);
        drop(sm);
        let (log, sm) = open(dir.path(), opts()).unwrap();
        Fixture {
            dir,
            log,
            sm,
            next_index,
        }
    }

    /// Flushes everything to SST files and closes the store, keeping the dir.
    pub(super) fn close_flushed(self) -> TempDir {
        self.sm.flush().unwrap();
        let Fixture { dir, log, sm, .. } = self;
        drop(log);
        drop(sm);
        dir
    }
}

/// Files in `dir/db` whose name ends with `suffix`.
pub(super) fn db_files(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

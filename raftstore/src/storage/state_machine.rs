//! The MVCC state machine as openraft sees it: applying committed entries in
//! batches, reporting applied state, and taking or installing snapshots.
//!
//! One `apply` call is one RocksDB WriteBatch: every version, history entry
//! and the metadata (applied log id, membership, revision, compacted
//! revision) land atomically, then the batch's revisions are published to
//! watchers. The batch is not fsynced: the log holds every applied entry
//! until a snapshot covers it, snapshots sync the WAL before they are
//! reported, and every synced log append makes earlier state machine writes
//! durable too (one WAL). A `Compact` command splits the batch so it sees the
//! writes before it.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend};
use rocksdb::WriteBatch;

use super::compact;
use super::db::{Shared, SmMeta, View};
use super::error::{Fault, encode};
use super::keys::{CF_KV, CF_REVS, be, version_key};
use super::mvcc::Applier;
use super::read::StoreReader;
use super::snapshot::{self, SnapshotBuilder};
use super::watch::{Notice, RevisionEvents};
use crate::command::{Command, CommandResult};
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The replicated MVCC key space. Hand it to openraft; keep a
/// [`StoreReader`] from [`StateMachineStore::reader`] for reads and watches.
pub struct StateMachineStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) meta: SmMeta,
}

impl std::fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("dir", &self.shared.dir)
            .field("applied", &self.meta.applied)
            .field("revision", &self.meta.revision)
            .field("compacted", &self.meta.compacted)
            .finish_non_exhaustive()
    }
}

impl Drop for StateMachineStore {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.hub.publish(Notice::Closed);
    }
}

/// An apply batch in progress.
struct Batch {
    batch: WriteBatch,
    events: Vec<Arc<RevisionEvents>>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            batch: WriteBatch::default(),
            events: Vec::new(),
        }
    }
}

impl StateMachineStore {
    /// A read handle usable concurrently with `apply`.
    pub fn reader(&self) -> StoreReader {
        StoreReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Flushes every column family's memtable to SST files and syncs the WAL
    /// (for backups, tests and clean shutdowns; never needed for safety).
    pub fn flush(&self) -> Result<(), rocksdb::Error> {
        let db = &self.shared.db;
        for name in super::keys::ALL_CFS {
            db.flush_cf(self.shared.cf(name))?;
        }
        db.flush_wal(true)
    }

    /// Writes the batch with the current metadata, then publishes its events.
    fn commit(&self, mut b: Batch) -> Result<(), Fault> {
        self.meta.write_to(&self.shared, &mut b.batch);
        self.shared.db.write(b.batch)?;
        for ev in b.events {
            self.shared.hub.publish(Notice::Revision(ev));
        }
        Ok(())
    }

    /// Applies one transaction into the batch being built.
    fn apply_txn(
        &mut self,
        txn: &crate::command::Txn,
        applier: &mut Applier,
        batch: &mut Batch,
    ) -> Result<CommandResult, Fault> {
        let out = applier.apply_txn(&View::latest(&self.shared), txn)?;
        let rev = out.result.revision;
        if let Some(events) = out.events {
            let kv = self.shared.cf(CF_KV);
            let keys: Vec<Bytes> = out.writes.iter().map(|(k, _)| k.clone()).collect();
            for (key, version) in &out.writes {
                batch
                    .batch
                    .put_cf(kv, version_key(key, rev), encode(version));
            }
            batch
                .batch
                .put_cf(self.shared.cf(CF_REVS), be(rev), encode(&keys));
            batch.events.push(events);
        }
        Ok(out.result)
    }

    fn apply_entry(
        &mut self,
        entry: Entry,
        applier: &mut Applier,
        batch: &mut Batch,
    ) -> Result<CommandResult, Fault> {
        let log_id = entry.log_id;
        let unchanged = |revision| CommandResult {
            succeeded: true,
            revision,
            prev_kvs: Vec::new(),
            error: None,
            batch: Vec::new(),
        };
        let result = match entry.payload {
            EntryPayload::Blank => unchanged(applier.revision()),
            EntryPayload::Membership(m) => {
                self.meta.membership = StoredMembership::new(Some(log_id), m);
                unchanged(applier.revision())
            }
            EntryPayload::Normal(Command::Txn(txn)) => self.apply_txn(&txn, applier, batch)?,
            EntryPayload::Normal(Command::Batch(txns)) => {
                let results = txns
                    .iter()
                    .map(|txn| self.apply_txn(txn, applier, batch))
                    .collect::<Result<Vec<_>, _>>()?;
                CommandResult {
                    batch: results,
                    ..unchanged(applier.revision())
                }
            }
            EntryPayload::Normal(Command::Compact { revision }) => {
                let current = applier.revision();
                let error = if revision > current {
                    Some(format!(
                        "cannot compact to revision {revision}: current revision is {current}"
                    ))
                } else if revision <= self.meta.compacted {
                    Some(format!(
                        "revision {revision} is already compacted (compacted revision is {})",
                        self.meta.compacted
                    ))
                } else {
                    None
                };
                if error.is_none() {
                    // Write what came before (with the previous entry as
                    // applied), so compaction reads it from the database.
                    self.meta.revision = current;
                    self.commit(std::mem::replace(batch, Batch::new()))?;
                    applier.clear_overlay();
                    compact::compact_into(
                        &View::latest(&self.shared),
                        &mut batch.batch,
                        self.meta.compacted,
                        revision,
                    )?;
                    self.meta.compacted = revision;
                }
                CommandResult {
                    succeeded: true,
                    revision: current,
                    prev_kvs: Vec::new(),
                    error,
                    batch: Vec::new(),
                }
            }
        };
        self.meta.applied = Some(log_id);
        Ok(result)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.meta.applied, self.meta.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applier = Applier::new(self.meta.revision);
        let mut batch = Batch::new();
        let mut results = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let result = self
                .apply_entry(entry, &mut applier, &mut batch)
                .map_err(|e| {
                    StorageError::from(openraft::StorageIOError::apply(
                        log_id,
                        openraft::AnyError::new(&e),
                    ))
                })?;
            results.push(result);
        }
        self.meta.revision = applier.revision();
        self.commit(batch).map_err(|e| e.write_sm())?;
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            shared: Arc::clone(&self.shared),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        self.meta = snapshot::install(&self.shared, meta, &data).map_err(|e| {
            StorageError::from(openraft::StorageIOError::write_snapshot(
                Some(meta.signature()),
                openraft::AnyError::new(&e),
            ))
        })?;
        self.shared.hub.publish(Notice::Reset);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        snapshot::load_current(&self.shared).map_err(|e| e.read_snapshot())
    }
}

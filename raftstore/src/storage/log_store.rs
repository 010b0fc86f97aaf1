//! The Raft log and Raft metadata in RocksDB.
//!
//! Entries live in the `logs` column family keyed by big-endian index; the
//! vote, the committed log id and the last purged log id in `raft_meta`.
//! `append` writes its entries (unsynced) and hands openraft's completion
//! callback to the [`Syncer`]: one background thread that syncs the WAL once
//! for every append queued since its last sync, then reports them flushed,
//! in order. That is the group commit: openraft 0.9 calls `append` once per
//! client write, so syncing inside `append` would cost one fsync per write;
//! here an fsync in flight collects every append issued meanwhile. No entry
//! is reported flushed before an fsync that covers it has returned.
//! `save_vote` and `truncate` are synced writes of their own (and, sharing
//! the one WAL, also make every earlier append durable).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use rocksdb::{WriteBatch, WriteOptions};

use super::db::{Shared, View};
use super::error::{Fault, decode, encode};
use super::keys::{CF_LOGS, CF_RAFT_META, META_COMMITTED, META_LAST_PURGED, META_VOTE, be};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The Raft log store. Cloning gives another handle on the same log (used as
/// openraft's log reader).
#[derive(Clone)]
pub struct LogStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) syncer: Arc<Syncer>,
}

/// The group-commit thread: syncs the WAL for batches of queued appends and
/// then completes their callbacks in submission order. Dropping the last
/// handle closes the queue and joins the thread (after it completed what was
/// queued), so the database is released when the log store is.
pub(crate) struct Syncer {
    tx: std::sync::Mutex<Option<std::sync::mpsc::Sender<LogFlushed<TypeConfig>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread.
    pub(crate) fn start(shared: Arc<Shared>) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<LogFlushed<TypeConfig>>();
        let thread =
            std::thread::Builder::new()
                .name("raft-log-sync".into())
                .spawn(move || {
                    while let Ok(first) = rx.recv() {
                        let mut pending = vec![first];
                        pending.extend(rx.try_iter());
                        let synced = shared.db.flush_wal(true).map_err(|e| e.to_string());
                        for callback in pending {
                            callback.log_io_completed(synced.clone().map_err(|e| {
                                std::io::Error::other(format!("syncing the log: {e}"))
                            }));
                        }
                    }
                })?;
        Ok(Self {
            tx: std::sync::Mutex::new(Some(tx)),
            thread: Some(thread),
        })
    }

    /// Queues a callback to complete after the next sync; gives it back if
    /// the thread is gone.
    fn submit(&self, callback: LogFlushed<TypeConfig>) -> Result<(), LogFlushed<TypeConfig>> {
        match self.tx.lock().expect("syncer poisoned").as_ref() {
            Some(tx) => tx.send(callback).map_err(|e| e.0),
            None => Err(callback),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.tx.lock().expect("syncer poisoned").take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

impl LogStore {
    fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, Fault> {
        View::latest(&self.shared)
            .get(CF_RAFT_META, key)?
            .map(|v| decode(what, &v))
            .transpose()
    }

    /// The last purged log id.
    pub(crate) fn last_purged(&self) -> Result<Option<LogId>, Fault> {
        self.meta(META_LAST_PURGED, "last purged log id")
    }

    /// The last entry's log id, if the log holds any entry.
    pub(crate) fn last_entry_id(&self) -> Result<Option<LogId>, Fault> {
        let view = View::latest(&self.shared);
        let mut it = view.iter(CF_LOGS, &[], None);
        it.seek_to_last();
        match it.value() {
            Some(v) => Ok(Some(decode::<Entry>("log entry", v)?.log_id)),
            None => {
                it.status()?;
                Ok(None)
            }
        }
    }

    fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>, Fault> {
        let upper = end.map(be);
        let view = View::latest(&self.shared);
        let mut it = view.iter(CF_LOGS, &be(start), upper.as_ref().map(|u| &u[..]));
        it.seek(be(start));
        let mut out = Vec::new();
        while let Some(v) = it.value() {
            out.push(decode::<Entry>("log entry", v)?);
            it.next();
        }
        it.status()?;
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => None,
        };
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        self.read_range(start, end).map_err(|e| e.read_logs())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.last_purged().map_err(|e| e.read_logs())?;
        let last = self.last_entry_id().map_err(|e| e.read_logs())?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.shared.cf(CF_RAFT_META), META_VOTE, encode(vote));
        self.shared
            .db
            .write_opt(batch, &synced())
            .map_err(|e| Fault::from(e).write_vote())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.meta(META_VOTE, "vote").map_err(|e| e.read_vote())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: losing it only means re-learning the commit index.
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.shared.cf(CF_RAFT_META),
            META_COMMITTED,
            encode(&committed),
        );
        self.shared
            .db
            .write(batch)
            .map_err(|e| Fault::from(e).write_logs())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .meta::<Option<LogId>>(META_COMMITTED, "committed log id")
            .map_err(|e| e.read_logs())?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.shared.cf(CF_LOGS);
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(cf, be(entry.log_id.index), encode(&entry));
        }
        match self.shared.db.write(batch) {
            Ok(()) => {
                if let Err(callback) = self.syncer.submit(callback) {
                    let e = std::io::Error::other("log sync thread stopped");
                    callback.log_io_completed(Err(e));
                    return Err(Fault::Invalid("log sync thread stopped".into()).write_logs());
                }
                Ok(())
            }
            Err(e) => {
                let fault = Fault::from(e);
                callback.log_io_completed(Err(std::io::Error::other(fault.to_string())));
                Err(fault.write_logs())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.shared.cf(CF_LOGS), be(log_id.index), be(u64::MAX));
        batch.delete_cf(self.shared.cf(CF_LOGS), be(u64::MAX));
        self.shared
            .db
            .write_opt(batch, &synced())
            .map_err(|e| Fault::from(e).write_logs())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.shared.cf(CF_RAFT_META),
            META_LAST_PURGED,
            encode(&log_id),
        );
        batch.delete_range_cf(
            self.shared.cf(CF_LOGS),
            be(0),
            be(log_id.index.saturating_add(1)),
        );
        // Not synced: after a crash the purge is merely undone, and the
        // purged id and the deletion land together.
        self.shared
            .db
            .write(batch)
            .map_err(|e| Fault::from(e).write_logs())
    }
}

//! The RocksDB instance shared by the log store, the state machine, the read
//! handles and the watchers, and [`View`], a (possibly snapshot-pinned) way of
//! reading it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use rocksdb::{ColumnFamily, DB, DBRawIterator, ReadOptions, SnapshotWithThreadMode, WriteBatch};

use super::StorageOptions;
use super::error::{Fault, decode, encode};
use super::keys::{
    CF_KV, CF_SM_META, SM_APPLIED, SM_COMPACTED, SM_MEMBERSHIP, SM_REVISION, version_key,
    versions_start,
};
use super::mvcc::{Lookup, StoredVersion};
use super::watch::WatchHub;
use crate::command::KeyValue;
use crate::types::{LogId, SnapshotMeta, StoredMembership};

/// Everything the storage handles share.
pub(crate) struct Shared {
    /// The database, opened with every column family.
    pub db: DB,
    /// The data dir (for errors and the snapshot file).
    pub dir: PathBuf,
    /// Options given to `open`.
    pub opts: StorageOptions,
    /// Fan-out of applied revisions to watchers.
    pub hub: WatchHub,
    /// Metadata of the snapshot persisted in the data dir, if any. The lock
    /// also serialises writes of the snapshot file.
    pub snapshot: Mutex<Option<SnapshotMeta>>,
    /// Set when the state machine is dropped; new watches are refused.
    pub closed: AtomicBool,
}

impl Shared {
    /// A column family handle; every family is opened by `open`.
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is opened by storage::open")
    }
}

/// The state machine's metadata, stored in `sm_meta` and written in the same
/// batch as the data it describes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SmMeta {
    /// Last applied log id.
    pub applied: Option<LogId>,
    /// Last applied membership.
    pub membership: StoredMembership,
    /// Current revision.
    pub revision: u64,
    /// Compacted revision: reads below it are refused.
    pub compacted: u64,
}

impl SmMeta {
    /// Adds the metadata to a batch.
    pub(crate) fn write_to(&self, shared: &Shared, batch: &mut WriteBatch) {
        let cf = shared.cf(CF_SM_META);
        batch.put_cf(cf, SM_APPLIED, encode(&self.applied));
        batch.put_cf(cf, SM_MEMBERSHIP, encode(&self.membership));
        batch.put_cf(cf, SM_REVISION, encode(&self.revision));
        batch.put_cf(cf, SM_COMPACTED, encode(&self.compacted));
    }
}

/// A consistent way of reading the database: pinned to a RocksDB snapshot,
/// or reading the latest state (for the single writer, `apply`).
pub(crate) struct View<'a> {
    /// The shared handles.
    pub shared: &'a Shared,
    snap: Option<SnapshotWithThreadMode<'a, DB>>,
}

impl<'a> View<'a> {
    /// A view pinned to the current state; later writes are invisible to it.
    pub(crate) fn pinned(shared: &'a Shared) -> Self {
        View {
            shared,
            snap: Some(shared.db.snapshot()),
        }
    }

    /// A view of the latest state (each read sees everything written so far).
    pub(crate) fn latest(shared: &'a Shared) -> Self {
        View { shared, snap: None }
    }

    /// Read options carrying this view's snapshot.
    pub(crate) fn read_opts(&self) -> ReadOptions {
        let mut o = ReadOptions::default();
        if let Some(s) = &self.snap {
            o.set_snapshot(s);
        }
        o
    }

    /// Reads one value.
    pub(crate) fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Fault> {
        Ok(self
            .shared
            .db
            .get_cf_opt(self.shared.cf(cf), key, &self.read_opts())?)
    }

    /// A raw iterator over `[lower, upper)` of one column family.
    /// The iterator borrows the view: it must not outlive the snapshot its
    /// read options point to.
    pub(crate) fn iter<'s>(
        &'s self,
        cf: &str,
        lower: &[u8],
        upper: Option<&[u8]>,
    ) -> DBRawIterator<'s> {
        let mut o = self.read_opts();
        o.set_iterate_lower_bound(lower.to_vec());
        if let Some(u) = upper {
            o.set_iterate_upper_bound(u.to_vec());
        }
        self.shared.db.raw_iterator_cf_opt(self.shared.cf(cf), o)
    }

    /// The state machine metadata as of this view.
    pub(crate) fn sm_meta(&self) -> Result<SmMeta, Fault> {
        let mut meta = SmMeta::default();
        if let Some(v) = self.get(CF_SM_META, SM_APPLIED)? {
            meta.applied = decode("applied log id", &v)?;
        }
        if let Some(v) = self.get(CF_SM_META, SM_MEMBERSHIP)? {
            meta.membership = decode("membership", &v)?;
        }
        if let Some(v) = self.get(CF_SM_META, SM_REVISION)? {
            meta.revision = decode("revision", &v)?;
        }
        if let Some(v) = self.get(CF_SM_META, SM_COMPACTED)? {
            meta.compacted = decode("compacted revision", &v)?;
        }
        Ok(meta)
    }

    /// The latest version of `key` at or below revision `at` (live or
    /// tombstone), with its revision.
    pub(crate) fn version_at(
        &self,
        key: &[u8],
        at: u64,
    ) -> Result<Option<(u64, StoredVersion)>, Fault> {
        let start = versions_start(key);
        let mut it = self.iter(CF_KV, &start, None);
        it.seek_for_prev(version_key(key, at));
        if let Some((k, v)) = it.item() {
            if k.starts_with(&start) && k.len() == start.len() + 8 {
                let rev = super::keys::from_be(&k[start.len()..])
                    .ok_or_else(|| Fault::Invalid("bad kv key".into()))?;
                return Ok(Some((rev, decode("key version", v)?)));
            }
            return Ok(None);
        }
        it.status()?;
        Ok(None)
    }

    /// The live value of `key` at revision `at`, if any.
    pub(crate) fn kv_at(&self, key: &[u8], at: u64) -> Result<Option<KeyValue>, Fault> {
        Ok(self
            .version_at(key, at)?
            .and_then(|(rev, v)| v.into_kv(Bytes::copy_from_slice(key), rev)))
    }

    /// The version of `key` written exactly at `revision`.
    pub(crate) fn version_exact(
        &self,
        key: &[u8],
        revision: u64,
    ) -> Result<Option<StoredVersion>, Fault> {
        self.get(CF_KV, &version_key(key, revision))?
            .map(|v| decode("key version", &v))
            .transpose()
    }
}

impl Lookup for View<'_> {
    fn latest(&self, key: &[u8]) -> Result<Option<KeyValue>, Fault> {
        self.kv_at(key, u64::MAX)
    }
}

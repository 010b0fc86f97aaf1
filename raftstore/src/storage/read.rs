//! Reads of the key space: point gets and ranges at the current or an older
//! retained revision, and the start of watches.
//!
//! A [`StoreReader`] is a cheap clone usable from any task while the state
//! machine applies: each read pins a RocksDB snapshot, so it sees one
//! revision's state and metadata, never a half-applied batch. Reads are
//! synchronous (short RocksDB calls); run large ranges on a blocking thread.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::db::{Shared, SmMeta, View};
use super::error::{Fault, ReadError, decode, encode};
use super::keys::{
    CF_KV, prefix_end, split_version_key, version_key, versions_end, versions_start,
};
use super::watch::{self, WatchStream};
use crate::command::KeyValue;
use crate::types::LogId;

/// A read handle on the state machine. Clone freely.
#[derive(Clone)]
pub struct StoreReader {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

/// The answer to [`StoreReader::get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetResponse {
    /// The key's version at the read revision, if it existed then.
    pub kv: Option<KeyValue>,
    /// The revision the read was served at.
    pub revision: u64,
}

/// A range read: the keys under `prefix`, in key order, after `start_after`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    /// Only keys starting with this (empty: every key).
    pub prefix: Bytes,
    /// Only keys strictly after this one (the last key of the previous page).
    pub start_after: Option<Bytes>,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
    /// Read at this revision; `None` reads at the current revision.
    pub revision: Option<u64>,
}

impl RangeRequest {
    /// Every key under `prefix` at the current revision.
    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        RangeRequest {
            prefix: prefix.into(),
            ..RangeRequest::default()
        }
    }

    /// The page after the one that returned `token`, at the same revision.
    pub fn resume(prefix: impl Into<Bytes>, token: &ContinueToken, limit: usize) -> Self {
        RangeRequest {
            prefix: prefix.into(),
            start_after: Some(token.start_after.clone()),
            limit,
            revision: Some(token.revision),
        }
    }
}

/// The answer to [`StoreReader::range`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// The keys, in order.
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at.
    pub revision: u64,
    /// Whether more keys follow (the limit cut the answer short).
    pub more: bool,
    /// When `more`, where the next page starts; it pins `revision`, so every
    /// page shows the same state even if writes happen in between.
    pub continue_token: Option<ContinueToken>,
}

/// Where the next page of a range starts, and at which revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueToken {
    /// The last key returned.
    pub start_after: Bytes,
    /// The revision of the first page.
    pub revision: u64,
}

impl ContinueToken {
    /// An opaque byte form, e.g. for a Kubernetes `continue` string.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Parses [`ContinueToken::to_bytes`]; `None` if malformed.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

impl StoreReader {
    fn meta_at(&self, view: &View<'_>, revision: Option<u64>) -> Result<(SmMeta, u64), ReadError> {
        let meta = view.sm_meta()?;
        let at = revision.unwrap_or(meta.revision);
        if at < meta.compacted {
            return Err(ReadError::Expired {
                requested: at,
                compacted: meta.compacted,
            });
        }
        if at > meta.revision {
            return Err(ReadError::FutureRevision {
                requested: at,
                current: meta.revision,
            });
        }
        Ok((meta, at))
    }

    /// The current revision (0 before the first write).
    pub fn current_revision(&self) -> Result<u64, ReadError> {
        Ok(View::latest(&self.shared).sm_meta()?.revision)
    }

    /// The compacted revision: reads and watches below it fail with `Expired`.
    pub fn compacted_revision(&self) -> Result<u64, ReadError> {
        Ok(View::latest(&self.shared).sm_meta()?.compacted)
    }

    /// The log id of the last applied entry.
    pub fn applied_log_id(&self) -> Result<Option<LogId>, ReadError> {
        Ok(View::latest(&self.shared).sm_meta()?.applied)
    }

    /// One key at revision `at` (`None`: the current revision).
    pub fn get(&self, key: &[u8], at: Option<u64>) -> Result<GetResponse, ReadError> {
        let view = View::pinned(&self.shared);
        let (_, at) = self.meta_at(&view, at)?;
        Ok(GetResponse {
            kv: view.kv_at(key, at)?,
            revision: at,
        })
    }

    /// The keys of a range at one revision, paginated by `limit`.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, ReadError> {
        let view = View::pinned(&self.shared);
        let (_, at) = self.meta_at(&view, req.revision)?;
        let mut start = versions_start(&req.prefix);
        if let Some(after) = &req.start_after {
            start = start.max(versions_end(after));
        }
        let upper = prefix_end(&req.prefix);
        let mut kvs = Vec::new();
        let mut more = false;
        let mut it = view.iter(CF_KV, &start, upper.as_deref());
        it.seek(&start);
        loop {
            let Some(k) = it.key() else {
                it.status().map_err(Fault::from)?;
                break;
            };
            let (user, _) =
                split_version_key(k).ok_or_else(|| Fault::Invalid("bad kv key".into()))?;
            let user = user.to_vec();
            it.seek_for_prev(version_key(&user, at));
            if let Some((k, v)) = it.item()
                && let Some((u, rev)) = split_version_key(k)
                && u == user.as_slice()
            {
                let version = decode("key version", v)?;
                if let Some(kv) =
                    super::mvcc::StoredVersion::into_kv(version, Bytes::from(user.clone()), rev)
                {
                    if req.limit > 0 && kvs.len() == req.limit {
                        more = true;
                        break;
                    }
                    kvs.push(kv);
                }
            }
            it.seek(versions_end(&user));
        }
        let continue_token = if more {
            kvs.last().map(|kv| ContinueToken {
                start_after: kv.key.clone(),
                revision: at,
            })
        } else {
            None
        };
        Ok(RangeResponse {
            kvs,
            revision: at,
            more,
            continue_token,
        })
    }

    /// Writes a consistent snapshot of the whole state machine to `path`
    /// (fsynced), in the format openraft snapshots use; returns its metadata.
    pub fn backup(&self, path: &std::path::Path) -> Result<crate::types::SnapshotMeta, ReadError> {
        let (meta, data) = super::snapshot::build(&self.shared)?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(path)?;
            f.write_all(&data)?;
            f.sync_all()
        };
        write().map_err(|e| ReadError::Storage(format!("{}: {e}", path.display())))?;
        Ok(meta)
    }

    /// Watches keys under `key_prefix` from `from_revision` (inclusive; 0
    /// means "from the next revision"): history first, then live revisions.
    /// Fails with `Expired` if `from_revision` is below the compacted
    /// revision. A future `from_revision` waits for it.
    pub fn watch(&self, from_revision: u64, key_prefix: Bytes) -> Result<WatchStream, ReadError> {
        watch::start(Arc::clone(&self.shared), from_revision, key_prefix)
    }
}

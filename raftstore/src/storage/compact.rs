//! Compaction of history: the deletions that make revision `r` the oldest
//! readable one.
//!
//! Reads at `r` need, per key, the latest version at or below `r`; events of
//! revision `r` need the version before them as `prev_kv`. So, with
//! `keep = r - 1`, compaction deletes every version at or below `keep` that
//! is superseded by a newer version at or below `keep`, and the latest one too
//! if it is a tombstone; and every `revs` entry below `r`. Only keys changed
//! since the previous compaction can have something to delete, and `revs`
//! names exactly those, so compaction reads no more than the history it
//! forgets. It is a log command, so every replica deletes the same versions.

use std::collections::BTreeSet;

use bytes::Bytes;
use rocksdb::WriteBatch;

use super::db::View;
use super::error::{Fault, decode};
use super::keys::{CF_KV, CF_REVS, be, version_key, versions_start};
use super::mvcc::StoredVersion;

/// Adds to `batch` the deletions that move the compacted revision from
/// `old` to `new` (`old < new`), reading the latest written state.
pub(crate) fn compact_into(
    view: &View<'_>,
    batch: &mut WriteBatch,
    old: u64,
    new: u64,
) -> Result<(), Fault> {
    debug_assert!(old < new);
    let keep = new - 1;
    let shared = view.shared;
    let mut keys = BTreeSet::new();
    let mut it = view.iter(CF_REVS, &be(old), Some(&be(new)));
    it.seek(be(old));
    while let Some((k, v)) = it.item() {
        let changed: Vec<Bytes> = decode("revision history", v)?;
        keys.extend(changed);
        batch.delete_cf(shared.cf(CF_REVS), k);
        it.next();
    }
    it.status()?;
    for key in keys {
        let start = versions_start(&key);
        let end = version_key(&key, keep.saturating_add(1));
        let mut it = view.iter(CF_KV, &start, Some(&end));
        it.seek_to_last();
        let Some(last_value) = it.value() else {
            it.status()?;
            continue;
        };
        // Everything below the latest version at or below `keep` goes; the
        // latest goes too if it records a deletion. Point deletes, not range
        // tombstones: many range tombstones slow every later read.
        let last: StoredVersion = decode("key version", last_value)?;
        if last.deleted {
            batch.delete_cf(shared.cf(CF_KV), it.key().unwrap_or_default());
        }
        it.prev();
        while let Some(k) = it.key() {
            batch.delete_cf(shared.cf(CF_KV), k);
            it.prev();
        }
        it.status()?;
    }
    Ok(())
}

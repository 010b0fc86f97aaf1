//! State machine snapshots: building one at a consistent RocksDB snapshot,
//! installing one, and keeping the latest in a file of the data dir so a
//! restarted replica can serve it (and recover from it).
//!
//! Format: `MAGIC` (8 bytes), FNV-1a 64 of the rest (8 bytes, little
//! endian), then postcard [`SnapshotMeta`] followed by postcard
//! `Vec<CfDump>` — every key and value of the state machine's column families
//! (`kv` versions, `revs` history, `sm_meta`), so an installed snapshot reads
//! and watches exactly like the replica that built it.

use std::fs::{self, File};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::RaftSnapshotBuilder;
use rocksdb::{WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use super::db::{Shared, SmMeta, View};
use super::error::{Fault, decode, encode};
use super::keys::SM_CFS;
use crate::types::{Snapshot, SnapshotMeta, StorageError, TypeConfig};

const MAGIC: &[u8; 8] = b"CAPSNAP1";
/// File name of the persisted snapshot in the data dir.
pub(crate) const SNAPSHOT_FILE: &str = "snapshot.bin";
const SNAPSHOT_TMP: &str = "snapshot.bin.tmp";

/// All entries of one column family.
#[derive(Serialize, Deserialize)]
struct CfDump {
    name: String,
    entries: Vec<(Bytes, Bytes)>,
}

/// FNV-1a, 64 bit: enough to catch torn or damaged snapshot bytes.
fn fnv64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Checks magic and checksum, returns the body.
fn body(data: &[u8]) -> Result<&[u8], Fault> {
    if data.len() < 16 || &data[..8] != MAGIC {
        return Err(Fault::Invalid("not a Capstan snapshot (bad magic)".into()));
    }
    let sum = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    let body = &data[16..];
    if fnv64(body) != sum {
        return Err(Fault::Invalid("snapshot checksum mismatch".into()));
    }
    Ok(body)
}

/// The metadata of a snapshot's bytes, after checking them.
pub(crate) fn decode_meta(data: &[u8]) -> Result<SnapshotMeta, Fault> {
    let (meta, _) = postcard::take_from_bytes(body(data)?).map_err(|source| Fault::Decode {
        what: "snapshot metadata",
        source,
    })?;
    Ok(meta)
}

fn decode_all(data: &[u8]) -> Result<(SnapshotMeta, Vec<CfDump>), Fault> {
    let (meta, rest) = postcard::take_from_bytes(body(data)?).map_err(|source| Fault::Decode {
        what: "snapshot metadata",
        source,
    })?;
    Ok((meta, decode("snapshot content", rest)?))
}

/// Serialises the whole state machine at one consistent point.
pub(crate) fn build(shared: &Shared) -> Result<(SnapshotMeta, Vec<u8>), Fault> {
    let view = View::pinned(shared);
    let sm = view.sm_meta()?;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let snapshot_id = match &sm.applied {
        Some(id) => format!("{}-{}-{millis}", id.leader_id.term, id.index),
        None => format!("none-{millis}"),
    };
    let meta = SnapshotMeta {
        last_log_id: sm.applied,
        last_membership: sm.membership.clone(),
        snapshot_id,
    };
    let mut dumps = Vec::with_capacity(SM_CFS.len());
    for name in SM_CFS {
        let mut it = view.iter(name, &[], None);
        it.seek_to_first();
        let mut entries = Vec::new();
        while let Some((k, v)) = it.item() {
            entries.push((Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)));
            it.next();
        }
        it.status()?;
        dumps.push(CfDump {
            name: name.to_string(),
            entries,
        });
    }
    let mut body = encode(&meta);
    body.extend_from_slice(&encode(&dumps));
    let mut data = Vec::with_capacity(body.len() + 16);
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&fnv64(&body).to_le_bytes());
    data.extend_from_slice(&body);
    Ok((meta, data))
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Fault {
    move |source| Fault::Io { what, source }
}

/// Writes `data` as the data dir's snapshot (temp file, fsync, rename, fsync
/// dir) unless the one there is newer, and records its metadata.
pub(crate) fn persist(shared: &Shared, meta: &SnapshotMeta, data: &[u8]) -> Result<(), Fault> {
    let mut current = shared.snapshot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cur) = current.as_ref()
        && cur.last_log_id > meta.last_log_id
    {
        return Ok(());
    }
    let tmp = shared.dir.join(SNAPSHOT_TMP);
    let mut f = File::create(&tmp).map_err(io("create snapshot file"))?;
    f.write_all(data).map_err(io("write snapshot file"))?;
    f.sync_all().map_err(io("sync snapshot file"))?;
    drop(f);
    fs::rename(&tmp, shared.dir.join(SNAPSHOT_FILE)).map_err(io("rename snapshot file"))?;
    sync_dir(&shared.dir).map_err(io("sync data dir"))?;
    *current = Some(meta.clone());
    Ok(())
}

/// Fsyncs a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Path of the persisted snapshot.
pub(crate) fn file_path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

/// The persisted snapshot, if any.
pub(crate) fn load_current(shared: &Shared) -> Result<Option<Snapshot>, Fault> {
    let current = shared.snapshot.lock().unwrap_or_else(|e| e.into_inner());
    let Some(meta) = current.clone() else {
        return Ok(None);
    };
    let data = fs::read(file_path(&shared.dir)).map_err(io("read snapshot file"))?;
    let on_disk = decode_meta(&data)?;
    if on_disk != meta {
        return Err(Fault::Invalid(format!(
            "snapshot file holds {}, expected {}",
            on_disk.snapshot_id, meta.snapshot_id
        )));
    }
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    }))
}

/// Replaces the state machine with a snapshot's content in one synced batch
/// and returns the new metadata. `meta` is what openraft says the snapshot
/// is; it must match the bytes.
pub(crate) fn install(shared: &Shared, meta: &SnapshotMeta, data: &[u8]) -> Result<SmMeta, Fault> {
    let (inner, dumps) = decode_all(data)?;
    if inner.last_log_id != meta.last_log_id || inner.last_membership != meta.last_membership {
        return Err(Fault::Invalid(format!(
            "snapshot {} content is at {:?}, its metadata says {:?}",
            meta.snapshot_id, inner.last_log_id, meta.last_log_id
        )));
    }
    // The file first: if we crash before the batch, `open` finds a snapshot
    // newer than the state machine and installs it from the file.
    persist(shared, meta, data)?;
    load_into(shared, meta, dumps)
}

/// Installs the persisted snapshot file into the state machine (recovery).
pub(crate) fn install_from_file(shared: &Shared) -> Result<SmMeta, Fault> {
    let data = fs::read(file_path(&shared.dir)).map_err(io("read snapshot file"))?;
    let (meta, dumps) = decode_all(&data)?;
    load_into(shared, &meta, dumps)
}

fn load_into(shared: &Shared, meta: &SnapshotMeta, dumps: Vec<CfDump>) -> Result<SmMeta, Fault> {
    let mut batch = WriteBatch::default();
    let view = View::latest(shared);
    for name in SM_CFS {
        let mut it = view.iter(name, &[], None);
        it.seek_to_first();
        let first = it.key().map(<[u8]>::to_vec);
        it.seek_to_last();
        let last = it.key().map(<[u8]>::to_vec);
        it.status()?;
        if let (Some(first), Some(mut last)) = (first, last) {
            last.push(0);
            batch.delete_range_cf(shared.cf(name), first, last);
        }
    }
    for dump in dumps {
        if !SM_CFS.contains(&dump.name.as_str()) {
            return Err(Fault::Invalid(format!(
                "snapshot has unknown column family {:?}",
                dump.name
            )));
        }
        let cf = shared.cf(&dump.name);
        for (k, v) in dump.entries {
            batch.put_cf(cf, k, v);
        }
    }
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    shared.db.write_opt(batch, &opts)?;
    let mut sm = View::latest(shared).sm_meta()?;
    if sm.applied != meta.last_log_id || sm.membership != meta.last_membership {
        // Snapshots we build always agree; be strict about foreign ones.
        return Err(Fault::Invalid(format!(
            "installed snapshot {} describes itself as at {:?} but its state is at {:?}",
            meta.snapshot_id, meta.last_log_id, sm.applied
        )));
    }
    sm.applied = meta.last_log_id;
    Ok(sm)
}

/// Builds snapshots for openraft, concurrently with `apply`.
pub struct SnapshotBuilder {
    pub(crate) shared: Arc<Shared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (meta, data) = build(&self.shared).map_err(|e| e.read_sm())?;
        // The state the snapshot describes must be durable before openraft
        // may purge the log it came from: sync the WAL, which holds every
        // state machine write so far.
        self.shared
            .db
            .flush_wal(true)
            .map_err(|e| Fault::from(e).write_snapshot())?;
        persist(&self.shared, &meta, &data).map_err(|e| e.write_snapshot())?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

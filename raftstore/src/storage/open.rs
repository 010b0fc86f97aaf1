//! Opening a data dir: initialising an empty one, and refusing anything that
//! is not an intact Capstan store rather than serving wrong data.
//!
//! A data dir holds `CAPSTAN_STORE` (format marker, written last at
//! initialisation), `db/` (RocksDB) and, once one was taken or received,
//! `snapshot.bin`. Opening checks, in order: the marker; that RocksDB's files
//! are all there and intact (`paranoid_checks`, WAL recovery that fails on a
//! damaged record instead of silently dropping the rest); every column family;
//! the format key; optionally every block checksum and record
//! ([`StorageOptions::verify_on_open`]); that the log has no holes and,
//! together with the snapshot, explains the state machine's applied index.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rocksdb::{ColumnFamilyDescriptor, DB, DBRecoveryMode, Options, ReadOptions, WriteOptions};

use super::StorageOptions;
use super::db::{Shared, SmMeta, View};
use super::error::{Fault, OpenError, decode};
use super::keys::{
    ALL_CFS, CF_KV, CF_LOGS, CF_RAFT_META, CF_REVS, FORMAT, FORMAT_KEY, META_COMMITTED,
    META_LAST_PURGED, META_VOTE, from_be, split_version_key,
};
use super::log_store::LogStore;
use super::mvcc::StoredVersion;
use super::snapshot::{self, SNAPSHOT_FILE};
use super::state_machine::StateMachineStore;
use super::watch::WatchHub;
use crate::types::{Entry, LogId, SnapshotMeta, StoredMembership, Vote};

/// Name of the format marker file.
const MARKER_FILE: &str = "CAPSTAN_STORE";
/// Content of the format marker file.
const MARKER: &str = "capstan-store v1\n";
/// RocksDB's directory inside the data dir.
const DB_DIR: &str = "db";

/// Opens the store in `dir`, creating and initialising it if `dir` is missing
/// or empty. Fails with an [`OpenError`] naming `dir` and the problem if it
/// holds anything but an intact Capstan store.
pub fn open(dir: &Path, opts: StorageOptions) -> Result<(LogStore, StateMachineStore), OpenError> {
    let dir = dir.to_path_buf();
    if let Err(problem) = opts.validate() {
        return Err(OpenError::Options {
            dir: dir.clone(),
            problem,
        });
    }
    let fresh = classify(&dir)?;
    let db_path = dir.join(DB_DIR);
    let corrupt = |problem: String| OpenError::Corrupt {
        dir: dir.clone(),
        problem,
    };
    if !fresh {
        if !db_path.join("CURRENT").is_file() {
            return Err(corrupt(format!(
                "{} has no CURRENT file: the database is missing or truncated",
                db_path.display()
            )));
        }
        let cfs =
            DB::list_cf(&Options::default(), &db_path).map_err(|source| OpenError::Database {
                dir: dir.clone(),
                source,
            })?;
        for name in ALL_CFS {
            if !cfs.iter().any(|c| c == name) {
                return Err(corrupt(format!(
                    "column family {name:?} is missing: the MANIFEST is damaged or this is \
                     not a Capstan database"
                )));
            }
        }
    }
    let mut o = Options::default();
    o.create_if_missing(fresh);
    o.create_missing_column_families(fresh);
    o.set_error_if_exists(fresh);
    o.set_paranoid_checks(true);
    // A damaged WAL record fails the open; only a torn tail (an unsynced
    // write cut by a crash) is dropped.
    o.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    let cfs = ALL_CFS
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, Options::default()));
    let db = DB::open_cf_descriptors(&o, &db_path, cfs).map_err(|source| OpenError::Database {
        dir: dir.clone(),
        source,
    })?;
    if fresh {
        let mut w = WriteOptions::default();
        w.set_sync(true);
        db.put_opt(FORMAT_KEY, FORMAT, &w)
            .map_err(|source| OpenError::Database {
                dir: dir.clone(),
                source,
            })?;
        write_marker(&dir)?;
    } else {
        match db.get(FORMAT_KEY) {
            Ok(Some(f)) if f == FORMAT => {}
            Ok(found) => {
                return Err(OpenError::Format {
                    dir: dir.clone(),
                    found: found
                        .map(|f| String::from_utf8_lossy(&f).into_owned())
                        .unwrap_or_else(|| "<none>".into()),
                    expected: String::from_utf8_lossy(FORMAT).into_owned(),
                });
            }
            Err(source) => {
                return Err(OpenError::Database {
                    dir: dir.clone(),
                    source,
                });
            }
        }
    }
    let shared = Arc::new(Shared {
        db,
        dir: dir.clone(),
        hub: WatchHub::new(opts.watch_queue),
        opts,
        snapshot: Mutex::new(None),
        closed: AtomicBool::new(false),
    });
    let meta = validate(&shared).map_err(|e| match e {
        Fault::Db(source) => OpenError::Database {
            dir: dir.clone(),
            source,
        },
        Fault::Io { what, source } => OpenError::Io {
            dir: dir.clone(),
            what,
            source,
        },
        other => corrupt(other.to_string()),
    })?;
    let syncer =
        super::log_store::Syncer::start(Arc::clone(&shared)).map_err(|source| OpenError::Io {
            dir: dir.clone(),
            what: "start the log sync thread",
            source,
        })?;
    let log = LogStore {
        shared: Arc::clone(&shared),
        syncer: Arc::new(syncer),
    };
    Ok((log, StateMachineStore { shared, meta }))
}

/// Whether `dir` is new (missing or empty, then created) or claims to be a
/// store (has the marker, which must be ours).
fn classify(dir: &Path) -> Result<bool, OpenError> {
    let io = |what: &'static str| {
        move |source| OpenError::Io {
            dir: dir.to_path_buf(),
            what,
            source,
        }
    };
    match fs::read_dir(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io("create data dir"))?;
            return Ok(true);
        }
        Err(e) => return Err(io("read data dir")(e)),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(true);
            }
        }
    }
    match fs::read(dir.join(MARKER_FILE)) {
        Ok(m) if m == MARKER.as_bytes() => Ok(false),
        Ok(m) => Err(OpenError::Format {
            dir: dir.to_path_buf(),
            found: String::from_utf8_lossy(&m).trim().to_string(),
            expected: MARKER.trim().to_string(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(OpenError::NotAStore {
            dir: dir.to_path_buf(),
            reason: format!(
                "the dir is not empty and has no {MARKER_FILE} marker \
                 (an interrupted first start leaves this too: remove the dir to start over)"
            ),
        }),
        Err(e) => Err(io("read format marker")(e)),
    }
}

fn write_marker(dir: &Path) -> Result<(), OpenError> {
    let io = |what: &'static str| {
        move |source| OpenError::Io {
            dir: dir.to_path_buf(),
            what,
            source,
        }
    };
    let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io("create format marker"))?;
    f.write_all(MARKER.as_bytes())
        .map_err(io("write format marker"))?;
    f.sync_all().map_err(io("sync format marker"))?;
    fs::rename(&tmp, dir.join(MARKER_FILE)).map_err(io("rename format marker"))?;
    snapshot::sync_dir(dir).map_err(io("sync data dir"))
}

/// Reads every record of every column family, checking block checksums and
/// decoding each value.
fn verify_all(shared: &Shared) -> Result<(), Fault> {
    for name in ALL_CFS {
        let mut o = ReadOptions::default();
        o.set_verify_checksums(true);
        o.fill_cache(false);
        let mut it = shared.db.raw_iterator_cf_opt(shared.cf(name), o);
        it.seek_to_first();
        while let Some((k, v)) = it.item() {
            check_record(name, k, v)?;
            it.next();
        }
        it.status()?;
    }
    Ok(())
}

fn check_record(cf: &str, k: &[u8], v: &[u8]) -> Result<(), Fault> {
    let bad_key = || Fault::Invalid(format!("malformed key {k:?} in column family {cf:?}"));
    match cf {
        CF_LOGS => {
            let idx = from_be(k).ok_or_else(bad_key)?;
            let e: Entry = decode("log entry", v)?;
            if e.log_id.index != idx {
                return Err(Fault::Invalid(format!(
                    "log entry stored at index {idx} has index {}",
                    e.log_id.index
                )));
            }
        }
        CF_KV => {
            split_version_key(k).ok_or_else(bad_key)?;
            decode::<StoredVersion>("key version", v)?;
        }
        CF_REVS => {
            from_be(k).ok_or_else(bad_key)?;
            decode::<Vec<Bytes>>("revision history", v)?;
        }
        _ => {}
    }
    Ok(())
}

/// Checks that the log is contiguous and returns its first and last index.
fn log_bounds(shared: &Shared) -> Result<Option<(u64, u64)>, Fault> {
    let view = View::latest(shared);
    let mut it = view.iter(CF_LOGS, &[], None);
    it.seek_to_first();
    let mut bounds: Option<(u64, u64)> = None;
    while let Some(k) = it.key() {
        let idx = from_be(k).ok_or_else(|| Fault::Invalid(format!("malformed log key {k:?}")))?;
        bounds = match bounds {
            None => Some((idx, idx)),
            Some((first, last)) if idx == last + 1 => Some((first, idx)),
            Some((_, last)) => {
                return Err(Fault::Invalid(format!(
                    "the log has a hole: entry {} is followed by entry {idx}",
                    last
                )));
            }
        };
        it.next();
    }
    it.status()?;
    Ok(bounds)
}

fn index(id: &Option<LogId>) -> Option<u64> {
    id.as_ref().map(|i| i.index)
}

/// Decodes all metadata, checks the log against the state machine and the
/// snapshot, recovering the state machine from the snapshot file if it is
/// behind it. Returns the state machine's metadata.
fn validate(shared: &Shared) -> Result<SmMeta, Fault> {
    if shared.opts.verify_on_open {
        verify_all(shared)?;
    }
    let view = View::latest(shared);
    if let Some(v) = view.get(CF_RAFT_META, META_VOTE)? {
        decode::<Vote>("vote", &v)?;
    }
    if let Some(v) = view.get(CF_RAFT_META, META_COMMITTED)? {
        decode::<Option<LogId>>("committed log id", &v)?;
    }
    let purged: Option<LogId> = view
        .get(CF_RAFT_META, META_LAST_PURGED)?
        .map(|v| decode("last purged log id", &v))
        .transpose()?;
    let bounds = log_bounds(shared)?;
    if let Some((first, last)) = bounds {
        for idx in [first, last] {
            let v = view
                .get(CF_LOGS, &super::keys::be(idx))?
                .ok_or_else(|| Fault::Invalid(format!("log entry {idx} vanished")))?;
            check_record(CF_LOGS, &super::keys::be(idx), &v)?;
        }
    }
    let mut sm = view.sm_meta()?;
    if sm.compacted > sm.revision {
        return Err(Fault::Invalid(format!(
            "compacted revision {} is above the current revision {}",
            sm.compacted, sm.revision
        )));
    }
    if sm.applied.is_none() && sm.membership != StoredMembership::default() {
        return Err(Fault::Invalid(
            "state machine has a membership but no applied log id".into(),
        ));
    }

    // The snapshot file, if any: intact, and installed if newer than the state.
    let snap_path = shared.dir.join(SNAPSHOT_FILE);
    let snap: Option<SnapshotMeta> = match fs::read(&snap_path) {
        Ok(data) => Some(
            snapshot::decode_meta(&data)
                .map_err(|e| Fault::Invalid(format!("{}: {e}", snap_path.display())))?,
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Fault::Io {
                what: "read snapshot file",
                source,
            });
        }
    };
    *shared.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = snap.clone();
    let snap_last = snap.as_ref().and_then(|s| s.last_log_id);
    if snap_last > sm.applied {
        tracing::warn!(
            dir = %shared.dir.display(),
            applied = ?sm.applied,
            snapshot = ?snap_last,
            "state machine is behind the persisted snapshot; installing it"
        );
        sm = snapshot::install_from_file(shared)?;
    }

    let applied = index(&sm.applied);
    let purged_idx = index(&purged);
    // The first index the log must still hold: everything before it is in
    // the state machine or was purged.
    let needed_from = applied.max(purged_idx).map_or(0, |i| i + 1);
    if let Some((first, _)) = bounds
        && first > needed_from
    {
        return Err(Fault::Invalid(format!(
            "the log starts at index {first} but entries from {needed_from} are neither \
             applied (applied index {applied:?}) nor purged (purged index {purged_idx:?})"
        )));
    }
    if applied < purged_idx {
        return Err(Fault::Invalid(format!(
            "the state machine is at index {applied:?} but the log was purged up to \
             {purged_idx:?} and no snapshot covers the difference"
        )));
    }
    let last_log = bounds.map(|(_, last)| last).max(purged_idx);
    if applied > last_log && index(&snap_last) < applied {
        return Err(Fault::Invalid(format!(
            "applied index {applied:?} is beyond the log (last index {last_log:?}) \
             and no snapshot explains it"
        )));
    }
    Ok(sm)
}

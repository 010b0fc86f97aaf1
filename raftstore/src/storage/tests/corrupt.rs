//! Damaged or foreign data dirs: `open` must refuse them with an error that
//! names the dir, never serve wrong data.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::*;
use crate::storage::OpenError;

/// A closed store with data flushed to SST files.
async fn flushed_store() -> TempDir {
    let mut f = Fixture::new();
    f.membership(&[1]).await;
    for i in 0..200 {
        f.ops(vec![put(&format!("/k/{i:04}"), &"v".repeat(100))])
            .await;
    }
    f.close_flushed()
}

fn refuse(dir: &Path) -> OpenError {
    let err = open(dir, opts()).expect_err("open must refuse a damaged store");
    let msg = err.to_string();
    eprintln!("refused as expected: {msg}");
    assert!(
        msg.contains(&dir.display().to_string()),
        "error names the dir: {msg}"
    );
    err
}

#[tokio::test]
async fn intact_store_reopens() {
    let dir = flushed_store().await;
    let (_log, sm) = open(dir.path(), opts()).unwrap();
    assert_eq!(sm.reader().current_revision().unwrap(), 200);
}

#[tokio::test]
async fn refuses_a_dir_that_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    assert!(matches!(refuse(dir.path()), OpenError::NotAStore { .. }));

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("CAPSTAN_STORE"), "capstan-store v99\n").unwrap();
    assert!(matches!(refuse(dir.path()), OpenError::Format { .. }));
}

#[tokio::test]
async fn refuses_a_missing_sst() {
    let dir = flushed_store().await;
    let ssts = db_files(dir.path(), ".sst");
    assert!(!ssts.is_empty());
    fs::remove_file(&ssts[0]).unwrap();
    refuse(dir.path());
}

#[tokio::test]
async fn refuses_a_truncated_sst() {
    let dir = flushed_store().await;
    let ssts = db_files(dir.path(), ".sst");
    let f = fs::OpenOptions::new().write(true).open(&ssts[0]).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    refuse(dir.path());
}

#[tokio::test]
async fn refuses_overwritten_sst_bytes() {
    let dir = flushed_store().await;
    // The biggest SST holds the kv data; damage the middle of a data block.
    let mut ssts = db_files(dir.path(), ".sst");
    ssts.sort_by_key(|p| fs::metadata(p).unwrap().len());
    let target = ssts.last().unwrap();
    let len = fs::metadata(target).unwrap().len();
    let mut f = fs::OpenOptions::new().write(true).open(target).unwrap();
    f.seek(SeekFrom::Start(len / 4)).unwrap();
    f.write_all(&[0xA5; 64]).unwrap();
    drop(f);
    refuse(dir.path());
}

#[tokio::test]
async fn refuses_a_truncated_or_missing_manifest_or_current() {
    let dir = flushed_store().await;
    let manifest = db_files(dir.path(), "")
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("MANIFEST-")
        })
        .unwrap();
    let f = fs::OpenOptions::new().write(true).open(&manifest).unwrap();
    f.set_len(10).unwrap();
    refuse(dir.path());

    let dir = flushed_store().await;
    fs::write(dir.path().join("db/CURRENT"), "").unwrap();
    refuse(dir.path());

    let dir = flushed_store().await;
    fs::remove_file(dir.path().join("db/CURRENT")).unwrap();
    assert!(matches!(refuse(dir.path()), OpenError::Corrupt { .. }));

    let dir = flushed_store().await;
    fs::remove_dir_all(dir.path().join("db")).unwrap();
    refuse(dir.path());
}

#[tokio::test]
async fn refuses_damaged_wal_records() {
    // Unflushed data lives only in the WAL.
    let mut f = Fixture::new();
    for i in 0..50 {
        f.ops(vec![put(&format!("/w/{i}"), &"v".repeat(200))]).await;
    }
    let Fixture { dir, log, sm, .. } = f;
    drop((log, sm));
    let wal = db_files(dir.path(), ".log")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let len = fs::metadata(&wal).unwrap().len();
    assert!(len > 4096, "the WAL holds the writes");
    let mut file = fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.seek(SeekFrom::Start(len / 3)).unwrap();
    file.write_all(&[0x5A; 32]).unwrap();
    drop(file);
    refuse(dir.path());
}

#[tokio::test]
async fn refuses_a_log_with_a_hole() {
    let mut f = Fixture::new();
    for i in 0..5 {
        f.ops(vec![put(&format!("/h/{i}"), "v")]).await;
    }
    let shared = std::sync::Arc::clone(&f.sm.shared);
    shared
        .db
        .delete_cf(
            shared.cf(crate::storage::keys::CF_LOGS),
            crate::storage::keys::be(2),
        )
        .unwrap();
    drop(shared);
    let dir = f.close_flushed();
    let err = refuse(dir.path());
    assert!(err.to_string().contains("hole"), "{err}");
}

#[tokio::test]
async fn refuses_applied_state_the_log_cannot_explain() {
    let mut f = Fixture::new();
    for i in 0..5 {
        f.ops(vec![put(&format!("/h/{i}"), "v")]).await;
    }
    // Lose the log tail (as if a different, shorter log was copied in).
    {
        use openraft::storage::RaftLogStorage;
        f.log.truncate(log_id(2)).await.unwrap();
    }
    let dir = f.close_flushed();
    let err = refuse(dir.path());
    assert!(err.to_string().contains("beyond the log"), "{err}");
}

#[tokio::test]
async fn refuses_undecodable_metadata_and_bad_snapshot_file() {
    let mut f = Fixture::new();
    f.ops(vec![put("/a", "1")]).await;
    let shared = std::sync::Arc::clone(&f.sm.shared);
    shared
        .db
        .put_cf(
            shared.cf(crate::storage::keys::CF_SM_META),
            crate::storage::keys::SM_APPLIED,
            [0xff, 0xff, 0xff],
        )
        .unwrap();
    drop(shared);
    let dir = f.close_flushed();
    let err = refuse(dir.path());
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");

    let mut f = Fixture::new();
    f.ops(vec![put("/a", "1")]).await;
    {
        use openraft::RaftSnapshotBuilder;
        use openraft::storage::RaftStateMachine;
        f.sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let dir = f.close_flushed();
    let path = dir.path().join("snapshot.bin");
    let mut data = fs::read(&path).unwrap();
    let n = data.len();
    data[n - 3] ^= 0x10;
    fs::write(&path, data).unwrap();
    let err = refuse(dir.path());
    assert!(err.to_string().contains("checksum"), "{err}");
}

//! Snapshots: build, install into a fresh store, persistence across restart,
//! watchers across an install.

use std::time::Duration;

use bytes::Bytes;
use openraft::RaftSnapshotBuilder;
use openraft::storage::{RaftLogStorage, RaftStateMachine};

use super::*;
use crate::storage::{RangeRequest, WatchError};

async fn populate(f: &mut Fixture) {
    f.membership(&[1, 2, 3]).await;
    f.ops(vec![put("/a", "1"), put("/b", "1")]).await; // 1
    f.ops(vec![put("/a", "2")]).await; // 2
    f.ops(vec![del("/b")]).await; // 3
    f.compact(2).await;
    f.ops(vec![put("/c", "1")]).await; // 4
}

/// Everything a reader can observe, at every retained revision.
async fn observe(r: &StoreReader) -> Vec<String> {
    let cur = r.current_revision().unwrap();
    let compacted = r.compacted_revision().unwrap();
    let mut out = vec![format!("rev={cur} compacted={compacted}")];
    for rev in compacted..=cur {
        out.push(format!(
            "{rev}: {:?}",
            r.range(&RangeRequest {
                revision: Some(rev),
                ..RangeRequest::default()
            })
            .unwrap()
            .kvs
        ));
    }
    let mut w = r.watch(compacted, Bytes::new()).unwrap();
    for _ in compacted..=cur {
        let ev = tokio::time::timeout(Duration::from_secs(5), w.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        out.push(format!("{ev:?}"));
    }
    out
}

#[tokio::test]
async fn snapshot_installs_into_a_fresh_store_identically() {
    let mut leader = Fixture::new();
    populate(&mut leader).await;
    let snap = leader
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(leader.next_index - 1)));
    let current = leader.sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snap.meta);

    let mut follower = Fixture::new();
    follower.ops(vec![put("/junk", "x")]).await;
    let r = follower.reader();
    let mut w = r.watch(0, Bytes::new()).unwrap();
    follower
        .sm
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    assert_eq!(
        follower.sm.applied_state().await.unwrap(),
        leader.sm.applied_state().await.unwrap()
    );
    assert_eq!(observe(&r).await, observe(&leader.reader()).await);
    assert_eq!(r.get(b"/junk", None).unwrap().kv, None);
    // The follower's watcher was at revision 1 -> continues with 2..=4 from
    // the installed history (compacted is 2, so 2 is still there).
    let ev = tokio::time::timeout(Duration::from_secs(5), w.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.revision, 2);
    assert_eq!(
        follower
            .sm
            .get_current_snapshot()
            .await
            .unwrap()
            .unwrap()
            .meta,
        snap.meta
    );
}

#[tokio::test]
async fn watcher_that_cannot_continue_after_install_gets_an_error() {
    let mut leader = Fixture::new();
    populate(&mut leader).await;
    let snap = leader
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    // A follower whose watcher is already past the snapshot's revision.
    let mut follower = Fixture::new();
    for i in 0..6 {
        follower.ops(vec![put("/x", &i.to_string())]).await;
    }
    let r = follower.reader();
    let mut w = r.watch(0, Bytes::new()).unwrap();
    follower
        .sm
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let err = w.recv().await.unwrap().unwrap_err();
    assert!(matches!(err, WatchError::Reset(_)), "{err:?}");

    // One whose next revision was compacted by the snapshot.
    let snap = leader
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut follower = Fixture::new();
    let r = follower.reader();
    let mut w = r.watch(0, Bytes::new()).unwrap();
    follower
        .sm
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let err = w.recv().await.unwrap().unwrap_err();
    assert_eq!(
        err,
        WatchError::Expired {
            requested: 1,
            compacted: 2
        }
    );
}

#[tokio::test]
async fn restart_from_snapshot_and_log_tail() {
    let mut f = Fixture::new();
    populate(&mut f).await;
    let snap =
        f.sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    let snap_id = snap.meta.last_log_id.unwrap();
    f.log.purge(snap_id).await.unwrap();
    f.ops(vec![put("/tail", "1")]).await;
    let before = observe(&f.reader()).await;
    let mut f = f.reopen();
    assert_eq!(observe(&f.reader()).await, before);
    let cur = f.sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(cur.meta, snap.meta);
    let st = f.log.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(snap_id));
    assert_eq!(st.last_log_id, Some(log_id(f.next_index - 1)));
}

#[tokio::test]
async fn state_machine_behind_the_snapshot_file_is_recovered_from_it() {
    // A follower that crashed after persisting a received snapshot but
    // before writing it into the state machine.
    let mut leader = Fixture::new();
    populate(&mut leader).await;
    let snap = leader
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let follower = Fixture::new();
    let data = snap.snapshot.into_inner();
    std::fs::write(follower.dir.path().join("snapshot.bin"), &data).unwrap();
    let follower = follower.reopen();
    assert_eq!(
        observe(&follower.reader()).await,
        observe(&leader.reader()).await
    );
}

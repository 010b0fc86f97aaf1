//! Watches: history replay then live events with no gap and no duplicate,
//! prefix filtering, expiry, slow watchers, shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::storage::{EventKind, ReadError, RevisionEvents, WatchStream};

async fn next(w: &mut WatchStream) -> Arc<RevisionEvents> {
    tokio::time::timeout(Duration::from_secs(5), w.recv())
        .await
        .expect("watch event within 5s")
        .expect("stream open")
        .expect("no watch error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_without_gap_or_duplicate() {
    let mut f = Fixture::new();
    let r = f.reader();
    for i in 1..=5 {
        f.ops(vec![put("/a", &i.to_string())]).await;
    }
    let mut w = r.watch(2, Bytes::new()).unwrap();
    // Writes after the watch starts but before anything is read.
    f.ops(vec![put("/a", "6")]).await;
    f.ops(vec![del("/a")]).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let ev = next(&mut w).await;
        assert_eq!(ev.events.len(), 1);
        seen.push(ev.revision);
    }
    assert_eq!(seen, vec![2, 3, 4, 5, 6, 7]);
    f.ops(vec![put("/a", "8")]).await;
    let ev = next(&mut w).await;
    assert_eq!(ev.revision, 8);
    assert_eq!(ev.events[0].kind, EventKind::Put);
    assert_eq!(ev.events[0].prev_kv, None, "recreated after a delete");
    // No more events pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), w.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn replayed_events_equal_live_events() {
    let mut f = Fixture::new();
    let r = f.reader();
    let mut live = r.watch(0, Bytes::new()).unwrap();
    f.ops(vec![put("/a", "1"), put("/b", "1")]).await;
    f.ops(vec![put("/a", "2"), del("/b"), del("/nope")]).await;
    f.txn(Txn {
        compares: vec![cmp("/a", Condition::ModRevision(2))],
        success: vec![put("/c", "1")],
        failure: vec![],
    })
    .await;
    let mut from_live = Vec::new();
    for _ in 0..3 {
        from_live.push(next(&mut live).await);
    }
    let mut replay = r.watch(1, Bytes::new()).unwrap();
    for expected in &from_live {
        assert_eq!(&next(&mut replay).await, expected);
    }
    let del_event = &from_live[1].events[1];
    assert_eq!(del_event.kind, EventKind::Delete);
    assert_eq!(del_event.kv.mod_revision, 2);
    assert_eq!(del_event.prev_kv.as_ref().unwrap().value, b("1"));
    // The live Arc is shared, not rebuilt, when nothing is filtered out.
    let mut w2 = r.watch(0, Bytes::new()).unwrap();
    let mut w3 = r.watch(0, Bytes::new()).unwrap();
    f.ops(vec![put("/z", "1")]).await;
    assert!(Arc::ptr_eq(&next(&mut w2).await, &next(&mut w3).await));
}

#[tokio::test]
async fn prefix_filter_skips_unrelated_revisions() {
    let mut f = Fixture::new();
    let r = f.reader();
    let mut w = r.watch(1, b("/pods/")).unwrap();
    f.ops(vec![put("/nodes/n1", "x")]).await; // 1: nothing for the watcher
    f.ops(vec![put("/pods/a", "x"), put("/nodes/n2", "x")])
        .await; // 2: one of two
    let ev = next(&mut w).await;
    assert_eq!(ev.revision, 2);
    assert_eq!(ev.events.len(), 1);
    assert_eq!(ev.events[0].kv.key, b("/pods/a"));
    // Same through replay.
    let mut w = r.watch(1, b("/pods/")).unwrap();
    let ev = next(&mut w).await;
    assert_eq!(ev.revision, 2);
    assert_eq!(ev.events.len(), 1);
}

#[tokio::test]
async fn watch_below_compaction_is_expired() {
    let mut f = Fixture::new();
    let r = f.reader();
    for i in 1..=4 {
        f.ops(vec![put("/a", &i.to_string())]).await;
    }
    f.compact(3).await;
    assert_eq!(
        r.watch(2, Bytes::new()).unwrap_err(),
        ReadError::Expired {
            requested: 2,
            compacted: 3
        }
    );
    let mut w = r.watch(3, Bytes::new()).unwrap();
    let ev = next(&mut w).await;
    assert_eq!(ev.revision, 3);
    assert_eq!(ev.events[0].prev_kv.as_ref().unwrap().value, b("2"));
    assert_eq!(next(&mut w).await.revision, 4);
}

#[tokio::test]
async fn a_watcher_behind_the_live_ring_catches_up_from_the_database() {
    let mut f = Fixture::with(StorageOptions {
        watch_queue: 4,
        ..opts()
    });
    let r = f.reader();
    let mut slow = r.watch(0, Bytes::new()).unwrap();
    let mut fast = r.watch(0, Bytes::new()).unwrap();
    for i in 0..10 {
        f.ops(vec![put("/a", &i.to_string())]).await;
        assert_eq!(next(&mut fast).await.revision, i + 1);
    }
    // Ten revisions behind a ring of four: every one still arrives, in
    // order, each with its own value.
    for i in 0..10 {
        let ev = tokio::time::timeout(Duration::from_secs(5), next(&mut slow))
            .await
            .expect("the slow watcher catches up");
        assert_eq!(ev.revision, i + 1);
        assert_eq!(ev.events[0].kv.value, b(&i.to_string()));
    }
    // And it goes on with live revisions.
    f.ops(vec![put("/a", "live")]).await;
    assert_eq!(next(&mut slow).await.revision, 11);
}

#[tokio::test]
async fn future_start_revision_waits_and_drop_ends_watchers() {
    let mut f = Fixture::new();
    let r = f.reader();
    let mut w = r.watch(3, Bytes::new()).unwrap();
    for i in 1..=3 {
        f.ops(vec![put("/a", &i.to_string())]).await;
    }
    assert_eq!(next(&mut w).await.revision, 3);
    let Fixture { dir, log, sm, .. } = f;
    drop(sm);
    assert!(w.recv().await.is_none());
    assert_eq!(r.watch(0, Bytes::new()).unwrap_err(), ReadError::Closed);
    drop((log, dir));
}

#[tokio::test]
async fn watch_as_stream() {
    use futures::StreamExt;
    let mut f = Fixture::new();
    let r = f.reader();
    let s = r.watch(1, Bytes::new()).unwrap().into_stream();
    f.ops(vec![put("/a", "1")]).await;
    f.ops(vec![put("/a", "2")]).await;
    let got: Vec<_> = s.take(2).map(|e| e.unwrap().revision).collect().await;
    assert_eq!(got, vec![1, 2]);
}

//! MVCC semantics through the real state machine: revisions, compares,
//! deletes, ranges and pagination, old revisions, compaction, restart.

use openraft::EntryPayload;
use openraft::storage::RaftStateMachine;

use super::*;
use crate::storage::{RangeRequest, ReadError};

#[tokio::test]
async fn revision_bumps_once_per_writing_txn() {
    let mut f = Fixture::new();
    let r = f.reader();
    assert_eq!(r.current_revision().unwrap(), 0);
    let res = f.ops(vec![put("/a", "1"), put("/b", "1")]).await;
    assert_eq!((res.succeeded, res.revision), (true, 1));
    let a = r.get(b"/a", None).unwrap().kv.unwrap();
    let bb = r.get(b"/b", None).unwrap().kv.unwrap();
    assert_eq!((a.mod_revision, bb.mod_revision), (1, 1));
    // Blank and membership entries change no revision.
    f.apply_payloads(vec![EntryPayload::Blank]).await;
    f.membership(&[1, 2, 3]).await;
    assert_eq!(r.current_revision().unwrap(), 1);
    // A delete of an absent key writes nothing.
    let res = f.ops(vec![del("/nope")]).await;
    assert_eq!(res.revision, 1);
    assert_eq!(res.prev_kvs, vec![None]);
    assert_eq!(r.current_revision().unwrap(), 1);
    let res = f.ops(vec![put("/a", "2")]).await;
    assert_eq!(res.revision, 2);
    let a = r.get(b"/a", None).unwrap().kv.unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version, a.value),
        (1, 2, 2, b("2"))
    );
    assert_eq!(res.prev_kvs[0].as_ref().unwrap().value, b("1"));
    assert_eq!(r.applied_log_id().unwrap(), Some(log_id(f.next_index - 1)));
}

#[tokio::test]
async fn many_txns_in_one_apply_batch_see_each_other() {
    let mut f = Fixture::new();
    let create = |v: &str| {
        Command::Txn(Txn {
            compares: vec![cmp("/x", Condition::Absent)],
            success: vec![put("/x", v)],
            failure: vec![],
        })
    };
    let results = f.apply(vec![create("1"), create("2"), create("3")]).await;
    let ok: Vec<_> = results.iter().map(|r| (r.succeeded, r.revision)).collect();
    assert_eq!(ok, vec![(true, 1), (false, 1), (false, 1)]);
    assert_eq!(
        f.reader().get(b"/x", None).unwrap().kv.unwrap().value,
        b("1")
    );
}

#[tokio::test]
async fn batch_entry_applies_each_txn_as_if_alone() {
    let mut f = Fixture::new();
    let mut watch = f.reader().watch(1, b("/")).unwrap();
    let create = |k: &str, v: &str| Txn {
        compares: vec![cmp(k, Condition::Absent)],
        success: vec![put(k, v)],
        failure: vec![],
    };
    let batch = Command::Batch(vec![
        create("/x", "1"),
        create("/x", "2"),
        create("/y", "3"),
    ]);
    let result = f.apply(vec![batch]).await.remove(0);
    let each: Vec<_> = result
        .batch
        .iter()
        .map(|r| (r.succeeded, r.revision))
        .collect();
    // The second create sees the first; each writing txn has its own revision.
    assert_eq!(each, vec![(true, 1), (false, 1), (true, 2)]);
    assert_eq!(result.revision, 2);
    assert_eq!(
        f.reader().get(b"/x", None).unwrap().kv.unwrap().value,
        b("1")
    );
    // Watchers see two revisions, one change each.
    for (rev, key) in [(1, "/x"), (2, "/y")] {
        let ev = watch.recv().await.unwrap().unwrap();
        assert_eq!(ev.revision, rev);
        assert_eq!(ev.events.len(), 1);
        assert_eq!(ev.events[0].kv.key, b(key));
    }
}

#[tokio::test]
async fn create_if_absent_and_compare_and_swap() {
    let mut f = Fixture::new();
    let r = f.reader();
    let create = Txn {
        compares: vec![cmp("/pods/a", Condition::Absent)],
        success: vec![put("/pods/a", "v1")],
        failure: vec![],
    };
    assert!(f.txn(create.clone()).await.succeeded);
    let again = f.txn(create).await;
    assert!(!again.succeeded);
    assert_eq!(
        again.revision, 1,
        "a failed compare does not bump the revision"
    );

    // CAS on mod revision (resourceVersion).
    let cas = |rev, v: &str| Txn {
        compares: vec![cmp("/pods/a", Condition::ModRevision(rev))],
        success: vec![put("/pods/a", v)],
        failure: vec![],
    };
    assert!(!f.txn(cas(7, "bad")).await.succeeded);
    let ok = f.txn(cas(1, "v2")).await;
    assert!(ok.succeeded);
    assert_eq!(ok.revision, 2);
    assert!(!f.txn(cas(1, "stale")).await.succeeded);

    // CAS on value, with failure ops reading back.
    let by_value = Txn {
        compares: vec![cmp("/pods/a", Condition::Value(b("v2")))],
        success: vec![put("/pods/a", "v3")],
        failure: vec![],
    };
    assert!(f.txn(by_value.clone()).await.succeeded);
    assert!(!f.txn(by_value).await.succeeded);
    let present = Txn {
        compares: vec![cmp("/pods/b", Condition::Present)],
        success: vec![],
        failure: vec![put("/pods/b", "made")],
    };
    let res = f.txn(present).await;
    assert!(!res.succeeded);
    assert_eq!(res.revision, 4, "failure ops that write bump the revision");
    assert_eq!(r.get(b"/pods/a", None).unwrap().kv.unwrap().value, b("v3"));
    assert_eq!(
        r.get(b"/pods/b", None).unwrap().kv.unwrap().value,
        b("made")
    );
}

#[tokio::test]
async fn deletes_leave_tombstones_and_recreate_restarts_version() {
    let mut f = Fixture::new();
    let r = f.reader();
    f.ops(vec![put("/k", "1")]).await; // 1
    f.ops(vec![put("/k", "2")]).await; // 2
    let res = f.ops(vec![del("/k")]).await; // 3
    assert_eq!(res.revision, 3);
    assert_eq!(res.prev_kvs[0].as_ref().unwrap().version, 2);
    assert_eq!(r.get(b"/k", None).unwrap().kv, None);
    assert_eq!(r.get(b"/k", Some(2)).unwrap().kv.unwrap().value, b("2"));
    let res = f
        .txn(Txn {
            compares: vec![cmp("/k", Condition::Absent)],
            success: vec![put("/k", "again")],
            failure: vec![],
        })
        .await;
    assert!(res.succeeded);
    let kv = r.get(b"/k", None).unwrap().kv.unwrap();
    assert_eq!((kv.create_revision, kv.version), (4, 1));
    assert!(r.range(&RangeRequest::prefix("/")).unwrap().kvs.len() == 1);
    assert!(
        r.range(&RangeRequest {
            revision: Some(3),
            ..RangeRequest::prefix("/")
        })
        .unwrap()
        .kvs
        .is_empty()
    );
}

#[tokio::test]
async fn range_pages_are_consistent_while_writes_happen() {
    let mut f = Fixture::new();
    let r = f.reader();
    for i in 0..10 {
        f.ops(vec![put(&format!("/p/{i:02}"), "v1")]).await;
    }
    f.ops(vec![put("/q/outside", "x"), put("/o", "x")]).await;
    let first = r
        .range(&RangeRequest {
            limit: 4,
            ..RangeRequest::prefix("/p/")
        })
        .unwrap();
    assert_eq!(first.kvs.len(), 4);
    assert!(first.more);
    assert_eq!(first.revision, 11);
    let token = first.continue_token.clone().unwrap();
    assert_eq!(token.start_after, b("/p/03"));
    // Writes between pages: change, delete and add keys in the range.
    f.ops(vec![put("/p/05", "v2"), del("/p/06"), put("/p/045", "new")])
        .await;
    let token = crate::storage::ContinueToken::from_bytes(&token.to_bytes()).unwrap();
    let mut keys: Vec<_> = first.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut page = r.range(&RangeRequest::resume("/p/", &token, 4)).unwrap();
    loop {
        assert_eq!(
            page.revision, 11,
            "every page is at the first page's revision"
        );
        for kv in &page.kvs {
            assert_eq!(kv.value, b("v1"));
        }
        keys.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        match page.continue_token.clone() {
            Some(t) => page = r.range(&RangeRequest::resume("/p/", &t, 4)).unwrap(),
            None => break,
        }
    }
    let expected: Vec<_> = (0..10).map(|i| b(&format!("/p/{i:02}"))).collect();
    assert_eq!(keys, expected);
    // The latest state reflects the writes.
    let now = r.range(&RangeRequest::prefix("/p/")).unwrap();
    assert_eq!(now.kvs.len(), 10);
    assert!(!now.more);
    assert!(now.kvs.iter().any(|kv| kv.key == b("/p/045")));
    // Exactly `limit` keys left: no `more`.
    let exact = r
        .range(&RangeRequest {
            limit: 10,
            ..RangeRequest::prefix("/p/")
        })
        .unwrap();
    assert!(!exact.more && exact.continue_token.is_none());
    // An empty prefix ranges over everything.
    assert_eq!(r.range(&RangeRequest::default()).unwrap().kvs.len(), 12);
}

#[tokio::test]
async fn reads_at_old_revisions_then_compaction_expires_them() {
    let mut f = Fixture::new();
    let r = f.reader();
    f.ops(vec![put("/a", "1")]).await; // 1
    f.ops(vec![put("/a", "2"), put("/b", "1")]).await; // 2
    f.ops(vec![del("/b")]).await; // 3
    f.ops(vec![put("/a", "3")]).await; // 4
    f.ops(vec![put("/c", "1")]).await; // 5
    assert_eq!(r.get(b"/a", Some(1)).unwrap().kv.unwrap().value, b("1"));
    assert_eq!(r.get(b"/b", Some(2)).unwrap().kv.unwrap().value, b("1"));
    assert_eq!(
        r.get(b"/a", Some(9)).unwrap_err(),
        ReadError::FutureRevision {
            requested: 9,
            current: 5
        }
    );
    let before: Vec<_> = (3..=5)
        .map(|rev| {
            r.range(&RangeRequest {
                revision: Some(rev),
                ..RangeRequest::default()
            })
            .unwrap()
            .kvs
        })
        .collect();

    let res = f.compact(3).await;
    assert_eq!(res.error, None);
    assert_eq!(res.revision, 5);
    assert_eq!(r.compacted_revision().unwrap(), 3);
    assert_eq!(
        r.current_revision().unwrap(),
        5,
        "compaction writes no revision"
    );
    for rev in [1, 2] {
        assert_eq!(
            r.get(b"/a", Some(rev)).unwrap_err(),
            ReadError::Expired {
                requested: rev,
                compacted: 3
            }
        );
    }
    let after: Vec<_> = (3..=5)
        .map(|rev| {
            r.range(&RangeRequest {
                revision: Some(rev),
                ..RangeRequest::default()
            })
            .unwrap()
            .kvs
        })
        .collect();
    assert_eq!(
        before, after,
        "retained revisions read the same after compaction"
    );
    // Old versions are gone from disk: /a@1 superseded by /a@2 (<= 2).
    let shared = std::sync::Arc::clone(&f.sm.shared);
    let view = crate::storage::db::View::latest(&shared);
    assert!(view.version_exact(b"/a", 1).unwrap().is_none());
    assert!(view.version_exact(b"/a", 2).unwrap().is_some());

    // Compacting to the future or backwards is refused, deterministically.
    assert!(
        f.compact(9)
            .await
            .error
            .unwrap()
            .contains("current revision is 5")
    );
    assert!(
        f.compact(2)
            .await
            .error
            .unwrap()
            .contains("already compacted")
    );
    assert_eq!(r.compacted_revision().unwrap(), 3);

    // Compact to the current revision; the tombstone of /b goes.
    assert_eq!(f.compact(5).await.error, None);
    assert_eq!(r.get(b"/a", None).unwrap().kv.unwrap().value, b("3"));
    assert!(view.version_exact(b"/b", 3).unwrap().is_none());
    assert!(view.version_exact(b"/b", 2).unwrap().is_none());
}

#[tokio::test]
async fn compaction_in_the_middle_of_an_apply_batch() {
    let mut f = Fixture::new();
    let r = f.reader();
    let results = f
        .apply(vec![
            Command::Txn(Txn {
                success: vec![put("/a", "1")],
                ..Txn::default()
            }),
            Command::Txn(Txn {
                success: vec![put("/a", "2")],
                ..Txn::default()
            }),
            Command::Compact { revision: 2 },
            Command::Txn(Txn {
                compares: vec![cmp("/a", Condition::ModRevision(2))],
                success: vec![put("/a", "3")],
                failure: vec![],
            }),
        ])
        .await;
    assert_eq!(results[2].error, None);
    assert!(results[3].succeeded);
    assert_eq!(r.compacted_revision().unwrap(), 2);
    assert_eq!(r.get(b"/a", Some(2)).unwrap().kv.unwrap().value, b("2"));
    assert!(matches!(
        r.get(b"/a", Some(1)),
        Err(ReadError::Expired { .. })
    ));
    assert_eq!(r.applied_log_id().unwrap(), Some(log_id(3)));
}

#[tokio::test]
async fn restart_keeps_everything() {
    let mut f = Fixture::new();
    f.membership(&[1]).await;
    f.ops(vec![put("/a", "1")]).await;
    f.ops(vec![put("/a", "2"), put("/b", "x")]).await;
    f.ops(vec![del("/b")]).await;
    f.compact(2).await;
    let vote = openraft::Vote::new(3, 1);
    {
        use openraft::storage::RaftLogStorage;
        f.log.save_vote(&vote).await.unwrap();
    }
    let r = f.reader();
    let all = |r: &StoreReader| {
        (
            r.current_revision().unwrap(),
            r.compacted_revision().unwrap(),
            r.applied_log_id().unwrap(),
            r.range(&RangeRequest::default()).unwrap(),
            r.range(&RangeRequest {
                revision: Some(2),
                ..RangeRequest::default()
            })
            .unwrap(),
        )
    };
    let before = all(&r);
    let (applied, membership) = f.sm.applied_state().await.unwrap();
    drop(r);
    let mut f = f.reopen();
    let r = f.reader();
    assert_eq!(all(&r), before);
    assert_eq!(f.sm.applied_state().await.unwrap(), (applied, membership));
    {
        use openraft::storage::RaftLogStorage;
        assert_eq!(f.log.read_vote().await.unwrap(), Some(vote));
        let st = f.log.get_log_state().await.unwrap();
        assert_eq!(st.last_log_id, applied);
    }
    // And it keeps working.
    let res = f.ops(vec![put("/c", "1")]).await;
    assert_eq!(res.revision, 4);
}

#[tokio::test]
async fn largest_allowed_value_round_trips() {
    let mut f = Fixture::new();
    let big = Bytes::from(vec![7u8; crate::command::MAX_VALUE_BYTES]);
    let txn = Txn {
        success: vec![Op::Put {
            key: b("/big"),
            value: big.clone(),
        }],
        ..Txn::default()
    };
    Command::Txn(txn.clone()).validate().unwrap();
    f.txn(txn).await;
    let f = f.reopen();
    assert_eq!(
        f.reader().get(b"/big", None).unwrap().kv.unwrap().value,
        big
    );
}

/// Rough group-commit throughput: batches of 100 single-put transactions,
/// each batch one synced log append and one apply. Run with
/// `cargo test -p capstan-raftstore --lib apply_throughput -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "timing, not a check"]
async fn apply_throughput() {
    let mut f = Fixture::new();
    let start = std::time::Instant::now();
    let batches = 100;
    for bi in 0..batches {
        let cmds = (0..100)
            .map(|i| {
                Command::Txn(Txn {
                    compares: vec![cmp(&format!("/t/{bi}/{i}"), Condition::Absent)],
                    success: vec![put(&format!("/t/{bi}/{i}"), &"v".repeat(200))],
                    failure: vec![],
                })
            })
            .collect();
        f.apply(cmds).await;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} txns in {secs:.2}s: {:.0} txn/s",
        batches * 100,
        f64::from(batches * 100) / secs
    );
}

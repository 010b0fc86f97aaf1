//! The MVCC rules, without IO: evaluating a [`Txn`] against the current state
//! and producing the versions to write, the result for the proposer and the
//! watch events — all at one new revision.
//!
//! The caller ([`super::state_machine`]) looks keys up in RocksDB through
//! [`Lookup`], turns the [`TxnOutcome`] into WriteBatch operations and
//! publishes the events once the batch is written. Several transactions of one
//! `apply` call share one batch, so [`Applier`] keeps an overlay of the keys
//! it wrote that the database does not show yet.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::error::Fault;
use super::watch::{Event, EventKind, RevisionEvents};
use crate::command::{CommandResult, Compare, Condition, KeyValue, Op, Txn};

/// One version of one key as stored in the `kv` column family; its
/// `mod_revision` is the revision in the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredVersion {
    /// The value; empty for a tombstone.
    pub value: Bytes,
    /// Revision at which the key was created (0 for a tombstone).
    pub create_revision: u64,
    /// Modifications since creation (0 for a tombstone).
    pub version: u64,
    /// Whether this version records a deletion.
    pub deleted: bool,
}

impl StoredVersion {
    /// The version as a [`KeyValue`], or `None` for a tombstone.
    pub(crate) fn into_kv(self, key: Bytes, mod_revision: u64) -> Option<KeyValue> {
        (!self.deleted).then_some(KeyValue {
            key,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision,
            version: self.version,
        })
    }

    /// The stored form of a live key value.
    pub(crate) fn live(kv: &KeyValue) -> Self {
        StoredVersion {
            value: kv.value.clone(),
            create_revision: kv.create_revision,
            version: kv.version,
            deleted: false,
        }
    }

    /// A tombstone.
    pub(crate) fn tombstone() -> Self {
        StoredVersion {
            value: Bytes::new(),
            create_revision: 0,
            version: 0,
            deleted: true,
        }
    }
}

/// Finds the latest live version of a key in the committed state.
pub(crate) trait Lookup {
    /// The latest version of `key`, or `None` if it is absent or deleted.
    fn latest(&self, key: &[u8]) -> Result<Option<KeyValue>, Fault>;
}

/// What applying one transaction produced.
#[derive(Debug)]
pub(crate) struct TxnOutcome {
    /// The result returned to the proposer.
    pub result: CommandResult,
    /// The versions to write at `result.revision`, one per changed key, in
    /// the order the keys were first written; empty if nothing was written.
    pub writes: Vec<(Bytes, StoredVersion)>,
    /// The watch events of the new revision, if one was created.
    pub events: Option<Arc<RevisionEvents>>,
}

/// Applies transactions in log order on top of a revision counter and an
/// overlay of keys written earlier in the same batch.
#[derive(Debug)]
pub(crate) struct Applier {
    revision: u64,
    overlay: HashMap<Bytes, Option<KeyValue>>,
}

/// One key touched by a transaction: its state before and after.
struct Touched {
    key: Bytes,
    before: Option<KeyValue>,
    after: Option<KeyValue>,
}

impl Applier {
    /// Starts a batch at the current revision.
    pub(crate) fn new(revision: u64) -> Self {
        Applier {
            revision,
            overlay: HashMap::new(),
        }
    }

    /// The revision after everything applied so far.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// Forgets the overlay once the batch it describes has been written.
    pub(crate) fn clear_overlay(&mut self) {
        self.overlay.clear();
    }

    fn latest(&self, lookup: &impl Lookup, key: &[u8]) -> Result<Option<KeyValue>, Fault> {
        match self.overlay.get(key) {
            Some(state) => Ok(state.clone()),
            None => lookup.latest(key),
        }
    }

    /// Whether `compare` holds for the key's `current` state.
    fn holds(compare: &Compare, current: Option<&KeyValue>) -> bool {
        match (&compare.condition, current) {
            (Condition::Absent, cur) => cur.is_none(),
            (Condition::Present, cur) => cur.is_some(),
            (Condition::ModRevision(r), Some(kv)) => kv.mod_revision == *r,
            (Condition::Value(v), Some(kv)) => kv.value == *v,
            (Condition::ModRevision(_) | Condition::Value(_), None) => false,
        }
    }

    /// Applies one transaction. Deterministic: the same state and transaction
    /// give the same outcome on every replica.
    ///
    /// Several ops on one key in one transaction see each other; the key gets
    /// one version (its final state) and one event, and its `version` counts
    /// one modification for the whole transaction.
    pub(crate) fn apply_txn(
        &mut self,
        lookup: &impl Lookup,
        txn: &Txn,
    ) -> Result<TxnOutcome, Fault> {
        // Keys read by the compares, so the ops need not look them up again
        // (each lookup is a seek through the key's versions).
        let mut read: Vec<(&Bytes, Option<KeyValue>)> = Vec::new();
        let mut succeeded = true;
        for compare in &txn.compares {
            let current = self.latest(lookup, &compare.key)?;
            let holds = Self::holds(compare, current.as_ref());
            read.push((&compare.key, current));
            if !holds {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let rev = self.revision + 1;
        let mut touched: Vec<Touched> = Vec::new();
        let mut prev_kvs = Vec::with_capacity(ops.len());
        for op in ops {
            let key = op.key();
            let idx = touched.iter().position(|t| t.key == *key);
            let current = match idx {
                Some(i) => touched[i].after.clone(),
                None => match read.iter().find(|(k, _)| *k == key) {
                    Some((_, state)) => state.clone(),
                    None => self.latest(lookup, key)?,
                },
            };
            prev_kvs.push(current.clone());
            let after = match op {
                Op::Put { value, .. } => Some(match &current {
                    Some(cur) => KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: cur.create_revision,
                        mod_revision: rev,
                        version: if cur.mod_revision == rev {
                            cur.version
                        } else {
                            cur.version + 1
                        },
                    },
                    None => KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: rev,
                        mod_revision: rev,
                        version: 1,
                    },
                }),
                Op::Delete { .. } => {
                    if current.is_none() {
                        // Deleting an absent key writes nothing.
                        continue;
                    }
                    None
                }
            };
            match idx {
                Some(i) => touched[i].after = after,
                None => touched.push(Touched {
                    key: key.clone(),
                    before: current,
                    after,
                }),
            }
        }
        if touched.is_empty() {
            return Ok(TxnOutcome {
                result: CommandResult {
                    succeeded,
                    revision: self.revision,
                    prev_kvs,
                    error: None,
                    batch: Vec::new(),
                },
                writes: Vec::new(),
                events: None,
            });
        }
        self.revision = rev;
        let mut writes = Vec::with_capacity(touched.len());
        let mut events = Vec::with_capacity(touched.len());
        for t in touched {
            let (stored, event) = match t.after {
                Some(kv) => (
                    StoredVersion::live(&kv),
                    Event {
                        kind: EventKind::Put,
                        kv: kv.clone(),
                        prev_kv: t.before,
                    },
                ),
                None => (
                    StoredVersion::tombstone(),
                    Event {
                        kind: EventKind::Delete,
                        kv: tombstone_kv(t.key.clone(), rev),
                        prev_kv: t.before,
                    },
                ),
            };
            self.overlay.insert(t.key.clone(), event_state(&event));
            writes.push((t.key, stored));
            events.push(event);
        }
        Ok(TxnOutcome {
            result: CommandResult {
                succeeded,
                revision: rev,
                prev_kvs,
                error: None,
                batch: Vec::new(),
            },
            writes,
            events: Some(Arc::new(RevisionEvents {
                revision: rev,
                events,
            })),
        })
    }
}

/// The key value a delete event carries: the key and the deletion revision.
pub(crate) fn tombstone_kv(key: Bytes, revision: u64) -> KeyValue {
    KeyValue {
        key,
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: revision,
        version: 0,
    }
}

fn event_state(event: &Event) -> Option<KeyValue> {
    match event.kind {
        EventKind::Put => Some(event.kv.clone()),
        EventKind::Delete => None,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::*;

    /// An in-memory committed state.
    #[derive(Default)]
    struct Mem(RefCell<BTreeMap<Bytes, KeyValue>>);

    impl Lookup for Mem {
        fn latest(&self, key: &[u8]) -> Result<Option<KeyValue>, Fault> {
            Ok(self.0.borrow().get(key).cloned())
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn put(k: &str, v: &str) -> Op {
        Op::Put {
            key: b(k),
            value: b(v),
        }
    }

    fn txn(compares: Vec<Compare>, success: Vec<Op>) -> Txn {
        Txn {
            compares,
            success,
            failure: vec![],
        }
    }

    #[test]
    fn writes_share_one_revision_and_noops_do_not_bump() {
        let mem = Mem::default();
        let mut a = Applier::new(0);
        let out = a
            .apply_txn(&mem, &txn(vec![], vec![put("/a", "1"), put("/b", "2")]))
            .unwrap();
        assert_eq!(out.result.revision, 1);
        assert_eq!(out.writes.len(), 2);
        let ev = out.events.unwrap();
        assert_eq!(ev.revision, 1);
        assert_eq!(ev.events.len(), 2);
        // Delete of an absent key: nothing written, revision unchanged.
        let out = a
            .apply_txn(&mem, &txn(vec![], vec![Op::Delete { key: b("/zz") }]))
            .unwrap();
        assert_eq!(out.result.revision, 1);
        assert!(out.writes.is_empty() && out.events.is_none());
        assert_eq!(out.result.prev_kvs, vec![None]);
        // The overlay sees the first transaction's writes.
        let out = a
            .apply_txn(
                &mem,
                &txn(
                    vec![Compare {
                        key: b("/a"),
                        condition: Condition::ModRevision(1),
                    }],
                    vec![put("/a", "3")],
                ),
            )
            .unwrap();
        assert!(out.result.succeeded);
        assert_eq!(out.result.revision, 2);
        let prev = out.result.prev_kvs[0].clone().unwrap();
        assert_eq!((prev.version, prev.mod_revision), (1, 1));
        assert_eq!(out.writes[0].1.version, 2);
        assert_eq!(out.writes[0].1.create_revision, 1);
    }

    #[test]
    fn failed_compare_without_failure_ops_changes_nothing() {
        let mem = Mem::default();
        mem.0.borrow_mut().insert(
            b("/a"),
            KeyValue {
                key: b("/a"),
                value: b("x"),
                create_revision: 3,
                mod_revision: 4,
                version: 2,
            },
        );
        let mut a = Applier::new(7);
        for cond in [
            Condition::Absent,
            Condition::ModRevision(3),
            Condition::Value(b("y")),
        ] {
            let out = a
                .apply_txn(
                    &mem,
                    &txn(
                        vec![Compare {
                            key: b("/a"),
                            condition: cond,
                        }],
                        vec![put("/a", "z")],
                    ),
                )
                .unwrap();
            assert!(!out.result.succeeded);
            assert_eq!(out.result.revision, 7);
            assert!(out.events.is_none());
        }
        let out = a
            .apply_txn(
                &mem,
                &Txn {
                    compares: vec![Compare {
                        key: b("/a"),
                        condition: Condition::Absent,
                    }],
                    success: vec![],
                    failure: vec![Op::Delete { key: b("/a") }],
                },
            )
            .unwrap();
        assert!(!out.result.succeeded);
        assert_eq!(out.result.revision, 8);
        let ev = out.events.unwrap();
        assert_eq!(ev.events[0].kind, EventKind::Delete);
        assert_eq!(ev.events[0].kv.mod_revision, 8);
        assert_eq!(ev.events[0].prev_kv.as_ref().unwrap().value, b("x"));
        assert!(out.writes[0].1.deleted);
    }

    #[test]
    fn several_ops_on_one_key_make_one_version() {
        let mem = Mem::default();
        let mut a = Applier::new(0);
        let out = a
            .apply_txn(&mem, &txn(vec![], vec![put("/a", "1"), put("/a", "2")]))
            .unwrap();
        assert_eq!(out.writes.len(), 1);
        assert_eq!(out.writes[0].1.value, b("2"));
        assert_eq!(out.writes[0].1.version, 1);
        assert_eq!(out.result.prev_kvs[0], None);
        assert_eq!(out.result.prev_kvs[1].as_ref().unwrap().value, b("1"));
    }
}

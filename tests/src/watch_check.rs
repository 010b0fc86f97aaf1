//! Checks recorded watch streams against the store's history.
//!
//! # The promises
//!
//! The store has one global revision, bumped by every writing transaction,
//! and a watch on a key prefix from `start_revision` delivers, for every
//! revision `r >= start_revision` that changed at least one key under the
//! prefix, one batch holding exactly that revision's changes under the prefix.
//! As in etcd, that means a stream is:
//!
//! - **ordered**: batch revisions strictly increase;
//! - **free of duplicates**: no revision is delivered twice;
//! - **atomic**: a batch carries *all* of its revision's changes under the
//!   prefix, with the right kinds and values, and nothing else;
//! - **gap-free**: no revision with changes under the prefix between the
//!   start and the last delivered revision is skipped;
//! - **resumable**: a watcher whose stream broke can open a new one from the
//!   last revision it saw plus one, and the chain of streams then delivers the
//!   union exactly once.
//!
//! A stream may stop early (it broke, or the test stopped watching), so
//! "gap-free" covers only revisions up to the last one delivered; use
//! [`check_caught_up`] to also demand that a live watcher saw everything up to
//! a given revision.
//!
//! # Inputs
//!
//! The reference is the store's full history ([`Reference`]), one
//! [`RevisionChanges`] per revision, taken from a source the watch did not go
//! through (a final range read of the history, or the recorder of the
//! writes). The observed side is one [`ObservedStream`] per watch call.
//!
//! Within a batch, the order of changes is not checked: changes are matched
//! by key (a transaction touches each key at most once; if a key appears
//! several times, its occurrences are matched in order).
//!
//! Every violation found is reported, each as a [`WatchViolation`] whose
//! `Display` names the stream, the revision, the key and what was expected.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What a change did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One key's change within a revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// The key changed.
    pub key: Vec<u8>,
    /// Put or delete.
    pub kind: ChangeKind,
    /// The new value for a put; for a delete, whatever the store reports
    /// (compared as-is, so reference and stream must agree on the convention).
    pub value: Vec<u8>,
}

impl Change {
    /// A put of `value` at `key`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Change {
            key: key.into(),
            kind: ChangeKind::Put,
            value: value.into(),
        }
    }

    /// A delete of `key`, with an empty value.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Change {
            key: key.into(),
            kind: ChangeKind::Delete,
            value: Vec::new(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ChangeKind::Put => write!(f, "put {} = {}", show(&self.key), show(&self.value)),
            ChangeKind::Delete if self.value.is_empty() => write!(f, "delete {}", show(&self.key)),
            ChangeKind::Delete => write!(
                f,
                "delete {} (value {})",
                show(&self.key),
                show(&self.value)
            ),
        }
    }
}

/// All the changes of one revision (one transaction), or one delivered batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionChanges {
    /// The store revision.
    pub revision: u64,
    /// The changes made at that revision.
    pub changes: Vec<Change>,
}

/// What one watch call delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedStream {
    /// The key prefix watched (empty: every key).
    pub prefix: Vec<u8>,
    /// The revision the watch was opened from.
    pub start_revision: u64,
    /// The batches, in delivery order.
    pub batches: Vec<RevisionChanges>,
    /// Whether the stream ended with an error (as opposed to being closed by
    /// the watcher, or still open when recording stopped). Informational:
    /// it appears in messages but changes no verdict.
    pub ended_with_error: bool,
}

/// The store's full history, indexed by revision.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    revisions: BTreeMap<u64, Vec<Change>>,
}

impl Reference {
    /// Indexes the store's history.
    ///
    /// # Panics
    ///
    /// If a revision appears twice: the reference must be trustworthy.
    pub fn new(history: impl IntoIterator<Item = RevisionChanges>) -> Self {
        let mut revisions = BTreeMap::new();
        for rc in history {
            let revision = rc.revision;
            assert!(
                revisions.insert(revision, rc.changes).is_none(),
                "revision {revision} appears twice in the reference history"
            );
        }
        Reference { revisions }
    }

    /// The changes of `revision`, if the reference has it.
    pub fn changes(&self, revision: u64) -> Option<&[Change]> {
        self.revisions.get(&revision).map(Vec::as_slice)
    }

    /// The highest revision in the reference.
    pub fn last_revision(&self) -> Option<u64> {
        self.revisions.keys().next_back().copied()
    }

    /// The revisions in `[from, to]` that changed at least one key under
    /// `prefix`, in order.
    fn revisions_under<'a>(
        &'a self,
        prefix: &'a [u8],
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = u64> + 'a {
        // `BTreeMap::range` panics on an inverted range.
        (from <= to)
            .then(|| self.revisions.range(from..=to))
            .into_iter()
            .flatten()
            .filter(move |(_, changes)| changes.iter().any(|c| c.key.starts_with(prefix)))
            .map(|(&r, _)| r)
    }
}

/// One broken promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchViolation {
    /// The index of the stream in the chain (0 for a single stream).
    pub stream: usize,
    /// What was wrong.
    pub kind: ViolationKind,
}

/// The ways a watch stream can break its promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A batch for a revision before the stream's start.
    BeforeStart {
        /// The batch's revision.
        revision: u64,
        /// The stream's start revision.
        start_revision: u64,
    },
    /// The same revision delivered twice in one stream.
    Duplicate {
        /// The repeated revision.
        revision: u64,
    },
    /// A revision delivered after a higher one.
    OutOfOrder {
        /// The late batch's revision.
        revision: u64,
        /// The revision delivered just before it.
        previous: u64,
    },
    /// A batch for a revision the reference does not have.
    UnknownRevision {
        /// The batch's revision.
        revision: u64,
    },
    /// A batch for a revision that changed nothing under the prefix.
    NothingUnderPrefix {
        /// The batch's revision.
        revision: u64,
    },
    /// A change to a key outside the watched prefix.
    OutsidePrefix {
        /// The batch's revision.
        revision: u64,
        /// The change delivered.
        observed: Change,
    },
    /// A change of the revision missing from its batch (a split or partial
    /// revision).
    MissingChange {
        /// The batch's revision.
        revision: u64,
        /// The change that should have been in the batch.
        expected: Change,
    },
    /// A change in the batch that the revision did not make.
    UnexpectedChange {
        /// The batch's revision.
        revision: u64,
        /// The change delivered.
        observed: Change,
    },
    /// A change to the right key with the wrong kind or value.
    WrongChange {
        /// The batch's revision.
        revision: u64,
        /// What the revision did.
        expected: Change,
        /// What was delivered.
        observed: Change,
    },
    /// A revision with changes under the prefix that was not delivered.
    Gap {
        /// The skipped revision.
        revision: u64,
        /// Its changes under the prefix.
        expected: Vec<Change>,
    },
    /// A resumed stream watched a different prefix than the chain's first.
    PrefixChanged {
        /// The chain's prefix.
        expected: Vec<u8>,
        /// This stream's prefix.
        prefix: Vec<u8>,
    },
    /// A resumed stream started at or before a revision already delivered.
    ResumedTooEarly {
        /// The stream's start revision.
        start_revision: u64,
        /// The last revision delivered before, plus one.
        expected: u64,
    },
    /// A resumed stream started after `expected` and thereby skipped
    /// revisions with changes under the prefix.
    ResumedTooLate {
        /// The stream's start revision.
        start_revision: u64,
        /// The last revision delivered before, plus one.
        expected: u64,
        /// The revisions skipped.
        skipped: Vec<u64>,
    },
    /// A revision delivered again by a later stream of a chain.
    Redelivered {
        /// The revision.
        revision: u64,
        /// The earlier stream that delivered it.
        first_stream: usize,
    },
}

impl fmt::Display for WatchViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}: ", self.stream)?;
        match &self.kind {
            ViolationKind::BeforeStart {
                revision,
                start_revision,
            } => write!(
                f,
                "revision {revision} delivered, but the watch started at {start_revision}"
            ),
            ViolationKind::Duplicate { revision } => {
                write!(f, "revision {revision} delivered twice")
            }
            ViolationKind::OutOfOrder { revision, previous } => write!(
                f,
                "revision {revision} delivered after revision {previous} (out of order)"
            ),
            ViolationKind::UnknownRevision { revision } => write!(
                f,
                "revision {revision} delivered, but the reference history has no such revision"
            ),
            ViolationKind::NothingUnderPrefix { revision } => write!(
                f,
                "revision {revision} delivered, but it changed nothing under the watched prefix"
            ),
            ViolationKind::OutsidePrefix { revision, observed } => write!(
                f,
                "revision {revision}: key {} is outside the watched prefix ({observed})",
                show(&observed.key)
            ),
            ViolationKind::MissingChange { revision, expected } => write!(
                f,
                "revision {revision}: key {}: expected {expected}, but the batch lacks it \
                 (revision split or partial)",
                show(&expected.key)
            ),
            ViolationKind::UnexpectedChange { revision, observed } => write!(
                f,
                "revision {revision}: key {}: delivered {observed}, which that revision did not do",
                show(&observed.key)
            ),
            ViolationKind::WrongChange {
                revision,
                expected,
                observed,
            } => write!(
                f,
                "revision {revision}: key {}: expected {expected}, delivered {observed}",
                show(&expected.key)
            ),
            ViolationKind::Gap { revision, expected } => {
                write!(f, "revision {revision} was skipped (gap); it made")?;
                for (i, c) in expected.iter().enumerate() {
                    write!(f, "{} {c}", if i == 0 { "" } else { "," })?;
                }
                Ok(())
            }
            ViolationKind::PrefixChanged { expected, prefix } => write!(
                f,
                "resumed on prefix {}, but the chain watches {}",
                show(prefix),
                show(expected)
            ),
            ViolationKind::ResumedTooEarly {
                start_revision,
                expected,
            } => write!(
                f,
                "resumed from revision {start_revision}, expected {expected} \
                 (would repeat revisions already delivered)"
            ),
            ViolationKind::ResumedTooLate {
                start_revision,
                expected,
                skipped,
            } => write!(
                f,
                "resumed from revision {start_revision}, expected {expected}, \
                 skipping revisions {skipped:?}"
            ),
            ViolationKind::Redelivered {
                revision,
                first_stream,
            } => write!(
                f,
                "revision {revision} delivered again (stream {first_stream} already delivered it)"
            ),
        }
    }
}

/// Renders bytes for messages: quoted text when printable, else hex.
fn show(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

/// Checks one stream: order, duplicates, atomicity, exact contents, and no
/// gaps between its start and its last delivered revision.
pub fn check_stream(
    reference: &Reference,
    stream: &ObservedStream,
) -> Result<(), Vec<WatchViolation>> {
    let mut out = Vec::new();
    check_one(reference, stream, 0, &mut out);
    into_result(out)
}

/// Checks a chain of streams, each resuming the previous one: every stream
/// alone (as [`check_stream`]), that each resumes from the last revision
/// delivered before it plus one (or later, if nothing under the prefix
/// changed in between), on the same prefix, and that no revision is delivered
/// by two streams.
pub fn check_resumed(
    reference: &Reference,
    chain: &[ObservedStream],
) -> Result<(), Vec<WatchViolation>> {
    let mut out = Vec::new();
    check_chain(reference, chain, &mut out);
    into_result(out)
}

/// Checks a chain as [`check_resumed`] does, and also that it delivered every
/// revision with changes under the prefix up to `through` (for watchers that
/// were live and caught up when recording stopped). A single stream is a
/// chain of one.
pub fn check_caught_up(
    reference: &Reference,
    chain: &[ObservedStream],
    through: u64,
) -> Result<(), Vec<WatchViolation>> {
    let mut out = Vec::new();
    check_chain(reference, chain, &mut out);
    if let Some(first) = chain.first() {
        let delivered: BTreeSet<u64> = chain
            .iter()
            .flat_map(|s| s.batches.iter().map(|b| b.revision))
            .collect();
        let last_delivered = delivered.last().copied().unwrap_or(0);
        let from = first.start_revision.max(last_delivered.saturating_add(1));
        for revision in reference.revisions_under(&first.prefix, from, through) {
            out.push(WatchViolation {
                stream: chain.len() - 1,
                kind: gap(reference, &first.prefix, revision),
            });
        }
    }
    into_result(out)
}

fn into_result(out: Vec<WatchViolation>) -> Result<(), Vec<WatchViolation>> {
    if out.is_empty() { Ok(()) } else { Err(out) }
}

fn gap(reference: &Reference, prefix: &[u8], revision: u64) -> ViolationKind {
    let expected = reference
        .changes(revision)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.key.starts_with(prefix))
        .cloned()
        .collect();
    ViolationKind::Gap { revision, expected }
}

fn check_chain(reference: &Reference, chain: &[ObservedStream], out: &mut Vec<WatchViolation>) {
    let Some(first) = chain.first() else {
        return;
    };
    // Revision -> the stream that first delivered it.
    let mut delivered_by: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, stream) in chain.iter().enumerate() {
        check_one(reference, stream, i, out);
        if i > 0 {
            if stream.prefix != first.prefix {
                out.push(WatchViolation {
                    stream: i,
                    kind: ViolationKind::PrefixChanged {
                        expected: first.prefix.clone(),
                        prefix: stream.prefix.clone(),
                    },
                });
            }
            let expected = delivered_by
                .last_key_value()
                .map_or(first.start_revision, |(&r, _)| r + 1);
            if stream.start_revision < expected {
                out.push(WatchViolation {
                    stream: i,
                    kind: ViolationKind::ResumedTooEarly {
                        start_revision: stream.start_revision,
                        expected,
                    },
                });
            } else if stream.start_revision > expected {
                let skipped: Vec<u64> = reference
                    .revisions_under(&first.prefix, expected, stream.start_revision - 1)
                    .collect();
                if !skipped.is_empty() {
                    out.push(WatchViolation {
                        stream: i,
                        kind: ViolationKind::ResumedTooLate {
                            start_revision: stream.start_revision,
                            expected,
                            skipped,
                        },
                    });
                }
            }
        }
        let mut mine = BTreeSet::new();
        for batch in &stream.batches {
            match delivered_by.get(&batch.revision) {
                Some(&earlier) if earlier != i => {
                    if mine.insert(batch.revision) {
                        out.push(WatchViolation {
                            stream: i,
                            kind: ViolationKind::Redelivered {
                                revision: batch.revision,
                                first_stream: earlier,
                            },
                        });
                    }
                }
                Some(_) => {}
                None => {
                    delivered_by.insert(batch.revision, i);
                }
            }
        }
    }
}

fn check_one(
    reference: &Reference,
    stream: &ObservedStream,
    index: usize,
    out: &mut Vec<WatchViolation>,
) {
    let mut push = |kind| {
        out.push(WatchViolation {
            stream: index,
            kind,
        })
    };
    let prefix = stream.prefix.as_slice();
    let mut previous: Option<u64> = None;
    let mut delivered = BTreeSet::new();
    for batch in &stream.batches {
        let revision = batch.revision;
        if revision < stream.start_revision {
            push(ViolationKind::BeforeStart {
                revision,
                start_revision: stream.start_revision,
            });
        }
        match previous {
            Some(p) if revision == p || delivered.contains(&revision) => {
                push(ViolationKind::Duplicate { revision });
            }
            Some(p) if revision < p => push(ViolationKind::OutOfOrder {
                revision,
                previous: p,
            }),
            _ => {}
        }
        previous = Some(revision);
        let first_delivery = delivered.insert(revision);
        if !first_delivery {
            // The contents were judged the first time.
            continue;
        }

        let Some(all) = reference.changes(revision) else {
            push(ViolationKind::UnknownRevision { revision });
            continue;
        };
        let expected: Vec<&Change> = all.iter().filter(|c| c.key.starts_with(prefix)).collect();
        if expected.is_empty() {
            push(ViolationKind::NothingUnderPrefix { revision });
        }
        let mut observed: Vec<&Change> = Vec::new();
        for c in &batch.changes {
            if c.key.starts_with(prefix) {
                observed.push(c);
            } else {
                push(ViolationKind::OutsidePrefix {
                    revision,
                    observed: c.clone(),
                });
            }
        }
        compare_batch(revision, &expected, &observed, &mut push);
    }

    // Gaps: revisions with changes under the prefix in [start, last].
    if let Some(&last) = delivered.last() {
        for revision in reference.revisions_under(prefix, stream.start_revision, last) {
            if !delivered.contains(&revision) {
                push(gap(reference, prefix, revision));
            }
        }
    }
}

/// Matches a batch's changes against the revision's, key by key.
fn compare_batch(
    revision: u64,
    expected: &[&Change],
    observed: &[&Change],
    push: &mut impl FnMut(ViolationKind),
) {
    let mut by_key: BTreeMap<&[u8], (Vec<&Change>, Vec<&Change>)> = BTreeMap::new();
    for c in expected {
        by_key.entry(&c.key).or_default().0.push(c);
    }
    for c in observed {
        by_key.entry(&c.key).or_default().1.push(c);
    }
    for (want, got) in by_key.values() {
        for k in 0..want.len().max(got.len()) {
            match (want.get(k), got.get(k)) {
                (Some(w), Some(g)) if w != g => push(ViolationKind::WrongChange {
                    revision,
                    expected: (*w).clone(),
                    observed: (*g).clone(),
                }),
                (Some(w), None) => push(ViolationKind::MissingChange {
                    revision,
                    expected: (*w).clone(),
                }),
                (None, Some(g)) => push(ViolationKind::UnexpectedChange {
                    revision,
                    observed: (*g).clone(),
                }),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(revision: u64, changes: Vec<Change>) -> RevisionChanges {
        RevisionChanges { revision, changes }
    }

    /// Revisions 2..=8; "/pods/" changes at 2, 3, 5, 6, 8; 4 and 7 touch
    /// only other keys; 6 is a transaction over three keys, two of them
    /// pods.
    fn history() -> Vec<RevisionChanges> {
        vec![
            rc(2, vec![Change::put("/pods/a", "a1")]),
            rc(3, vec![Change::put("/pods/b", "b1")]),
            rc(4, vec![Change::put("/nodes/n", "n1")]),
            rc(5, vec![Change::put("/pods/a", "a2")]),
            rc(
                6,
                vec![
                    Change::delete("/pods/a"),
                    Change::put("/nodes/n", "n2"),
                    Change::put("/pods/c", "c1"),
                ],
            ),
            rc(7, vec![Change::delete("/nodes/n")]),
            rc(8, vec![Change::put("/pods/b", "b2")]),
        ]
    }

    fn reference() -> Reference {
        Reference::new(history())
    }

    /// The batches a correct watch on `prefix` from `start` delivers.
    fn correct(prefix: &str, start: u64) -> Vec<RevisionChanges> {
        history()
            .into_iter()
            .filter(|r| r.revision >= start)
            .map(|r| {
                let changes: Vec<Change> = r
                    .changes
                    .into_iter()
                    .filter(|c| c.key.starts_with(prefix.as_bytes()))
                    .collect();
                rc(r.revision, changes)
            })
            .filter(|r| !r.changes.is_empty())
            .collect()
    }

    fn stream(prefix: &str, start: u64, batches: Vec<RevisionChanges>) -> ObservedStream {
        ObservedStream {
            prefix: prefix.as_bytes().to_vec(),
            start_revision: start,
            batches,
            ended_with_error: false,
        }
    }

    fn kinds(r: Result<(), Vec<WatchViolation>>) -> Vec<ViolationKind> {
        r.expect_err("expected violations")
            .into_iter()
            .map(|v| v.kind)
            .collect()
    }

    #[test]
    fn correct_streams_pass() {
        let r = reference();
        for (prefix, start) in [
            ("/pods/", 1),
            ("/pods/", 4),
            ("/nodes/", 2),
            ("", 1),
            ("/x", 1),
        ] {
            let s = stream(prefix, start, correct(prefix, start));
            assert_eq!(check_stream(&r, &s), Ok(()), "{prefix} from {start}");
            assert_eq!(check_caught_up(&r, &[s], 8), Ok(()));
        }
    }

    #[test]
    fn stream_cut_short_passes_but_is_not_caught_up() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        batches.truncate(2);
        let mut s = stream("/pods/", 1, batches);
        s.ended_with_error = true;
        assert_eq!(check_stream(&r, &s), Ok(()));
        let k = kinds(check_caught_up(&r, &[s], 8));
        let gaps: Vec<u64> = k
            .iter()
            .map(|k| match k {
                ViolationKind::Gap { revision, .. } => *revision,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(gaps, [5, 6, 8]);
    }

    #[test]
    fn missing_revision_is_a_gap() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        batches.retain(|b| b.revision != 5);
        let err = check_stream(&r, &stream("/pods/", 1, batches)).unwrap_err();
        assert_eq!(
            err,
            [WatchViolation {
                stream: 0,
                kind: ViolationKind::Gap {
                    revision: 5,
                    expected: vec![Change::put("/pods/a", "a2")],
                },
            }]
        );
        let msg = err[0].to_string();
        assert!(
            msg.contains("revision 5") && msg.contains("\"/pods/a\"") && msg.contains("\"a2\""),
            "{msg}"
        );
    }

    #[test]
    fn duplicated_revision_is_detected() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        batches.insert(2, batches[1].clone());
        assert_eq!(
            kinds(check_stream(&r, &stream("/pods/", 1, batches))),
            [ViolationKind::Duplicate { revision: 3 }]
        );
    }

    #[test]
    fn out_of_order_revisions_are_detected() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        batches.swap(1, 2);
        assert_eq!(
            kinds(check_stream(&r, &stream("/pods/", 1, batches))),
            [ViolationKind::OutOfOrder {
                revision: 3,
                previous: 5
            }]
        );
    }

    #[test]
    fn split_revision_is_detected() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        let six = batches.iter_mut().find(|b| b.revision == 6).unwrap();
        assert_eq!(six.changes.len(), 2);
        six.changes.truncate(1);
        let err = check_stream(&r, &stream("/pods/", 1, batches)).unwrap_err();
        assert_eq!(
            err.iter().map(|v| v.kind.clone()).collect::<Vec<_>>(),
            [ViolationKind::MissingChange {
                revision: 6,
                expected: Change::put("/pods/c", "c1"),
            }]
        );
        assert!(err[0].to_string().contains("\"/pods/c\""), "{}", err[0]);
    }

    #[test]
    fn revision_split_across_two_batches_is_detected() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        let at = batches.iter().position(|b| b.revision == 6).unwrap();
        let second = batches[at].changes.pop().unwrap();
        batches.insert(at + 1, rc(6, vec![second]));
        let k = kinds(check_stream(&r, &stream("/pods/", 1, batches)));
        assert!(
            k.contains(&ViolationKind::Duplicate { revision: 6 }),
            "{k:?}"
        );
        assert!(
            k.iter()
                .any(|k| matches!(k, ViolationKind::MissingChange { revision: 6, .. })),
            "{k:?}"
        );
    }

    #[test]
    fn wrong_value_and_kind_are_detected() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        batches[0].changes[0].value = b"zz".to_vec();
        batches[3].changes[0] = Change::put("/pods/a", "");
        let k = kinds(check_stream(&r, &stream("/pods/", 1, batches)));
        assert_eq!(
            k,
            [
                ViolationKind::WrongChange {
                    revision: 2,
                    expected: Change::put("/pods/a", "a1"),
                    observed: Change::put("/pods/a", "zz"),
                },
                ViolationKind::WrongChange {
                    revision: 6,
                    expected: Change::delete("/pods/a"),
                    observed: Change::put("/pods/a", ""),
                },
            ]
        );
    }

    #[test]
    fn extra_and_foreign_changes_are_detected() {
        let r = reference();
        let mut batches = correct("/pods/", 1);
        batches[0].changes.push(Change::put("/pods/z", "z"));
        batches[1].changes.push(Change::put("/nodes/n", "n1"));
        batches.insert(2, rc(4, vec![]));
        batches.push(rc(9, vec![Change::put("/pods/a", "a3")]));
        let k = kinds(check_stream(&r, &stream("/pods/", 1, batches)));
        assert_eq!(
            k,
            [
                ViolationKind::UnexpectedChange {
                    revision: 2,
                    observed: Change::put("/pods/z", "z"),
                },
                ViolationKind::OutsidePrefix {
                    revision: 3,
                    observed: Change::put("/nodes/n", "n1"),
                },
                ViolationKind::NothingUnderPrefix { revision: 4 },
                ViolationKind::UnknownRevision { revision: 9 },
            ]
        );
    }

    #[test]
    fn batch_before_start_is_detected() {
        let r = reference();
        let k = kinds(check_stream(&r, &stream("/pods/", 4, correct("/pods/", 3))));
        assert_eq!(
            k,
            [ViolationKind::BeforeStart {
                revision: 3,
                start_revision: 4
            }]
        );
    }

    fn split_chain(at: u64, resume: u64) -> Vec<ObservedStream> {
        let all = correct("/pods/", 1);
        let mut first = stream(
            "/pods/",
            1,
            all.iter().filter(|b| b.revision <= at).cloned().collect(),
        );
        first.ended_with_error = true;
        let second = stream("/pods/", resume, correct("/pods/", resume));
        vec![first, second]
    }

    #[test]
    fn correct_resumption_passes() {
        let r = reference();
        // Last seen 3: resume from 4.
        assert_eq!(check_resumed(&r, &split_chain(3, 4)), Ok(()));
        // Resuming later is fine when nothing under the prefix changed in
        // between (4 touched only nodes), as after a progress bookmark.
        assert_eq!(check_resumed(&r, &split_chain(3, 5)), Ok(()));
        // A chain of three, the middle one empty.
        let mut chain = split_chain(3, 4);
        chain.insert(1, stream("/pods/", 4, vec![]));
        assert_eq!(check_caught_up(&r, &chain, 8), Ok(()));
    }

    #[test]
    fn resumption_that_skips_is_detected() {
        let r = reference();
        // Last seen 3, resumed from 6: revision 5 is lost.
        let err = check_resumed(&r, &split_chain(3, 6)).unwrap_err();
        assert_eq!(
            err,
            [WatchViolation {
                stream: 1,
                kind: ViolationKind::ResumedTooLate {
                    start_revision: 6,
                    expected: 4,
                    skipped: vec![5],
                },
            }]
        );
        assert!(err[0].to_string().contains("[5]"), "{}", err[0]);
    }

    #[test]
    fn resumption_that_repeats_is_detected() {
        let r = reference();
        // Last seen 5, resumed from 5: revision 5 comes twice.
        let k = kinds(check_resumed(&r, &split_chain(5, 5)));
        assert_eq!(
            k,
            [
                ViolationKind::ResumedTooEarly {
                    start_revision: 5,
                    expected: 6
                },
                ViolationKind::Redelivered {
                    revision: 5,
                    first_stream: 0
                },
            ]
        );
    }

    #[test]
    fn resumed_stream_that_redelivers_despite_correct_start_is_detected() {
        let r = reference();
        let mut chain = split_chain(3, 4);
        chain[1].batches.insert(0, correct("/pods/", 3)[0].clone());
        let k = kinds(check_resumed(&r, &chain));
        assert!(
            k.contains(&ViolationKind::Redelivered {
                revision: 3,
                first_stream: 0
            }),
            "{k:?}"
        );
        assert!(
            k.contains(&ViolationKind::BeforeStart {
                revision: 3,
                start_revision: 4
            }),
            "{k:?}"
        );
    }

    #[test]
    fn resumption_on_another_prefix_is_detected() {
        let r = reference();
        let mut chain = split_chain(3, 4);
        chain[1] = stream("/nodes/", 4, correct("/nodes/", 4));
        let k = kinds(check_resumed(&r, &chain));
        assert_eq!(
            k,
            [ViolationKind::PrefixChanged {
                expected: b"/pods/".to_vec(),
                prefix: b"/nodes/".to_vec(),
            }]
        );
    }

    #[test]
    fn messages_render_binary_keys_as_hex() {
        let v = WatchViolation {
            stream: 2,
            kind: ViolationKind::MissingChange {
                revision: 7,
                expected: Change::put(vec![0u8, 1], "x"),
            },
        };
        let msg = v.to_string();
        assert!(msg.starts_with("stream 2: revision 7: key 0x0001"), "{msg}");
    }

    #[test]
    #[should_panic(expected = "appears twice")]
    fn reference_rejects_repeated_revisions() {
        Reference::new([rc(1, vec![]), rc(1, vec![])]);
    }
}

//! Watch fan-out: every applied revision's events, built once and shared by
//! all watchers, and [`WatchStream`], one watcher's view of them.
//!
//! A watcher starts from any retained revision: it subscribes to the live
//! feed *first*, then replays history from the `revs` column family up to the
//! current revision it saw, then delivers live revisions, skipping those the
//! replay already covered. Revisions are contiguous, so a live revision that
//! is not the next one expected (after a snapshot install, say) is healed by
//! replaying from the database again — no gap, no duplicate.
//!
//! Live revisions reach watchers through one bounded ring (a
//! `tokio::sync::broadcast` of [`super::StorageOptions::watch_queue`]
//! revisions shared by all watchers), so memory never grows with a slow
//! watcher. A watcher that falls further behind than the ring is moved back
//! to replaying from the database, as etcd moves it to its unsynced group:
//! it still sees every revision, in order, at the pace it reads, until it
//! has caught up — or its next revision is compacted away, which ends it
//! with [`WatchError::Expired`] (relist).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::db::{Shared, View};
use super::error::{Fault, ReadError, WatchError, decode};
use super::keys::{CF_REVS, be, from_be};
use super::mvcc::tombstone_kv;
use crate::command::KeyValue;

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The key was created or replaced.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change of one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The new version; for a delete, the key with `mod_revision` set to the
    /// deletion revision and everything else empty.
    pub kv: KeyValue,
    /// The version before this change, if the key existed.
    pub prev_kv: Option<KeyValue>,
}

/// All the changes of one revision, in the order the transaction first wrote
/// each key. Shared by every watcher through an `Arc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionEvents {
    /// The revision all these changes were made at.
    pub revision: u64,
    /// The changes (one per key).
    pub events: Vec<Event>,
}

/// What the state machine tells watchers.
#[derive(Clone, Debug)]
pub(crate) enum Notice {
    /// A revision was applied (and written).
    Revision(Arc<RevisionEvents>),
    /// The state was replaced by an installed snapshot.
    Reset,
    /// The state machine shut down.
    Closed,
}

/// The live feed of applied revisions.
pub(crate) struct WatchHub {
    tx: broadcast::Sender<Notice>,
}

impl WatchHub {
    /// A hub whose ring holds `capacity` live revisions.
    pub(crate) fn new(capacity: usize) -> Self {
        WatchHub {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Publishes a notice; call only after the state it describes is written.
    pub(crate) fn publish(&self, notice: Notice) {
        // No receivers is not an error.
        let _ = self.tx.send(notice);
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}

/// Revisions read from history per database read during a replay.
const REPLAY_CHUNK: usize = 256;

/// One watcher: history from a start revision, then live revisions, each as
/// one [`RevisionEvents`] filtered to the watcher's key prefix.
///
/// Use [`WatchStream::recv`], or [`WatchStream::into_stream`] for a
/// `futures::Stream`. After an error the stream ends.
pub struct WatchStream {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<Notice>,
    prefix: Bytes,
    /// The next revision this watcher must see.
    next: u64,
    /// Replay from the database up to this revision (inclusive) before
    /// taking live revisions.
    replay_until: u64,
    buffer: VecDeque<Arc<RevisionEvents>>,
    done: bool,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("prefix", &self.prefix)
            .field("next", &self.next)
            .field("replay_until", &self.replay_until)
            .finish_non_exhaustive()
    }
}

/// Starts a watch; see [`super::StoreReader::watch`].
pub(crate) fn start(
    shared: Arc<Shared>,
    from_revision: u64,
    prefix: Bytes,
) -> Result<WatchStream, ReadError> {
    if shared.closed.load(Ordering::Acquire) {
        return Err(ReadError::Closed);
    }
    // Subscribe before reading the current revision: every revision above
    // it is then certain to arrive live.
    let rx = shared.hub.subscribe();
    let meta = View::pinned(&shared).sm_meta()?;
    let next = if from_revision == 0 {
        meta.revision + 1
    } else {
        from_revision
    };
    if next < meta.compacted {
        return Err(ReadError::Expired {
            requested: next,
            compacted: meta.compacted,
        });
    }
    Ok(WatchStream {
        shared,
        rx,
        prefix,
        next,
        replay_until: meta.revision,
        buffer: VecDeque::new(),
        done: false,
    })
}

impl WatchStream {
    /// The next revision (with at least one event under the prefix), `None`
    /// once the store closed or after an error was returned.
    pub async fn recv(&mut self) -> Option<Result<Arc<RevisionEvents>, WatchError>> {
        if self.done {
            return None;
        }
        match self.advance().await {
            Ok(Some(ev)) => Some(Ok(ev)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// The watch as a `futures::Stream`.
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<Arc<RevisionEvents>, WatchError>> + Send + 'static {
        futures::stream::unfold(self, |mut w| async move {
            let item = w.recv().await?;
            Some((item, w))
        })
    }

    /// The next revision this watcher will deliver (or skip if nothing in
    /// it matches the prefix).
    pub fn next_revision(&self) -> u64 {
        self.next
    }

    async fn advance(&mut self) -> Result<Option<Arc<RevisionEvents>>, WatchError> {
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                return Ok(Some(ev));
            }
            if self.next <= self.replay_until {
                blocking(|| self.replay_chunk())?;
                continue;
            }
            let notice = match self.rx.recv().await {
                Ok(n) => n,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Behind the live ring: catch up from the database.
                    let meta = View::pinned(&self.shared)
                        .sm_meta()
                        .map_err(|e| WatchError::Storage(e.to_string()))?;
                    if self.next < meta.compacted {
                        return Err(WatchError::Expired {
                            requested: self.next,
                            compacted: meta.compacted,
                        });
                    }
                    self.replay_until = self.replay_until.max(meta.revision);
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            };
            match notice {
                Notice::Revision(ev) => {
                    if ev.revision < self.next {
                        continue; // already replayed
                    }
                    if ev.revision > self.next {
                        // Not contiguous: catch up from the database, which
                        // holds everything published.
                        self.replay_until = ev.revision;
                        continue;
                    }
                    self.next = ev.revision + 1;
                    if let Some(ev) = filter(&ev, &self.prefix) {
                        return Ok(Some(ev));
                    }
                }
                Notice::Reset => {
                    let meta = View::pinned(&self.shared)
                        .sm_meta()
                        .map_err(|e| WatchError::Storage(e.to_string()))?;
                    if self.next < meta.compacted {
                        return Err(WatchError::Expired {
                            requested: self.next,
                            compacted: meta.compacted,
                        });
                    }
                    if meta.revision + 1 < self.next {
                        return Err(WatchError::Reset(format!(
                            "installed state is at revision {}, this watch is at {}",
                            meta.revision,
                            self.next - 1
                        )));
                    }
                    self.replay_until = meta.revision;
                }
                Notice::Closed => return Ok(None),
            }
        }
    }

    /// Reads up to [`REPLAY_CHUNK`] revisions of history into the buffer.
    fn replay_chunk(&mut self) -> Result<(), WatchError> {
        let view = View::pinned(&self.shared);
        let meta = view
            .sm_meta()
            .map_err(|e| WatchError::Storage(e.to_string()))?;
        if self.next < meta.compacted {
            return Err(WatchError::Expired {
                requested: self.next,
                compacted: meta.compacted,
            });
        }
        let until = self.replay_until.min(meta.revision);
        if self.next > until {
            // The database is behind what we were told (cannot happen: notices
            // follow writes); wait for live revisions instead.
            self.replay_until = until;
            return Ok(());
        }
        let chunk = read_history(&view, self.next, until, &self.prefix, REPLAY_CHUNK)
            .map_err(|e| WatchError::Storage(e.to_string()))?;
        self.next = chunk.next;
        self.buffer.extend(chunk.revisions);
        Ok(())
    }
}

/// Runs a database read from async code without stalling other tasks on a
/// multi-threaded runtime (a current-thread runtime runs it inline).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A stretch of history read from the database.
pub(crate) struct History {
    /// The revisions with at least one event under the prefix.
    pub revisions: Vec<Arc<RevisionEvents>>,
    /// The revision after the last one read.
    pub next: u64,
}

/// Reads revisions `from..=until` (at most `max` of them) from `revs`,
/// rebuilding each event from the key's versions.
pub(crate) fn read_history(
    view: &View<'_>,
    from: u64,
    until: u64,
    prefix: &[u8],
    max: usize,
) -> Result<History, Fault> {
    let upper = be(until.saturating_add(1));
    let mut it = view.iter(CF_REVS, &be(from), Some(&upper));
    it.seek(be(from));
    let mut expected = from;
    let mut revisions = Vec::new();
    while let Some((k, v)) = it.item() {
        let rev = from_be(k).ok_or_else(|| Fault::Invalid("bad revs key".into()))?;
        if rev != expected {
            return Err(Fault::Invalid(format!(
                "watch history has no entry for revision {expected}"
            )));
        }
        let keys: Vec<Bytes> = decode("revision history", v)?;
        let mut events = Vec::new();
        for key in keys.into_iter().filter(|k| k.starts_with(prefix)) {
            events.push(rebuild_event(view, key, rev)?);
        }
        if !events.is_empty() {
            revisions.push(Arc::new(RevisionEvents {
                revision: rev,
                events,
            }));
        }
        expected = rev + 1;
        if (expected - from) as usize >= max {
            break;
        }
        it.next();
    }
    it.status()?;
    if expected == from && from <= until {
        return Err(Fault::Invalid(format!(
            "watch history has no entry for revision {from}"
        )));
    }
    Ok(History {
        revisions,
        next: expected,
    })
}

/// The event of `key` at `rev`, from its version at `rev` and the one before.
fn rebuild_event(view: &View<'_>, key: Bytes, rev: u64) -> Result<crate::storage::Event, Fault> {
    let version = view.version_exact(&key, rev)?.ok_or_else(|| {
        Fault::Invalid(format!(
            "no version of {key:?} at revision {rev} for its event"
        ))
    })?;
    let prev_kv = view.kv_at(&key, rev - 1)?;
    Ok(match version.into_kv(key.clone(), rev) {
        Some(kv) => Event {
            kind: EventKind::Put,
            kv,
            prev_kv,
        },
        None => Event {
            kind: EventKind::Delete,
            kv: tombstone_kv(key, rev),
            prev_kv,
        },
    })
}

/// The part of a revision under `prefix`: the shared `Arc` itself when all of
/// it matches, `None` when nothing does.
fn filter(ev: &Arc<RevisionEvents>, prefix: &[u8]) -> Option<Arc<RevisionEvents>> {
    let matching = ev
        .events
        .iter()
        .filter(|e| e.kv.key.starts_with(prefix))
        .count();
    if matching == ev.events.len() {
        Some(Arc::clone(ev))
    } else if matching == 0 {
        None
    } else {
        Some(Arc::new(RevisionEvents {
            revision: ev.revision,
            events: ev
                .events
                .iter()
                .filter(|e| e.kv.key.starts_with(prefix))
                .cloned()
                .collect(),
        }))
    }
}

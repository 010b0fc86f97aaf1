//! The `Watch` stream.
//!
//! Semantics as Kubernetes's watch:
//! - `resourceVersion` empty or `"0"`: first an `ADDED` event for every
//!   object that matches now (read at one revision; linearizable for empty),
//!   then every change after that revision;
//! - `resourceVersion` N: every change after revision N, in order, no gaps,
//!   no duplicates; if N is compacted, the call fails with `Expired`
//!   (`OUT_OF_RANGE`) and the client relists;
//! - label and field selectors filter events; an object that stops matching
//!   is sent as `DELETED`, one that starts matching as `ADDED`;
//! - `allowBookmarks`: a `BOOKMARK` with the latest revision this watch has
//!   passed, when nothing else was sent for a bookmark interval, so a client
//!   resumes from there instead of an older revision.
//!
//! The stream is served from this replica's applied state. Each watch has a
//! bounded queue; a client too slow to drain it is ended with an `ERROR`
//! event (`Expired`-like: relist) instead of growing memory.

use std::sync::Arc;

use capstan_proto::rpc::{EventType, WatchEvent, WatchRequest};
use capstan_proto::{KindInfo, Object};
use capstan_raftstore::node::Consistency;
use capstan_raftstore::storage::{EventKind, RevisionEvents, WatchError, WatchStream};
use capstan_raftstore::transport::PeerTransport;
use tokio::sync::mpsc;
use tonic::Status;

use super::Api;
use super::errors::ApiError;
use super::request::{Call, Filter};
use crate::store::{self, StoreError};

/// Events buffered per watch before the client counts as too slow.
const QUEUE: usize = 1024;

/// The stream handed to tonic.
pub type EventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<WatchEvent, Status>> + Send + 'static>>;

/// Authorizes and starts a watch.
pub async fn start<T: PeerTransport>(
    api: &Arc<Api<T>>,
    call: &mut Call,
    r: WatchRequest,
) -> Result<EventStream, ApiError> {
    let info = call.info;
    call.namespace = if info.namespaced {
        r.namespace.clone()
    } else {
        String::new()
    };
    let filter = Filter::parse(info, &r.label_selector, &r.field_selector)?;
    call.authorize(api, &filter.fields.exact(), None, None)?;
    let namespace = (!call.namespace.is_empty()).then_some(call.namespace.as_str());
    let prefix = bytes::Bytes::from(store::prefix(info, namespace));

    let (tx, rx) = mpsc::channel::<Result<WatchEvent, Status>>(QUEUE);
    let (initial, from) = match r.resource_version.as_str() {
        "" | "0" => {
            let consistency = if r.resource_version.is_empty() {
                Consistency::Linearizable
            } else {
                Consistency::Stale
            };
            let page = api
                .store
                .list(info, namespace, 0, None, consistency, |o| filter.matches(o))
                .await
                .map_err(|e| ApiError::from_store(e, info, ""))?;
            (page.items, page.revision + 1)
        }
        rv => {
            let rv: u64 = rv.parse().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion {rv:?}: must be a revision number"))
            })?;
            (Vec::new(), rv + 1)
        }
    };
    let stream = api
        .store
        .replica()
        .watch(from, prefix)
        .map_err(|e| ApiError::from_store(StoreError::from(e), info, ""))?;
    let api = Arc::clone(api);
    api.metrics.watch_delta(1);
    let bookmarks = r.allow_bookmarks.then_some(api.bookmark_interval);
    let mut stopping = api.stopping.clone();
    tokio::spawn(async move {
        let run = async {
            if send_initial(&tx, initial).await {
                serve(stream, info, filter, tx, bookmarks, from.saturating_sub(1)).await;
            }
        };
        tokio::select! {
            () = run => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
        api.metrics.watch_delta(-1);
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// Sends the synthetic `ADDED` events of the initial state; false if the
/// client went away.
async fn send_initial(tx: &mpsc::Sender<Result<WatchEvent, Status>>, initial: Vec<Object>) -> bool {
    for obj in initial {
        let event = WatchEvent {
            r#type: EventType::Added.into(),
            resource_version: obj
                .metadata()
                .map(|m| m.resource_version.clone())
                .unwrap_or_default(),
            object: obj.encode_to_vec(),
            error: None,
        };
        if tx.send(Ok(event)).await.is_err() {
            return false;
        }
    }
    true
}

/// Pumps store revisions into the client's queue until the client goes away
/// or the store watch ends.
async fn serve(
    mut stream: WatchStream,
    info: &'static KindInfo,
    filter: Filter,
    tx: mpsc::Sender<Result<WatchEvent, Status>>,
    bookmarks: Option<std::time::Duration>,
    mut last_sent: u64,
) {
    let interval = bookmarks.unwrap_or(std::time::Duration::from_secs(3600));
    loop {
        let next = tokio::select! {
            next = stream.recv() => next,
            () = tx.closed() => return,
            () = tokio::time::sleep(interval), if bookmarks.is_some() => {
                let passed = stream.next_revision().saturating_sub(1);
                if passed > last_sent {
                    last_sent = passed;
                    let bookmark = WatchEvent {
                        r#type: EventType::Bookmark.into(),
                        resource_version: passed.to_string(),
                        ..Default::default()
                    };
                    if tx.send(Ok(bookmark)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
        };
        match next {
            None => return,
            Some(Ok(revision)) => {
                let events = events(info, &filter, &revision);
                if !events.is_empty() {
                    last_sent = last_sent.max(revision.revision);
                }
                for event in events {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                let error = match &e {
                    WatchError::Expired { .. } | WatchError::Reset(_) => {
                        ApiError::expired(e.to_string())
                    }
                    WatchError::Storage(m) => ApiError::internal(m.clone()),
                };
                let _ = tx
                    .send(Ok(WatchEvent {
                        r#type: EventType::Error.into(),
                        error: Some(error.api_status()),
                        ..Default::default()
                    }))
                    .await;
                return;
            }
        }
    }
}

/// The client events of one store revision, after filtering.
fn events(
    info: &'static KindInfo,
    filter: &Filter,
    revision: &RevisionEvents,
) -> Vec<Result<WatchEvent, Status>> {
    let mut out = Vec::new();
    let rv = revision.revision.to_string();
    if filter.is_everything() {
        // Nothing to match: the stored bytes go out as they are, with the
        // revision appended (no decode and re-encode per watcher).
        for event in &revision.events {
            let (kind, value) = match (&event.kind, &event.prev_kv) {
                (EventKind::Delete, Some(prev)) => (EventType::Deleted, &prev.value),
                (EventKind::Delete, None) => continue,
                (EventKind::Put, Some(_)) => (EventType::Modified, &event.kv.value),
                (EventKind::Put, None) => (EventType::Added, &event.kv.value),
            };
            out.push(Ok(WatchEvent {
                r#type: kind.into(),
                object: store::encode_with_revision(value, revision.revision),
                resource_version: rv.clone(),
                error: None,
            }));
        }
        return out;
    }
    for event in &revision.events {
        let decode = |kv| store::decode(info, kv);
        let prev = match event.prev_kv.as_ref().map(decode).transpose() {
            Ok(p) => p.filter(|p| filter.matches(p)),
            Err(e) => {
                out.push(Err(Status::internal(e.to_string())));
                continue;
            }
        };
        let (kind, obj) = match event.kind {
            EventKind::Delete => match prev {
                Some(p) => (EventType::Deleted, p),
                None => continue,
            },
            EventKind::Put => {
                let current = match decode(&event.kv) {
                    Ok(c) => c,
                    Err(e) => {
                        out.push(Err(Status::internal(e.to_string())));
                        continue;
                    }
                };
                match (filter.matches(&current), prev) {
                    (true, Some(_)) => (EventType::Modified, current),
                    (true, None) => (EventType::Added, current),
                    (false, Some(p)) => (EventType::Deleted, p),
                    (false, None) => continue,
                }
            }
        };
        let mut obj = obj;
        obj.metadata_mut().resource_version = rv.clone();
        out.push(Ok(WatchEvent {
            r#type: kind.into(),
            object: obj.encode_to_vec(),
            resource_version: rv.clone(),
            error: None,
        }));
    }
    out
}

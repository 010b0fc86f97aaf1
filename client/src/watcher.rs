//! [`watcher`]: a never-ending stream of a kind's state — list, then watch
//! from the list's resourceVersion, resume — and the reflector [`Store`]
//! that keeps an in-memory copy of it.
//!
//! The watcher's promise (kube-runtime's, simplified):
//!
//! - It starts with [`Event::Restarted`] carrying every object (a paged
//!   `list_all`), then [`Event::Applied`] / [`Event::Deleted`] per change.
//! - When a watch stream ends or fails, it opens a new one from the last
//!   resourceVersion it saw (events and bookmarks both advance it), so
//!   nothing is missed and nothing repeated.
//! - When the server says that revision is compacted (`Expired`, at call
//!   time or as an ERROR event), it lists again and emits a new
//!   `Restarted`: consumers replace their whole state.
//! - Failures are yielded as `Err` items and the stream goes on after a
//!   back-off (doubling from 100 ms, capped at 5 s, reset by success); the
//!   consumer decides whether to give up.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use capstan_proto::Resource;
use futures::{Stream, StreamExt as _};

use crate::Error;
use crate::api::{Api, ListParams, WatchEvent, WatchStream};

/// One step of the watched state.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<K> {
    /// A (re)list: this is the whole state now.
    Restarted(Vec<K>),
    /// The object was created or changed.
    Applied(K),
    /// The object was removed (its last state).
    Deleted(K),
}

/// Back-off bounds after a failure.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct State<K> {
    api: Api<K>,
    params: ListParams,
    /// Where to resume; `None`: list first.
    resource_version: Option<String>,
    stream: Option<WatchStream<K>>,
    /// Consecutive failures (drives the back-off).
    failures: u32,
    /// Whether the current stream has yielded anything.
    stream_progressed: bool,
}

/// The pause before the next attempt after `failures` consecutive failures.
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    BACKOFF_START
        .saturating_mul(1 << (failures.min(8) - 1))
        .min(BACKOFF_MAX)
}

async fn pause(failures: u32) {
    let d = backoff(failures);
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

impl<K: Resource> State<K> {
    /// Runs until one event (or error) is ready to yield.
    async fn step(&mut self) -> Result<Event<K>, Error> {
        loop {
            let Some(rv) = self.resource_version.clone() else {
                pause(self.failures).await;
                match self.api.list_all(&self.params).await {
                    Ok(list) => {
                        self.failures = 0;
                        self.resource_version = Some(list.resource_version);
                        return Ok(Event::Restarted(list.items));
                    }
                    Err(e) => {
                        self.failures += 1;
                        return Err(e);
                    }
                }
            };
            let Some(stream) = self.stream.as_mut() else {
                pause(self.failures).await;
                match self.api.watch(&self.params, &rv).await {
                    Ok(s) => {
                        self.stream = Some(s);
                        self.stream_progressed = false;
                        continue;
                    }
                    Err(e) if e.is_expired() => {
                        tracing::debug!(kind = K::INFO.kind, %rv, "resourceVersion expired; relisting");
                        self.resource_version = None;
                        continue;
                    }
                    Err(e) => {
                        self.failures += 1;
                        return Err(e);
                    }
                }
            };
            match stream.next().await {
                Some(Ok(event)) => {
                    self.failures = 0;
                    self.stream_progressed = true;
                    match event {
                        WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                            self.resource_version = Some(resource_version(&obj));
                            return Ok(Event::Applied(obj));
                        }
                        WatchEvent::Deleted(obj) => {
                            self.resource_version = Some(resource_version(&obj));
                            return Ok(Event::Deleted(obj));
                        }
                        WatchEvent::Bookmark(rv) => {
                            if !rv.is_empty() {
                                self.resource_version = Some(rv);
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    self.stream = None;
                    if e.is_expired() {
                        self.resource_version = None;
                        continue;
                    }
                    self.failures += 1;
                    return Err(e);
                }
                None => {
                    // The replica ended the stream (shutdown, slow watcher):
                    // resume from the last revision seen. A stream that ends
                    // at once, again and again, backs off.
                    self.stream = None;
                    if !self.stream_progressed {
                        self.failures += 1;
                    }
                }
            }
        }
    }
}

fn resource_version<K: Resource>(obj: &K) -> String {
    obj.metadata()
        .map(|m| m.resource_version.clone())
        .unwrap_or_default()
}

/// The watched state of `api`'s scope filtered by `params`' selectors
/// (`limit` is the list page size). Never ends; see the module docs.
pub fn watcher<K: Resource + Send + Sync>(
    api: Api<K>,
    params: ListParams,
) -> impl Stream<Item = Result<Event<K>, Error>> + Send {
    let state = State {
        api,
        params,
        resource_version: None,
        stream: None,
        failures: 0,
        stream_progressed: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.step().await;
        Some((item, state))
    })
}

/// An object's key in a [`Store`]: namespace (empty for cluster-wide kinds)
/// and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.metadata();
        Self {
            namespace: meta.map(|m| m.namespace.clone()).unwrap_or_default(),
            name: meta.map(|m| m.name.clone()).unwrap_or_default(),
        }
    }
}

type Map<K> = HashMap<ObjectKey, Arc<K>>;

struct Shared<K> {
    /// `None` until the first `Restarted`.
    map: RwLock<Option<Arc<Map<K>>>>,
    ready: tokio::sync::Notify,
}

/// A read-only view of the objects a [`Writer`] has seen. Readers get a
/// consistent snapshot: a relist replaces the whole map in one swap.
pub struct Store<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// The one writer of a [`Store`]; feed it the watcher's events
/// ([`reflector`] does).
pub struct Writer<K> {
    shared: Arc<Shared<K>>,
}

/// A new, empty (not ready) store and its writer.
pub fn store<K>() -> (Store<K>, Writer<K>) {
    let shared = Arc::new(Shared {
        map: RwLock::new(None),
        ready: tokio::sync::Notify::new(),
    });
    (
        Store {
            shared: shared.clone(),
        },
        Writer { shared },
    )
}

impl<K: Resource> Writer<K> {
    /// Applies one event: `Restarted` swaps in a new map at once.
    pub fn apply(&self, event: &Event<K>) {
        let mut guard = self.shared.map.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Restarted(objs) => {
                let map: Map<K> = objs
                    .iter()
                    .map(|o| (ObjectKey::of(o), Arc::new(o.clone())))
                    .collect();
                *guard = Some(Arc::new(map));
                drop(guard);
                self.shared.ready.notify_waiters();
            }
            Event::Applied(obj) => {
                let map = Arc::make_mut(guard.get_or_insert_with(Default::default));
                map.insert(ObjectKey::of(obj), Arc::new(obj.clone()));
            }
            Event::Deleted(obj) => {
                if let Some(map) = guard.as_mut() {
                    Arc::make_mut(map).remove(&ObjectKey::of(obj));
                }
            }
        }
    }
}

impl<K> Store<K> {
    fn snapshot(&self) -> Option<Arc<Map<K>>> {
        self.shared
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the first list has arrived.
    pub fn is_ready(&self) -> bool {
        self.snapshot().is_some()
    }

    /// Waits for the first list, at most `timeout`; returns whether it came.
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.ready.notified();
                if self.is_ready() {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// One object by namespace (empty for cluster-wide kinds) and name.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.snapshot()?
            .get(&ObjectKey {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
            .cloned()
    }

    /// Every object (one consistent snapshot, unordered).
    pub fn list(&self) -> Vec<Arc<K>> {
        self.snapshot()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.snapshot().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Passes `stream`'s items through, applying each event to `writer` first.
pub fn reflector<K, S>(writer: Writer<K>, stream: S) -> impl Stream<Item = S::Item>
where
    K: Resource,
    S: Stream<Item = Result<Event<K>, Error>>,
{
    stream.map(move |item| {
        if let Ok(event) = &item {
            writer.apply(event);
        }
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::ConfigMap;
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn cm(ns: &str, name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: ns.into(),
                resource_version: rv.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn store_follows_events_and_relist_replaces() {
        let (store, writer) = store::<ConfigMap>();
        assert!(!store.is_ready());
        writer.apply(&Event::Restarted(vec![
            cm("a", "x", "1"),
            cm("b", "x", "2"),
        ]));
        assert!(store.is_ready());
        assert_eq!(store.len(), 2);
        let before = store.list();
        writer.apply(&Event::Applied(cm("a", "y", "3")));
        writer.apply(&Event::Deleted(cm("b", "x", "2")));
        assert_eq!(before.len(), 2, "a snapshot taken earlier does not change");
        assert!(store.get("a", "y").is_some());
        assert!(store.get("b", "x").is_none());
        writer.apply(&Event::Restarted(vec![cm("c", "z", "9")]));
        assert_eq!(store.len(), 1);
        assert_eq!(
            store
                .get("c", "z")
                .unwrap()
                .metadata
                .as_ref()
                .unwrap()
                .resource_version,
            "9"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(7), Duration::from_secs(5));
        assert_eq!(backoff(1000), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn wait_until_ready_is_bounded() {
        let (store, writer) = store::<ConfigMap>();
        assert!(!store.wait_until_ready(Duration::from_millis(20)).await);
        let s = store.clone();
        let waiter = tokio::spawn(async move { s.wait_until_ready(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        writer.apply(&Event::Restarted(vec![]));
        assert!(waiter.await.unwrap());
    }
}

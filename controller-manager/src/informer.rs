//! Shared informers: one watch per kind for the whole controller-manager
//! (client-go's `SharedInformerFactory`, in small).
//!
//! [`Informers::get`] starts, on first use, one [`watcher`] over every
//! namespace for a kind, keeps its [`Store`], and hands each event to every
//! registered handler together with the object's previous state (so a
//! controller can enqueue the owner a pod *used to* belong to). A handler
//! registered late first receives the whole current state as a
//! [`Change::Restarted`], under the same lock the dispatcher holds, so it
//! misses nothing and sees nothing twice.
//!
//! Handlers run on the dispatch task: they must be quick (enqueue keys,
//! record expectations), never block or await.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use capstan_client::watcher::{self, Event, Store, Writer};
use capstan_client::{Api, Client, ListParams};
use capstan_proto::Resource;
use futures::StreamExt as _;
use tokio::task::JoinHandle;

/// One change as a handler sees it.
#[derive(Debug)]
pub enum Change<'a, K> {
    /// A (re)list: these are all the objects now.
    Restarted(&'a [K]),
    /// `new` was created (`old` is `None`) or changed from `old`.
    Applied {
        /// The state before, as the store had it.
        old: Option<Arc<K>>,
        /// The state now.
        new: &'a K,
    },
    /// The object is gone; its last state.
    Deleted(&'a K),
}

type Handler<K> = Box<dyn Fn(Change<'_, K>) + Send + Sync>;

struct Inner<K> {
    store: Store<K>,
    writer: Writer<K>,
    handlers: Mutex<Vec<Handler<K>>>,
}

/// A kind's shared watch: its [`Store`] and its handlers. Cheap to clone.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Resource + Send + Sync> Informer<K> {
    fn new() -> Self {
        let (store, writer) = watcher::store();
        Self {
            inner: Arc::new(Inner {
                store,
                writer,
                handlers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The objects seen so far (ready after the first list).
    pub fn store(&self) -> Store<K> {
        self.inner.store.clone()
    }

    /// Calls `handler` for every change from now on; if the first list has
    /// arrived, first with the whole current state.
    pub fn add_handler(&self, handler: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        let mut handlers = self.lock();
        if self.inner.store.is_ready() {
            let objects: Vec<K> = self
                .inner
                .store
                .list()
                .iter()
                .map(|o| (**o).clone())
                .collect();
            handler(Change::Restarted(&objects));
        }
        handlers.push(Box::new(handler));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Handler<K>>> {
        self.inner
            .handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `event` to the store and passes it to every handler.
    fn dispatch(&self, event: &Event<K>) {
        let handlers = self.lock();
        match event {
            Event::Restarted(objects) => {
                self.inner.writer.apply(event);
                for h in handlers.iter() {
                    h(Change::Restarted(objects));
                }
            }
            Event::Applied(new) => {
                let key = watcher::ObjectKey::of(new);
                let old = self.inner.store.get(&key.namespace, &key.name);
                self.inner.writer.apply(event);
                for h in handlers.iter() {
                    h(Change::Applied {
                        old: old.clone(),
                        new,
                    });
                }
            }
            Event::Deleted(obj) => {
                self.inner.writer.apply(event);
                for h in handlers.iter() {
                    h(Change::Deleted(obj));
                }
            }
        }
    }
}

/// The informers of one leadership term: one per kind, started on first
/// use, all stopped by [`Informers::shutdown`] (or when the last clone is
/// dropped). Cheap to clone.
#[derive(Clone)]
pub struct Informers {
    client: Client,
    inner: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    by_kind: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(|p| p.into_inner()) {
            task.abort();
        }
    }
}

impl Informers {
    /// No informers yet; they will watch through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            inner: Arc::default(),
        }
    }

    /// The shared informer of kind `K` over every namespace, started now if
    /// it is not running yet.
    pub fn get<K: Resource + Send + Sync>(&self) -> Informer<K> {
        let mut by_kind = self.inner.by_kind.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = by_kind.get(&TypeId::of::<K>())
            && let Some(informer) = existing.downcast_ref::<Informer<K>>()
        {
            return informer.clone();
        }
        let informer = Informer::<K>::new();
        by_kind.insert(TypeId::of::<K>(), Box::new(informer.clone()));
        let api: Api<K> = Api::all(self.client.clone());
        let dispatcher = informer.clone();
        let task = tokio::spawn(async move {
            let stream = watcher::watcher(api, ListParams::default());
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => dispatcher.dispatch(&event),
                    Err(e) => {
                        tracing::warn!(kind = K::INFO.kind, error = %e, "watch failed; retrying")
                    }
                }
            }
        });
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        informer
    }

    /// Stops every informer's watch.
    pub fn shutdown(&self) {
        for task in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

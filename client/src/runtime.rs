//! The controller runtime: a [`WorkQueue`] of object keys (deduplicated,
//! rate-limited per key with exponential back-off, delayed requeue), the
//! workers that drain it with a bounded number of concurrent reconciles
//! ([`run_workers`]), and the glue from a watcher to the queue
//! ([`enqueue`]) — client-go's workqueue and controller loop, in small.
//!
//! The queue's promises, as client-go's:
//!
//! - A key is in the queue at most once, however often it is added.
//! - A key is handed to at most one worker at a time: added while being
//!   processed, it is queued again only when that worker calls
//!   [`WorkQueue::done`]. So one object is never reconciled concurrently.
//! - [`WorkQueue::add_rate_limited`] waits `base * 2^(failures-1)` (capped)
//!   before re-adding; [`WorkQueue::forget`] resets the key's failures.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_proto::Resource;
use futures::{Stream, StreamExt as _};
use tokio::sync::Notify;

use crate::Error;
use crate::watcher::{Event, ObjectKey};

/// Per-key back-off bounds of [`WorkQueue::add_rate_limited`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The first retry's delay.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for RateLimit {
    /// 5 ms doubling up to 1000 s, as client-go's default controller limiter.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    shutting_down: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    limit: RateLimit,
}

/// A deduplicating, rate-limited work queue (see the module docs). Cheap
/// to clone; clones share the queue.
pub struct WorkQueue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// An empty queue with per-key back-off `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                    shutting_down: false,
                }),
                notify: Notify::new(),
                limit,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item` unless it is already queued (or, while it is being
    /// processed, marks it to be queued again on [`WorkQueue::done`]).
    pub fn add(&self, item: T) {
        let mut s = self.lock();
        if s.shutting_down || !s.dirty.insert(item.clone()) {
            return;
        }
        if s.processing.contains(&item) {
            return;
        }
        s.queue.push_back(item);
        drop(s);
        self.shared.notify.notify_one();
    }

    /// Queues `item` after `delay`.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(item);
        });
    }

    /// The back-off `item` would get now, counting one more failure.
    fn next_backoff(&self, item: &T) -> Duration {
        let mut s = self.lock();
        let n = s.failures.entry(item.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let limit = self.shared.limit;
        limit
            .base
            .saturating_mul(1u32 << (*n - 1).min(30))
            .min(limit.max)
    }

    /// Queues `item` after its back-off, which doubles with each call until
    /// [`WorkQueue::forget`].
    pub fn add_rate_limited(&self, item: T) {
        let delay = self.next_backoff(&item);
        self.add_after(item, delay);
    }

    /// Clears `item`'s failure count.
    pub fn forget(&self, item: &T) {
        self.lock().failures.remove(item);
    }

    /// How many times `item` has been rate-limited since the last forget.
    pub fn failures(&self, item: &T) -> u32 {
        self.lock().failures.get(item).copied().unwrap_or(0)
    }

    /// The next item, waiting for one; `None` once the queue is shut down.
    /// Call [`WorkQueue::done`] with it when finished.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if s.shutting_down {
                    return None;
                }
                if let Some(item) = s.queue.pop_front() {
                    s.dirty.remove(&item);
                    s.processing.insert(item.clone());
                    return Some(item);
                }
            }
            notified.await;
        }
    }

    /// Marks `item` finished; queues it again if it was added meanwhile.
    pub fn done(&self, item: &T) {
        let mut s = self.lock();
        s.processing.remove(item);
        if s.dirty.contains(item) {
            s.queue.push_back(item.clone());
            drop(s);
            self.shared.notify.notify_one();
        }
    }

    /// Items waiting (not counting those being processed).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: [`WorkQueue::get`] returns `None` from now on.
    pub fn shutdown(&self) {
        self.lock().shutting_down = true;
        self.shared.notify.notify_waiters();
    }
}

/// What a reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the object changes again.
    Done,
    /// Reconcile again after this long (e.g. to check progress).
    RequeueAfter(Duration),
}

/// Drains `queue` with `concurrency` workers until it is shut down. Each
/// item is passed to `reconcile`; `Ok(Done)` forgets its failures,
/// `Ok(RequeueAfter(d))` re-adds it after `d`, `Err` re-adds it with the
/// per-key back-off. Returns when every worker has stopped.
pub async fn run_workers<T, F, Fut, E>(queue: WorkQueue<T>, concurrency: usize, reconcile: F)
where
    T: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send,
    E: Display,
{
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let queue = queue.clone();
            let reconcile = reconcile.clone();
            tokio::spawn(async move {
                while let Some(item) = queue.get().await {
                    match reconcile(item.clone()).await {
                        Ok(Action::Done) => queue.forget(&item),
                        Ok(Action::RequeueAfter(d)) => {
                            queue.forget(&item);
                            queue.add_after(item.clone(), d);
                        }
                        Err(e) => {
                            tracing::warn!(?item, error = %e, "reconcile failed; retrying with back-off");
                            queue.add_rate_limited(item.clone());
                        }
                    }
                    queue.done(&item);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

/// Feeds a watcher's events into `queue` as object keys: every object of a
/// relist, and each applied or deleted object. Errors are logged (the
/// watcher retries on its own). Returns when the stream ends.
pub async fn enqueue<K, S>(stream: S, queue: WorkQueue<ObjectKey>)
where
    K: Resource,
    S: Stream<Item = Result<Event<K>, Error>>,
{
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(Event::Restarted(objs)) => objs.iter().for_each(|o| queue.add(ObjectKey::of(o))),
            Ok(Event::Applied(o) | Event::Deleted(o)) => queue.add(ObjectKey::of(&o)),
            Err(e) => tracing::warn!(kind = K::INFO.kind, error = %e, "watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn get_within(q: &WorkQueue<u32>, ms: u64) -> Option<u32> {
        tokio::time::timeout(Duration::from_millis(ms), q.get())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn dedups_and_never_hands_out_an_item_twice_at_once() {
        let q = WorkQueue::new(RateLimit::default());
        q.add(1);
        q.add(1);
        q.add(2);
        assert_eq!(q.len(), 2);
        assert_eq!(get_within(&q, 100).await, Some(1));
        q.add(1); // while processing: held back
        assert_eq!(get_within(&q, 100).await, Some(2));
        assert_eq!(get_within(&q, 50).await, None);
        q.done(&1);
        assert_eq!(get_within(&q, 100).await, Some(1));
        q.shutdown();
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn rate_limit_doubles_until_forgotten() {
        let q: WorkQueue<u32> = WorkQueue::new(RateLimit {
            base: Duration::from_millis(40),
            max: Duration::from_millis(100),
        });
        assert_eq!(q.next_backoff(&7), Duration::from_millis(40));
        assert_eq!(q.next_backoff(&7), Duration::from_millis(80));
        assert_eq!(q.next_backoff(&7), Duration::from_millis(100));
        assert_eq!(q.failures(&7), 3);
        q.forget(&7);
        assert_eq!(q.failures(&7), 0);

        let start = tokio::time::Instant::now();
        q.add_rate_limited(9);
        assert_eq!(get_within(&q, 1000).await, Some(9));
        assert!(start.elapsed() >= Duration::from_millis(40));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_bound_concurrency_retry_failures_and_requeue() {
        let q = WorkQueue::new(RateLimit {
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
        });
        for i in 0..10u32 {
            q.add(i);
        }
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let runs: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
        let workers = {
            let (in_flight, max_in_flight, runs) =
                (in_flight.clone(), max_in_flight.clone(), runs.clone());
            tokio::spawn(run_workers(q.clone(), 3, move |item: u32| {
                let (in_flight, max_in_flight, runs) =
                    (in_flight.clone(), max_in_flight.clone(), runs.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let n = {
                        let mut r = runs.lock().unwrap();
                        let n = r.entry(item).or_insert(0);
                        *n += 1;
                        *n
                    };
                    match (item, n) {
                        (0, 1 | 2) => Err("not yet"),
                        (1, 1) => Ok(Action::RequeueAfter(Duration::from_millis(10))),
                        _ => Ok(Action::Done),
                    }
                }
            }))
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let done = {
                let r = runs.lock().unwrap();
                r.len() == 10 && r[&0] == 3 && r[&1] == 2
            };
            if done {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                runs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        q.shutdown();
        tokio::time::timeout(Duration::from_secs(5), workers)
            .await
            .unwrap()
            .unwrap();
        assert!(max_in_flight.load(Ordering::SeqCst) <= 3);
        assert!(
            max_in_flight.load(Ordering::SeqCst) >= 2,
            "ran concurrently"
        );
        assert_eq!(q.failures(&0), 0, "forgotten after success");
        let r = runs.lock().unwrap();
        assert!(r.values().all(|&n| n >= 1));
        assert_eq!(r[&2], 1);
    }
}

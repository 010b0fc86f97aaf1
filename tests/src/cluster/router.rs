//! The in-process Raft network: a [`PeerTransport`] that hands each request
//! straight to the target [`Replica`]'s [`PeerHandler`], through a fault
//! injector.
//!
//! Faults, all changeable while the cluster runs:
//!
//! - **partitions**: groups of replicas; two replicas in different groups
//!   cannot talk, in either direction. A replica in no group talks to
//!   everyone who is not cut off from it.
//! - **isolation** of single replicas (cut off from every other replica).
//! - **drops**: each request, and independently each response, is lost with
//!   a probability. A lost request never reaches the target; a lost response
//!   is lost *after* the target handled the request, so the caller cannot
//!   tell whether it took effect — the case that produces indeterminate
//!   writes.
//! - **delays**: each request and each response waits a random time from a
//!   range before it travels.
//! - **filters**: a predicate on (sender, target, request) that drops the
//!   requests it picks, to build one exact message pattern.
//!
//! A replica that is not registered (crashed, not started yet) is
//! unreachable. A blocked or lost message fails after a short wait (never
//! more than the caller's timeout), as a connection refused or timed out
//! would.
//!
//! Every random decision comes from one [`StdRng`] seeded by the cluster's
//! seed. The decisions are drawn in the order messages are sent, which
//! depends on thread scheduling, so a seed reproduces the fault *settings*
//! and the test's own schedule exactly but the per-message fate only
//! statistically.
//!
//! The handler runs in its own task, as on a real server: a caller that
//! gives up does not cancel the work the target already started.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use capstan_raftstore::grpc::PeerHandler;
use capstan_raftstore::node::Replica;
use capstan_raftstore::transport::{PeerRequest, PeerResponse, PeerTransport, Unavailable};
use capstan_raftstore::types::{Member, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long a blocked or dropped message takes to fail, at most.
const LOST_MESSAGE_WAIT: Duration = Duration::from_millis(30);

/// Decides per message: `true` drops the request (it never arrives).
pub type FilterFn = dyn Fn(NodeId, NodeId, &PeerRequest) -> bool + Send + Sync;

/// A targeted fault: drops the requests a predicate picks (by sender,
/// target and content), for scenarios that need one exact message pattern.
#[derive(Clone)]
pub struct MessageFilter(pub Arc<FilterFn>);

impl std::fmt::Debug for MessageFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageFilter(..)")
    }
}

/// The fault settings of a [`Router`].
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Groups of replicas that can talk only within their group.
    pub partition: Vec<BTreeSet<NodeId>>,
    /// Replicas cut off from everyone.
    pub isolated: BTreeSet<NodeId>,
    /// Probability that a request is lost before it reaches the target.
    pub drop_request: f64,
    /// Probability that a response is lost after the target handled the request.
    pub drop_response: f64,
    /// Each message waits a random time from this range before it travels.
    pub delay: Option<(Duration, Duration)>,
    /// Drops the requests it picks.
    pub filter: Option<MessageFilter>,
}

impl Faults {
    /// Whether `a` and `b` can exchange messages.
    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        if a == b {
            return true;
        }
        if self.isolated.contains(&a) || self.isolated.contains(&b) {
            return false;
        }
        let group = |n: NodeId| self.partition.iter().position(|g| g.contains(&n));
        match (group(a), group(b)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    }
}

/// Counters of what the router did, for test output.
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Requests delivered to a handler.
    pub delivered: AtomicU64,
    /// Requests refused because of a partition, isolation or a missing replica.
    pub blocked: AtomicU64,
    /// Requests or responses lost at random.
    pub dropped: AtomicU64,
}

struct RouterInner {
    replicas: RwLock<BTreeMap<NodeId, Replica<Router>>>,
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    stats: RouterStats,
}

/// The in-process network shared by every replica of a cluster. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    inner: Arc<RouterInner>,
}

/// What happens to one message exchange.
struct Fate {
    drop_request: bool,
    drop_response: bool,
    request_delay: Duration,
    response_delay: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Router {
    /// A router with no replicas and no faults, drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        Router {
            inner: Arc::new(RouterInner {
                replicas: RwLock::new(BTreeMap::new()),
                faults: Mutex::new(Faults::default()),
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                stats: RouterStats::default(),
            }),
        }
    }

    /// Makes `replica` reachable as `id`.
    pub fn register(&self, id: NodeId, replica: Replica<Router>) {
        self.inner
            .replicas
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, replica);
    }

    /// Makes `id` unreachable and returns its replica.
    pub fn unregister(&self, id: NodeId) -> Option<Replica<Router>> {
        self.inner
            .replicas
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }

    /// Unregisters every replica (breaks the router ↔ replica cycle).
    pub fn clear(&self) -> Vec<Replica<Router>> {
        let mut map = self
            .inner
            .replicas
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *map).into_values().collect()
    }

    /// The running replica `id`, if any.
    pub fn replica(&self, id: NodeId) -> Option<Replica<Router>> {
        self.inner
            .replicas
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// The ids of the running replicas.
    pub fn running(&self) -> Vec<NodeId> {
        self.inner
            .replicas
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// The current fault settings.
    pub fn faults(&self) -> Faults {
        lock(&self.inner.faults).clone()
    }

    /// Changes the fault settings.
    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut lock(&self.inner.faults));
    }

    /// What the router did so far.
    pub fn stats(&self) -> &RouterStats {
        &self.inner.stats
    }

    fn fate(&self, from: NodeId, target: NodeId) -> Option<Fate> {
        let faults = lock(&self.inner.faults).clone();
        if !faults.connected(from, target) {
            return None;
        }
        let mut rng = lock(&self.inner.rng);
        let mut delay = || match faults.delay {
            Some((lo, hi)) if hi > lo => rng.random_range(lo..=hi),
            Some((lo, _)) => lo,
            None => Duration::ZERO,
        };
        let request_delay = delay();
        let response_delay = delay();
        Some(Fate {
            drop_request: faults.drop_request > 0.0 && rng.random_bool(faults.drop_request),
            drop_response: faults.drop_response > 0.0 && rng.random_bool(faults.drop_response),
            request_delay,
            response_delay,
        })
    }

    async fn lost(&self, target: NodeId, timeout: Duration, reason: &str) -> Unavailable {
        tokio::time::sleep(timeout.min(LOST_MESSAGE_WAIT)).await;
        Unavailable {
            target,
            reason: reason.to_owned(),
        }
    }
}

impl PeerTransport for Router {
    async fn call(
        &self,
        from: NodeId,
        target: NodeId,
        _member: &Member,
        req: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, Unavailable> {
        let stats = &self.inner.stats;
        let (Some(fate), Some(replica)) = (self.fate(from, target), self.replica(target)) else {
            stats.blocked.fetch_add(1, Ordering::Relaxed);
            return Err(self.lost(target, timeout, "unreachable (fault)").await);
        };
        if let Some(MessageFilter(drops)) = self.faults().filter
            && drops(from, target, &req)
        {
            stats.blocked.fetch_add(1, Ordering::Relaxed);
            return Err(self.lost(target, timeout, "filtered").await);
        }
        if fate.drop_request {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(self.lost(target, timeout, "request dropped").await);
        }
        let router = self.clone();
        let exchange = async move {
            tokio::time::sleep(fate.request_delay).await;
            // The link may have been cut while the request travelled.
            if !router.faults().connected(from, target) {
                stats.blocked.fetch_add(1, Ordering::Relaxed);
                return Err(router.lost(target, timeout, "partitioned in flight").await);
            }
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            let handled = tokio::spawn(async move { replica.handle(from, req).await });
            let resp = handled.await.map_err(|e| Unavailable {
                target,
                reason: format!("handler failed: {e}"),
            })?;
            tokio::time::sleep(fate.response_delay).await;
            if fate.drop_response || !router.faults().connected(from, target) {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                return Err(Unavailable {
                    target,
                    reason: "response lost".into(),
                });
            }
            Ok(resp)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Unavailable {
                target,
                reason: format!("no answer within {timeout:?}"),
            }),
        }
    }
}

//! The scheduling queue, as Kubernetes's: pending pods wait in one of
//!
//! - **active**: ready to be tried, highest `spec.priority` first, then in
//!   arrival order;
//! - **backoff**: tried and failed (a binding error, or an unschedulable
//!   pod moved back by a cluster event too soon), waiting out a per-pod
//!   exponential back-off (`podInitialBackoffSeconds` doubling up to
//!   `podMaxBackoffSeconds`);
//! - **unschedulable**: no node fitted; they wait for a cluster event that
//!   may help ([`SchedulingQueue::move_all_to_active`]) or for the
//!   periodic flush ([`SchedulingQueue::flush_unschedulable`]).
//!
//! A pod popped for scheduling leaves the queue; the scheduler puts it
//! back (unschedulable or backoff) if it could not be placed. Time is
//! passed in, so tests need no clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pod_info::{PodInfo, PodKey};

/// A pod and how often it has failed.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    /// The pod.
    pub info: Arc<PodInfo>,
    /// Failed attempts so far.
    pub attempts: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    /// Since when.
    Unschedulable(Instant),
}

#[derive(Debug)]
struct Entry {
    pod: QueuedPod,
    place: Place,
    /// Matches the heap item that is current for this entry.
    stamp: u64,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
}

/// Where the pods waiting to be scheduled are.
#[derive(Debug)]
pub struct SchedulingQueue {
    entries: HashMap<PodKey, Entry>,
    active: BinaryHeap<(i32, Reverse<u64>, PodKey)>,
    backoff: BinaryHeap<Reverse<(Instant, u64, PodKey)>>,
    seq: u64,
    initial_backoff: Duration,
    max_backoff: Duration,
}

/// How many pods wait where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLengths {
    /// Ready to be tried.
    pub active: usize,
    /// Waiting out a back-off.
    pub backoff: usize,
    /// Waiting for a cluster event.
    pub unschedulable: usize,
}

impl SchedulingQueue {
    /// An empty queue with these back-off bounds.
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            seq: 0,
            initial_backoff,
            max_backoff,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The back-off after `attempts` failures.
    pub fn backoff_for(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        self.initial_backoff
            .saturating_mul(1 << (attempts - 1).min(16))
            .min(self.max_backoff)
    }

    fn push_active(&mut self, key: PodKey, entry_priority: i32) -> u64 {
        let seq = self.next_seq();
        self.active.push((entry_priority, Reverse(seq), key));
        seq
    }

    fn push_backoff(&mut self, key: PodKey, until: Instant) -> u64 {
        let seq = self.next_seq();
        self.backoff.push(Reverse((until, seq, key)));
        seq
    }

    /// Adds a new pending pod, or updates a queued one. An unschedulable
    /// pod whose spec or labels changed is moved to active (or backoff):
    /// the change may make it fit; a status-only change leaves it waiting.
    pub fn add(&mut self, info: Arc<PodInfo>, now: Instant) {
        let key = info.key.clone();
        let Some(entry) = self.entries.get_mut(&key) else {
            let priority = info.priority;
            let stamp = self.push_active(key.clone(), priority);
            self.entries.insert(
                key,
                Entry {
                    pod: QueuedPod { info, attempts: 0 },
                    place: Place::Active,
                    stamp,
                    failed_at: None,
                },
            );
            return;
        };
        let relevant = entry.pod.info.uid != info.uid
            || entry.pod.info.pod.spec != info.pod.spec
            || entry.pod.info.pod.metadata.as_ref().map(|m| &m.labels)
                != info.pod.metadata.as_ref().map(|m| &m.labels);
        let priority_changed = entry.pod.info.priority != info.priority;
        let was = entry.place;
        entry.pod.info = info;
        match was {
            Place::Unschedulable(_) if relevant => self.requeue(&key, now),
            Place::Active if priority_changed => {
                let priority = self.entries[&key].pod.info.priority;
                let stamp = self.push_active(key.clone(), priority);
                if let Some(e) = self.entries.get_mut(&key) {
                    e.stamp = stamp;
                }
            }
            _ => {}
        }
    }

    /// Moves one entry to active, or to backoff while its back-off lasts.
    fn requeue(&mut self, key: &PodKey, now: Instant) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        let until = entry
            .failed_at
            .map(|at| at + self.backoff_for(entry.pod.attempts));
        let priority = entry.pod.info.priority;
        let (place, stamp) = match until {
            Some(until) if until > now => (Place::Backoff, self.push_backoff(key.clone(), until)),
            _ => (Place::Active, self.push_active(key.clone(), priority)),
        };
        if let Some(e) = self.entries.get_mut(key) {
            e.place = place;
            e.stamp = stamp;
        }
    }

    /// Removes a pod (bound, deleted, or no longer this scheduler's).
    pub fn remove(&mut self, key: &PodKey) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Whether `key` is queued.
    pub fn contains(&self, key: &PodKey) -> bool {
        self.entries.contains_key(key)
    }

    /// Keeps only the pods `keep` says yes to (after a relist).
    pub fn retain(&mut self, mut keep: impl FnMut(&PodKey) -> bool) {
        self.entries.retain(|k, _| keep(k));
    }

    /// Moves pods whose back-off is over to active.
    fn promote_backoff(&mut self, now: Instant) {
        while let Some(Reverse((until, seq, _))) = self.backoff.peek() {
            if *until > now {
                break;
            }
            let seq = *seq;
            let Some(Reverse((_, _, key))) = self.backoff.pop() else {
                break;
            };
            let current = self
                .entries
                .get(&key)
                .is_some_and(|e| e.place == Place::Backoff && e.stamp == seq);
            if current {
                let priority = self.entries[&key].pod.info.priority;
                let stamp = self.push_active(key.clone(), priority);
                if let Some(e) = self.entries.get_mut(&key) {
                    e.place = Place::Active;
                    e.stamp = stamp;
                }
            }
        }
    }

    /// The next pod to schedule; it leaves the queue.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.promote_backoff(now);
        while let Some((_, Reverse(seq), key)) = self.active.pop() {
            let current = self
                .entries
                .get(&key)
                .is_some_and(|e| e.place == Place::Active && e.stamp == seq);
            if current {
                return self.entries.remove(&key).map(|e| e.pod);
            }
        }
        None
    }

    /// Puts back a pod no node fitted; it waits for a cluster event.
    pub fn add_unschedulable(&mut self, mut pod: QueuedPod, now: Instant) {
        pod.attempts += 1;
        let key = pod.info.key.clone();
        self.entries.insert(
            key,
            Entry {
                pod,
                place: Place::Unschedulable(now),
                stamp: 0,
                failed_at: Some(now),
            },
        );
    }

    /// Puts back a pod whose attempt failed for a passing reason (its
    /// binding); it is retried after its back-off.
    pub fn add_backoff(&mut self, mut pod: QueuedPod, now: Instant) {
        pod.attempts += 1;
        let key = pod.info.key.clone();
        let until = now + self.backoff_for(pod.attempts);
        let stamp = self.push_backoff(key.clone(), until);
        self.entries.insert(
            key,
            Entry {
                pod,
                place: Place::Backoff,
                stamp,
                failed_at: Some(now),
            },
        );
    }

    /// A cluster event may let unschedulable pods fit: move them all to
    /// active (or backoff while theirs lasts). Returns how many moved.
    pub fn move_all_to_active(&mut self, now: Instant) -> usize {
        self.flush(now, Duration::ZERO)
    }

    /// Moves pods unschedulable for at least `older_than` (the periodic
    /// retry). Returns how many moved.
    pub fn flush_unschedulable(&mut self, now: Instant, older_than: Duration) -> usize {
        self.flush(now, older_than)
    }

    fn flush(&mut self, now: Instant, older_than: Duration) -> usize {
        let keys: Vec<PodKey> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                matches!(e.place, Place::Unschedulable(since) if now.saturating_duration_since(since) >= older_than)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            self.requeue(key, now);
        }
        keys.len()
    }

    /// When the earliest back-off ends, if any pod waits in backoff.
    pub fn next_backoff_deadline(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((at, _, _))| *at)
    }

    /// How many pods wait where.
    pub fn lengths(&self) -> QueueLengths {
        let mut l = QueueLengths::default();
        for e in self.entries.values() {
            match e.place {
                Place::Active => l.active += 1,
                Place::Backoff => l.backoff += 1,
                Place::Unschedulable(_) => l.unschedulable += 1,
            }
        }
        l
    }

    /// Whether a pod is ready to pop now (without promoting backoff).
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pod;

    fn info(name: &str, priority: i32) -> Arc<PodInfo> {
        let mut p = pod(name, "1", "1Gi");
        p.spec.as_mut().unwrap().priority = Some(priority);
        Arc::new(PodInfo::new(Arc::new(p)).unwrap())
    }

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10))
    }

    fn names(q: &mut SchedulingQueue, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| q.pop(now))
            .map(|p| p.info.key.name.clone())
            .collect()
    }

    #[test]
    fn fifo_within_a_priority_and_higher_priority_first() {
        let now = Instant::now();
        let mut q = queue();
        q.add(info("a", 0), now);
        q.add(info("b", 0), now);
        q.add(info("urgent", 100), now);
        q.add(info("c", 0), now);
        // An update does not duplicate or reorder.
        q.add(info("a", 0), now);
        assert_eq!(names(&mut q, now), ["urgent", "a", "b", "c"]);
        assert!(q.pop(now).is_none());
    }

    #[test]
    fn removed_pods_are_not_popped() {
        let now = Instant::now();
        let mut q = queue();
        q.add(info("a", 0), now);
        q.add(info("b", 0), now);
        assert!(q.remove(&info("a", 0).key));
        assert_eq!(names(&mut q, now), ["b"]);
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event_and_their_backoff() {
        let t0 = Instant::now();
        let mut q = queue();
        q.add(info("a", 0), t0);
        let p = q.pop(t0).unwrap();
        q.add_unschedulable(p, t0);
        assert_eq!(q.lengths().unschedulable, 1);
        assert!(
            q.pop(t0 + Duration::from_secs(100)).is_none(),
            "waits for an event"
        );
        // An event right away: the 1 s back-off still holds it.
        assert_eq!(q.move_all_to_active(t0), 1);
        assert_eq!(q.lengths().backoff, 1);
        assert!(q.pop(t0 + Duration::from_millis(500)).is_none());
        assert_eq!(q.next_backoff_deadline(), Some(t0 + Duration::from_secs(1)));
        let p = q.pop(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(p.attempts, 1);
        // Second failure: 2 s back-off; an event after it moves it to active.
        let t1 = t0 + Duration::from_secs(2);
        q.add_unschedulable(p, t1);
        assert_eq!(q.move_all_to_active(t1 + Duration::from_secs(3)), 1);
        assert_eq!(q.lengths().active, 1);
    }

    #[test]
    fn periodic_flush_moves_only_old_unschedulable_pods() {
        let t0 = Instant::now();
        let mut q = queue();
        q.add(info("old", 0), t0);
        q.add(info("new", 0), t0);
        let old = q.pop(t0).unwrap();
        let new = q.pop(t0).unwrap();
        q.add_unschedulable(old, t0);
        q.add_unschedulable(new, t0 + Duration::from_secs(50));
        let now = t0 + Duration::from_secs(60);
        assert_eq!(q.flush_unschedulable(now, Duration::from_secs(30)), 1);
        assert_eq!(names(&mut q, now), ["old"]);
    }

    #[test]
    fn a_spec_change_requeues_an_unschedulable_pod_but_a_status_change_does_not() {
        let t0 = Instant::now();
        let mut q = queue();
        q.add(info("a", 0), t0);
        let p = q.pop(t0).unwrap();
        q.add_unschedulable(p, t0);
        let mut status_only = (*info("a", 0).pod).clone();
        status_only.status = Some(Default::default());
        let later = t0 + Duration::from_secs(5);
        q.add(
            Arc::new(PodInfo::new(Arc::new(status_only)).unwrap()),
            later,
        );
        assert_eq!(q.lengths().unschedulable, 1);
        q.add(info("a", 5), later);
        assert_eq!(q.lengths().active, 1);
    }

    #[test]
    fn binding_failures_back_off_exponentially_up_to_the_max() {
        let t0 = Instant::now();
        let mut q = queue();
        assert_eq!(q.backoff_for(1), Duration::from_secs(1));
        assert_eq!(q.backoff_for(3), Duration::from_secs(4));
        assert_eq!(q.backoff_for(10), Duration::from_secs(10));
        q.add(info("a", 0), t0);
        let p = q.pop(t0).unwrap();
        q.add_backoff(p, t0);
        assert!(q.pop(t0).is_none());
        assert!(q.pop(t0 + Duration::from_secs(1)).is_some());
    }
}

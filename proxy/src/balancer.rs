//! [`Balancer`]: picks the endpoint for a new connection or UDP flow of one
//! service port — round-robin, or sticky per client IP (ClientIP affinity)
//! until the affinity has been idle for its timeout. Its endpoint set is
//! replaced as Endpoints change; picks made before keep their endpoint
//! (established connections are never moved).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Affinity entries are swept when the table grows past this many.
const AFFINITY_SWEEP_AT: usize = 4096;

/// The endpoints of one service port and how to choose among them.
#[derive(Debug)]
pub struct Balancer {
    state: RwLock<Arc<Set>>,
    next: AtomicUsize,
    affinity: Mutex<HashMap<IpAddr, (SocketAddr, Instant)>>,
}

#[derive(Debug, PartialEq)]
struct Set {
    backends: Vec<SocketAddr>,
    affinity: Option<Duration>,
}

impl Balancer {
    /// A balancer over `backends` with optional ClientIP affinity timeout.
    pub fn new(backends: Vec<SocketAddr>, affinity: Option<Duration>) -> Self {
        Self {
            state: RwLock::new(Arc::new(Set { backends, affinity })),
            next: AtomicUsize::new(0),
            affinity: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the endpoint set (new picks only); returns whether it changed.
    pub fn update(&self, backends: Vec<SocketAddr>, affinity: Option<Duration>) -> bool {
        let new = Set { backends, affinity };
        let mut guard = self.state.write().unwrap_or_else(|p| p.into_inner());
        if **guard == new {
            return false;
        }
        if new.affinity.is_none() {
            self.affinity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        *guard = Arc::new(new);
        true
    }

    /// The current endpoints.
    pub fn backends(&self) -> Vec<SocketAddr> {
        self.set().backends.clone()
    }

    /// Whether `backend` is still one of the endpoints.
    pub fn contains(&self, backend: SocketAddr) -> bool {
        self.set().backends.contains(&backend)
    }

    fn set(&self) -> Arc<Set> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The endpoint for a new connection from `client` at `now`, or `None`
    /// when there is none. With affinity, a client keeps its endpoint while
    /// that endpoint is still in the set and the affinity has not expired.
    pub fn pick(&self, client: IpAddr, now: Instant) -> Option<SocketAddr> {
        let set = self.set();
        if set.backends.is_empty() {
            return None;
        }
        let Some(timeout) = set.affinity else {
            return Some(self.round_robin(&set));
        };
        let mut table = self.affinity.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((backend, last)) = table.get_mut(&client)
            && now.saturating_duration_since(*last) < timeout
            && set.backends.contains(backend)
        {
            *last = now;
            return Some(*backend);
        }
        if table.len() >= AFFINITY_SWEEP_AT {
            table.retain(|_, (_, last)| now.saturating_duration_since(*last) < timeout);
        }
        let backend = self.round_robin(&set);
        table.insert(client, (backend, now));
        Some(backend)
    }

    /// The endpoint after `failed` for a retry after a failed connect
    /// (and, with affinity, the client's new endpoint).
    pub fn next_after(
        &self,
        failed: SocketAddr,
        client: IpAddr,
        now: Instant,
    ) -> Option<SocketAddr> {
        let set = self.set();
        let i = set.backends.iter().position(|b| *b == failed)?;
        let backend = set.backends[(i + 1) % set.backends.len()];
        if set.affinity.is_some() {
            self.affinity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(client, (backend, now));
        }
        Some(backend)
    }

    fn round_robin(&self, set: &Set) -> SocketAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        set.backends[i % set.backends.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u8) -> Vec<SocketAddr> {
        (1..=n)
            .map(|i| SocketAddr::from(([127, 1, 0, i], 80)))
            .collect()
    }

    const C1: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const C2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn round_robin_cycles_and_follows_updates() {
        let b = Balancer::new(addrs(2), None);
        let now = Instant::now();
        let picks: Vec<_> = (0..4).map(|_| b.pick(C1, now).unwrap()).collect();
        assert_eq!(
            picks,
            vec![addrs(2)[0], addrs(2)[1], addrs(2)[0], addrs(2)[1]]
        );
        assert!(b.update(vec![addrs(2)[1]], None));
        assert!(!b.update(vec![addrs(2)[1]], None));
        assert!((0..4).all(|_| b.pick(C1, now) == Some(addrs(2)[1])));
        b.update(vec![], None);
        assert_eq!(b.pick(C1, now), None);
    }

    #[test]
    fn client_ip_affinity_sticks_until_idle_timeout_or_endpoint_gone() {
        let b = Balancer::new(addrs(3), Some(Duration::from_secs(10)));
        let t0 = Instant::now();
        let first = b.pick(C1, t0).unwrap();
        for s in 1..5 {
            assert_eq!(b.pick(C1, t0 + Duration::from_secs(s)), Some(first));
        }
        assert_ne!(
            b.pick(C2, t0),
            Some(first),
            "another client moves on round-robin"
        );
        // Idle for the timeout: a new pick (round-robin moves on).
        let later = t0 + Duration::from_secs(4 + 10);
        let second = b.pick(C1, later).unwrap();
        assert_ne!(second, first);
        // Its endpoint leaves: a new one.
        let rest: Vec<_> = addrs(3).into_iter().filter(|a| *a != second).collect();
        b.update(rest.clone(), Some(Duration::from_secs(10)));
        let third = b.pick(C1, later).unwrap();
        assert!(rest.contains(&third));
        assert_eq!(b.pick(C1, later), Some(third));
    }

    #[test]
    fn next_after_wraps_and_rebinds_affinity() {
        let b = Balancer::new(addrs(2), Some(Duration::from_secs(10)));
        let now = Instant::now();
        assert_eq!(b.next_after(addrs(2)[1], C1, now), Some(addrs(2)[0]));
        assert_eq!(b.pick(C1, now), Some(addrs(2)[0]));
        assert_eq!(b.next_after("127.9.9.9:1".parse().unwrap(), C1, now), None);
    }
}

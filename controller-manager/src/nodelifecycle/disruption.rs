//! Whether evicting is safe: the cluster's disruption state (Kubernetes's
//! zone states; Capstan has one zone) and the token bucket that bounds how
//! many nodes per second start having their pods evicted.
//!
//! When many nodes look down at once, the likelier cause is on this side
//! (a partition, an apiserver hiccup) than a mass failure, and evicting
//! would only make things worse: in `PartialDisruption` the rate drops to
//! `secondaryNodeEvictionRate` (0 for clusters of at most
//! `largeClusterSizeThreshold` nodes) and in `FullDisruption` to 0.

use std::time::Instant;

use super::config::NodeLifecycleConfig;

/// The cluster's (single zone's) health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    /// Few nodes down: evict at `nodeEvictionRate`.
    Normal,
    /// More than 2 nodes, and at least `unhealthyZoneThreshold` of them, not ready.
    PartialDisruption,
    /// Every node not ready.
    FullDisruption,
}

impl ZoneState {
    /// Kubernetes's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneState::Normal => "Normal",
            ZoneState::PartialDisruption => "PartialDisruption",
            ZoneState::FullDisruption => "FullDisruption",
        }
    }
}

/// The state of a zone with `ready` and `not_ready` nodes (Kubernetes's
/// `ComputeZoneState`).
pub fn zone_state(ready: usize, not_ready: usize, unhealthy_threshold: f64) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= unhealthy_threshold
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Nodes per second that may start having their pods evicted in `state`
/// in a cluster of `nodes` nodes.
pub fn eviction_rate(state: ZoneState, nodes: usize, config: &NodeLifecycleConfig) -> f64 {
    match state {
        ZoneState::Normal => config.node_eviction_rate,
        ZoneState::PartialDisruption if nodes > config.large_cluster_size_threshold as usize => {
            config.secondary_node_eviction_rate
        }
        ZoneState::PartialDisruption | ZoneState::FullDisruption => 0.0,
    }
}

/// A token bucket of capacity 1 refilled at `rate` tokens per second
/// (client-go's `NewTokenBucketRateLimiter(rate, 1)`); starts full.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` per second.
    pub fn new(rate: f64, now: Instant) -> Self {
        Self {
            rate,
            tokens: 1.0,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(1.0);
        self.at = now;
    }

    /// Changes the refill rate from `now` on: tokens already earned are
    /// kept, unless the rate is 0 (nothing may pass from now on, as
    /// client-go's never-limiter that Kubernetes swaps in).
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        self.refill(now);
        self.rate = rate;
        if rate <= 0.0 {
            self.tokens = 0.0;
        }
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn zone_states_as_kubernetes() {
        assert_eq!(zone_state(1, 1, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(2, 2, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(1, 3, 0.55), ZoneState::PartialDisruption);
        assert_eq!(zone_state(0, 4, 0.55), ZoneState::FullDisruption);
        assert_eq!(zone_state(0, 1, 0.55), ZoneState::FullDisruption);
        assert_eq!(zone_state(10, 3, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(0, 0, 0.55), ZoneState::Normal);
    }

    #[test]
    fn no_eviction_in_disruption_of_small_clusters() {
        let c = NodeLifecycleConfig::default();
        assert_eq!(eviction_rate(ZoneState::Normal, 4, &c), 0.1);
        assert_eq!(eviction_rate(ZoneState::PartialDisruption, 4, &c), 0.0);
        assert_eq!(eviction_rate(ZoneState::PartialDisruption, 51, &c), 0.01);
        assert_eq!(eviction_rate(ZoneState::FullDisruption, 100, &c), 0.0);
    }

    #[test]
    fn token_bucket_bounds_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.1, t0);
        assert!(b.try_take(t0), "starts full");
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_secs(9)));
        assert!(b.try_take(t0 + Duration::from_secs(10)));
        // Capacity 1: a long idle time does not allow a burst.
        assert!(b.try_take(t0 + Duration::from_secs(100)));
        assert!(!b.try_take(t0 + Duration::from_secs(100)));
        // Rate 0 lets nothing through, not even an earned token.
        b.set_rate(0.1, t0 + Duration::from_secs(100));
        b.set_rate(0.0, t0 + Duration::from_secs(200));
        assert!(!b.try_take(t0 + Duration::from_secs(10_000)));
        b.set_rate(1.0, t0 + Duration::from_secs(10_000));
        assert!(b.try_take(t0 + Duration::from_secs(10_001)));
    }
}

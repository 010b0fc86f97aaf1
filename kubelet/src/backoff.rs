//! Crash-loop back-off per container, as Kubernetes's: the first restart
//! is immediate, then 10 s doubling up to 300 s; a container that ran
//! longer than the reset period (10 min) starts over.

use std::collections::HashMap;
use std::time::Duration;

/// Back-off bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffPolicy {
    /// First non-zero delay.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
    /// A run at least this long resets the back-off.
    pub reset: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    attempt: u32,
    delay: Duration,
}

/// The back-off state of one pod's containers, by container name.
#[derive(Debug)]
pub struct CrashBackoff {
    policy: BackoffPolicy,
    entries: HashMap<String, Entry>,
}

impl CrashBackoff {
    /// No container has crashed yet.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
        }
    }

    /// The wait between the end of attempt `attempt` of `name` (which ran
    /// for `ran_for`) and the next attempt. The same for repeated calls
    /// about one attempt.
    pub fn delay(&mut self, name: &str, attempt: u32, ran_for: Duration) -> Duration {
        let previous = self.entries.get(name).copied();
        if let Some(e) = previous
            && e.attempt == attempt
        {
            return e.delay;
        }
        let delay = match previous {
            _ if ran_for >= self.policy.reset => Duration::ZERO,
            None => Duration::ZERO,
            Some(e) if e.delay.is_zero() => self.policy.initial,
            Some(e) => (e.delay * 2).min(self.policy.max),
        };
        self.entries
            .insert(name.to_owned(), Entry { attempt, delay });
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_a_long_run() {
        let mut b = CrashBackoff::new(BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset: Duration::from_secs(600),
        });
        let short = Duration::from_secs(1);
        let delays: Vec<u64> = (0..8).map(|a| b.delay("c", a, short).as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(
            b.delay("c", 7, short).as_secs(),
            300,
            "same attempt, same delay"
        );
        assert_eq!(b.delay("other", 0, short).as_secs(), 0, "per container");
        assert_eq!(
            b.delay("c", 8, Duration::from_secs(700)).as_secs(),
            0,
            "reset"
        );
        assert_eq!(b.delay("c", 9, short).as_secs(), 10);
    }
}

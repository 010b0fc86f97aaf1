//! Leader election through a coordination.k8s.io/v1 Lease, as client-go's
//! `leaderelection` does it: candidates race to write their identity into
//! the Lease with optimistic concurrency; the holder renews it every
//! `retry_period`; the others take it over once it has gone unrenewed for
//! `lease_duration`.
//!
//! Rules that keep two leaders from acting at once:
//!
//! - Expiry is judged on the **observer's own monotonic clock**: a
//!   candidate remembers when it last saw the Lease record change
//!   (holder, renewTime, transitions) and treats it as expired only after
//!   the Lease's `leaseDurationSeconds` (its own `lease_duration` when
//!   unset) has passed since then, whatever the holder's wall clock says.
//!   No clock synchronisation is assumed. Durations are whole seconds on
//!   the wire.
//! - The holder stops calling itself leader when it has not renewed within
//!   `renew_deadline` (< `lease_duration`), so it steps down before any
//!   other candidate can consider the Lease expired.
//! - Every write carries the resourceVersion it read; a lost race is a
//!   `Conflict` and simply means "not this time".
//! - On [`Leadership::release`] the holder clears `holderIdentity` so a
//!   successor need not wait for expiry.
//!
//! The decision ([`LeaderElector::try_acquire_or_renew`]) is separate from
//! the loop ([`LeaderElector::spawn`]) so tests can drive it step by step.

use std::time::Duration;

use capstan_proto::api::coordination::v1::{Lease, LeaseSpec};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::timestamp::MicroTime;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::{Api, Error};

/// Timing of an election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a Lease stays valid without renewal (others wait this long).
    pub lease_duration: Duration,
    /// The holder steps down if it has not renewed for this long.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl Default for LeaseConfig {
    /// Kubernetes's defaults: 15 s, 10 s, 2 s.
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseConfig {
    /// Checks `retry_period < renew_deadline < lease_duration`.
    pub fn validate(&self) -> Result<(), Error> {
        if self.retry_period.is_zero()
            || self.retry_period >= self.renew_deadline
            || self.renew_deadline >= self.lease_duration
        {
            return Err(Error::Config(format!(
                "leader election needs 0 < retryPeriod ({:?}) < renewDeadline ({:?}) < leaseDuration ({:?})",
                self.retry_period, self.renew_deadline, self.lease_duration
            )));
        }
        Ok(())
    }
}

/// The part of a Lease record whose change proves its holder is alive.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    holder: String,
    renew_time: Option<MicroTime>,
    transitions: i32,
}

fn record(lease: &Lease) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity.unwrap_or_default(),
        renew_time: spec.renew_time,
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// One candidate for one Lease.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    config: LeaseConfig,
    /// The last record seen and when (our clock) it was first seen.
    observed: Option<(Record, Instant)>,
}

impl LeaderElector {
    /// A candidate `identity` for the Lease `name` in `api`'s namespace.
    pub fn new(
        api: Api<Lease>,
        name: &str,
        identity: &str,
        config: LeaseConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        if identity.is_empty() {
            return Err(Error::Config("leader election identity is empty".into()));
        }
        Ok(Self {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            config,
            observed: None,
        })
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One round: creates the Lease, renews it, or takes it over when it
    /// has expired. `Ok(true)`: this candidate holds the Lease now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let now = MicroTime::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: Some(ObjectMeta {
                    name: self.name.clone(),
                    ..Default::default()
                }),
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(now),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&lease).await {
                Ok(created) => {
                    self.observed = Some((record(&created), Instant::now()));
                    Ok(true)
                }
                Err(Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(e),
            };
        };

        let current = record(&lease);
        let seen_at = match &self.observed {
            Some((r, at)) if *r == current => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((current.clone(), at));
                at
            }
        };
        // The holder's declared duration, else ours.
        let valid_for = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.config.lease_duration, Duration::from_secs);
        let held_by_other = !current.holder.is_empty() && current.holder != self.identity;
        if held_by_other && seen_at.elapsed() < valid_for {
            return Ok(false);
        }

        let spec = lease.spec.get_or_insert_with(Default::default);
        if current.holder != self.identity {
            spec.acquire_time = Some(now);
            spec.lease_transitions = Some(current.transitions + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.duration_seconds());
        spec.renew_time = Some(now);
        match self.api.update(&lease).await {
            Ok(updated) => {
                self.observed = Some((record(&updated), Instant::now()));
                Ok(true)
            }
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this candidate holds it (clears the holder so
    /// a successor need not wait for expiry).
    pub async fn release(&mut self) -> Result<(), Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        if record(&lease).holder != self.identity {
            return Ok(());
        }
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime::now());
        self.api.update(&lease).await.map(|_| ())
    }

    /// Runs the election in a task until [`Leadership::release`]: tries
    /// every `retry_period`, reports leadership through the handle, steps
    /// down after `renew_deadline` without a successful renewal.
    pub fn spawn(mut self) -> Leadership {
        let (tx, rx) = watch::channel(false);
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut last_renew: Option<Instant> = None;
            loop {
                let attempt =
                    tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew());
                let outcome = tokio::select! {
                    r = attempt => r,
                    _ = &mut stop_rx => break,
                };
                match outcome {
                    Ok(Ok(true)) => last_renew = Some(Instant::now()),
                    Ok(Ok(false)) => last_renew = None,
                    Ok(Err(e)) => {
                        tracing::warn!(lease = %self.name, error = %e, "leader election round failed")
                    }
                    Err(_) => tracing::warn!(lease = %self.name, "leader election round timed out"),
                }
                let leading =
                    last_renew.is_some_and(|at| at.elapsed() < self.config.renew_deadline);
                if *tx.borrow() != leading {
                    tracing::info!(lease = %self.name, identity = %self.identity, leading, "leadership changed");
                    let _ = tx.send(leading);
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.config.retry_period) => {}
                    _ = &mut stop_rx => break,
                }
            }
            let _ = tx.send(false);
            if last_renew.is_some()
                && let Err(e) = self.release().await
            {
                tracing::warn!(lease = %self.name, error = %e, "could not release the lease");
            }
        });
        Leadership {
            rx,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }
}

/// A running election ([`LeaderElector::spawn`]).
#[derive(Debug)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Leadership {
    /// Whether this candidate leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// A receiver that sees every change of leadership.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Waits until leadership is `leading`, at most `timeout`; returns
    /// whether it got there.
    pub async fn wait_for(&mut self, leading: bool, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.rx.wait_for(|l| *l == leading))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops campaigning and gives the Lease up if held; returns when done.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops campaigning **without** releasing the Lease (as a crash
    /// would); the Lease expires on its own. For tests.
    pub fn abandon(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        assert!(LeaseConfig::default().validate().is_ok());
        let bad = LeaseConfig {
            renew_deadline: Duration::from_secs(20),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("renewDeadline")
        );
    }
}

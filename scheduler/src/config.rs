//! The daemon's configuration file (YAML, camelCase, unknown fields
//! refused), shaped after Kubernetes's `KubeSchedulerConfiguration` where
//! it has the same knob: `leaderElection`, `percentageOfNodesToScore`,
//! `podInitialBackoffSeconds`, `podMaxBackoffSeconds`, a scheduler name.
//!
//! ```yaml
//! kubeconfig: scheduler.kubeconfig   # relative to this file
//! schedulerName: default-scheduler
//! leaderElection:
//!   leaderElect: true
//!   leaseDuration: 15s
//!   renewDeadline: 10s
//!   retryPeriod: 2s
//!   resourceNamespace: kube-system
//!   resourceName: kube-scheduler
//! percentageOfNodesToScore: 0        # 0: adaptive (50 - nodes/125 %, >= 5 %)
//! podInitialBackoffSeconds: 1
//! podMaxBackoffSeconds: 10
//! unschedulableRetryInterval: 30s
//! bindBatchSize: 2000
//! maxBindsInFlight: 2
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use capstan_client::leader::LeaseConfig;
use serde::{Deserialize, Deserializer};

/// A configuration that cannot be used, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the field.
    pub message: String,
}

/// What the daemon needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The kubeconfig with this component's identity and the apiservers.
    pub kubeconfig: PathBuf,
    /// Pods whose `spec.schedulerName` is this (or empty) are ours.
    #[serde(default = "default_scheduler_name")]
    pub scheduler_name: String,
    /// Leader election through a Lease.
    #[serde(default)]
    pub leader_election: LeaderElection,
    /// Percent of the nodes to find feasible before scoring; 0: adaptive.
    #[serde(default)]
    pub percentage_of_nodes_to_score: u32,
    /// The first back-off of a pod whose attempt failed, in seconds.
    #[serde(default = "one")]
    pub pod_initial_backoff_seconds: u64,
    /// The longest back-off, in seconds.
    #[serde(default = "ten")]
    pub pod_max_backoff_seconds: u64,
    /// Pods unschedulable for this long are retried even without a
    /// cluster event.
    #[serde(default = "thirty_seconds", deserialize_with = "duration")]
    pub unschedulable_retry_interval: Duration,
    /// At most this many bindings in one `Pods.Bind` call.
    #[serde(default = "default_batch")]
    pub bind_batch_size: usize,
    /// At most this many `Pods.Bind` calls in flight; the next batch
    /// gathers while they are.
    #[serde(default = "two")]
    pub max_binds_in_flight: usize,
}

/// `leaderElection`, as Kubernetes's `LeaderElectionConfiguration`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElection {
    /// Campaign for the Lease before scheduling (false: schedule at once;
    /// only one scheduler may then run).
    #[serde(default = "yes")]
    pub leader_elect: bool,
    /// How long a Lease stays valid without renewal.
    #[serde(default = "fifteen_seconds", deserialize_with = "duration")]
    pub lease_duration: Duration,
    /// The leader steps down if it has not renewed for this long.
    #[serde(default = "ten_seconds", deserialize_with = "duration")]
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    #[serde(default = "two_seconds", deserialize_with = "duration")]
    pub retry_period: Duration,
    /// The Lease's namespace.
    #[serde(default = "kube_system")]
    pub resource_namespace: String,
    /// The Lease's name.
    #[serde(default = "kube_scheduler")]
    pub resource_name: String,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            leader_elect: true,
            lease_duration: fifteen_seconds(),
            renew_deadline: ten_seconds(),
            retry_period: two_seconds(),
            resource_namespace: kube_system(),
            resource_name: kube_scheduler(),
        }
    }
}

impl LeaderElection {
    /// The Lease timings.
    pub fn lease_config(&self) -> LeaseConfig {
        LeaseConfig {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }
}

fn default_scheduler_name() -> String {
    "default-scheduler".to_owned()
}
fn yes() -> bool {
    true
}
fn one() -> u64 {
    1
}
fn two() -> usize {
    2
}
fn ten() -> u64 {
    10
}
fn default_batch() -> usize {
    2000
}
fn two_seconds() -> Duration {
    Duration::from_secs(2)
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn fifteen_seconds() -> Duration {
    Duration::from_secs(15)
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn kube_system() -> String {
    "kube-system".to_owned()
}
fn kube_scheduler() -> String {
    "kube-scheduler".to_owned()
}

/// Parses a Go-style duration: `1500ms`, `15s`, `1m30s`, `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 500ms, 15s, 1m30s");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

impl Config {
    /// A configuration with every default and this kubeconfig.
    pub fn new(kubeconfig: PathBuf) -> Self {
        Self {
            kubeconfig,
            scheduler_name: default_scheduler_name(),
            leader_election: LeaderElection::default(),
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff_seconds: 1,
            pod_max_backoff_seconds: 10,
            unschedulable_retry_interval: thirty_seconds(),
            bind_batch_size: default_batch(),
            max_binds_in_flight: 2,
        }
    }

    /// Reads and checks `path`; relative paths inside resolve against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut config: Config = serde_yaml_ng::from_str(&text).map_err(|e| err(e.to_string()))?;
        if let Some(dir) = path.parent()
            && config.kubeconfig.is_relative()
        {
            config.kubeconfig = dir.join(&config.kubeconfig);
        }
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// Checks the values against each other; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.scheduler_name.is_empty() {
            return Err("schedulerName: must not be empty".into());
        }
        if self.percentage_of_nodes_to_score > 100 {
            return Err(format!(
                "percentageOfNodesToScore: {} is not between 0 and 100",
                self.percentage_of_nodes_to_score
            ));
        }
        if self.pod_initial_backoff_seconds == 0 {
            return Err("podInitialBackoffSeconds: must be at least 1".into());
        }
        if self.pod_max_backoff_seconds < self.pod_initial_backoff_seconds {
            return Err(format!(
                "podMaxBackoffSeconds: {} is less than podInitialBackoffSeconds ({})",
                self.pod_max_backoff_seconds, self.pod_initial_backoff_seconds
            ));
        }
        if self.unschedulable_retry_interval.is_zero() {
            return Err("unschedulableRetryInterval: must be positive".into());
        }
        if self.bind_batch_size == 0 || self.bind_batch_size > 10_000 {
            return Err(format!(
                "bindBatchSize: {} is not between 1 and 10000 (the apiserver's limit per call)",
                self.bind_batch_size
            ));
        }
        if self.max_binds_in_flight == 0 {
            return Err("maxBindsInFlight: must be at least 1".into());
        }
        let le = &self.leader_election;
        if le.leader_elect {
            le.lease_config()
                .validate()
                .map_err(|e| format!("leaderElection: {e}"))?;
            if le.resource_namespace.is_empty() || le.resource_name.is_empty() {
                return Err(
                    "leaderElection: resourceNamespace and resourceName must not be empty".into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scheduler.yaml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn defaults_are_kubernetes_ones() {
        let c = load("kubeconfig: s.kubeconfig\n").unwrap();
        assert!(c.kubeconfig.is_absolute() && c.kubeconfig.ends_with("s.kubeconfig"));
        assert_eq!(c.scheduler_name, "default-scheduler");
        assert!(c.leader_election.leader_elect);
        assert_eq!(c.leader_election.lease_config(), LeaseConfig::default());
        assert_eq!(c.leader_election.resource_name, "kube-scheduler");
        assert_eq!(c.leader_election.resource_namespace, "kube-system");
        assert_eq!(c.percentage_of_nodes_to_score, 0);
    }

    #[test]
    fn fields_are_read_and_checked() {
        let c = load(
            "kubeconfig: /k\nleaderElection: {leaseDuration: 1m30s, renewDeadline: 1500ms, retryPeriod: 1s}\npercentageOfNodesToScore: 30\n",
        )
        .unwrap();
        assert_eq!(c.leader_election.lease_duration, Duration::from_secs(90));
        assert_eq!(
            c.leader_election.renew_deadline,
            Duration::from_millis(1500)
        );
        assert_eq!(c.percentage_of_nodes_to_score, 30);

        let e = load("kubeconfig: /k\nleaderElection: {leaseDuration: 15}\n").unwrap_err();
        assert!(e.to_string().contains("invalid duration"), "{e}");
        let e = load("kubeconfig: /k\nleaderElection: {renewDeadline: 20s}\n").unwrap_err();
        assert!(e.to_string().contains("leaderElection"), "{e}");
        let e = load("kubeconfig: /k\npercentageOfNodesToScore: 101\n").unwrap_err();
        assert!(e.to_string().contains("percentageOfNodesToScore"), "{e}");
        let e = load("kubeconfig: /k\nbindBatchSize: 0\n").unwrap_err();
        assert!(e.to_string().contains("bindBatchSize"), "{e}");
        let e = load("kubeconfig: /k\nschedulerNme: x\n").unwrap_err();
        assert!(e.to_string().contains("schedulerNme"), "{e}");
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5d").is_err());
    }
}

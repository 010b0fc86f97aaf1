//! The daemon's configuration file (YAML, camelCase, unknown fields
//! refused), shaped after Kubernetes's `KubeSchedulerConfiguration` where
//! it has the same knob: `leaderElection`, `percentageOfNodesToScore`,
//! `podInitialBackoffSeconds`, `podMaxBackoffSeconds`, a scheduler name.
//! Lease timings are numbers of seconds (fractions allowed), as in the
//! controller-manager's file. See `deploy/scheduler.example.yaml`.
//!
//! ```yaml
//! kubeconfig: scheduler.kubeconfig   # relative to this file
//! identity: scheduler-a              # default <hostname>_<pid>
//! schedulerName: default-scheduler
//! leaderElection:
//!   leaderElect: true
//!   leaseDurationSeconds: 15
//!   renewDeadlineSeconds: 10
//!   retryPeriodSeconds: 2
//!   resourceNamespace: kube-system
//!   resourceName: kube-scheduler
//! percentageOfNodesToScore: 0        # 0: adaptive (50 - nodes/125 %, >= 5 %)
//! podInitialBackoffSeconds: 1
//! podMaxBackoffSeconds: 10
//! unschedulableRetrySeconds: 30
//! bindBatchSize: 2000
//! maxBindsInFlight: 2
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use capstan_client::leader::LeaseConfig;
use serde::Deserialize;

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
    /// This instance's name in the Lease and its Events; default
    /// `<hostname>_<pid>`.
    #[serde(default)]
    pub identity: Option<String>,
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
    /// Pods unschedulable for this many seconds are retried even without
    /// a cluster event.
    #[serde(default = "thirty")]
    pub unschedulable_retry_seconds: f64,
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
    /// How long a Lease stays valid without renewal, in seconds.
    #[serde(default = "fifteen")]
    pub lease_duration_seconds: f64,
    /// The leader steps down if it has not renewed for this long.
    #[serde(default = "ten_f")]
    pub renew_deadline_seconds: f64,
    /// How often to try to acquire or renew.
    #[serde(default = "two_f")]
    pub retry_period_seconds: f64,
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
            lease_duration_seconds: fifteen(),
            renew_deadline_seconds: ten_f(),
            retry_period_seconds: two_f(),
            resource_namespace: kube_system(),
            resource_name: kube_scheduler(),
        }
    }
}

impl LeaderElection {
    /// The Lease timings; the error names the field.
    pub fn lease_config(&self) -> Result<LeaseConfig, String> {
        let config = LeaseConfig {
            lease_duration: seconds(
                "leaderElection.leaseDurationSeconds",
                self.lease_duration_seconds,
            )?,
            renew_deadline: seconds(
                "leaderElection.renewDeadlineSeconds",
                self.renew_deadline_seconds,
            )?,
            retry_period: seconds(
                "leaderElection.retryPeriodSeconds",
                self.retry_period_seconds,
            )?,
        };
        config.validate().map_err(|e| {
            format!("leaderElection: retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds is required ({e})")
        })?;
        Ok(config)
    }
}

/// A positive, finite number of seconds as a duration.
fn seconds(field: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value < 1e9 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "{field}: {value} is not a positive number of seconds"
        ))
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
fn two_f() -> f64 {
    2.0
}
fn ten_f() -> f64 {
    10.0
}
fn fifteen() -> f64 {
    15.0
}
fn thirty() -> f64 {
    30.0
}
fn kube_system() -> String {
    "kube-system".to_owned()
}
fn kube_scheduler() -> String {
    "kube-scheduler".to_owned()
}

impl Config {
    /// A configuration with every default and this kubeconfig.
    pub fn new(kubeconfig: PathBuf) -> Self {
        Self {
            kubeconfig,
            identity: None,
            scheduler_name: default_scheduler_name(),
            leader_election: LeaderElection::default(),
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff_seconds: 1,
            pod_max_backoff_seconds: 10,
            unschedulable_retry_seconds: thirty(),
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

    /// How long a pod may stay unschedulable before it is retried anyway.
    pub fn unschedulable_retry(&self) -> Duration {
        Duration::from_secs_f64(self.unschedulable_retry_seconds.clamp(0.001, 1e9))
    }

    /// This instance's identity: [`Config::identity`] or `<hostname>_<pid>`.
    pub fn identity(&self, hostname: &str) -> String {
        self.identity
            .clone()
            .unwrap_or_else(|| format!("{hostname}_{}", std::process::id()))
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
        seconds(
            "unschedulableRetrySeconds",
            self.unschedulable_retry_seconds,
        )?;
        if self.identity.as_deref() == Some("") {
            return Err("identity: must not be empty when set".into());
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
            le.lease_config()?;
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
        assert_eq!(c.leader_election.lease_config(), Ok(LeaseConfig::default()));
        assert_eq!(c.leader_election.resource_name, "kube-scheduler");
        assert_eq!(c.leader_election.resource_namespace, "kube-system");
        assert_eq!(c.percentage_of_nodes_to_score, 0);
    }

    #[test]
    fn fields_are_read_and_checked() {
        let c = load(
            "kubeconfig: /k\nidentity: s-a\nleaderElection: {leaseDurationSeconds: 2, renewDeadlineSeconds: 1.5, retryPeriodSeconds: 0.5}\npercentageOfNodesToScore: 30\n",
        )
        .unwrap();
        let lease = c.leader_election.lease_config().unwrap();
        assert_eq!(lease.lease_duration, Duration::from_secs(2));
        assert_eq!(lease.renew_deadline, Duration::from_millis(1500));
        assert_eq!(c.percentage_of_nodes_to_score, 30);
        assert_eq!(c.identity("h"), "s-a");
        assert!(
            load("kubeconfig: /k\n")
                .unwrap()
                .identity("h")
                .starts_with("h_")
        );

        let e = load("kubeconfig: /k\nleaderElection: {leaseDurationSeconds: 15s}\n").unwrap_err();
        assert!(e.to_string().contains("leaseDurationSeconds"), "{e}");
        let e = load("kubeconfig: /k\nleaderElection: {retryPeriodSeconds: -1}\n").unwrap_err();
        assert!(e.to_string().contains("retryPeriodSeconds"), "{e}");
        let e = load("kubeconfig: /k\nleaderElection: {renewDeadlineSeconds: 20}\n").unwrap_err();
        assert!(e.to_string().contains("renewDeadlineSeconds"), "{e}");
        let e = load("kubeconfig: /k\npercentageOfNodesToScore: 101\n").unwrap_err();
        assert!(e.to_string().contains("percentageOfNodesToScore"), "{e}");
        let e = load("kubeconfig: /k\nbindBatchSize: 0\n").unwrap_err();
        assert!(e.to_string().contains("bindBatchSize"), "{e}");
        let e = load("kubeconfig: /k\nschedulerNme: x\n").unwrap_err();
        assert!(e.to_string().contains("schedulerNme"), "{e}");
    }
}

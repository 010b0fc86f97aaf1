//! The daemon's configuration file (YAML, camelCase, unknown fields refused),
//! with Kubernetes's names and defaults (`--leader-elect-*`,
//! `--concurrent-*-syncs`). See deploy/controller-manager.example.yaml.

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
    /// This instance's name in the leader-election Lease and as the
    /// reporting instance of its Events; default `<hostname>_<pid>`.
    #[serde(default)]
    pub identity: Option<String>,
    /// Leader election through the Lease kube-system/kube-controller-manager.
    #[serde(default)]
    pub leader_election: LeaderElection,
    /// ReplicaSets reconciled at once (Kubernetes's `--concurrent-replicaset-syncs`).
    #[serde(default = "default_concurrency")]
    pub concurrent_replica_set_syncs: usize,
    /// ReplicationControllers reconciled at once (`--concurrent-rc-syncs`).
    #[serde(default = "default_concurrency", rename = "concurrentRCSyncs")]
    pub concurrent_rc_syncs: usize,
    /// Deployments reconciled at once (`--concurrent-deployment-syncs`).
    #[serde(default = "default_concurrency")]
    pub concurrent_deployment_syncs: usize,
    /// The node lifecycle controller (`nodeLifecycleController:`).
    #[serde(default)]
    pub node_lifecycle_controller: crate::nodelifecycle::NodeLifecycleConfig,
    /// The garbage collector (`garbageCollectorController:`).
    #[serde(default)]
    pub garbage_collector_controller: crate::gc::GarbageCollectorConfig,
    /// The namespace controller (`namespaceController:`).
    #[serde(default)]
    pub namespace_controller: crate::namespace::NamespaceConfig,
}

fn default_concurrency() -> usize {
    5
}

/// Timing of leader election, in seconds (fractions allowed), as
/// Kubernetes's `--leader-elect-*` flags.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElection {
    /// Whether to elect a leader at all (false: this instance always runs
    /// the controllers; only safe when it is the only one).
    #[serde(default = "yes")]
    pub leader_elect: bool,
    /// How long the Lease stays valid unrenewed (others wait this long).
    #[serde(default = "default_lease")]
    pub lease_duration_seconds: f64,
    /// The leader steps down if it has not renewed for this long.
    #[serde(default = "default_renew")]
    pub renew_deadline_seconds: f64,
    /// How often to try to acquire or renew.
    #[serde(default = "default_retry")]
    pub retry_period_seconds: f64,
}

fn yes() -> bool {
    true
}
fn default_lease() -> f64 {
    15.0
}
fn default_renew() -> f64 {
    10.0
}
fn default_retry() -> f64 {
    2.0
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            leader_elect: true,
            lease_duration_seconds: default_lease(),
            renew_deadline_seconds: default_renew(),
            retry_period_seconds: default_retry(),
        }
    }
}

impl LeaderElection {
    /// The client's election timing; checks the three are positive and
    /// `retryPeriod < renewDeadline < leaseDuration`.
    pub fn lease_config(&self) -> Result<LeaseConfig, String> {
        let secs = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v < 1e6 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(format!(
                    "leaderElection.{field}: must be a positive number of seconds, got {v}"
                ))
            }
        };
        let config = LeaseConfig {
            lease_duration: secs("leaseDurationSeconds", self.lease_duration_seconds)?,
            renew_deadline: secs("renewDeadlineSeconds", self.renew_deadline_seconds)?,
            retry_period: secs("retryPeriodSeconds", self.retry_period_seconds)?,
        };
        config.validate().map_err(|e| {
            format!("leaderElection: retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds is required ({e})")
        })?;
        Ok(config)
    }
}

impl Config {
    /// A configuration with every default, for `kubeconfig`.
    pub fn new(kubeconfig: PathBuf) -> Self {
        Self {
            kubeconfig,
            identity: None,
            leader_election: LeaderElection::default(),
            concurrent_replica_set_syncs: default_concurrency(),
            concurrent_rc_syncs: default_concurrency(),
            concurrent_deployment_syncs: default_concurrency(),
            node_lifecycle_controller: Default::default(),
            garbage_collector_controller: Default::default(),
            namespace_controller: Default::default(),
        }
    }

    /// Reads and checks `path`; relative paths inside resolve against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut config = Self::parse(&text).map_err(err)?;
        if let Some(dir) = path.parent()
            && config.kubeconfig.is_relative()
        {
            config.kubeconfig = dir.join(&config.kubeconfig);
        }
        Ok(config)
    }

    /// Parses and checks a configuration's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Config = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: the election timing, worker counts.
    pub fn validate(&self) -> Result<(), String> {
        self.leader_election.lease_config()?;
        for (field, n) in [
            (
                "concurrentReplicaSetSyncs",
                self.concurrent_replica_set_syncs,
            ),
            ("concurrentRCSyncs", self.concurrent_rc_syncs),
            (
                "concurrentDeploymentSyncs",
                self.concurrent_deployment_syncs,
            ),
        ] {
            if n == 0 || n > 1000 {
                return Err(format!("{field}: must be between 1 and 1000, got {n}"));
            }
        }
        self.node_lifecycle_controller.validate()?;
        self.garbage_collector_controller.validate()?;
        self.namespace_controller.validate()?;
        if self.identity.as_deref() == Some("") {
            return Err("identity: must not be empty when set".into());
        }
        Ok(())
    }

    /// This instance's identity: [`Config::identity`] or `<hostname>_<pid>`.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned());
            format!("{host}_{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kubernetes_s() {
        let c = Config::parse("kubeconfig: cm.kubeconfig\n").unwrap();
        assert_eq!(c.leader_election, LeaderElection::default());
        assert_eq!(
            c.leader_election.lease_config().unwrap(),
            LeaseConfig::default()
        );
        assert_eq!(c.concurrent_replica_set_syncs, 5);
        assert_eq!(c.concurrent_rc_syncs, 5);
        assert_eq!(c.concurrent_deployment_syncs, 5);
    }

    #[test]
    fn fractional_timing_and_names() {
        let c = Config::parse(
            "kubeconfig: k\nidentity: cm-a\nleaderElection:\n  leaseDurationSeconds: 2\n  renewDeadlineSeconds: 1.5\n  retryPeriodSeconds: 0.5\nconcurrentRCSyncs: 2\n",
        )
        .unwrap();
        let l = c.leader_election.lease_config().unwrap();
        assert_eq!(l.renew_deadline, Duration::from_millis(1500));
        assert_eq!(c.concurrent_rc_syncs, 2);
        assert_eq!(c.identity(), "cm-a");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse("kubeconfig: k\nleaderElection:\n  leaseDuration: 3\n").unwrap_err();
        assert!(e.contains("leaseDuration"), "{e}");
        let e = Config::parse("kubeconfig: k\nleaderElection:\n  renewDeadlineSeconds: 20\n")
            .unwrap_err();
        assert!(e.contains("renewDeadlineSeconds"), "{e}");
        let e = Config::parse("kubeconfig: k\nconcurrentDeploymentSyncs: 0\n").unwrap_err();
        assert!(e.contains("concurrentDeploymentSyncs"), "{e}");
    }
}

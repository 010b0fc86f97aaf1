//! The node lifecycle controller's settings: the `nodeLifecycleController`
//! section of the configuration file, with the names and defaults of
//! Kubernetes's `NodeLifecycleControllerConfiguration`
//! (`--node-monitor-grace-period`, `--node-eviction-rate`, ...), durations
//! in seconds (fractions allowed).

use std::time::Duration;

use serde::Deserialize;

/// `nodeLifecycleController:` in the configuration file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NodeLifecycleConfig {
    /// How often node health is checked (`--node-monitor-period`, 5 s).
    pub node_monitor_period_seconds: f64,
    /// A node whose Lease and status heartbeat this controller has not seen
    /// change for this long is Unknown (`--node-monitor-grace-period`, 40 s).
    pub node_monitor_grace_period_seconds: f64,
    /// How long pods stay on a not-ready or unreachable node before being
    /// evicted, for pods with no toleration of the NoExecute taint
    /// (Kubernetes's `--pod-eviction-timeout` and the 300 s that its
    /// DefaultTolerationSeconds admission gives every pod).
    pub pod_eviction_timeout_seconds: f64,
    /// Nodes per second whose pods may start being evicted, in a healthy
    /// cluster (`--node-eviction-rate`, 0.1).
    pub node_eviction_rate: f64,
    /// The same in a partially disrupted cluster larger than
    /// `largeClusterSizeThreshold` (`--secondary-node-eviction-rate`, 0.01).
    pub secondary_node_eviction_rate: f64,
    /// At or below this many nodes, a partially disrupted cluster evicts
    /// nothing (`--large-cluster-size-threshold`, 50).
    pub large_cluster_size_threshold: u32,
    /// The fraction of not-ready nodes (more than 2 of them) at which the
    /// cluster counts as partially disrupted (`--unhealthy-zone-threshold`, 0.55).
    pub unhealthy_zone_threshold: f64,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        Self {
            node_monitor_period_seconds: 5.0,
            node_monitor_grace_period_seconds: 40.0,
            pod_eviction_timeout_seconds: 300.0,
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

fn seconds(field: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 1e7 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "nodeLifecycleController.{field}: must be a positive number of seconds, got {v}"
        ))
    }
}

impl NodeLifecycleConfig {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        seconds("nodeMonitorPeriodSeconds", self.node_monitor_period_seconds)?;
        seconds(
            "nodeMonitorGracePeriodSeconds",
            self.node_monitor_grace_period_seconds,
        )?;
        seconds(
            "podEvictionTimeoutSeconds",
            self.pod_eviction_timeout_seconds,
        )?;
        for (field, rate) in [
            ("nodeEvictionRate", self.node_eviction_rate),
            (
                "secondaryNodeEvictionRate",
                self.secondary_node_eviction_rate,
            ),
        ] {
            if !(rate.is_finite() && rate >= 0.0) {
                return Err(format!(
                    "nodeLifecycleController.{field}: must be a non-negative number of nodes per second, got {rate}"
                ));
            }
        }
        let t = self.unhealthy_zone_threshold;
        if !(t.is_finite() && t > 0.0 && t <= 1.0) {
            return Err(format!(
                "nodeLifecycleController.unhealthyZoneThreshold: must be in (0, 1], got {t}"
            ));
        }
        Ok(())
    }

    /// [`Self::node_monitor_period_seconds`] (after [`Self::validate`]).
    pub fn monitor_period(&self) -> Duration {
        Duration::from_secs_f64(self.node_monitor_period_seconds.max(0.001))
    }

    /// [`Self::node_monitor_grace_period_seconds`].
    pub fn grace_period(&self) -> Duration {
        Duration::from_secs_f64(self.node_monitor_grace_period_seconds.max(0.0))
    }

    /// [`Self::pod_eviction_timeout_seconds`].
    pub fn eviction_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.pod_eviction_timeout_seconds.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c: NodeLifecycleConfig =
            serde_yaml_ng::from_str("nodeMonitorGracePeriodSeconds: 5\n").unwrap();
        assert_eq!(c.grace_period(), Duration::from_secs(5));
        assert_eq!(c.eviction_timeout(), Duration::from_secs(300));
        assert_eq!(c.node_eviction_rate, 0.1);
        c.validate().unwrap();
        let bad = NodeLifecycleConfig {
            unhealthy_zone_threshold: 1.5,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("unhealthyZoneThreshold")
        );
        let bad = NodeLifecycleConfig {
            node_eviction_rate: -1.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("nodeEvictionRate"));
        assert!(serde_yaml_ng::from_str::<NodeLifecycleConfig>("gracePeriod: 1\n").is_err());
    }

    #[test]
    fn sections_of_the_configuration_file() {
        let c = crate::Config::parse(
            "kubeconfig: k\nnodeLifecycleController:\n  nodeMonitorPeriodSeconds: 0.5\n  nodeMonitorGracePeriodSeconds: 5\n  podEvictionTimeoutSeconds: 2\ngarbageCollectorController:\n  concurrentGCSyncs: 4\nnamespaceController:\n  concurrentNamespaceSyncs: 2\n",
        )
        .unwrap();
        assert_eq!(
            c.node_lifecycle_controller.monitor_period(),
            Duration::from_millis(500)
        );
        assert_eq!(
            c.node_lifecycle_controller.eviction_timeout(),
            Duration::from_secs(2)
        );
        assert_eq!(c.garbage_collector_controller.concurrent_gc_syncs, 4);
        assert!(c.garbage_collector_controller.enable_garbage_collector);
        assert_eq!(c.namespace_controller.concurrent_namespace_syncs, 2);
        let e = crate::Config::parse(
            "kubeconfig: k\nnodeLifecycleController:\n  nodeMonitorGracePeriodSeconds: 0\n",
        )
        .unwrap_err();
        assert!(
            e.contains("nodeLifecycleController.nodeMonitorGracePeriodSeconds"),
            "{e}"
        );
        let e = crate::Config::parse(
            "kubeconfig: k\ngarbageCollectorController:\n  concurrentGCSyncs: 0\n",
        )
        .unwrap_err();
        assert!(e.contains("concurrentGCSyncs"), "{e}");
        let e =
            crate::Config::parse("kubeconfig: k\nnamespaceController:\n  syncs: 1\n").unwrap_err();
        assert!(e.contains("syncs"), "{e}");
    }
}

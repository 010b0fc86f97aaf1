//! The daemon's configuration file (YAML, camelCase, unknown fields refused).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

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

/// The serving certificate of the kubelet's gRPC port (the node's own).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// CA bundle clients are checked against.
    pub ca_file: PathBuf,
    /// The node's certificate.
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
}

/// Overrides of the capacity read from the host.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityConfig {
    /// CPU (`4`, `3500m`); default: the host's processor count.
    pub cpu: Option<String>,
    /// Memory (`8Gi`); default: MemTotal of /proc/meminfo.
    pub memory: Option<String>,
    /// Pods; default 110.
    pub pods: Option<u32>,
}

/// What the daemon needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The kubeconfig with this node's identity (`system:node:NAME`).
    pub kubeconfig: PathBuf,
    /// The Node's name.
    pub node_name: String,
    /// The node's InternalIP, where the kubelet port listens.
    #[serde(rename = "nodeIP")]
    pub node_ip: IpAddr,
    /// The kubelet's gRPC port (logs), published as
    /// `status.daemonEndpoints.kubeletEndpoint.Port`.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The serving certificate of that port (the node's); without it the
    /// port is not served.
    pub tls: Option<TlsConfig>,
    /// Runtime state and pod logs.
    pub root_dir: PathBuf,
    /// The node's pod CIDR (IPv4), also written to `spec.podCIDR`.
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    /// The image catalogue folder.
    pub image_dir: PathBuf,
    /// Folder of static pod manifests (see [`crate::static_pods`]).
    pub static_pod_path: Option<PathBuf>,
    /// Capacity overrides.
    #[serde(default)]
    pub capacity: CapacityConfig,
    /// Lease duration; the Lease is renewed every quarter of it.
    #[serde(default = "default_lease_duration")]
    pub node_lease_duration_seconds: u32,
    /// How often the Node's status is posted.
    #[serde(default = "default_status_frequency")]
    pub node_status_update_frequency_seconds: f64,
    /// Extra labels of the Node.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Crash-loop back-off: first delay (Kubernetes: 10 s).
    #[serde(default = "default_backoff_initial")]
    pub crash_loop_backoff_initial_seconds: f64,
    /// Crash-loop back-off: cap (Kubernetes: 300 s).
    #[serde(default = "default_backoff_max")]
    pub crash_loop_backoff_max_seconds: f64,
    /// A container that ran this long resets its back-off (Kubernetes: 600 s).
    #[serde(default = "default_backoff_reset")]
    pub crash_loop_backoff_reset_seconds: f64,
    /// The cluster DNS servers (`IP:PORT`) pods with dnsPolicy ClusterFirst
    /// are pointed at (see [`crate::env::dns_env`]); empty: none.
    #[serde(default, rename = "clusterDNS")]
    pub cluster_dns: Vec<std::net::SocketAddr>,
    /// The cluster's DNS domain, for the pods' search list.
    #[serde(default = "default_cluster_domain")]
    pub cluster_domain: String,
}

fn default_cluster_domain() -> String {
    "cluster.local".to_owned()
}

fn default_port() -> u16 {
    10250
}
fn default_lease_duration() -> u32 {
    40
}
fn default_status_frequency() -> f64 {
    10.0
}
fn default_backoff_initial() -> f64 {
    10.0
}
fn default_backoff_max() -> f64 {
    300.0
}
fn default_backoff_reset() -> f64 {
    600.0
}

impl Config {
    /// Reads and checks `path`; relative paths inside resolve against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut config: Config = serde_yaml_ng::from_str(&text).map_err(|e| err(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        resolve(&mut config.kubeconfig);
        resolve(&mut config.root_dir);
        resolve(&mut config.image_dir);
        if let Some(p) = config.static_pod_path.as_mut() {
            resolve(p);
        }
        if let Some(tls) = config.tls.as_mut() {
            resolve(&mut tls.ca_file);
            resolve(&mut tls.cert_file);
            resolve(&mut tls.key_file);
        }
        config.check().map_err(err)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.node_name.is_empty() {
            return Err("nodeName: must not be empty".into());
        }
        if self.node_lease_duration_seconds < 1 {
            return Err("nodeLeaseDurationSeconds: must be at least 1".into());
        }
        if self.node_status_update_frequency_seconds.is_nan()
            || self.node_status_update_frequency_seconds <= 0.0
        {
            return Err("nodeStatusUpdateFrequencySeconds: must be positive".into());
        }
        for (field, q) in [
            ("capacity.cpu", &self.capacity.cpu),
            ("capacity.memory", &self.capacity.memory),
        ] {
            if let Some(q) = q {
                capstan_proto::quantity::Quantity::parse(q)
                    .map_err(|e| format!("{field}: {q:?} is not a quantity: {e}"))?;
            }
        }
        let b = &self.crash_loop_backoff_initial_seconds;
        if !(*b > 0.0 && self.crash_loop_backoff_max_seconds >= *b) {
            return Err("crashLoopBackoffInitialSeconds/crashLoopBackoffMaxSeconds: need 0 < initial <= max".into());
        }
        Ok(())
    }

    /// Lease renewal interval: a quarter of the lease duration.
    pub fn lease_renew_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(f64::from(self.node_lease_duration_seconds) / 4.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_loads_and_errors_name_the_field() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubelet.example.yaml");
        let c = Config::load(&example).expect("example config");
        assert_eq!(c.node_name, "n1");
        assert_eq!(c.port, 10250);
        assert!(c.kubeconfig.is_absolute() && c.image_dir.ends_with("deploy/images"));
        assert_eq!(c.lease_renew_interval(), std::time::Duration::from_secs(10));
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("k.yaml");
        std::fs::write(&bad, "kubeconfig: k\nnodeName: n\nnodeIP: 127.0.0.1\nrootDir: r\npodCIDR: 10.0.0.0/24\nimageDir: i\ncapacity: {cpu: lots}\n").unwrap();
        let e = Config::load(&bad).unwrap_err().to_string();
        assert!(e.contains("capacity.cpu") && e.contains("lots"), "{e}");
        std::fs::write(&bad, "kubeconfig: k\nnodeName: n\nnodeIP: 127.0.0.1\nrootDir: r\npodCIDR: 10.0.0.0/24\nimageDir: i\nbogus: 1\n").unwrap();
        let e = Config::load(&bad).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}

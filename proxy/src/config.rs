//! The daemon's configuration file (YAML, camelCase, unknown fields refused).
//!
//! See `deploy/proxy.example.yaml` for a commented example.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// How bytes are moved between a client's connection and its endpoint's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForwardMode {
    /// splice(2) through a pipe pair: the bytes never enter user space.
    #[default]
    Splice,
    /// A user-space copy through bounded buffers (`copy_bidirectional`).
    Copy,
}

/// What the daemon needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The kubeconfig with this component's identity (system:kube-proxy)
    /// and the apiservers.
    pub kubeconfig: PathBuf,
    /// This node's name (the Node object's name).
    pub node_name: String,
    /// This node's address: NodePorts listen here and LoadBalancer
    /// services report it as their ingress.
    #[serde(rename = "nodeIP")]
    pub node_ip: IpAddr,
    /// Where NodePorts listen instead of `nodeIP` (e.g. `0.0.0.0`).
    #[serde(default)]
    pub node_port_bind_address: Option<IpAddr>,
    /// The cluster's DNS domain.
    #[serde(default = "default_cluster_domain")]
    pub cluster_domain: String,
    /// The cluster DNS server; absent: no DNS server.
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    /// Forwarding: `splice` (zero-copy, the default) or `copy`.
    #[serde(default)]
    pub forward: ForwardMode,
    /// How long a UDP flow (one client address) lives without traffic.
    #[serde(default = "default_udp_idle_timeout")]
    pub udp_idle_timeout_seconds: u64,
    /// How long a connection to an endpoint may take before the next
    /// endpoint is tried.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_millis: u64,
    /// On shutdown, how long established TCP connections may go on after
    /// the listeners close before the proxy returns.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_seconds: u64,
}

/// The cluster DNS server.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsConfig {
    /// UDP and TCP address to serve on, e.g. `127.0.0.53:53`.
    pub listen: SocketAddr,
    /// Resolvers (IP:PORT) that names outside the cluster domain are
    /// forwarded to, tried in order; empty: such names are REFUSED.
    #[serde(default)]
    pub upstream: Vec<SocketAddr>,
    /// TTL of the answers about the cluster, in seconds.
    #[serde(default = "default_dns_ttl")]
    pub ttl: u32,
}

fn default_cluster_domain() -> String {
    "cluster.local".to_owned()
}
fn default_udp_idle_timeout() -> u64 {
    30
}
fn default_connect_timeout_ms() -> u64 {
    2000
}
fn default_shutdown_grace() -> u64 {
    5
}
fn default_dns_ttl() -> u32 {
    5
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn new(kubeconfig: PathBuf, node_name: &str, node_ip: IpAddr) -> Self {
        Self {
            kubeconfig,
            node_name: node_name.to_owned(),
            node_ip,
            node_port_bind_address: None,
            cluster_domain: default_cluster_domain(),
            dns: None,
            forward: ForwardMode::default(),
            udp_idle_timeout_seconds: default_udp_idle_timeout(),
            connect_timeout_millis: default_connect_timeout_ms(),
            shutdown_grace_seconds: default_shutdown_grace(),
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

    /// Checks the values serde cannot, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.node_name.is_empty() {
            return Err("nodeName: must not be empty".into());
        }
        let domain = self.cluster_domain.trim_end_matches('.');
        if domain.is_empty() || domain.split('.').any(str::is_empty) {
            return Err(format!(
                "clusterDomain: {:?} is not a DNS domain",
                self.cluster_domain
            ));
        }
        if self.udp_idle_timeout_seconds == 0 {
            return Err("udpIdleTimeoutSeconds: must be at least 1".into());
        }
        if self.connect_timeout_millis == 0 {
            return Err("connectTimeoutMillis: must be at least 1".into());
        }
        if let Some(dns) = &self.dns
            && dns.listen.port() == 0
        {
            return Err("dns.listen: needs a port".into());
        }
        Ok(())
    }

    /// Where NodePorts listen.
    pub fn node_port_address(&self) -> IpAddr {
        self.node_port_bind_address.unwrap_or(self.node_ip)
    }

    /// The UDP flow idle timeout.
    pub fn udp_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.udp_idle_timeout_seconds)
    }

    /// The shutdown grace time.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    /// The endpoint connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.yaml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn full_file_loads_with_relative_kubeconfig() {
        let c = load(
            "kubeconfig: proxy.kubeconfig\nnodeName: n1\nnodeIP: 127.0.10.1\n\
             forward: copy\ndns:\n  listen: 127.0.0.53:5353\n  upstream: [\"127.0.0.1:53\"]\n",
        )
        .unwrap();
        assert!(c.kubeconfig.is_absolute());
        assert_eq!(c.forward, ForwardMode::Copy);
        assert_eq!(c.cluster_domain, "cluster.local");
        assert_eq!(c.dns.unwrap().upstream.len(), 1);
    }

    #[test]
    fn errors_name_the_field() {
        let e = load("kubeconfig: k\nnodeName: n1\nnodeIP: 127.0.0.1\nsplice: true\n").unwrap_err();
        assert!(e.to_string().contains("splice"), "{e}");
        let e = load("kubeconfig: k\nnodeName: n1\nnodeIP: nope\n").unwrap_err();
        assert!(e.to_string().contains("nodeIP"), "{e}");
        let e = load("kubeconfig: k\nnodeName: n1\nnodeIP: 127.0.0.1\nclusterDomain: a..b\n")
            .unwrap_err();
        assert!(e.to_string().contains("clusterDomain"), "{e}");
    }
}

//! The replica's configuration file (`capstan apiserver --config FILE`).
//!
//! YAML, camelCase, unknown fields refused. Example:
//!
//! ```yaml
//! id: 1
//! dataDir: /var/lib/capstan/apiserver-1
//! clientAddress: 10.0.0.1:6443      # listen address of the client API
//! peerAddress: 10.0.0.1:2380        # listen address of the Raft peer port
//! members:                          # the initial replicas (bootstrap only)
//!   - { id: 1, clientAddress: 10.0.0.1:6443, peerAddress: 10.0.0.1:2380 }
//!   - { id: 2, clientAddress: 10.0.0.2:6443, peerAddress: 10.0.0.2:2380 }
//!   - { id: 3, clientAddress: 10.0.0.3:6443, peerAddress: 10.0.0.3:2380 }
//! tls:
//!   caFile: /etc/capstan/pki/ca.crt
//!   certFile: /etc/capstan/pki/apiserver.crt
//!   keyFile: /etc/capstan/pki/apiserver.key
//!   peerCertFile: /etc/capstan/pki/peer-1.crt
//!   peerKeyFile: /etc/capstan/pki/peer-1.key
//! auditLog: /var/log/capstan/audit.jsonl   # optional
//! ```
//!
//! `members` is read only when the data dir is new: a replica listed there
//! forms the group with the others. A replica not listed starts empty and
//! waits to be added by the leader (`AddMember`). [`Config::load`] checks
//! everything it can without touching the network and reports every
//! problem at once.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A replica's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// This replica's member id (≥ 1, never reused).
    pub id: u64,
    /// Where RocksDB keeps the log and the state.
    pub data_dir: PathBuf,
    /// Listen address of the client API (gRPC and `/metrics`, `/healthz`,
    /// `/readyz` over mTLS).
    pub client_address: SocketAddr,
    /// Listen address of the Raft peer port (mTLS).
    pub peer_address: SocketAddr,
    /// The address clients and peers are told to use for the client API,
    /// when it differs from `clientAddress` (listening on 0.0.0.0, say).
    #[serde(default)]
    pub advertise_client_address: Option<String>,
    /// The address peers dial for Raft, when it differs from `peerAddress`.
    #[serde(default)]
    pub advertise_peer_address: Option<String>,
    /// The initial replicas; read only when the data dir is new.
    #[serde(default)]
    pub members: Vec<MemberConfig>,
    /// Certificates.
    pub tls: TlsConfig,
    /// Append-only JSON-lines audit log of mutating requests; none if unset.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// Raft timing.
    #[serde(default)]
    pub raft: RaftConfig,
    /// The IPv4 range Services' ClusterIPs come from (default
    /// `127.96.0.0/16`, on loopback so a single machine needs no routes).
    /// Every replica must use the same range.
    #[serde(default = "default_service_range", rename = "serviceClusterIPRange")]
    pub service_cluster_ip_range: String,
    /// The range node ports come from (default `30000-32767`).
    #[serde(default = "default_node_port_range")]
    pub service_node_port_range: String,
}

fn default_service_range() -> String {
    "127.96.0.0/16".to_owned()
}

fn default_node_port_range() -> String {
    "30000-32767".to_owned()
}

/// One initial replica.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberConfig {
    /// Its member id.
    pub id: u64,
    /// Its client API address (`host:port`).
    pub client_address: String,
    /// Its Raft peer address (`host:port`).
    pub peer_address: String,
}

/// Certificate paths.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// The cluster CA certificate.
    pub ca_file: PathBuf,
    /// The apiserver serving certificate (SANs for every replica's address).
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
    /// This replica's Raft peer certificate (CN `system:capstan-peer:ID`).
    pub peer_cert_file: PathBuf,
    /// Its key.
    pub peer_key_file: PathBuf,
}

/// Raft timing and history.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RaftConfig {
    /// Leader heartbeat interval, milliseconds.
    pub heartbeat_millis: u64,
    /// Election timeout range, milliseconds (randomised between the two).
    pub election_timeout_millis: [u64; 2],
    /// Revisions of history kept for watches before compaction.
    pub history_revisions: u64,
    /// How often the leader considers compacting, milliseconds.
    pub compaction_interval_millis: u64,
    /// How long a request waits for a leader, milliseconds.
    pub request_timeout_millis: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_millis: 100,
            election_timeout_millis: [500, 1000],
            history_revisions: 100_000,
            compaction_interval_millis: 30_000,
            request_timeout_millis: 10_000,
        }
    }
}

/// Why a configuration is refused: every problem found.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when loaded from one.
    pub path: Option<PathBuf>,
    /// One line per problem, each naming the field.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "invalid configuration {}:", p.display())?,
            None => write!(f, "invalid configuration:")?,
        }
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |problem: String| ConfigError {
            path: Some(path.to_owned()),
            problems: vec![problem],
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let mut config = Self::parse(&text).map_err(|mut e| {
            e.path = Some(path.to_owned());
            e
        })?;
        // Relative paths in the file are relative to the file.
        if let Some(base) = path.parent() {
            config.resolve_paths(base);
        }
        config.check_files().map_err(|problems| ConfigError {
            path: Some(path.to_owned()),
            problems,
        })?;
        Ok(config)
    }

    /// Parses and validates YAML text (files are not checked).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_yaml_ng::from_str(text).map_err(|e| ConfigError {
            path: None,
            problems: vec![e.to_string()],
        })?;
        config.validate().map_err(|problems| ConfigError {
            path: None,
            problems,
        })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.tls.ca_file);
        fix(&mut self.tls.cert_file);
        fix(&mut self.tls.key_file);
        fix(&mut self.tls.peer_cert_file);
        fix(&mut self.tls.peer_key_file);
        if let Some(a) = &mut self.audit_log {
            fix(a);
        }
    }

    /// Checks values that need no file system.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.id == 0 {
            problems.push("id: must be ≥ 1".to_owned());
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("dataDir: required".to_owned());
        }
        if self.client_address == self.peer_address {
            problems.push(format!(
                "peerAddress: must differ from clientAddress ({})",
                self.client_address
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, m) in self.members.iter().enumerate() {
            if m.id == 0 {
                problems.push(format!("members[{i}].id: must be ≥ 1"));
            }
            if !ids.insert(m.id) {
                problems.push(format!("members[{i}].id: duplicate id {}", m.id));
            }
            for (field, addr) in [
                ("clientAddress", &m.client_address),
                ("peerAddress", &m.peer_address),
            ] {
                if let Err(e) = check_host_port(addr) {
                    problems.push(format!("members[{i}].{field}: {e}"));
                }
            }
        }
        if !self.members.is_empty() {
            if !ids.contains(&self.id) {
                problems.push(format!(
                    "members: does not list this replica's id {} (leave members empty to join an existing cluster)",
                    self.id
                ));
            }
            if self.members.len().is_multiple_of(2) {
                problems.push(format!(
                    "members: {} replicas; use an odd number (1, 3 or 5) so a majority survives failures",
                    self.members.len()
                ));
            }
        }
        for (field, addr) in [
            ("advertiseClientAddress", &self.advertise_client_address),
            ("advertisePeerAddress", &self.advertise_peer_address),
        ] {
            if let Some(addr) = addr
                && let Err(e) = check_host_port(addr)
            {
                problems.push(format!("{field}: {e}"));
            }
        }
        if let Err(e) = self.service_ranges() {
            problems.push(format!("serviceClusterIPRange/serviceNodePortRange: {e}"));
        }
        let r = &self.raft;
        if r.heartbeat_millis == 0 {
            problems.push("raft.heartbeatMillis: must be ≥ 1".to_owned());
        }
        let [lo, hi] = r.election_timeout_millis;
        if lo <= r.heartbeat_millis || hi <= lo {
            problems.push(format!(
                "raft.electionTimeoutMillis: need heartbeatMillis ({}) < min < max, got [{lo}, {hi}]",
                r.heartbeat_millis
            ));
        }
        if r.compaction_interval_millis == 0 {
            problems.push("raft.compactionIntervalMillis: must be ≥ 1".to_owned());
        }
        if r.request_timeout_millis == 0 {
            problems.push("raft.requestTimeoutMillis: must be ≥ 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The service address ranges.
    pub fn service_ranges(&self) -> Result<crate::registry::allocation::ServiceRanges, String> {
        crate::registry::allocation::ServiceRanges::parse(
            &self.service_cluster_ip_range,
            &self.service_node_port_range,
        )
    }

    /// Checks that the certificate files exist and can be read.
    fn check_files(&self) -> Result<(), Vec<String>> {
        let t = &self.tls;
        let problems: Vec<String> = [
            ("tls.caFile", &t.ca_file),
            ("tls.certFile", &t.cert_file),
            ("tls.keyFile", &t.key_file),
            ("tls.peerCertFile", &t.peer_cert_file),
            ("tls.peerKeyFile", &t.peer_key_file),
        ]
        .into_iter()
        .filter_map(|(field, path)| {
            std::fs::File::open(path)
                .err()
                .map(|e| format!("{field}: cannot read {}: {e}", path.display()))
        })
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The client address given to peers and clients.
    pub fn advertised_client_address(&self) -> String {
        self.advertise_client_address
            .clone()
            .unwrap_or_else(|| self.client_address.to_string())
    }

    /// The peer address given to peers.
    pub fn advertised_peer_address(&self) -> String {
        self.advertise_peer_address
            .clone()
            .unwrap_or_else(|| self.peer_address.to_string())
    }

    /// The replica settings for the store.
    pub fn replica_config(&self) -> capstan_raftstore::node::ReplicaConfig {
        let mut rc = capstan_raftstore::node::ReplicaConfig::new(self.id, &self.data_dir);
        rc.heartbeat = Duration::from_millis(self.raft.heartbeat_millis);
        rc.election_timeout = (
            Duration::from_millis(self.raft.election_timeout_millis[0]),
            Duration::from_millis(self.raft.election_timeout_millis[1]),
        );
        rc.history_revisions = self.raft.history_revisions;
        rc.compaction_interval = Duration::from_millis(self.raft.compaction_interval_millis);
        rc.request_timeout = Duration::from_millis(self.raft.request_timeout_millis);
        rc
    }
}

/// `host:port` with a non-empty host and a port.
fn check_host_port(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not host:port"))?;
    if host.is_empty() {
        return Err(format!("{addr:?} has no host"));
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .map(|_| ())
        .ok_or_else(|| format!("{addr:?} has no valid port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id: 2
dataDir: /tmp/x
clientAddress: 127.0.0.1:6443
peerAddress: 127.0.0.1:2380
members:
  - { id: 1, clientAddress: "127.0.0.1:6441", peerAddress: "127.0.0.1:2381" }
  - { id: 2, clientAddress: "127.0.0.1:6443", peerAddress: "127.0.0.1:2380" }
  - { id: 3, clientAddress: "127.0.0.1:6445", peerAddress: "127.0.0.1:2385" }
tls: { caFile: ca.crt, certFile: a.crt, keyFile: a.key, peerCertFile: p.crt, peerKeyFile: p.key }
"#;

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.id, 2);
        assert_eq!(c.members.len(), 3);
        assert_eq!(c.raft, RaftConfig::default());
        assert_eq!(c.advertised_client_address(), "127.0.0.1:6443");
    }

    #[test]
    fn the_deployed_example_is_valid() {
        let text = include_str!("../../deploy/apiserver.example.yaml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.members.len(), 3);
        assert_eq!(
            c.raft,
            RaftConfig::default(),
            "the example shows the defaults"
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let e = Config::parse(&GOOD.replace("dataDir", "dataDri")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("unknown field `dataDri`"), "{text}");
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = GOOD
            .replace("id: 2\n", "id: 7\n")
            .replace("\"127.0.0.1:2385\"", "\"nowhere\"")
            .replace(
                "peerAddress: 127.0.0.1:2380\nmembers",
                "peerAddress: 127.0.0.1:6443\nmembers",
            );
        let e = Config::parse(&bad).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("members: does not list this replica's id 7"),
            "{text}"
        );
        assert!(
            text.contains("members[2].peerAddress: \"nowhere\" is not host:port"),
            "{text}"
        );
        assert!(
            text.contains("peerAddress: must differ from clientAddress"),
            "{text}"
        );
        assert_eq!(e.problems.len(), 3, "{text}");
    }

    #[test]
    fn even_member_count_is_refused() {
        let two = GOOD.replace(
            "  - { id: 3, clientAddress: \"127.0.0.1:6445\", peerAddress: \"127.0.0.1:2385\" }\n",
            "",
        );
        let e = Config::parse(&two).unwrap_err();
        assert!(e.to_string().contains("use an odd number"), "{e}");
    }

    #[test]
    fn missing_certificate_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apiserver.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let e = Config::load(&path).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("tls.caFile: cannot read"), "{text}");
        assert!(
            text.contains(&dir.path().join("ca.crt").display().to_string()),
            "{text}"
        );
        assert_eq!(e.problems.len(), 5);
    }
}

//! The certificates a cluster needs, and `capstan pki init` which issues them.
//!
//! Identities are Kubernetes's: the scheduler is `system:kube-scheduler`, the
//! controller-manager `system:kube-controller-manager`, the proxy
//! `system:kube-proxy`, a node's kubelet `system:node:NAME` in group
//! `system:nodes`, an administrator `capstan-admin` in `system:masters`.
//! Replicas carry two certificates: `apiserver` (serving the client API, with
//! every replica's address as a subject alternative name) and `peer-ID` (the
//! Raft peer port, serving and dialling, `system:capstan-peer:ID` in
//! `capstan:peers`).
//!
//! [`init`] is idempotent: an existing CA is reused (never replaced) and only
//! missing certificates are issued, so it can be run again to add a node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ca::{CertificateAuthority, Usage};
use crate::tls::PkiError;

/// The group of cluster administrators (all permissions under RBAC).
pub const MASTERS_GROUP: &str = "system:masters";
/// The group of kubelets.
pub const NODES_GROUP: &str = "system:nodes";
/// The administrator's user name.
pub const ADMIN_USER: &str = "capstan-admin";
/// The scheduler's user name.
pub const SCHEDULER_USER: &str = "system:kube-scheduler";
/// The controller-manager's user name.
pub const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";
/// The proxy's user name.
pub const PROXY_USER: &str = "system:kube-proxy";
/// The group of Raft peers.
pub const PEER_GROUP: &str = "capstan:peers";

/// The user name of node `name`'s kubelet.
pub fn node_user(name: &str) -> String {
    format!("system:node:{name}")
}

/// The user name of replica `id`'s peer certificate.
pub fn peer_user(id: u64) -> String {
    format!("system:capstan-peer:{id}")
}

/// What `capstan pki init` should issue.
#[derive(Clone, Debug)]
pub struct InitSpec {
    /// DNS names and IP addresses the replicas are reached at (client API
    /// and peer port); `localhost`, `127.0.0.1` and `::1` are always added.
    pub hosts: Vec<String>,
    /// Replica ids that get a peer certificate.
    pub replicas: Vec<u64>,
    /// Node names that get a kubelet certificate.
    pub nodes: Vec<String>,
    /// Validity of the CA.
    pub ca_validity: Duration,
    /// Validity of every other certificate.
    pub validity: Duration,
}

impl Default for InitSpec {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            replicas: vec![1, 2, 3],
            nodes: Vec::new(),
            ca_validity: Duration::from_secs(10 * 365 * 86_400),
            validity: Duration::from_secs(365 * 86_400),
        }
    }
}

/// One certificate to issue.
struct Planned {
    file: String,
    user: String,
    group: Option<&'static str>,
    sans: Vec<String>,
    usage: Usage,
}

fn plan(spec: &InitSpec) -> Vec<Planned> {
    let mut sans: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    for h in &spec.hosts {
        if !sans.contains(h) {
            sans.push(h.clone());
        }
    }
    let client = |file: &str, user: &str, group| Planned {
        file: file.to_owned(),
        user: user.to_owned(),
        group,
        sans: Vec::new(),
        usage: Usage::Client,
    };
    let mut out = vec![Planned {
        file: "apiserver".into(),
        user: "capstan-apiserver".into(),
        group: None,
        sans: sans.clone(),
        usage: Usage::Server,
    }];
    for id in &spec.replicas {
        out.push(Planned {
            file: format!("peer-{id}"),
            user: peer_user(*id),
            group: Some(PEER_GROUP),
            sans: sans.clone(),
            usage: Usage::ServerAndClient,
        });
    }
    out.push(client("admin", ADMIN_USER, Some(MASTERS_GROUP)));
    out.push(client("scheduler", SCHEDULER_USER, None));
    out.push(client("controller-manager", CONTROLLER_MANAGER_USER, None));
    out.push(client("proxy", PROXY_USER, None));
    for node in &spec.nodes {
        // A kubelet dials the apiserver and serves its own port (logs, exec).
        let mut node_sans = sans.clone();
        node_sans.push(node.clone());
        out.push(Planned {
            file: format!("node-{node}"),
            user: node_user(node),
            group: Some(NODES_GROUP),
            sans: node_sans,
            usage: Usage::ServerAndClient,
        });
    }
    out
}

/// Creates `dir` if needed, creates or reuses its CA, and issues every
/// certificate of `spec` that is not there yet. Returns the files written.
pub fn init(dir: &Path, spec: &InitSpec) -> Result<Vec<PathBuf>, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    let ca = if dir.join("ca.crt").exists() || dir.join("ca.key").exists() {
        CertificateAuthority::load(dir)?
    } else {
        let ca = CertificateAuthority::generate(spec.ca_validity)?;
        ca.save(dir)?;
        written.extend([dir.join("ca.crt"), dir.join("ca.key")]);
        ca
    };
    for p in plan(spec) {
        let crt = dir.join(format!("{}.crt", p.file));
        if crt.exists() {
            continue;
        }
        let groups: Vec<&str> = p.group.into_iter().collect();
        let cert = ca.issue(&p.user, &groups, &p.sans, p.usage, spec.validity)?;
        cert.save(dir, &p.file)?;
        written.extend([crt, dir.join(format!("{}.key", p.file))]);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::tls::TlsPaths;

    #[test]
    fn init_issues_every_identity_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let spec = InitSpec {
            hosts: vec!["10.0.0.1".into(), "cp1.example".into()],
            replicas: vec![1, 2, 3],
            nodes: vec!["worker-1".into()],
            ..InitSpec::default()
        };
        let written = init(dir.path(), &spec).unwrap();
        // CA + apiserver + 3 peers + admin/scheduler/cm/proxy + 1 node, crt and key each.
        assert_eq!(written.len(), 2 * (1 + 1 + 3 + 4 + 1));
        let id = |name: &str| {
            let b = TlsPaths::in_dir(dir.path(), name).load().unwrap();
            Identity::from_der(&b.chain[0]).unwrap()
        };
        assert_eq!(id("admin").groups, vec![MASTERS_GROUP]);
        assert_eq!(id("node-worker-1").user, "system:node:worker-1");
        assert_eq!(id("peer-2").user, peer_user(2));
        assert_eq!(id("scheduler").user, SCHEDULER_USER);
        // Every bundle builds valid TLS configs.
        for name in ["apiserver", "peer-1", "admin", "node-worker-1"] {
            let b = TlsPaths::in_dir(dir.path(), name).load().unwrap();
            b.client_config().unwrap();
            b.server_config().unwrap();
        }
        let ca_before = std::fs::read(dir.path().join("ca.crt")).unwrap();
        // Again with one more node: only that node's files are written, CA kept.
        let more = InitSpec {
            nodes: vec!["worker-1".into(), "worker-2".into()],
            ..spec
        };
        let written = init(dir.path(), &more).unwrap();
        assert_eq!(written.len(), 2, "{written:?}");
        assert_eq!(std::fs::read(dir.path().join("ca.crt")).unwrap(), ca_before);
    }
}

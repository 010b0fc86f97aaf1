//! Real `capstan apiserver` processes on loopback with real mutual TLS: the
//! harness the multi-process tests and the API benchmark start clusters with.
//!
//! [`ApiCluster::start`] issues a PKI with `capstan_pki::bootstrap::init`,
//! writes one configuration file per replica (free loopback ports, data
//! dirs, audit logs under the cluster dir), starts the processes and waits
//! until every replica answers a linearizable read. Replicas can be killed
//! (`SIGKILL`), stopped (`SIGTERM`) and restarted on the same data. Every
//! process is killed and reaped on drop.
//!
//! The binary is `$CAPSTAN_BIN` when set, else `capstan` next to the test
//! executable's `deps/` folder (cargo builds it for the `capstan` package's
//! own integration tests in the same run).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use capstan_pki::{CertificateAuthority, TlsPaths, Usage};
use capstan_proto::rpc::cluster_client::ClusterClient;
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{GetRequest, MembersRequest, ResourceRef};
use tonic::transport::Channel;

/// The `capstan` binary to run.
pub fn capstan_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CAPSTAN_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    // target/<profile>/deps/<test> or target/<profile>/examples/<example>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/<dir>");
    profile_dir.join("capstan")
}

/// One replica process.
pub struct ReplicaProcess {
    /// Member id.
    pub id: u64,
    /// Client API address.
    pub client_addr: String,
    /// Raft peer address.
    pub peer_addr: String,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its stderr log.
    pub log: PathBuf,
    child: Option<Child>,
}

impl ReplicaProcess {
    /// Whether the process runs (as far as this harness knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A cluster of apiserver processes.
pub struct ApiCluster {
    dir: PathBuf,
    binary: PathBuf,
    replicas: Vec<ReplicaProcess>,
    admin: Arc<rustls::ClientConfig>,
}

/// A free loopback port (bound, then released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `ResourceRef` of a served kind.
pub fn resource_ref<R: capstan_proto::Resource>() -> ResourceRef {
    ResourceRef {
        group: R::INFO.group.into(),
        version: R::INFO.version.into(),
        resource: R::INFO.plural.into(),
    }
}

impl ApiCluster {
    /// Starts `replicas` apiservers with their files under `dir` and waits
    /// until each answers a linearizable read (at most 60 s).
    pub async fn start(dir: &Path, replicas: usize) -> anyhow::Result<ApiCluster> {
        let binary = capstan_binary();
        if !binary.exists() {
            bail!(
                "{} not found: build it first (cargo build -p capstan) or set CAPSTAN_BIN",
                binary.display()
            );
        }
        let pki = dir.join("pki");
        let spec = capstan_pki::bootstrap::InitSpec {
            replicas: (1..=replicas as u64).collect(),
            nodes: vec!["w1".into(), "w2".into()],
            ..Default::default()
        };
        capstan_pki::bootstrap::init(&pki, &spec).context("pki init")?;
        let mut procs = Vec::new();
        for id in 1..=replicas as u64 {
            procs.push(ReplicaProcess {
                id,
                client_addr: format!("127.0.0.1:{}", free_port()?),
                peer_addr: format!("127.0.0.1:{}", free_port()?),
                config: dir.join(format!("apiserver-{id}.yaml")),
                log: dir.join(format!("apiserver-{id}.log")),
                child: None,
            });
        }
        let members: String = procs
            .iter()
            .map(|p| {
                format!(
                    "  - {{ id: {}, clientAddress: \"{}\", peerAddress: \"{}\" }}\n",
                    p.id, p.client_addr, p.peer_addr
                )
            })
            .collect();
        for p in &procs {
            let config = format!(
                "id: {id}\n\
                 dataDir: data-{id}\n\
                 clientAddress: {client}\n\
                 peerAddress: {peer}\n\
                 auditLog: audit-{id}.jsonl\n\
                 members:\n{members}\
                 tls:\n  caFile: pki/ca.crt\n  certFile: pki/apiserver.crt\n  keyFile: pki/apiserver.key\n  peerCertFile: pki/peer-{id}.crt\n  peerKeyFile: pki/peer-{id}.key\n\
                 raft:\n  heartbeatMillis: 50\n  electionTimeoutMillis: [300, 600]\n  requestTimeoutMillis: 5000\n",
                id = p.id,
                client = p.client_addr,
                peer = p.peer_addr,
            );
            std::fs::write(&p.config, config)?;
        }
        let admin = TlsPaths::in_dir(&pki, "admin").load()?.client_config()?;
        let mut cluster = ApiCluster {
            dir: dir.to_owned(),
            binary,
            replicas: procs,
            admin,
        };
        for id in 1..=replicas as u64 {
            cluster.start_replica(id)?;
        }
        for id in 1..=replicas as u64 {
            cluster.wait_ready(id, Duration::from_secs(60)).await?;
        }
        Ok(cluster)
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The PKI directory.
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The replicas.
    pub fn replicas(&self) -> &[ReplicaProcess] {
        &self.replicas
    }

    /// One replica.
    pub fn replica(&self, id: u64) -> &ReplicaProcess {
        &self.replicas[(id - 1) as usize]
    }

    /// Every replica's client address.
    pub fn client_addrs(&self) -> Vec<String> {
        self.replicas
            .iter()
            .map(|r| r.client_addr.clone())
            .collect()
    }

    /// The admin's (system:masters) client TLS configuration.
    pub fn admin_tls(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.admin)
    }

    /// The client TLS configuration of a certificate issued by `pki init`
    /// (`admin`, `scheduler`, `node-w1`, ...).
    pub fn tls_for(&self, name: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        Ok(TlsPaths::in_dir(&self.pki_dir(), name)
            .load()?
            .client_config()?)
    }

    /// A client certificate for `user` (in `group`, if any) from the
    /// cluster CA.
    pub fn issue_client(
        &self,
        user: &str,
        group: Option<&str>,
    ) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let ca = CertificateAuthority::load(&self.pki_dir())?;
        let groups: Vec<&str> = group.into_iter().collect();
        let cert = ca.issue(user, &groups, &[], Usage::Client, Duration::from_secs(3600))?;
        Ok(cert.bundle(&ca)?.client_config()?)
    }

    /// A channel to replica `id` with `tls`.
    pub fn channel(&self, id: u64, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Channel> {
        Ok(capstan_pki::net::channel(
            &self.replica(id).client_addr,
            tls,
        )?)
    }

    /// A `Resources` client to replica `id` as the admin.
    pub fn admin_client(&self, id: u64) -> anyhow::Result<ResourcesClient<Channel>> {
        Ok(ResourcesClient::new(self.channel(id, self.admin_tls())?))
    }

    /// Starts (or restarts) replica `id`'s process.
    pub fn start_replica(&mut self, id: u64) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        let dir = self.dir.clone();
        let r = &mut self.replicas[(id - 1) as usize];
        if r.child.is_some() {
            bail!("replica {id} is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)?;
        let child = Command::new(&binary)
            .arg("apiserver")
            .arg("--config")
            .arg(&r.config)
            .current_dir(&dir)
            .env(
                "RUST_LOG",
                std::env::var("CAPSTAN_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        r.child = Some(child);
        Ok(())
    }

    /// `SIGKILL`s replica `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.replicas[(id - 1) as usize].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `SIGTERM`s replica `id` and waits for it to exit (at most 20 s, then
    /// `SIGKILL`). Returns whether it exited by itself.
    pub fn stop(&mut self, id: u64) -> bool {
        let Some(mut child) = self.replicas[(id - 1) as usize].child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Waits until replica `id` answers a linearizable read of the
    /// `default` namespace.
    pub async fn wait_ready(&self, id: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut client = self.admin_client(id)?;
            let request = GetRequest {
                resource: Some(resource_ref::<capstan_proto::api::core::v1::Namespace>()),
                name: "default".into(),
                ..Default::default()
            };
            match tokio::time::timeout(Duration::from_secs(3), client.get(request)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "replica {id} not ready after {timeout:?}: {last}\n--- log ---\n{}",
            self.log_tail(id)
        )
    }

    /// The leader as seen by the first running replica that knows one.
    pub async fn leader(&self) -> Option<u64> {
        for r in self.replicas.iter().filter(|r| r.is_running()) {
            let Ok(channel) = self.channel(r.id, self.admin_tls()) else {
                continue;
            };
            let mut client = ClusterClient::new(channel);
            if let Ok(Ok(m)) =
                tokio::time::timeout(Duration::from_secs(2), client.members(MembersRequest {}))
                    .await
            {
                let leader = m.into_inner().leader;
                if leader != 0 {
                    return Some(leader);
                }
            }
        }
        None
    }

    /// The last lines of replica `id`'s log.
    pub fn log_tail(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.replica(id).log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ApiCluster {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            if let Some(mut child) = r.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

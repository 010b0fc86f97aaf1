//! An in-process, single-replica apiserver for other crates' tests (feature
//! `testing`): real mutual TLS, a temporary data directory, and a
//! kubeconfig per identity so a test can act as the scheduler, a node or
//! the admin.
//!
//! ```no_run
//! # async fn t() {
//! let server = capstan_apiserver::testing::TestServer::start().await;
//! let kubeconfig = server.kubeconfig("system:node:n1", Some("system:nodes"));
//! # let _ = kubeconfig;
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use capstan_pki::bootstrap::{ADMIN_USER, InitSpec, MASTERS_GROUP};
use capstan_pki::{CertificateAuthority, Usage};

use crate::Config;

/// How long [`TestServer::start`] waits for the replica to serve.
const READY: Duration = Duration::from_secs(30);

/// A running replica; stopped (and its directory removed) on drop.
pub struct TestServer {
    dir: tempfile::TempDir,
    client_port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Two distinct free loopback ports (both held while the second is
/// chosen, so they cannot be the same).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let (a, b) = (bind(), bind());
    let port = |l: &std::net::TcpListener| l.local_addr().expect("bound").port();
    (port(&a), port(&b))
}

impl TestServer {
    /// Starts a replica on free loopback ports and waits until it serves
    /// (its bootstrap namespaces exist). Panics if it does not in 30 s.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        capstan_pki::bootstrap::init(
            &dir.path().join("pki"),
            &InitSpec {
                replicas: vec![1],
                ..Default::default()
            },
        )
        .expect("test PKI");
        let (client_port, peer_port) = free_ports();
        std::fs::write(
            dir.path().join("apiserver.yaml"),
            format!(
                "id: 1\ndataDir: data\nclientAddress: 127.0.0.1:{client_port}\npeerAddress: 127.0.0.1:{peer_port}\n\
                 members: [{{ id: 1, clientAddress: \"127.0.0.1:{client_port}\", peerAddress: \"127.0.0.1:{peer_port}\" }}]\n\
                 tls: {{ caFile: pki/ca.crt, certFile: pki/apiserver.crt, keyFile: pki/apiserver.key, peerCertFile: pki/peer-1.crt, peerKeyFile: pki/peer-1.key }}\n\
                 raft: {{ heartbeatMillis: 50, electionTimeoutMillis: [150, 300] }}\n"
            ),
        )
        .expect("apiserver config");
        let config = Config::load(&dir.path().join("apiserver.yaml")).expect("valid config");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::run(config, async {
            let _ = stopped.await;
        }));
        let server = TestServer {
            dir,
            client_port,
            stop: Some(stop),
            task: Some(task),
        };
        server.wait_ready().await;
        server
    }

    /// Polls `/readyz`-equivalent readiness: a TLS connection that lists
    /// the bootstrap namespace.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + READY;
        loop {
            if self.ready_once().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "test apiserver not ready in {READY:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ready_once(&self) -> bool {
        use capstan_proto::rpc::resources_client::ResourcesClient;
        use capstan_proto::rpc::{GetRequest, ResourceRef};
        let Ok(bundle) = capstan_pki::TlsPaths::in_dir(&self.pki_dir(), "admin").load() else {
            return false;
        };
        let Ok(tls) = bundle.client_config() else {
            return false;
        };
        let Ok(channel) = capstan_pki::net::channel(&self.address(), tls) else {
            return false;
        };
        let req = GetRequest {
            resource: Some(ResourceRef {
                group: String::new(),
                version: "v1".into(),
                resource: "namespaces".into(),
            }),
            name: "default".into(),
            ..Default::default()
        };
        ResourcesClient::new(channel).get(req).await.is_ok()
    }

    /// `127.0.0.1:PORT` of the client API.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The temporary directory (PKI in `pki/`, data in `data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PKI directory (`ca.crt`, `admin.crt`, ...).
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// A kubeconfig for the admin (system:masters).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.kubeconfig(ADMIN_USER, Some(MASTERS_GROUP))
    }

    /// A kubeconfig for `user` in `group` (a client certificate is issued
    /// on first use), with namespace `default`.
    pub fn kubeconfig(&self, user: &str, group: Option<&str>) -> PathBuf {
        let file = format!(
            "user-{}",
            user.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
        );
        let pki = self.pki_dir();
        if !pki.join(format!("{file}.crt")).exists() {
            let ca = CertificateAuthority::load(&pki).expect("test CA");
            let groups: Vec<&str> = group.into_iter().collect();
            ca.issue(
                user,
                &groups,
                &[],
                Usage::Client,
                Duration::from_secs(86_400),
            )
            .and_then(|c| c.save(&pki, &file))
            .expect("client certificate");
        }
        let path = self.dir.path().join(format!("{file}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://{addr}\n    certificate-authority: pki/ca.crt\n\
                 users:\n- name: u\n  user:\n    client-certificate: pki/{file}.crt\n    client-key: pki/{file}.key\n\
                 contexts:\n- name: test\n  context:\n    cluster: test\n    user: u\n    namespace: default\n\
                 current-context: test\n",
                addr = self.address()
            ),
        )
        .expect("kubeconfig");
        path
    }

    /// Stops the replica and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(READY, task).await;
        }
    }
}

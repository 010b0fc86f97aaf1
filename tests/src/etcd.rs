//! A real etcd 3.4 cluster on loopback, the peer Capstan's benchmarks compare
//! against (see `examples/api_bench.rs`).
//!
//! [`EtcdCluster::start`] launches `members` processes of Debian's
//! `etcd-server` (`/usr/bin/etcd`, 3.4) on 127.0.0.1 with free ports, each
//! with its data dir under the given directory and etcd's default fsync
//! behaviour. Both its ports speak TLS only and require a client certificate
//! (`--client-cert-auth`, `--peer-client-cert-auth`); the certificates come
//! from a fresh CA made with `capstan_pki`, so etcd is secured the way Capstan
//! is. It returns once every member has published itself through Raft and
//! serves clients, and dropping the cluster kills and reaps every member.
//!
//! If etcd is not installed, `start` fails with [`EtcdNotInstalled`] (install
//! it with `apt-get install -y etcd-server`), which callers can downcast to
//! skip instead of failing.
//!
//! The crate does not depend on an etcd client; the benchmark example does,
//! behind the `etcd-bench` feature. The test below starts a real cluster when
//! etcd is present: `cargo test -p capstan-tests --lib etcd`.

use std::fmt::Write as _;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use capstan_pki::{CertificateAuthority, Usage};

/// Where Debian's `etcd-server` installs etcd.
pub const ETCD_BIN: &str = "/usr/bin/etcd";

/// How long [`EtcdCluster::start`] waits for the members to serve clients.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times [`EtcdCluster::start`] tries with fresh ports when a
/// member exits early (another process took a port between probe and bind).
const START_ATTEMPTS: usize = 3;

/// Validity of the benchmark's certificates.
const CERT_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// What etcd 3.4 logs (zap) once a member has published itself through Raft
/// and starts serving its client port over TLS.
const READY_LINE: &str = "serving client traffic securely";

/// The error of [`EtcdCluster::start`] when there is no etcd binary.
#[derive(Debug, thiserror::Error)]
#[error(
    "etcd is not installed at {path} (install Debian's etcd-server: apt-get install -y etcd-server)"
)]
pub struct EtcdNotInstalled {
    /// The path looked at.
    pub path: PathBuf,
}

/// The TLS files a client of the cluster needs, all PEM.
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// The CA that issued every member's and the client's certificate.
    pub ca: PathBuf,
    /// A client certificate (`clientAuth`) the members accept.
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
}

/// One etcd process.
#[derive(Debug)]
struct Member {
    name: String,
    child: Child,
    client_port: u16,
    log: PathBuf,
}

/// A running etcd cluster; dropping it kills and reaps every member.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    tls: EtcdTls,
}

/// The version line of the installed etcd (`etcd Version: 3.4.23`).
pub fn etcd_version() -> anyhow::Result<String> {
    ensure_installed()?;
    let out = Command::new(ETCD_BIN)
        .arg("--version")
        .output()
        .with_context(|| format!("running {ETCD_BIN} --version"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

fn ensure_installed() -> Result<(), EtcdNotInstalled> {
    let path = Path::new(ETCD_BIN);
    if path.is_file() {
        Ok(())
    } else {
        Err(EtcdNotInstalled {
            path: path.to_owned(),
        })
    }
}

/// `n` distinct free TCP ports on 127.0.0.1. The listeners are held until all
/// ports are chosen so that no port comes back twice; a port may still be
/// taken by another process before etcd binds it, which `start` retries.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("probing for free loopback ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The last `lines` lines of a log file, for error messages.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}

/// Issues the CA, one certificate per member (serving clients and peers, and
/// dialling peers: serverAuth + clientAuth), and a client certificate.
fn issue_certificates(pki: &Path, names: &[String]) -> anyhow::Result<EtcdTls> {
    std::fs::create_dir_all(pki).with_context(|| format!("creating {}", pki.display()))?;
    let ca = CertificateAuthority::generate(CERT_VALIDITY)?;
    ca.save(pki)?;
    let sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    for name in names {
        ca.issue(name, &[], &sans, Usage::ServerAndClient, CERT_VALIDITY)?
            .save(pki, name)?;
    }
    ca.issue("bench-client", &[], &[], Usage::Client, CERT_VALIDITY)?
        .save(pki, "client")?;
    Ok(EtcdTls {
        ca: pki.join("ca.crt"),
        client_cert: pki.join("client.crt"),
        client_key: pki.join("client.key"),
    })
}

impl EtcdCluster {
    /// Starts `members` etcd processes on 127.0.0.1 with client and peer TLS
    /// (certificates required on both), data dirs and logs under `dir`, and
    /// waits (at most 30 s) until every member serves clients, which etcd
    /// does only after the cluster has a leader and the member's own
    /// registration has been committed by a quorum.
    ///
    /// Blocks the calling thread; from async code, run it with
    /// `tokio::task::spawn_blocking` or `block_in_place`.
    pub fn start(dir: &Path, members: usize) -> anyhow::Result<EtcdCluster> {
        ensure_installed()?;
        if members == 0 {
            bail!("an etcd cluster needs at least one member");
        }
        let names: Vec<String> = (0..members).map(|i| format!("etcd-{i}")).collect();
        let tls = issue_certificates(&dir.join("pki"), &names)?;
        let mut last_error = None;
        for attempt in 0..START_ATTEMPTS {
            let run_dir = dir.join(format!("run-{attempt}"));
            match Self::launch(&run_dir, &names, &tls) {
                Ok(cluster) => return Ok(cluster),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "etcd cluster did not start; retrying");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// One attempt: spawn every member with fresh ports, then wait for all.
    fn launch(run_dir: &Path, names: &[String], tls: &EtcdTls) -> anyhow::Result<EtcdCluster> {
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("creating {}", run_dir.display()))?;
        let ports = free_ports(2 * names.len())?;
        let (client_ports, peer_ports) = ports.split_at(names.len());
        let mut initial_cluster = String::new();
        for (i, (name, port)) in names.iter().zip(peer_ports).enumerate() {
            if i > 0 {
                initial_cluster.push(',');
            }
            write!(initial_cluster, "{name}=https://127.0.0.1:{port}")?;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let token = format!("capstan-bench-{}-{nanos}", std::process::id());
        let pki = tls.ca.parent().expect("ca.crt lives in the pki dir");
        // Members already spawned are killed by `cluster`'s Drop if a later
        // one fails.
        let mut cluster = EtcdCluster {
            members: Vec::with_capacity(names.len()),
            tls: tls.clone(),
        };
        for (i, name) in names.iter().enumerate() {
            let client = format!("https://127.0.0.1:{}", client_ports[i]);
            let peer = format!("https://127.0.0.1:{}", peer_ports[i]);
            let cert = pki.join(format!("{name}.crt"));
            let key = pki.join(format!("{name}.key"));
            let log = run_dir.join(format!("{name}.log"));
            let log_file =
                File::create(&log).with_context(|| format!("creating {}", log.display()))?;
            let child = Command::new(ETCD_BIN)
                .arg("--name")
                .arg(name)
                .arg("--data-dir")
                .arg(run_dir.join(format!("{name}.etcd")))
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-token", &token])
                .args(["--initial-cluster-state", "new"])
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--cert-file")
                .arg(&cert)
                .arg("--key-file")
                .arg(&key)
                .arg("--peer-client-cert-auth")
                .arg("--peer-trusted-ca-file")
                .arg(&tls.ca)
                .arg("--peer-cert-file")
                .arg(&cert)
                .arg("--peer-key-file")
                .arg(&key)
                .args(["--logger", "zap", "--log-outputs", "stderr"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .with_context(|| format!("spawning {ETCD_BIN} for {name}"))?;
            cluster.members.push(Member {
                name: name.clone(),
                child,
                client_port: client_ports[i],
                log,
            });
        }
        cluster.wait_ready(READY_TIMEOUT)?;
        Ok(cluster)
    }

    /// Waits until every member's log says it serves clients; fails early if
    /// a member exits, and after `timeout` with each member's log tail.
    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut ready = 0;
            for m in &mut self.members {
                if let Some(status) = m.child.try_wait()? {
                    bail!(
                        "etcd member {} exited during start-up ({status}); its log ends:\n{}",
                        m.name,
                        log_tail(&m.log, 15)
                    );
                }
                let log = std::fs::read_to_string(&m.log).unwrap_or_default();
                if log.contains(READY_LINE) {
                    ready += 1;
                }
            }
            if ready == self.members.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut msg = format!(
                    "etcd cluster not ready after {timeout:?} ({ready}/{} members serving)",
                    self.members.len()
                );
                for m in &self.members {
                    write!(msg, "\n--- {} ---\n{}", m.name, log_tail(&m.log, 10))?;
                }
                bail!(msg);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Each member's client URL, `https://127.0.0.1:PORT`, in member order.
    pub fn client_endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("https://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The CA and client certificate files to connect with.
    pub fn tls(&self) -> &EtcdTls {
        &self.tls
    }

    /// Each member's log file (etcd's zap JSON lines), in member order.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.members.iter().map(|m| m.log.clone()).collect()
    }

    /// Each member's process id, in member order.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.child.id()).collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            // Already exited is fine; anything else is worth a line.
            if let Err(e) = m.child.kill() {
                tracing::debug!(member = %m.name, error = %e, "killing etcd member");
            }
        }
        for m in &mut self.members {
            if let Err(e) = m.child.wait() {
                tracing::warn!(member = %m.name, error = %e, "reaping etcd member");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_tls_members_start_and_are_reaped_on_drop() {
        if ensure_installed().is_err() {
            eprintln!("skipped: {ETCD_BIN} not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cluster = EtcdCluster::start(dir.path(), 3).unwrap();
        let endpoints = cluster.client_endpoints();
        assert_eq!(endpoints.len(), 3);
        assert!(
            endpoints
                .iter()
                .all(|e| e.starts_with("https://127.0.0.1:"))
        );
        assert!(cluster.tls().client_cert.is_file());
        // A plaintext client is refused: the client port speaks TLS only.
        let addr = endpoints[0].trim_start_matches("https://");
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        use std::io::{Read, Write};
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut reply = Vec::new();
        let _ = tcp.read_to_end(&mut reply);
        assert!(
            !String::from_utf8_lossy(&reply).contains("\"health\""),
            "plaintext request was served"
        );
        let pids = cluster.pids();
        drop(cluster);
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "etcd pid {pid} still present after drop"
            );
        }
    }

    #[test]
    fn missing_binary_error_says_how_to_install() {
        let e = EtcdNotInstalled {
            path: "/nonexistent/etcd".into(),
        };
        assert!(e.to_string().contains("etcd-server"), "{e}");
    }
}

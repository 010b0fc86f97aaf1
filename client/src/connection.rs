//! [`Client`]: mutual-TLS connections to every apiserver replica of a
//! cluster, and the failover rule every call goes through.
//!
//! One lazily connected HTTP/2 channel per replica (built by
//! [`capstan_pki::net::channel`]), multiplexed by every call; no handshake
//! per request. A call starts on the replica that last answered and, when
//! it fails in a way another replica might not, moves on to the next one:
//! each replica is tried at most once per call, and the whole call is
//! bounded by the client's timeout (10 s by default).
//!
//! # When a call moves to the next replica
//!
//! - **Reads** (get, list, opening a watch): on `Unavailable` of any origin
//!   (connection refused, TLS failure, no Raft leader, keep-alive timeout),
//!   `DeadlineExceeded`, and transport failures that carry no `ApiStatus`
//!   (`Unknown`, `Cancelled`: the connection broke). Reads have no effect,
//!   so repeating one is always safe.
//! - **Writes** (create, update, patch, delete, ...): only when the failure
//!   proves nothing was applied:
//!   - the server answered `Unavailable` with reason `Unavailable` (its
//!     store found no leader and wrote nothing), or
//!   - the status carries no `ApiStatus` and has code `Unavailable` without
//!     "timed out" in its message: tonic reports a failed connect (refused,
//!     TLS handshake refused, connect timeout) this way, before any byte
//!     of the request was sent. A keep-alive timeout on a live connection
//!     ("timed out") may have lost an applied write and is not retried.
//!
//!   Any other failure of a write — a broken connection, `Timeout` (the
//!   server's "may or may not be applied"), the call's deadline passing
//!   with the request in flight — is returned to the caller, who knows
//!   whether repeating the write is safe (a create with a fixed name, an
//!   update with a resourceVersion are).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::Error;
use crate::kubeconfig::{Connection, Kubeconfig};

/// The default bound on one call, failover included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a call may be repeated on another replica after an ambiguous
/// failure (see the module docs for the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// Has no effect: retried on any replica-level failure.
    Read,
    /// Changes state: retried only when nothing can have been applied.
    Write,
}

struct Replica {
    addr: String,
    channel: Channel,
}

struct Inner {
    replicas: Vec<Replica>,
    /// Index of the replica that last answered.
    preferred: AtomicUsize,
    namespace: String,
}

/// A connection to one cluster: every replica, the failover rule, the
/// default namespace. Cheap to clone (clones share the channels).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.servers())
            .field("namespace", &self.inner.namespace)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client for `servers` (`host:port`, every replica) with a TLS client
    /// configuration; `namespace` is the default namespace. Connects lazily.
    pub fn new(
        servers: &[String],
        tls: Arc<rustls::ClientConfig>,
        namespace: &str,
    ) -> Result<Self, Error> {
        if servers.is_empty() {
            return Err(Error::Config("no server addresses".into()));
        }
        let replicas = servers
            .iter()
            .map(|addr| {
                let channel = capstan_pki::net::channel(addr, tls.clone())
                    .map_err(|e| Error::Config(format!("server address {addr:?}: {e}")))?;
                Ok(Replica {
                    addr: addr.clone(),
                    channel,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                replicas,
                preferred: AtomicUsize::new(0),
                namespace: namespace.to_owned(),
            }),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A client for a resolved kubeconfig context.
    pub fn from_connection(conn: &Connection) -> Result<Self, Error> {
        let tls = conn
            .tls
            .client_config()
            .map_err(|e| Error::Config(e.to_string()))?;
        Self::new(&conn.servers, tls, &conn.namespace)
    }

    /// Loads the kubeconfig (`path`, else `$KUBECONFIG`, else
    /// `~/.capstan/config`) and connects with `context` (else
    /// `current-context`).
    pub fn from_kubeconfig(path: Option<&Path>, context: Option<&str>) -> Result<Self, Error> {
        let conn = Kubeconfig::load(path)
            .and_then(|k| k.connection(context))
            .map_err(|e| Error::Config(e.to_string()))?;
        Self::from_connection(&conn)
    }

    /// The same client with another bound on each call (failover included).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The default namespace (the context's, else `default`).
    pub fn default_namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Every replica's address, in configuration order.
    pub fn servers(&self) -> Vec<&str> {
        self.inner
            .replicas
            .iter()
            .map(|r| r.addr.as_str())
            .collect()
    }

    /// The replica calls start on (the one that last answered).
    pub fn preferred_server(&self) -> &str {
        let i = self.inner.preferred.load(Ordering::Relaxed);
        &self.inner.replicas[i].addr
    }

    /// Runs one RPC with failover: `rpc` gets a channel to one replica and
    /// makes the call (e.g. `ResourcesClient::new(ch).get(req)`); it is
    /// called again, with the next replica's channel, when the failure
    /// allows it under `kind`'s rule.
    pub async fn call<T, F, Fut>(&self, kind: CallKind, mut rpc: F) -> Result<T, Error>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let replicas = &self.inner.replicas;
        let start = self.inner.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..replicas.len() {
            let idx = (start + i) % replicas.len();
            let replica = &replicas[idx];
            let Some(remaining) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                break;
            };
            match tokio::time::timeout(remaining, rpc(replica.channel.clone())).await {
                Ok(Ok(response)) => {
                    self.inner.preferred.store(idx, Ordering::Relaxed);
                    return Ok(response.into_inner());
                }
                Ok(Err(status)) if may_retry(&status, kind) => {
                    tracing::debug!(server = %replica.addr, code = ?status.code(), message = status.message(), "trying the next replica");
                    failures.push(format!("{}: {}", replica.addr, status.message()));
                }
                Ok(Err(status)) => {
                    if capstan_proto::rpc::api_status(&status).is_some() {
                        // The replica answered; keep talking to it.
                        self.inner.preferred.store(idx, Ordering::Relaxed);
                    }
                    return Err(Error::from_status(&status));
                }
                Err(_) if kind == CallKind::Write => {
                    return Err(Error::Timeout {
                        message: format!(
                            "no answer from {} within {:?}; the write may or may not have been applied",
                            replica.addr, self.timeout
                        ),
                    });
                }
                Err(_) => failures.push(format!("{}: no answer in time", replica.addr)),
            }
        }
        Err(Error::Unavailable {
            message: if failures.is_empty() {
                format!("no replica answered within {:?}", self.timeout)
            } else {
                format!("no replica could serve the call ({})", failures.join("; "))
            },
        })
    }
}

/// The failover rule (see the module docs).
pub fn may_retry(status: &Status, kind: CallKind) -> bool {
    let api = capstan_proto::rpc::api_status(status);
    match kind {
        CallKind::Read => match &api {
            Some(a) => a.reason == "Unavailable" || status.code() == Code::Unavailable,
            None => matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
            ),
        },
        CallKind::Write => match &api {
            Some(a) => a.reason == "Unavailable",
            None => status.code() == Code::Unavailable && !status.message().contains("timed out"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::rpc::ApiStatus;
    use prost::Message as _;

    fn with_reason(code: Code, reason: &str) -> Status {
        let details = ApiStatus {
            reason: reason.into(),
            ..Default::default()
        };
        Status::with_details(code, "m", details.encode_to_vec().into())
    }

    #[test]
    fn failover_rule() {
        use CallKind::*;
        let refused = Status::unavailable("Connection refused (os error 111)");
        let keepalive = Status::unavailable("http2 error: keep-alive timed out");
        let broken = Status::unknown("transport error");
        let no_leader = with_reason(Code::Unavailable, "Unavailable");
        let indeterminate = with_reason(Code::DeadlineExceeded, "Timeout");
        let conflict = with_reason(Code::Aborted, "Conflict");

        assert!(may_retry(&refused, Write) && may_retry(&refused, Read));
        assert!(may_retry(&no_leader, Write) && may_retry(&no_leader, Read));
        assert!(!may_retry(&keepalive, Write) && may_retry(&keepalive, Read));
        assert!(!may_retry(&broken, Write) && may_retry(&broken, Read));
        assert!(!may_retry(&indeterminate, Write));
        assert!(!may_retry(&conflict, Write) && !may_retry(&conflict, Read));
    }

    #[tokio::test]
    async fn every_replica_once_then_unavailable() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let client = Client::new(
            &["127.0.0.1:1".into(), "127.0.0.1:2".into()],
            Arc::new(tls),
            "default",
        )
        .unwrap();
        let mut calls = Vec::new();
        let err = client
            .call(CallKind::Write, |_ch| {
                calls.push(());
                async { Err::<tonic::Response<()>, _>(Status::unavailable("Connection refused")) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.len(), 2);
        assert_eq!(err.reason(), "Unavailable");
        assert!(err.to_string().contains("127.0.0.1:2"), "{err}");
    }
}

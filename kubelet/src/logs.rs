//! The kubelet's gRPC port: `Kubelet.ContainerLogs`, served over TLS 1.3
//! with mutual authentication to apiserver replicas (`capstan:peers`) and
//! admins (`system:masters`) only. Logs are the runtime's per-attempt
//! files (`<container>/<attempt>.log`); `follow` keeps sending appended
//! bytes until the container exits or the client goes away.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use capstan_pki::bootstrap::{MASTERS_GROUP, PEER_GROUP};
use capstan_proto::rpc::kubelet_server::{Kubelet, KubeletServer};
use capstan_proto::rpc::{LogChunk, LogsRequest};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tonic::{Request, Response, Status};

use crate::labels;
use crate::runtime::{ContainerFilter, ContainerState, ContainerStatus, Runtime};

/// How often a followed log is checked for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// Bytes per chunk sent.
const CHUNK: usize = 64 * 1024;

/// The `Kubelet` gRPC service over a runtime.
pub struct LogService<R> {
    runtime: Arc<R>,
}

impl<R: Runtime> LogService<R> {
    /// Serves logs of `runtime`'s containers.
    pub fn new(runtime: Arc<R>) -> Self {
        Self { runtime }
    }
}

/// Serves the Kubelet service on `listener` with `tls` until the task is dropped.
pub async fn serve<R: Runtime>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    runtime: Arc<R>,
) -> anyhow::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tonic::transport::Server::builder()
        .add_service(KubeletServer::new(LogService::new(runtime)))
        .serve_with_incoming(capstan_pki::net::tls_incoming(listener, tls))
        .await
        .map_err(|e| anyhow::anyhow!("kubelet port {addr:?}: {e}"))
}

fn authorize<B>(request: &Request<B>) -> Result<(), Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("no client certificate presented"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("no client certificate presented"))?;
    let id = capstan_pki::Identity::from_der(leaf)
        .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
    if id.in_group(PEER_GROUP) || id.in_group(MASTERS_GROUP) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "user {:?} may not read container logs on this kubelet: only groups {PEER_GROUP} and {MASTERS_GROUP} may",
            id.user
        )))
    }
}

/// The container attempt whose log is asked for.
async fn find<R: Runtime>(
    runtime: &R,
    req: &LogsRequest,
) -> Result<(ContainerStatus, Option<ContainerStatus>), Status> {
    let pod = format!("{}/{}", req.namespace, req.name);
    let internal = |e: crate::runtime::RuntimeError| Status::internal(format!("pod {pod}: {e}"));
    let mut sandboxes: Vec<_> = runtime
        .list_pod_sandboxes()
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|s| {
            s.labels.get(labels::POD_NAMESPACE) == Some(&req.namespace)
                && s.labels.get(labels::POD_NAME) == Some(&req.name)
        })
        .collect();
    sandboxes.sort_by_key(|s| s.created_at);
    let Some(sandbox) = sandboxes.pop() else {
        return Err(Status::not_found(format!(
            "pod {pod} has no containers on this node"
        )));
    };
    let containers = runtime
        .list_containers(&ContainerFilter {
            sandbox_id: Some(sandbox.id.clone()),
        })
        .await
        .map_err(internal)?;
    let mut names: Vec<String> = containers.iter().map(|c| c.metadata.name.clone()).collect();
    names.sort();
    names.dedup();
    let name = if req.container.is_empty() {
        match names.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(Status::invalid_argument(format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    names.join(" ")
                )));
            }
        }
    } else if names.contains(&req.container) {
        req.container.clone()
    } else {
        return Err(Status::not_found(format!(
            "container {:?} is not valid for pod {pod}; its containers: [{}]",
            req.container,
            names.join(" ")
        )));
    };
    let attempts = crate::status::attempts(&containers, &name);
    let latest = attempts
        .last()
        .copied()
        .cloned()
        .expect("name taken from the list");
    if req.previous {
        let previous = attempts
            .len()
            .checked_sub(2)
            .map(|i| attempts[i].clone())
            .ok_or_else(|| {
                Status::not_found(format!(
                    "previous terminated container {name:?} in pod {pod} not found"
                ))
            })?;
        return Ok((previous, None));
    }
    Ok((latest.clone(), Some(latest)))
}

/// The part of `data` after its last `n` lines' start (0: all).
fn tail(data: &[u8], n: i64) -> &[u8] {
    if n <= 0 {
        return data;
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &data[i + 1..];
            }
        }
    }
    data
}

type LogStream = Pin<Box<dyn futures::Stream<Item = Result<LogChunk, Status>> + Send>>;

#[tonic::async_trait]
impl<R: Runtime> Kubelet for LogService<R> {
    type ContainerLogsStream = LogStream;

    async fn container_logs(
        &self,
        request: Request<LogsRequest>,
    ) -> Result<Response<LogStream>, Status> {
        authorize(&request)?;
        let req = request.into_inner();
        let (container, live) = find(&*self.runtime, &req).await?;
        let path: PathBuf = container.log_path.clone();
        let initial = match tokio::fs::read(&path).await {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(Status::internal(format!(
                    "reading log {}: {e}",
                    path.display()
                )));
            }
        };
        let mut budget = if req.limit_bytes > 0 {
            req.limit_bytes as usize
        } else {
            usize::MAX
        };
        let first = tail(&initial, req.tail_lines);
        let first = &first[..first.len().min(budget)];
        budget -= first.len();
        let mut offset = initial.len() as u64;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<LogChunk, Status>>(16);
        let chunks: Vec<Vec<u8>> = first.chunks(CHUNK).map(<[u8]>::to_vec).collect();
        let runtime = self.runtime.clone();
        let follow = req.follow && live.is_some();
        tokio::spawn(async move {
            for data in chunks {
                if tx.send(Ok(LogChunk { data })).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            let mut buf = vec![0u8; CHUNK];
            while budget > 0 && !tx.is_closed() {
                let running = matches!(
                    runtime
                        .container_status(&container.id)
                        .await
                        .map(|c| c.state),
                    Ok(ContainerState::Running | ContainerState::Created)
                );
                let mut sent_any = false;
                if let Ok(mut file) = tokio::fs::File::open(&path).await
                    && file.seek(std::io::SeekFrom::Start(offset)).await.is_ok()
                {
                    while let Ok(n) = file.read(&mut buf[..CHUNK.min(budget)]).await {
                        if n == 0 {
                            break;
                        }
                        offset += n as u64;
                        budget -= n;
                        sent_any = true;
                        if tx
                            .send(Ok(LogChunk {
                                data: buf[..n].to_vec(),
                            }))
                            .await
                            .is_err()
                            || budget == 0
                        {
                            return;
                        }
                    }
                }
                if !running && !sent_any {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_POLL) => {}
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// Builds the listener and TLS configuration of the kubelet's port.
pub async fn listen(
    addr: SocketAddr,
    tls: &crate::TlsConfig,
) -> anyhow::Result<(tokio::net::TcpListener, Arc<rustls::ServerConfig>)> {
    let paths = capstan_pki::TlsPaths {
        ca: tls.ca_file.clone(),
        cert: tls.cert_file.clone(),
        key: tls.key_file.clone(),
    };
    let config = paths
        .load()
        .and_then(|b| b.server_config())
        .map_err(|e| anyhow::anyhow!("tls: serving certificate of the kubelet port: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the kubelet port {addr}: {e}"))?;
    Ok((listener, config))
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", 0), b"a\nb\n");
    }
}

//! Forwarding a query for a name outside the cluster domain to the
//! configured resolvers over UDP, in order, each with a short timeout.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_server::proto::op::Message;
use tokio::net::UdpSocket;

/// How long one upstream resolver may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The first reply from `upstream` to the raw query `query`, or why none came.
pub async fn forward(upstream: &[SocketAddr], query: &[u8]) -> Result<Message, String> {
    let mut errors = Vec::new();
    for server in upstream {
        match ask(*server, query).await {
            Ok(m) => return Ok(m),
            Err(e) => errors.push(format!("{server}: {e}")),
        }
    }
    Err(errors.join("; "))
}

async fn ask(server: SocketAddr, query: &[u8]) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(query).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(TIMEOUT, socket.recv(&mut buf))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    Message::from_vec(&buf[..n]).map_err(|e| format!("bad reply: {e}"))
}

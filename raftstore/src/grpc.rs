//! The production [`PeerTransport`]: gRPC over mutual TLS 1.3.
//!
//! [`GrpcTransport`] keeps one HTTP/2 channel per peer address (multiplexed,
//! reconnecting). [`PeerService`] is the server side; it accepts a call only
//! from a certificate in the [`PEER_GROUP`] whose common name matches the
//! sending replica's id, so a client certificate of another component (a
//! kubelet's, say) cannot speak Raft even though it chains to the same CA.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_pki::Identity;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::transport::{PeerRequest, PeerResponse, PeerTransport, Unavailable, decode, encode};
use crate::types::{Member, NodeId};

/// Generated gRPC code for `proto/raft.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("capstan.raft.v1");
}

pub use pb::PeerMessage;
use pb::raft_peer_client::RaftPeerClient;
use pb::raft_peer_server::{RaftPeer, RaftPeerServer};

pub use capstan_pki::bootstrap::{PEER_GROUP, peer_user};

/// Largest peer message accepted (snapshot chunks and batches of entries
/// whose values may each be up to 1.5 MiB).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// gRPC client side of the peer protocol.
#[derive(Clone)]
pub struct GrpcTransport {
    tls: Arc<rustls::ClientConfig>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl GrpcTransport {
    /// A transport that dials peers with this replica's peer certificate.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            tls,
            channels: Arc::default(),
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self.channels.lock().expect("channel map poisoned");
        if let Some(ch) = channels.get(addr) {
            return Ok(ch.clone());
        }
        let ch = capstan_pki::net::channel(addr, self.tls.clone())?;
        channels.insert(addr.to_owned(), ch.clone());
        Ok(ch)
    }
}

impl PeerTransport for GrpcTransport {
    async fn call(
        &self,
        from: NodeId,
        target: NodeId,
        member: &Member,
        req: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, Unavailable> {
        let unavailable = |reason: String| Unavailable { target, reason };
        let payload = encode(&req).map_err(|e| unavailable(format!("encode: {e}")))?;
        let channel = self
            .channel(&member.peer_addr)
            .map_err(|e| unavailable(e.to_string()))?;
        let mut client = RaftPeerClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut request = Request::new(PeerMessage { from, payload });
        request.set_timeout(timeout);
        let reply = tokio::time::timeout(timeout, client.call(request))
            .await
            .map_err(|_| unavailable(format!("no answer within {timeout:?}")))?
            .map_err(|s| unavailable(format!("{}: {}", s.code(), s.message())))?;
        decode(&reply.into_inner().payload).map_err(|e| unavailable(format!("decode: {e}")))
    }
}

/// What serves peer requests on a replica (implemented by the replica).
pub trait PeerHandler: Send + Sync + 'static {
    /// Handles one request from replica `from`.
    fn handle(
        &self,
        from: NodeId,
        req: PeerRequest,
    ) -> impl std::future::Future<Output = PeerResponse> + Send;
}

/// The gRPC server side: authenticates the peer and hands the request on.
pub struct PeerService<H> {
    handler: Arc<H>,
    /// Certificates already checked, with the replica id they may speak
    /// as: a peer sends the same certificate on every call of its
    /// connection, so X.509 is parsed once per peer, not once per message.
    verified: std::sync::RwLock<HashMap<Vec<u8>, NodeId>>,
}

/// Certificates remembered by a [`PeerService`]; past this it starts over.
const VERIFIED_CACHE: usize = 64;

impl<H: PeerHandler> PeerService<H> {
    /// A tonic service for `handler`, ready for `Server::add_service`.
    pub fn new(handler: Arc<H>) -> RaftPeerServer<Self> {
        RaftPeerServer::new(Self {
            handler,
            verified: std::sync::RwLock::default(),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

impl<H> PeerService<H> {
    /// The sending replica's id, if its certificate may speak for it.
    fn authenticate(&self, req: &Request<PeerMessage>) -> Result<NodeId, Status> {
        let from = req.get_ref().from;
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let known = self
            .verified
            .read()
            .expect("peer cache poisoned")
            .get(leaf.as_ref())
            .copied();
        if known == Some(from) {
            return Ok(from);
        }
        let id = Identity::from_der(leaf).map_err(|e| Status::unauthenticated(e.to_string()))?;
        if !id.in_group(PEER_GROUP) || id.user != peer_user(from) {
            return Err(Status::permission_denied(format!(
                "{id} may not speak Raft as replica {from}: peer certificates are {} in group {PEER_GROUP}",
                peer_user(from)
            )));
        }
        let mut verified = self.verified.write().expect("peer cache poisoned");
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(leaf.as_ref().to_vec(), from);
        Ok(from)
    }
}

#[tonic::async_trait]
impl<H: PeerHandler> RaftPeer for PeerService<H> {
    async fn call(&self, request: Request<PeerMessage>) -> Result<Response<PeerMessage>, Status> {
        let from = self.authenticate(&request)?;
        let req: PeerRequest = decode(&request.get_ref().payload)
            .map_err(|e| Status::invalid_argument(format!("undecodable peer request: {e}")))?;
        let resp = self.handler.handle(from, req).await;
        let payload = encode(&resp).map_err(|e| Status::internal(format!("encode: {e}")))?;
        Ok(Response::new(PeerMessage { from: 0, payload }))
    }
}

/// Serves the peer protocol for `handler` on `listener` (mutual TLS with
/// `tls`) until `shutdown` completes.
pub async fn serve<H: PeerHandler>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Arc<H>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let incoming = capstan_pki::net::tls_incoming(listener, tls);
    tonic::transport::Server::builder()
        .add_service(PeerService::new(handler))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

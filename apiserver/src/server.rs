//! One apiserver replica, wired together: TLS material, listeners, the Raft
//! replica and its peer server, the client API with the operations
//! endpoints, the RBAC cache, and the cluster's bootstrap objects.
//!
//! Start-up order: load and check the certificates, bind both ports (a busy
//! port fails the start at once), open the store, serve the peer port, form
//! the group if this is a new member listed in `members`, then serve
//! clients. The bootstrap objects — namespaces `default`, `kube-system`,
//! `kube-public`, `kube-node-lease` and the bootstrap RBAC roles and
//! bindings — are created if absent once a leader exists (every replica
//! tries; the first wins, the others see `AlreadyExists`). `/readyz` stays
//! 503 until they exist.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use capstan_pki::TlsPaths;
use capstan_proto::Object;
use capstan_proto::api::core::v1::Namespace;
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::rpc::cluster_server::ClusterServer;
use capstan_proto::rpc::pods_server::PodsServer;
use capstan_proto::rpc::resources_server::ResourcesServer;
use capstan_raftstore::grpc::GrpcTransport;
use capstan_raftstore::node::Replica;
use capstan_raftstore::storage::{EventKind, RangeRequest};
use capstan_raftstore::transport::PeerTransport;
use capstan_raftstore::types::Member;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::auth::Authorizer;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::ops::{self, Ops};
use crate::registry::strategy;
use crate::service::Api;
use crate::service::cluster::ClusterService;
use crate::service::pods::PodsService;
use crate::service::resources::ResourceService;
use crate::store::{self, StoreError};

/// Largest request or response message on the client API.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// The namespaces every cluster has.
pub const BOOTSTRAP_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Runs a replica until `shutdown` completes, then stops it cleanly.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = &config.tls;
    let serving = TlsPaths {
        ca: tls.ca_file.clone(),
        cert: tls.cert_file.clone(),
        key: tls.key_file.clone(),
    }
    .load()
    .context("loading the apiserver serving certificate")?;
    let mut client_tls = Arc::unwrap_or_clone(serving.server_config()?);
    // HTTP/1.1 too, for /metrics, /healthz and /readyz.
    client_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let peer = TlsPaths {
        ca: tls.ca_file.clone(),
        cert: tls.peer_cert_file.clone(),
        key: tls.peer_key_file.clone(),
    }
    .load()
    .context("loading the Raft peer certificate")?;

    let client_listener = tokio::net::TcpListener::bind(config.client_address)
        .await
        .with_context(|| format!("binding clientAddress {}", config.client_address))?;
    let peer_listener = tokio::net::TcpListener::bind(config.peer_address)
        .await
        .with_context(|| format!("binding peerAddress {}", config.peer_address))?;

    let replica = Replica::open(
        config.replica_config(),
        GrpcTransport::new(peer.client_config()?),
    )
    .await
    .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let peer_server = tokio::spawn(capstan_raftstore::grpc::serve(
        peer_listener,
        peer.server_config()?,
        Arc::new(replica.clone()),
        stopped(stop_rx.clone()),
    ));

    if !config.members.is_empty() {
        let members: BTreeMap<u64, Member> = config
            .members
            .iter()
            .map(|m| {
                (
                    m.id,
                    Member {
                        peer_addr: m.peer_address.clone(),
                        client_addr: m.client_address.clone(),
                    },
                )
            })
            .collect();
        if replica.initialize(members).await? {
            tracing::info!(id = config.id, "formed a new group from members");
        }
    }

    let audit = match &config.audit_log {
        Some(path) => {
            AuditLog::open(path).with_context(|| format!("opening auditLog {}", path.display()))?
        }
        None => AuditLog::disabled(),
    };
    let api = Arc::new(Api {
        store: store::ObjectStore::new(replica.clone()),
        authenticator: crate::auth::Authenticator::new(),
        authorizer: Arc::new(Authorizer::new()),
        metrics: Arc::new(Metrics::new()),
        audit,
        service_ranges: config
            .service_ranges()
            .map_err(|e| anyhow::anyhow!("serviceClusterIPRange/serviceNodePortRange: {e}"))?,
        bookmark_interval: Duration::from_secs(5),
        stopping: stop_rx.clone(),
    });
    let bootstrapped = Arc::new(AtomicBool::new(false));
    let rbac_sync = tokio::spawn(sync_rbac(Arc::clone(&api), stop_rx.clone()));
    let bootstrap = tokio::spawn(bootstrap_objects(
        Arc::clone(&api),
        Arc::clone(&bootstrapped),
        stop_rx.clone(),
    ));

    let resources = ResourcesServer::new(ResourceService::new(Arc::clone(&api)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let cluster = ClusterServer::new(ClusterService::new(Arc::clone(&api)));
    let pods = PodsServer::new(PodsService::new(Arc::clone(&api), peer.client_config()?))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let routes = tonic::service::Routes::new(resources)
        .add_service(cluster)
        .add_service(pods);
    let router = ops::routes(
        routes.into_axum_router(),
        Arc::new(Ops {
            api: Arc::clone(&api),
            bootstrapped,
            data_dir: config.data_dir.clone(),
        }),
    );
    let incoming = capstan_pki::net::tls_incoming(client_listener, Arc::new(client_tls));
    let client_server = tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone())),
    );
    tracing::info!(
        id = config.id,
        client = %config.client_address,
        peer = %config.peer_address,
        "apiserver replica serving"
    );

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = client_server.await;
    bootstrap.abort();
    rbac_sync.abort();
    replica.shutdown().await?;
    let _ = peer_server.await;
    Ok(())
}

/// Creates the bootstrap namespaces and RBAC objects if absent, retrying
/// until a leader accepts the writes.
async fn bootstrap_objects<T: PeerTransport>(
    api: Arc<Api<T>>,
    done: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut objects: Vec<Object> = BOOTSTRAP_NAMESPACES
        .iter()
        .map(|name| {
            Object::Namespace(Namespace {
                metadata: Some(ObjectMeta {
                    name: (*name).to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect();
    objects.extend(crate::auth::bootstrap::rbac_objects());
    let mut pending = objects;
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        let mut failed = Vec::new();
        for obj in pending {
            // Cheap check first: most starts find everything in place.
            let info = obj.info();
            if let Ok(Some(_)) = api
                .store
                .get(
                    info,
                    obj.namespace(),
                    obj.name(),
                    capstan_raftstore::node::Consistency::Stale,
                )
                .await
            {
                continue;
            }
            let mut new = obj.clone();
            let meta = new.metadata_mut();
            meta.uid = uuid::Uuid::new_v4().to_string();
            meta.creation_timestamp = Some(capstan_proto::timestamp::Time::now());
            crate::registry::validation::defaults(&mut new);
            strategy::prepare_create(&mut new);
            match api.store.create(new).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => {
                    tracing::debug!(error = %e, name = obj.name(), "bootstrap write failed; retrying");
                    failed.push(obj);
                }
            }
        }
        pending = failed;
        if pending.is_empty() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    done.store(true, Ordering::Release);
    tracing::info!("bootstrap namespaces and RBAC objects present");
}

/// The RBAC group's key prefix.
const RBAC_PREFIX: &str = "/registry/rbac.authorization.k8s.io/";

/// The kind of an RBAC key (`/registry/rbac.authorization.k8s.io/roles/...`).
fn rbac_kind(key: &[u8]) -> Option<&'static capstan_proto::KindInfo> {
    let rest = key.strip_prefix(RBAC_PREFIX.as_bytes())?;
    let plural = rest.split(|b| *b == b'/').next()?;
    capstan_proto::kinds::lookup_resource(
        "rbac.authorization.k8s.io",
        std::str::from_utf8(plural).ok()?,
    )
}

/// Keeps the authorizer's roles and bindings equal to the store's: list at
/// one revision, then watch from the next; relist after any watch error.
async fn sync_rbac<T: PeerTransport>(api: Arc<Api<T>>, mut stop: watch::Receiver<bool>) {
    let reader = api.store.replica().reader().clone();
    let rbac = api.authorizer.rbac();
    loop {
        let result: Result<(), String> = async {
            let revision = reader.current_revision().map_err(|e| e.to_string())?;
            let mut request = RangeRequest::prefix(Bytes::from_static(RBAC_PREFIX.as_bytes()));
            request.revision = Some(revision);
            let mut objects = Vec::new();
            loop {
                let page = reader.range(&request).map_err(|e| e.to_string())?;
                for kv in &page.kvs {
                    if let Some(info) = rbac_kind(&kv.key) {
                        objects.push(store::decode(info, kv).map_err(|e| e.to_string())?);
                    }
                }
                match page.continue_token {
                    Some(token) if page.more => {
                        request = RangeRequest::resume(
                            Bytes::from_static(RBAC_PREFIX.as_bytes()),
                            &token,
                            0,
                        );
                    }
                    _ => break,
                }
            }
            rbac.replace_all(objects);
            let mut watch = reader
                .watch(revision + 1, Bytes::from_static(RBAC_PREFIX.as_bytes()))
                .map_err(|e| e.to_string())?;
            while let Some(revision) = watch.recv().await {
                let revision = revision.map_err(|e| e.to_string())?;
                for event in &revision.events {
                    let Some(info) = rbac_kind(&event.kv.key) else {
                        continue;
                    };
                    match event.kind {
                        EventKind::Put => {
                            rbac.upsert(&store::decode(info, &event.kv).map_err(|e| e.to_string())?)
                        }
                        EventKind::Delete => {
                            if let Some(prev) = &event.prev_kv {
                                rbac.remove(&store::decode(info, prev).map_err(|e| e.to_string())?);
                            }
                        }
                    }
                }
            }
            Err("store closed".to_owned())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "RBAC cache watch ended; relisting");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

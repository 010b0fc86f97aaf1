//! The `Pods` service: the pod subresources that are not plain object
//! writes.
//!
//! - **Bind** (`create` on `pods/binding`, authorized per binding): sets
//!   `spec.nodeName` and the `PodScheduled=True` condition in one
//!   compare-and-swap write, as Kubernetes's binding storage does. A pod
//!   already bound is a `Conflict`; a uid that does not match is a
//!   `Conflict` too; a pod being deleted cannot be bound. The bindings of
//!   one request are written concurrently, so the store's group commit
//!   turns a batch into few Raft entries: this is what lets the scheduler
//!   commit thousands of bindings per second through a 3-replica group.
//!   Each binding succeeds or fails on its own and is audited on its own.
//! - **Logs** (`get` on `pods/log`): finds the pod's node, its InternalIP
//!   and kubelet port (`status.daemonEndpoints.kubeletEndpoint.Port`), and
//!   relays the `Kubelet.ContainerLogs` stream, calling the kubelet over
//!   mutual TLS with this replica's peer certificate (group
//!   `capstan:peers`, which kubelets accept).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use capstan_proto::api::core::v1::{Node, Pod, PodCondition};
use capstan_proto::rpc::kubelet_client::KubeletClient;
use capstan_proto::rpc::pods_server::Pods;
use capstan_proto::rpc::{BindRequest, BindResponse, BindResult, Binding, LogChunk, LogsRequest};
use capstan_proto::timestamp::Time;
use capstan_proto::{Object, Resource};
use capstan_raftstore::node::Consistency;
use capstan_raftstore::transport::PeerTransport;
use futures::Stream;
use tonic::{Request, Response, Status};

use super::Api;
use super::errors::ApiError;
use super::request::Call;
use crate::auth::{User, Verb};
use crate::store::StoreError;

/// Bindings one request may carry.
pub const MAX_BINDINGS: usize = 10_000;

/// Attempts of one binding's read-modify-write on contention.
const MAX_ATTEMPTS: usize = 8;

/// How long connecting to a kubelet may take.
const KUBELET_CONNECT: Duration = Duration::from_secs(5);

/// The `Pods` gRPC service of one replica.
pub struct PodsService<T> {
    api: Arc<Api<T>>,
    /// Client TLS towards kubelets (this replica's peer certificate).
    kubelet_tls: Arc<rustls::ClientConfig>,
}

impl<T> PodsService<T> {
    /// The service over shared replica state; `kubelet_tls` authenticates
    /// this replica to kubelets.
    pub fn new(api: Arc<Api<T>>, kubelet_tls: Arc<rustls::ClientConfig>) -> Self {
        Self { api, kubelet_tls }
    }

    fn caller<R>(&self, request: &Request<R>) -> Result<User, Status> {
        Ok(self
            .api
            .authenticator
            .authenticate(request)
            .map_err(ApiError::unauthorized)?)
    }
}

/// Sets the `PodScheduled=True` condition, keeping its transition time if
/// it was already true.
fn set_scheduled(pod: &mut Pod) {
    let status = pod.status.get_or_insert_with(Default::default);
    let now = Time::now();
    match status
        .conditions
        .iter_mut()
        .find(|c| c.r#type == "PodScheduled")
    {
        Some(c) => {
            if c.status != "True" {
                c.last_transition_time = Some(now);
            }
            c.status = "True".into();
            c.reason.clear();
            c.message.clear();
        }
        None => status.conditions.push(PodCondition {
            r#type: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: Some(now),
            ..Default::default()
        }),
    }
}

impl<T: PeerTransport> PodsService<T> {
    /// One binding, authorized, written and audited.
    async fn bind_one(&self, user: &User, b: &Binding) -> Result<String, ApiError> {
        let mut call = Call::new(user.clone(), Verb::Create, &Pod::INFO);
        call.subresource = "binding";
        call.namespace = b.namespace.clone();
        call.name = b.name.clone();
        let result = self.bind_inner(&call, b).await;
        call.finish_keeping_error(&self.api, result)
    }

    async fn bind_inner(&self, call: &Call, b: &Binding) -> Result<String, ApiError> {
        let info = &Pod::INFO;
        if b.namespace.is_empty() || b.name.is_empty() {
            return Err(ApiError::bad_request(
                "binding: namespace and name are required",
            ));
        }
        if b.node_name.is_empty() {
            return Err(ApiError::invalid(
                info,
                &b.name,
                &[capstan_proto::FieldError::new(
                    "target.name",
                    capstan_proto::Reason::Required,
                    "Required value: the node to bind to",
                )],
            ));
        }
        call.authorize(&self.api, &[], None, None)?;
        let mut consistency = Consistency::Stale;
        for _ in 0..MAX_ATTEMPTS {
            let found = self
                .api
                .store
                .get(info, &b.namespace, &b.name, consistency)
                .await
                .map_err(|e| ApiError::from_store(e, info, &b.name))?;
            let Some(Object::Pod(mut pod)) = found else {
                if consistency == Consistency::Stale {
                    consistency = Consistency::Linearizable;
                    continue;
                }
                return Err(ApiError::not_found(info, &b.name));
            };
            let previous = Object::Pod(pod.clone());
            let meta = pod.metadata.clone().unwrap_or_default();
            if !b.uid.is_empty() && b.uid != meta.uid {
                return Err(ApiError::conflict(
                    info,
                    &b.name,
                    format!(
                        "the pod's uid is {}, the binding is for uid {}",
                        meta.uid, b.uid
                    ),
                ));
            }
            if meta.deletion_timestamp.is_some() {
                return Err(ApiError::conflict(
                    info,
                    &b.name,
                    "the pod is being deleted and cannot be bound",
                ));
            }
            let spec = pod.spec.get_or_insert_with(Default::default);
            if !spec.node_name.is_empty() {
                if consistency == Consistency::Stale && spec.node_name == b.node_name {
                    // Maybe our own earlier attempt; confirm on the leader.
                    consistency = Consistency::Linearizable;
                    continue;
                }
                return Err(ApiError::conflict(
                    info,
                    &b.name,
                    format!(
                        "pod {} is already assigned to node {:?}",
                        b.name, spec.node_name
                    ),
                ));
            }
            spec.node_name = b.node_name.clone();
            set_scheduled(&mut pod);
            let expected: u64 = meta.resource_version.parse().unwrap_or(0);
            match self
                .api
                .store
                .update(Object::Pod(pod), &previous, expected)
                .await
            {
                Ok(stored) => {
                    return Ok(stored
                        .metadata()
                        .map(|m| m.resource_version.clone())
                        .unwrap_or_default());
                }
                Err(StoreError::Conflict { .. }) => {
                    consistency = Consistency::Linearizable;
                }
                Err(e) => return Err(ApiError::from_store(e, info, &b.name)),
            }
        }
        Err(ApiError::conflict(
            info,
            &b.name,
            "too many concurrent changes; try again",
        ))
    }

    /// Where the pod's kubelet listens: `https://IP:PORT` of its node.
    async fn kubelet_address(&self, pod: &Pod) -> Result<String, ApiError> {
        let node_name = pod
            .spec
            .as_ref()
            .map(|s| s.node_name.as_str())
            .unwrap_or_default();
        let pod_name = pod.metadata.as_ref().map_or("", |m| m.name.as_str());
        if node_name.is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {pod_name} is not scheduled to a node yet; it has no logs"
            )));
        }
        let node = match self
            .api
            .store
            .get(&Node::INFO, "", node_name, Consistency::Stale)
            .await
            .map_err(|e| ApiError::from_store(e, &Node::INFO, node_name))?
        {
            Some(Object::Node(node)) => node,
            _ => return Err(ApiError::not_found(&Node::INFO, node_name)),
        };
        let status = node.status.unwrap_or_default();
        let port = status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .and_then(|k| k.port)
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                ApiError::unavailable(format!(
                    "node {node_name} publishes no kubelet port (status.daemonEndpoints)"
                ))
            })?;
        let ip = status
            .addresses
            .iter()
            .find(|a| a.r#type == "InternalIP")
            .or_else(|| status.addresses.first())
            .map(|a| a.address.clone())
            .ok_or_else(|| {
                ApiError::unavailable(format!("node {node_name} publishes no address"))
            })?;
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip
        };
        Ok(format!("{host}:{port}"))
    }

    async fn logs_inner(
        &self,
        call: &mut Call,
        r: LogsRequest,
    ) -> Result<tonic::Streaming<LogChunk>, ApiError> {
        let info = &Pod::INFO;
        if r.namespace.is_empty() || r.name.is_empty() {
            return Err(ApiError::bad_request("namespace and name are required"));
        }
        if r.tail_lines < 0 || r.limit_bytes < 0 {
            return Err(ApiError::bad_request(
                "tailLines and limitBytes must not be negative",
            ));
        }
        call.namespace = r.namespace.clone();
        call.name = r.name.clone();
        call.authorize(&self.api, &[], None, None)?;
        let pod = match self
            .api
            .store
            .get(info, &r.namespace, &r.name, Consistency::Linearizable)
            .await
            .map_err(|e| ApiError::from_store(e, info, &r.name))?
        {
            Some(Object::Pod(pod)) => pod,
            _ => return Err(ApiError::not_found(info, &r.name)),
        };
        let address = self.kubelet_address(&pod).await?;
        let channel = capstan_pki::net::channel(&address, Arc::clone(&self.kubelet_tls))
            .map_err(|e| ApiError::unavailable(format!("kubelet at {address}: {e}")))?;
        let mut client = KubeletClient::new(channel);
        let response = tokio::time::timeout(KUBELET_CONNECT, client.container_logs(r))
            .await
            .map_err(|_| {
                ApiError::unavailable(format!("kubelet at {address} did not answer in time"))
            })?;
        match response {
            Ok(stream) => Ok(stream.into_inner()),
            Err(status) => Err(kubelet_error(&address, status)),
        }
    }
}

/// A kubelet's refusal, relayed with its reason where it gave one.
fn kubelet_error(address: &str, status: Status) -> ApiError {
    let message = format!("kubelet at {address}: {}", status.message());
    match status.code() {
        tonic::Code::NotFound => ApiError::not_found_resource(message),
        tonic::Code::InvalidArgument => ApiError::bad_request(message),
        tonic::Code::PermissionDenied => ApiError::forbidden(message),
        _ => ApiError::unavailable(message),
    }
}

/// A relayed log stream.
type LogStream = Pin<Box<dyn Stream<Item = Result<LogChunk, Status>> + Send>>;

#[tonic::async_trait]
impl<T: PeerTransport> Pods for PodsService<T> {
    async fn bind(&self, request: Request<BindRequest>) -> Result<Response<BindResponse>, Status> {
        let user = self.caller(&request)?;
        let bindings = request.into_inner().bindings;
        if bindings.len() > MAX_BINDINGS {
            return Err(ApiError::bad_request(format!(
                "{} bindings in one request; at most {MAX_BINDINGS}",
                bindings.len()
            ))
            .into());
        }
        let results = futures::future::join_all(bindings.iter().map(|b| self.bind_one(&user, b)))
            .await
            .into_iter()
            .map(|r| match r {
                Ok(resource_version) => BindResult {
                    error: None,
                    resource_version,
                },
                Err(e) => BindResult {
                    error: Some(e.api_status()),
                    resource_version: String::new(),
                },
            })
            .collect();
        Ok(Response::new(BindResponse { results }))
    }

    type LogsStream = LogStream;

    async fn logs(&self, request: Request<LogsRequest>) -> Result<Response<LogStream>, Status> {
        let user = self.caller(&request)?;
        let mut call = Call::new(user, Verb::Get, &Pod::INFO);
        call.subresource = "log";
        let r = request.into_inner();
        let result = self.logs_inner(&mut call, r).await;
        let stream = call.finish(&self.api, result)?;
        Ok(Response::new(Box::pin(stream)))
    }
}

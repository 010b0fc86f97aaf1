//! The gRPC services, generated from `rpc/resource.proto`:
//! `Resources` (one generic service for every kind: objects travel encoded
//! as their kind's message), `Cluster` (replicas and identity), `Pods`
//! (bindings in batches, logs) and `Kubelet` (served by each node).
//!
//! Errors are gRPC statuses whose details hold an encoded [`ApiStatus`];
//! [`api_status`] reads it back.

#![allow(missing_docs, clippy::all)]

tonic::include_proto!("capstan.api.v1");

/// The [`ApiStatus`] carried in a status's details, if any.
pub fn api_status(status: &tonic::Status) -> Option<ApiStatus> {
    use prost::Message as _;
    ApiStatus::decode(status.details())
        .ok()
        .filter(|s| !s.reason.is_empty())
}

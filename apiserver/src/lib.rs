//! Capstan's apiserver replica: the only door into the cluster.
//!
//! One replica serves the client API (gRPC over mutual TLS) over a member of
//! the Raft store, and speaks Raft to its peers on a second mTLS port. A
//! request goes: TLS handshake (client certificate from the cluster CA) →
//! [`auth`] (user and groups from the certificate subject; node authorizer,
//! then RBAC, default deny) → [`registry`] (defaults, validation, the
//! spec/status split of the kind) → [`store`] (protobuf objects under
//! `/registry/...` keys, optimistic concurrency on resourceVersion) → the
//! Raft log. Watches are served from this replica's applied state.
//!
//! Layout:
//! - [`config`]: the replica's configuration file, validated.
//! - [`registry`]: per-kind knowledge — defaults, validation, status
//!   subresource, field selectors.
//! - [`auth`]: identities, RBAC, the node authorizer, bootstrap roles.
//! - [`store`]: objects ↔ keys and transactions on the replica.
//! - [`service`]: the gRPC `Resources` and `Cluster` services and watch.
//! - [`audit`], [`metrics`], [`ops`]: audit log, Prometheus metrics,
//!   `/healthz` `/readyz` `/metrics`.
//! - [`server`]: wires a replica together and runs it until shutdown.

pub mod audit;
pub mod auth;
pub mod config;
pub mod metrics;
pub mod ops;
pub mod registry;
pub mod server;
pub mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::Config;
pub use server::run;

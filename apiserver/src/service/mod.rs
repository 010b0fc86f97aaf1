//! The gRPC services of the client API.
//!
//! - [`resources`]: the generic `Resources` service — create, get, list,
//!   update, update-status, patch, delete, delete-collection — for every
//!   kind, through authorization, the registry and the store.
//! - [`watch`]: the `Watch` stream: history from a resourceVersion, label
//!   and field filters, bookmarks, `Expired` when compacted.
//! - [`cluster`]: the `Cluster` service: members, membership changes, whoami.
//! - [`pods`]: the `Pods` service: batched bindings and logs relayed
//!   from the pod's kubelet.
//! - [`errors`]: [`ApiError`](errors::ApiError), the Kubernetes-style status
//!   every failure is reported with.
//! - [`request`]: what every call shares: resolving the kind, authorizing,
//!   metrics and audit.

pub mod cluster;
pub mod errors;
pub mod pods;
pub mod request;
pub mod resources;
pub mod watch;

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::auth::{Authenticator, Authorizer};
use crate::metrics::Metrics;
use crate::store::ObjectStore;

/// What every service of a replica shares.
pub struct Api<T> {
    /// Objects over the replica.
    pub store: ObjectStore<T>,
    /// Names callers from their client certificates.
    pub authenticator: Authenticator,
    /// The authorizer chain.
    pub authorizer: Arc<Authorizer>,
    /// Request and Raft metrics.
    pub metrics: Arc<Metrics>,
    /// The audit log.
    pub audit: AuditLog,
    /// Where Services' ClusterIPs and node ports come from.
    pub service_ranges: crate::registry::allocation::ServiceRanges,
    /// Interval between watch bookmarks.
    pub bookmark_interval: std::time::Duration,
    /// Becomes `true` when the replica shuts down: open watches end so the
    /// server can stop.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

//! Capstan's client runtime, shared by `capctl` and every daemon.
//!
//! # Layout
//!
//! - [`kubeconfig`]: the kubeconfig file format (with Capstan's `servers`
//!   list of every replica), where the file is found, and resolving a
//!   context into addresses, TLS material and a namespace.
//! - [`connection`]: [`Client`], one lazily connected mutual-TLS channel per
//!   replica, and the failover rule (reads move to the next replica on any
//!   replica-level failure; writes only when nothing can have been applied).
//! - [`api`]: [`Api<K>`], the typed API for every kind: create, get, list
//!   (selectors, paging, [`Api::list_all`]), update, update-status, patch,
//!   delete, delete-collection, watch.
//! - [`error`]: [`Error`], the server's reason (`NotFound`, `Conflict`,
//!   `Invalid` with causes, `Expired`, ...) and the client's own failures.
//! - [`watcher`]: [`watcher::watcher`] (list, watch, resume from the last
//!   resourceVersion, relist on `Expired`, back-off) and the reflector
//!   [`watcher::Store`], replaced atomically on relist.
//! - [`runtime`]: the controller runtime: a deduplicating work queue with
//!   per-key exponential back-off and delayed requeue, workers with a
//!   bounded number of concurrent reconciles, and the glue from a watcher
//!   to the queue.
//! - [`events`]: [`events::Recorder`], Events about objects, written in the
//!   background and aggregated on repeats as Kubernetes does.
//! - [`pods`]: [`pods::bind`] (many bindings in one call, for the
//!   scheduler) and [`pods::logs`] (a container's log through the apiserver).
//! - [`leader`]: leader election through a Lease (acquire, renew, step
//!   down after the renew deadline, release on shutdown, takeover after
//!   expiry judged on the observer's own clock).
//!
//! # Not built yet
//!
//! A `Controller` builder in kube-runtime's style (owned-object and
//! related-object triggers mapped to owner keys) — today a daemon wires
//! [`watcher::watcher`], [`watcher::reflector`], [`runtime::enqueue`] and
//! [`runtime::run_workers`] itself. Bookmark-driven progress is kept
//! (resume points), but the store has no per-index lookups (e.g. pods by
//! node) yet.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), capstan_client::Error> {
//! use capstan_client::{Api, Client};
//! use capstan_proto::api::core::v1::Pod;
//!
//! let client = Client::from_kubeconfig(None, None)?;
//! let pods: Api<Pod> = Api::default_namespaced(client);
//! let pod = pods.get("nginx").await?;
//! # let _ = pod;
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod connection;
pub mod error;
pub mod events;
pub mod kubeconfig;
pub mod leader;
pub mod pods;
pub mod runtime;
pub mod watcher;

pub use api::{Api, DeleteParams, Deleted, ListParams, ObjectList, Patch, WatchEvent};
pub use connection::{CallKind, Client};
pub use error::Error;
pub use kubeconfig::{Kubeconfig, KubeconfigError};

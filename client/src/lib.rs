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
//!
//! # Not built yet
//!
//! The controller runtime (rate-limited work queue with back-off, bounded
//! concurrent reconciles, requeue-after) and leader election through Lease
//! objects are still to come; both will sit on top of [`watcher`].
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
pub mod kubeconfig;
pub mod watcher;

pub use api::{Api, DeleteParams, Deleted, ListParams, ObjectList, Patch, WatchEvent};
pub use connection::{CallKind, Client};
pub use error::Error;
pub use kubeconfig::{Kubeconfig, KubeconfigError};

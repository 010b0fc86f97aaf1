//! Capstan's test harnesses and checkers, shared by the integration tests in
//! `tests/tests/`.
//!
//! - [`apiserver`]: real `capstan apiserver` processes with mTLS on loopback.
//! - [`cluster`]: an in-process Raft cluster over a fault-injecting network,
//!   with register clients and watchers to run against it.
//! - [`linearizability`]: a checker for concurrent register / compare-and-swap
//!   histories, in which an operation that timed out may or may not have taken
//!   effect.
//! - [`watch_check`]: checks a recorded watch stream against the store's
//!   history: ordered, no duplicates, no gaps, atomic per revision.
//! - [`etcd`]: a real etcd 3.4 cluster (Debian's `etcd-server`) on loopback
//!   with client and peer TLS, the peer the benchmarks compare against.
//! - [`loadgen`]: a closed-loop load driver (N workers, warm-up, fixed
//!   duration) reporting ops/s, latency percentiles and errors.

pub mod apiserver;
pub mod cluster;
pub mod etcd;
pub mod linearizability;
pub mod loadgen;
pub mod watch_check;

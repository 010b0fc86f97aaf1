//! Capstan's replicated store.
//!
//! One Raft group (openraft) whose log and state machine live in RocksDB. The
//! state machine is an MVCC key space in the manner of etcd: one global
//! revision bumped by every transaction that writes, versions of every key
//! kept for a bounded window, watches from any retained revision, and
//! compaction that forgets older history.
//!
//! Layout:
//! - [`types`]: the openraft type configuration and a replica's addresses.
//! - [`command`]: what goes through the log (transactions, compaction) and
//!   what applying it returns.
//! - `storage`: the RocksDB log store and MVCC state machine, snapshots,
//!   watch fan-out and reads.
//! - `transport`, `grpc`: the Raft network, in-process or gRPC over mTLS.
//! - `node`: a replica: open, bootstrap, write, read (linearizable or stale),
//!   watch, membership.
//!
//! The store knows nothing of Kubernetes kinds; keys and values are bytes.

pub mod command;
mod forwarder;
pub mod grpc;
pub mod node;
mod proposer;
mod read_index;
pub mod storage;
pub mod transport;
pub mod types;

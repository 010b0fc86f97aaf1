//! Capstan's public-key infrastructure and TLS transport.
//!
//! Every Capstan listener (client API, Raft peer port, kubelet port) speaks
//! TLS 1.3 only and requires a client certificate issued by the cluster CA;
//! there is no plaintext mode. This crate holds everything about that:
//!
//! - [`bootstrap`]: the certificates a cluster needs (`capstan pki init`).
//! - [`ca`]: generate or load the cluster CA and issue certificates whose
//!   subject carries a Kubernetes-style identity (CN = user, O = groups).
//! - [`identity`]: read that identity back from a peer's certificate.
//! - [`tls`]: load PEM files with clear errors, and build the rustls server
//!   and client configurations (TLS 1.3 only, mutual authentication).
//! - [`net`]: the glue to tonic: an accept loop that yields authenticated
//!   TLS streams to a gRPC server, and a connector for gRPC channels.

pub mod bootstrap;
pub mod ca;
pub mod identity;
pub mod net;
pub mod tls;

pub use ca::{CertificateAuthority, IssuedCert, Usage};
pub use identity::Identity;
pub use tls::{PkiError, TlsBundle, TlsPaths};

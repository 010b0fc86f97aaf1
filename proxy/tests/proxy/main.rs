//! The proxy against an in-process apiserver (real mTLS, identity
//! system:kube-proxy) and small echo servers on loopback addresses
//! (127.77.x.y, one x per test so tests run in parallel).

mod dns;
mod forwarding;
mod services;
mod support;

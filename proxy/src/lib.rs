//! Capstan's service proxy (one per node): listens on every Service's
//! ClusterIP:port and, for NodePort and LoadBalancer services, on the
//! node's address:nodePort, and forwards to the ready endpoints; also
//! serves cluster DNS.
//!
//! Being built (issue 6): this crate is a skeleton; [`run`] fails at once.

mod config;

pub use config::{Config, ConfigError};

/// Runs until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    anyhow::bail!("not built yet (issue 6)")
}

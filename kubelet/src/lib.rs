//! Capstan's kubelet: registers its Node, renews its Lease, and runs the pods bound to it through a CRI-shaped runtime (the embedded process runtime by default).
//!
//! Being built (issue 5): this crate is a skeleton; [`run`] fails at once.

mod config;
pub mod runtime;

pub use config::{Config, ConfigError};

/// Runs until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    anyhow::bail!("not built yet (issue 5)")
}

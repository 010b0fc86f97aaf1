//! Capstan's kubelet: registers its Node, renews its Lease, and runs the
//! pods bound to it through a CRI-shaped runtime (the embedded process
//! runtime by default).
//!
//! Layout: [`node`] (registration, status, Lease), [`manager`] (the pod
//! watch, one [`worker`] per pod), [`status`] (pod status from runtime
//! state), [`env`] (env and `$(VAR)` expansion), [`backoff`]
//! (crash-loop back-off), [`fake`] (an in-memory runtime for tests).

pub mod backoff;
mod config;
pub mod env;
pub mod fake;
pub mod labels;
pub mod logs;
pub mod manager;
pub mod node;
pub mod probe;
pub mod runtime;
pub mod static_pods;
pub mod status;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use capstan_client::Client;

pub use config::{CapacityConfig, Config, ConfigError, TlsConfig};

use crate::backoff::BackoffPolicy;
use crate::runtime::Runtime;
use crate::runtime::process::{ProcessRuntime, ProcessRuntimeConfig};
use crate::worker::Context;

/// Runs until `shutdown` completes, with the embedded process runtime.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let runtime = ProcessRuntime::new(ProcessRuntimeConfig {
        root_dir: config.root_dir.join("runtime"),
        pod_cidr: config.pod_cidr.clone(),
        image_dir: config.image_dir.clone(),
        shim: std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("finding the shim (this executable): {e}"))?,
        cgroups: Default::default(),
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "starting the process runtime under {}: {e}",
            config.root_dir.display()
        )
    })?;
    run_with(config, Arc::new(runtime), shutdown).await
}

/// Runs the kubelet over any runtime until `shutdown` completes. On
/// shutdown the pods' containers keep running: the next kubelet adopts them.
pub async fn run_with<R: Runtime>(
    config: Config,
    runtime: Arc<R>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = Client::from_kubeconfig(Some(&config.kubeconfig), None)
        .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", config.kubeconfig.display()))?;
    let port = match &config.tls {
        Some(tls) => {
            Some(logs::listen(std::net::SocketAddr::new(config.node_ip, config.port), tls).await?)
        }
        None => None,
    };
    node::register(&client, &config, &*runtime).await?;
    tracing::info!(node = %config.node_name, "registered");
    let config = Arc::new(config);
    let secs = Duration::from_secs_f64;
    let ctx = Arc::new(Context {
        runtime: runtime.clone(),
        client: client.clone(),
        node_name: config.node_name.clone(),
        node_ip: config.node_ip.to_string(),
        log_root: config.root_dir.join("pods"),
        backoff: BackoffPolicy {
            initial: secs(config.crash_loop_backoff_initial_seconds),
            max: secs(config.crash_loop_backoff_max_seconds),
            reset: secs(config.crash_loop_backoff_reset_seconds),
        },
        cluster_dns: config.cluster_dns.clone(),
        cluster_domain: config.cluster_domain.clone(),
    });
    let mut tasks = vec![
        tokio::spawn(node::lease_loop(client.clone(), config.clone())),
        tokio::spawn(node::status_loop(
            client.clone(),
            config.clone(),
            runtime.clone(),
        )),
        tokio::spawn(manager::run(ctx)),
    ];
    if let Some(dir) = config.static_pod_path.clone() {
        tasks.push(tokio::spawn(static_pods::run(
            client.clone(),
            dir,
            config.node_name.clone(),
        )));
    }
    if let Some((listener, tls)) = port {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = logs::serve(listener, tls, runtime).await {
                tracing::error!("{e:#}");
            }
        }));
    }
    shutdown.await;
    for t in &tasks {
        t.abort();
    }
    Ok(())
}

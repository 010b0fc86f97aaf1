//! Capstan's service proxy (one per node): listens on every Service's
//! ClusterIP:port and, for NodePort and LoadBalancer services, on the
//! node's address:nodePort, and forwards to the ready endpoints; also
//! serves cluster DNS.
//!
//! # Layout
//!
//! - [`config`]: the YAML configuration.
//! - [`model`]: from Services and Endpoints, the listeners this node
//!   should have and their endpoints (no IO).
//! - [`balancer`]: round-robin and ClientIP affinity over one service
//!   port's endpoints.
//! - [`proxier`]: opens, updates and closes the listeners to match the
//!   model; [`tcp`] and [`udp`] serve one listener each.
//! - [`forward`]: a TCP connection's bytes both ways, by splice(2) or by
//!   copy.
//! - [`dns`]: the cluster DNS server (hickory-server) and its zone.
//! - [`lb_status`]: LoadBalancer services' `status.loadBalancer.ingress`.
//! - [`stats`] holds the counters.
//!
//! [`run`] wires them: three watchers (Services, Endpoints, Nodes) feed
//! reflector stores; every change wakes one sync loop that recomputes the
//! model and applies it.

pub mod balancer;
mod config;
pub mod dns;
pub mod forward;
pub mod lb_status;
pub mod model;
pub mod proxier;
pub mod stats;
pub mod tcp;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use capstan_client::watcher::{self, Store};
use capstan_client::{Api, Client, ListParams};
use capstan_proto::Resource;
use capstan_proto::api::core::v1::{Endpoints, Node, Service};
use futures::StreamExt as _;
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use config::{Config, ConfigError, DnsConfig, ForwardMode};

use crate::proxier::{Proxier, Settings};
use crate::stats::Stats;

/// How often a failed listener bind or status write is retried.
const RETRY: Duration = Duration::from_secs(1);
/// How long to wait for the first lists before serving what is known.
const FIRST_LIST: Duration = Duration::from_secs(10);

/// Runs until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_stats(config, shutdown, Arc::default()).await
}

/// [`run`], counting into `stats`.
pub async fn run_with_stats(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stats: Arc<Stats>,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let client = Client::from_kubeconfig(Some(&config.kubeconfig), None)
        .with_context(|| format!("kubeconfig {}", config.kubeconfig.display()))?;
    let changed = Arc::new(Notify::new());
    let mut watchers = JoinSet::new();
    let services = watch::<Service>(&client, &changed, &mut watchers);
    let endpoints = watch::<Endpoints>(&client, &changed, &mut watchers);
    let nodes = watch::<Node>(&client, &changed, &mut watchers);

    let dns = match &config.dns {
        Some(d) => {
            let handler = dns::Handler::new(
                &config.cluster_domain,
                d.ttl,
                dns::StoreView {
                    services: services.clone(),
                    endpoints: endpoints.clone(),
                },
                d.upstream.clone(),
                stats.clone(),
            );
            Some(
                dns::DnsServer::start(d.listen, handler)
                    .await
                    .with_context(|| format!("dns.listen {}", d.listen))?,
            )
        }
        None => None,
    };

    let mut proxier = Proxier::new(
        Settings {
            mode: config.forward,
            connect_timeout: config.connect_timeout(),
            udp_idle: config.udp_idle_timeout(),
        },
        stats.clone(),
    );
    tracing::info!(node = %config.node_name, node_ip = %config.node_ip, forward = ?config.forward, "proxy starting");
    let sync = async {
        if !(services.wait_until_ready(FIRST_LIST).await
            && endpoints.wait_until_ready(FIRST_LIST).await)
        {
            tracing::warn!("no first list of services and endpoints yet; serving what is known");
        }
        let node_port_addr = config.node_port_address();
        let node_ip = config.node_ip.to_string();
        loop {
            let notified = changed.notified();
            let svcs = services.list();
            let desired = model::desired(
                svcs.iter().map(|s| s.as_ref()),
                |key| endpoints.get(&key.namespace, &key.name),
                node_port_addr,
            );
            let mut retry = proxier.sync(&desired).await > 0;
            retry |= lb_status::sync(&client, &config.node_name, &node_ip, &nodes, &svcs).await > 0;
            if retry {
                let _ = tokio::time::timeout(RETRY, notified).await;
            } else {
                notified.await;
            }
        }
    };
    tokio::select! {
        _ = sync => {}
        _ = shutdown => {}
    }
    tracing::info!("proxy stopping: closing listeners");
    proxier.close_all();
    watchers.shutdown().await;
    if let Some(dns) = dns {
        dns.stop().await;
    }
    drain(&stats, config.shutdown_grace()).await;
    stats.log();
    Ok(())
}

/// Waits until no TCP connection is being forwarded, at most `grace`.
async fn drain(stats: &Stats, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        let active = Stats::get(&stats.tcp_active);
        if active == 0 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::info!(active, "grace time over; dropping established connections");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a watcher of every `K` feeding a store; each event wakes `changed`.
fn watch<K>(client: &Client, changed: &Arc<Notify>, tasks: &mut JoinSet<()>) -> Store<K>
where
    K: Resource + Send + Sync + 'static,
{
    let (store, writer) = watcher::store::<K>();
    let stream = watcher::reflector(
        writer,
        watcher::watcher(Api::<K>::all(client.clone()), ListParams::default()),
    );
    let changed = changed.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!(kind = K::INFO.kind, error = %e, "watch failed; retrying"),
            }
        }
    });
    store
}

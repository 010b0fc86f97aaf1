//! Capstan's controller-manager: the replication, deployment, node
//! lifecycle, garbage collection and namespace controllers, leader-elected.
//!
//! # Layout
//!
//! - [`config`]: the configuration file.
//! - [`controller`]: what every controller gets ([`Context`], [`Shutdown`])
//!   and the [`Controller`] entry of the list in [`controllers`].
//! - [`endpoints`]: the endpoints controller (Services' Endpoints).
//! - [`informer`]: shared informers, one watch per kind for all controllers.
//! - [`expectations`]: creations/deletions a controller awaits seeing.
//! - [`pods`]: pod facts shared by the workload controllers (active, ready,
//!   available, controller references); [`selector`]: label selectors.
//! - [`replicaset`]: the ReplicaSet controller, generic over
//!   [`replicaset::Replicated`]; [`replication`]: the same for
//!   ReplicationControllers.
//! - [`deployment`]: the Deployment controller (rollouts over ReplicaSets).
//! - [`nodelifecycle`]: node health from Leases, not-ready/unreachable
//!   taints, rate-limited taint-based eviction, disruption mode.
//! - [`gc`]: the garbage collector (ownerReferences; orphan and foreground
//!   finalizers); [`gc::kinds`] puts every served kind behind one trait.
//! - [`namespace`]: empties a namespace being deleted, then finalizes it.
//! - [`run`]: campaigns for the Lease kube-system/kube-controller-manager;
//!   while leading, runs every controller of [`controllers`] with fresh
//!   informers; on losing the Lease, stops them and campaigns again (a
//!   deposed leader never acts: its controllers are stopped before another
//!   instance can consider the Lease expired, see `capstan_client::leader`).

pub mod config;
pub mod controller;
pub mod deployment;
pub mod endpoints;
pub mod expectations;
pub mod gc;
pub mod informer;
pub mod namespace;
pub mod nodelifecycle;
pub mod pods;
pub mod replicaset;
pub mod replication;
pub mod selector;

use std::sync::Arc;
use std::time::Duration;

use capstan_client::leader::LeaderElector;
use capstan_client::{Api, Client};
use capstan_proto::api::coordination::v1::Lease;
use tokio::task::JoinSet;

pub use config::{Config, ConfigError, LeaderElection};
pub use controller::{Context, Controller, Shutdown, ShutdownTrigger};

/// The namespace of the leader-election Lease.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The leader-election Lease's name, as Kubernetes's.
pub const LEASE_NAME: &str = "kube-controller-manager";

/// How long controllers get to return after being told to stop.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The pause before restarting a controller that returned early.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Every controller this controller-manager runs while leading.
pub fn controllers() -> Vec<Controller> {
    vec![
        Controller {
            name: "replicaset",
            run: |ctx, stop| Box::pin(replicaset::run(ctx, stop)),
        },
        Controller {
            name: "replicationcontroller",
            run: |ctx, stop| Box::pin(replication::run(ctx, stop)),
        },
        Controller {
            name: "deployment",
            run: |ctx, stop| Box::pin(deployment::run(ctx, stop)),
        },
        Controller {
            name: "endpoints",
            run: |ctx, stop| Box::pin(endpoints::run(ctx, stop)),
        },
        Controller {
            name: "nodelifecycle",
            run: |ctx, stop| Box::pin(nodelifecycle::run(ctx, stop)),
        },
        Controller {
            name: "garbagecollector",
            run: |ctx, stop| Box::pin(gc::run(ctx, stop)),
        },
        Controller {
            name: "namespace",
            run: |ctx, stop| Box::pin(namespace::run(ctx, stop)),
        },
    ]
}

/// Runs until `shutdown` completes: campaigns for the Lease (unless
/// `leaderElection.leaderElect` is false) and runs [`controllers`] while
/// leading.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_controllers(config, controllers(), shutdown).await
}

/// [`run`] with an explicit controller list (tests run a subset).
pub async fn run_controllers(
    config: Config,
    list: Vec<Controller>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let lease_config = config
        .leader_election
        .lease_config()
        .map_err(anyhow::Error::msg)?;
    let config = Arc::new(config);
    let client = Client::from_kubeconfig(Some(&config.kubeconfig), None)
        .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", config.kubeconfig.display()))?;
    let identity = config.identity();
    tokio::pin!(shutdown);

    if !config.leader_election.leader_elect {
        tracing::info!(%identity, "leader election disabled; starting controllers");
        let ctx = Context::new(client, config.clone(), identity);
        let (trigger, stop) = Shutdown::new();
        let mut term = start(&ctx, &list, stop);
        tokio::select! {
            _ = &mut shutdown => {}
            _ = wait_all(&mut term) => {}
        }
        stop_term(trigger, term, &ctx).await;
        return Ok(());
    }

    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let leadership = LeaderElector::new(leases, LEASE_NAME, &identity, lease_config)?.spawn();
    let mut leading = leadership.subscribe();
    tracing::info!(%identity, lease = %format!("{LEASE_NAMESPACE}/{LEASE_NAME}"), "campaigning for leadership");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = leading.wait_for(|l| *l) => if r.is_err() { break },
        }
        tracing::info!(%identity, "leading; starting controllers");
        let ctx = Context::new(client.clone(), config.clone(), identity.clone());
        let (trigger, stop) = Shutdown::new();
        let term = start(&ctx, &list, stop);
        let done = tokio::select! {
            _ = &mut shutdown => true,
            _ = leading.wait_for(|l| !*l) => false,
        };
        if !done {
            tracing::warn!(%identity, "leadership lost; stopping controllers");
        }
        stop_term(trigger, term, &ctx).await;
        if done {
            break;
        }
    }
    leadership.release().await;
    tracing::info!(%identity, "stopped");
    Ok(())
}

/// Starts every controller of `list`, each restarted if it returns early.
fn start(ctx: &Context, list: &[Controller], stop: Shutdown) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for controller in list.iter().copied() {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        set.spawn(supervise(controller, ctx, stop));
    }
    set
}

async fn supervise(controller: Controller, ctx: Context, stop: Shutdown) {
    loop {
        match (controller.run)(ctx.clone(), stop.clone()).await {
            Ok(()) if stop.is_requested() => return,
            Ok(()) => tracing::warn!(controller = controller.name, "returned early; restarting"),
            Err(e) => {
                tracing::error!(controller = controller.name, error = %e, "failed; restarting")
            }
        }
        tokio::select! {
            _ = stop.requested() => return,
            _ = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
}

async fn wait_all(set: &mut JoinSet<()>) {
    while set.join_next().await.is_some() {}
}

/// Tells a term's controllers to stop, waits for them (at most
/// [`STOP_GRACE`]), then stops the informers.
async fn stop_term(trigger: ShutdownTrigger, mut term: JoinSet<()>, ctx: &Context) {
    trigger.trigger();
    if tokio::time::timeout(STOP_GRACE, wait_all(&mut term))
        .await
        .is_err()
    {
        tracing::warn!("controllers did not stop within {STOP_GRACE:?}; aborting them");
        term.abort_all();
    }
    ctx.informers.shutdown();
}

//! What every controller gets: the [`Context`] (client, configuration,
//! shared informers, an event recorder per controller), the [`Shutdown`]
//! signal, and the [`Controller`] entry the list in `lib.rs` is made of.

use std::sync::Arc;

use capstan_client::Client;
use capstan_client::events::Recorder;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::config::Config;
use crate::informer::Informers;

/// What a controller runs with during one leadership term. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// The controller-manager's client (identity system:kube-controller-manager).
    pub client: Client,
    /// The configuration file's contents.
    pub config: Arc<Config>,
    /// The shared informers of this term (one watch per kind).
    pub informers: Informers,
    /// This instance's identity (Lease holder, Events' reporting instance).
    pub identity: String,
}

impl Context {
    /// A context with fresh informers.
    pub fn new(client: Client, config: Arc<Config>, identity: String) -> Self {
        Self {
            informers: Informers::new(client.clone()),
            client,
            config,
            identity,
        }
    }

    /// An event recorder whose source component is `component`
    /// (Kubernetes's names: `replicaset-controller`, `deployment-controller`,
    /// `node-controller`, ...).
    pub fn recorder(&self, component: &str) -> Recorder {
        Recorder::new(self.client.clone(), component, &self.identity)
    }
}

/// Tells controllers to stop (end of the process or of leadership). Cheap
/// to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending half of [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    /// A signal and its trigger.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// Whether stopping has been asked for.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once stopping is asked for (or the trigger is dropped).
    pub async fn requested(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl ShutdownTrigger {
    /// Asks every [`Shutdown`] holder to stop.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// A controller's entry point: runs until `shutdown`, then returns.
pub type RunFn = fn(Context, Shutdown) -> BoxFuture<'static, anyhow::Result<()>>;

/// One controller in the list started after leader election.
#[derive(Clone, Copy)]
pub struct Controller {
    /// Its name, as in Kubernetes's `--controllers` (`replicaset`, `deployment`, ...).
    pub name: &'static str,
    /// Its entry point.
    pub run: RunFn,
}

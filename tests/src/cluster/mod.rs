//! An in-process Raft cluster for tests: n [`Replica`]s in one process, their
//! data dirs in a temporary directory, talking through a fault-injecting
//! [`Router`].
//!
//! [`Cluster::start`] opens and initialises the replicas with fast timeouts
//! and waits for a leader. The test then injects faults ([`Cluster::partition`],
//! [`Cluster::isolate`], [`Cluster::heal`], drops and delays through
//! [`Router::update_faults`]), crashes and restarts replicas from their data
//! dirs, and changes membership. [`workload`] runs concurrent register
//! clients and watchers against it and checks what they saw.
//!
//! Every wait is bounded in time. Dropping a cluster unregisters every
//! replica and removes the data dirs; [`Cluster::shutdown`] also stops Raft
//! cleanly first, and is what tests should call.

pub mod router;
pub mod workload;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use capstan_raftstore::node::{Replica, ReplicaConfig, ReplicaError};
use capstan_raftstore::storage::OpenError;
use capstan_raftstore::types::{Member, NodeId};
use openraft::ServerState;

pub use router::{Faults, MessageFilter, Router};

/// Knobs of a test cluster; [`Default`] gives fast timeouts.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Raft heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Build a snapshot after this many log entries.
    pub snapshot_after_logs: u64,
    /// Log entries kept behind a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// How long a replica operation waits for a leader.
    pub request_timeout: Duration,
    /// Auto-compaction window (0: off, the default, so tests compact explicitly).
    pub history_revisions: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            heartbeat: Duration::from_millis(50),
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
            snapshot_after_logs: 5_000,
            logs_kept_after_snapshot: 100,
            request_timeout: Duration::from_secs(2),
            history_revisions: 0,
        }
    }
}

/// A running test cluster.
pub struct Cluster {
    router: Router,
    config: ClusterConfig,
    /// Every replica ever started, running or not.
    configs: BTreeMap<NodeId, ReplicaConfig>,
    seed: u64,
    // Last, so the data dirs go after the replicas.
    dir: tempfile::TempDir,
}

/// The address record of test replica `id` (the router ignores it).
pub fn member(id: NodeId) -> Member {
    Member {
        peer_addr: format!("in-process:{id}"),
        client_addr: format!("in-process:{id}"),
    }
}

impl Cluster {
    /// Starts replicas 1..=n, initialises them as one group and waits for a
    /// leader.
    pub async fn start(n: u64, seed: u64, config: ClusterConfig) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("capstan-cluster-")
            .tempdir()
            .context("creating the cluster's temporary directory")?;
        let mut cluster = Cluster {
            router: Router::new(seed),
            config,
            configs: BTreeMap::new(),
            seed,
            dir,
        };
        for id in 1..=n {
            cluster.start_node(id).await?;
        }
        let members: BTreeMap<NodeId, Member> = (1..=n).map(|id| (id, member(id))).collect();
        let first = cluster.replica(1).context("replica 1 is not running")?;
        first
            .initialize(members)
            .await
            .context("initializing the group")?;
        cluster.wait_leader(Duration::from_secs(10)).await?;
        Ok(cluster)
    }

    /// The seed the cluster's fault decisions derive from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The network.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Opens a pristine replica `id` (not a member of anything until a leader
    /// adds it).
    pub async fn start_node(&mut self, id: NodeId) -> anyhow::Result<Replica<Router>> {
        if self.configs.contains_key(&id) {
            bail!("replica {id} already exists");
        }
        let mut rc = ReplicaConfig::new(id, self.dir.path().join(format!("replica-{id}")));
        rc.heartbeat = self.config.heartbeat;
        rc.election_timeout = self.config.election_timeout;
        rc.snapshot_after_logs = self.config.snapshot_after_logs;
        rc.logs_kept_after_snapshot = self.config.logs_kept_after_snapshot;
        rc.request_timeout = self.config.request_timeout;
        rc.history_revisions = self.config.history_revisions;
        self.configs.insert(id, rc);
        self.open(id).await
    }

    async fn open(&self, id: NodeId) -> anyhow::Result<Replica<Router>> {
        let rc = self.configs.get(&id).context("unknown replica")?.clone();
        // A crashed replica's tasks may hold the database open for a moment
        // after shutdown; retry while its lock is held, within a bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Replica::open(rc.clone(), self.router.clone()).await {
                Ok(replica) => {
                    self.router.register(id, replica.clone());
                    return Ok(replica);
                }
                Err(ReplicaError::Open(OpenError::Database { source, .. }))
                    if Instant::now() < deadline && source.to_string().contains("lock") =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("opening replica {id}")),
            }
        }
    }

    /// The running replica `id`.
    pub fn replica(&self, id: NodeId) -> Option<Replica<Router>> {
        self.router.replica(id)
    }

    /// The running replica `id`, or an error.
    pub fn must(&self, id: NodeId) -> anyhow::Result<Replica<Router>> {
        self.replica(id)
            .with_context(|| format!("replica {id} is not running"))
    }

    /// The ids of the running replicas.
    pub fn running(&self) -> Vec<NodeId> {
        self.router.running()
    }

    /// Stops replica `id` (Raft shut down, handle dropped); its data dir stays.
    pub async fn crash(&self, id: NodeId) -> anyhow::Result<()> {
        let replica = self
            .router
            .unregister(id)
            .with_context(|| format!("replica {id} is not running"))?;
        let shutdown = tokio::time::timeout(Duration::from_secs(5), replica.shutdown()).await;
        match shutdown {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e).with_context(|| format!("shutting down replica {id}")),
            Err(_) => bail!("replica {id} did not shut down within 5 s"),
        }
    }

    /// Reopens replica `id` from its data dir.
    pub async fn restart(&self, id: NodeId) -> anyhow::Result<Replica<Router>> {
        if self.replica(id).is_some() {
            bail!("replica {id} is already running");
        }
        self.open(id).await
    }

    /// Cuts the network into `groups` (both directions).
    pub fn partition(&self, groups: &[&[NodeId]]) {
        self.router.update_faults(|f| {
            f.partition = groups.iter().map(|g| g.iter().copied().collect()).collect();
        });
    }

    /// Cuts `id` off from every other replica.
    pub fn isolate(&self, id: NodeId) {
        self.router.update_faults(|f| {
            f.isolated.insert(id);
        });
    }

    /// Removes every fault: partitions, isolation, drops, delays.
    pub fn heal(&self) {
        self.router.update_faults(|f| *f = Faults::default());
    }

    /// Waits until some running replica is leader and a majority of its
    /// voters (counting itself) are running and name it as leader in its term.
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(id) = self.stable_leader() {
                return Ok(id);
            }
            if Instant::now() >= deadline {
                let states: Vec<String> = self
                    .running()
                    .into_iter()
                    .filter_map(|id| self.replica(id))
                    .map(|r| {
                        let m = r.metrics();
                        format!(
                            "{}: {:?} term {} leader {:?}",
                            m.id, m.state, m.current_term, m.current_leader
                        )
                    })
                    .collect();
                bail!("no leader within {timeout:?}: {}", states.join("; "));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a leader other than `old` (e.g. after cutting `old` off).
    pub async fn wait_new_leader(&self, old: NodeId, timeout: Duration) -> anyhow::Result<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let id = self.wait_leader(left).await?;
            if id != old {
                return Ok(id);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stable_leader(&self) -> Option<NodeId> {
        let faults = self.router.faults();
        for id in self.running() {
            let Some(r) = self.replica(id) else { continue };
            let m = r.metrics();
            if m.state != ServerState::Leader || m.current_leader != Some(id) {
                continue;
            }
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            let agree = voters
                .iter()
                .filter(|&&v| faults.connected(id, v))
                .filter_map(|&v| self.replica(v))
                .filter(|v| {
                    let vm = v.metrics();
                    vm.current_leader == Some(id) && vm.current_term == m.current_term
                })
                .count();
            if agree * 2 > voters.len() {
                return Some(id);
            }
        }
        None
    }

    /// Waits until every running replica has applied at least `revision`.
    pub async fn wait_revision(&self, revision: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let behind: Vec<(NodeId, u64)> = self
                .running()
                .into_iter()
                .filter_map(|id| self.replica(id).map(|r| (id, r)))
                .filter_map(|(id, r)| {
                    let rev = r.reader().current_revision().unwrap_or(0);
                    (rev < revision).then_some((id, rev))
                })
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "replicas (id, revision) {behind:?} did not reach revision {revision} within {timeout:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts every running replica down, then removes the data dirs.
    pub async fn shutdown(self) {
        for replica in self.router.clear() {
            let _ = tokio::time::timeout(Duration::from_secs(5), replica.shutdown()).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Break the router ↔ replica cycle so the replicas can be freed.
        drop(self.router.clear());
    }
}

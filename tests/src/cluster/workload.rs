//! Load for a test [`Cluster`]: concurrent register clients and watchers,
//! and the checks of what they saw.
//!
//! - **Clients** ([`Workload::start`]): each client is a task bound to a home
//!   replica (another running one while its home is down) doing operations
//!   on a few keys under [`KEY_PREFIX`]: linearizable reads, blind writes,
//!   deletes, and compare-and-swaps on the value, on the mod revision or on
//!   absence (create). Every operation is recorded in a [`Recorder`]:
//!   `Indeterminate` (and any error that does not prove the write was never
//!   proposed) as a timeout, `Unavailable`/`Invalid` as a failure, and
//!   failed reads are dropped. Values are unique, so a compare on a mod
//!   revision read earlier is a compare on the value read.
//! - **Watchers**: one chain per watcher, on one replica and a key prefix,
//!   from revision 1 or from "now". A stream that ends (error, or its
//!   replica crashed) is resumed from the last delivered revision plus one,
//!   on the same replica once it runs again. A resume that fails with
//!   `Expired` ends the chain: the client would relist.
//! - **Reference** ([`ReferenceLog`]): the store's history, read with a full
//!   watch from a replica, captured before any compaction and at the end.
//!
//! Each client's operations derive from the seed and its index; the order
//! in which the clients' operations interleave depends on scheduling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use capstan_raftstore::command::{Command, CommandResult, Compare, Condition, Op, Txn};
use capstan_raftstore::node::{Consistency, Replica, ReplicaError};
use capstan_raftstore::storage::{EventKind, ReadError, RevisionEvents, WatchError};
use capstan_raftstore::types::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Cluster, Router};
use crate::linearizability::{self, CheckResult, Outcome, Recorder};
use crate::watch_check::{self, Change, ObservedStream, Reference, RevisionChanges};

/// Every register key starts with this.
pub const KEY_PREFIX: &str = "/reg/";

/// What load to run.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Number of register keys.
    pub keys: usize,
    /// One client per entry, bound to that replica.
    pub clients: Vec<NodeId>,
    /// Operations per client, at most.
    pub max_ops_per_client: usize,
    /// Pause between a client's operations, drawn from this range.
    pub pause: (Duration, Duration),
    /// The watchers.
    pub watchers: Vec<WatchSpec>,
}

/// One watcher chain.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    /// The replica it watches.
    pub node: NodeId,
    /// Start at revision 1 (`true`) or at the next revision (`false`).
    pub from_start: bool,
    /// The key prefix.
    pub prefix: String,
}

impl WatchSpec {
    /// A watcher of every register key on `node`.
    pub fn all(node: NodeId, from_start: bool) -> Self {
        WatchSpec {
            node,
            from_start,
            prefix: KEY_PREFIX.to_owned(),
        }
    }
}

impl WorkloadConfig {
    /// `clients` clients spread over replicas `1..=n`, a watcher per replica
    /// (alternately from revision 1 and from now, one on a single key).
    pub fn spread(n: u64, clients: usize) -> Self {
        let mut watchers: Vec<WatchSpec> =
            (1..=n).map(|id| WatchSpec::all(id, id % 2 == 1)).collect();
        watchers.push(WatchSpec {
            node: n,
            from_start: true,
            prefix: format!("{KEY_PREFIX}1"),
        });
        WorkloadConfig {
            keys: 3,
            clients: (0..clients).map(|c| (c as u64 % n) + 1).collect(),
            max_ops_per_client: 250,
            pause: (Duration::from_millis(2), Duration::from_millis(12)),
            watchers,
        }
    }
}

/// What one client did.
#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    /// Reads answered.
    pub reads: u64,
    /// Writes, deletes and CASes acknowledged.
    pub writes: u64,
    /// Operations with unknown outcome.
    pub indeterminate: u64,
    /// Operations that certainly failed (or reads that failed).
    pub failed: u64,
}

impl std::ops::AddAssign for ClientStats {
    fn add_assign(&mut self, o: Self) {
        self.reads += o.reads;
        self.writes += o.writes;
        self.indeterminate += o.indeterminate;
        self.failed += o.failed;
    }
}

/// What one watcher chain saw.
#[derive(Clone, Debug)]
pub struct WatchChain {
    /// Its spec.
    pub spec: WatchSpec,
    /// One entry per watch call.
    pub streams: Vec<ObservedStream>,
    /// Set when a (re)start failed with `Expired`: the chain ended there.
    pub expired: Option<String>,
    /// Whether it delivered (or skipped) everything through the target revision.
    pub caught_up: bool,
    /// Why streams ended, in order.
    pub endings: Vec<String>,
}

/// A running workload.
pub struct Workload {
    recorder: Arc<Recorder>,
    stop_clients: watch::Sender<bool>,
    /// `Some(r)`: watchers stop once past revision `r`; set with a deadline.
    stop_watchers: watch::Sender<Option<(u64, Instant)>>,
    clients: Vec<JoinHandle<ClientStats>>,
    watchers: Vec<JoinHandle<WatchChain>>,
}

impl Workload {
    /// Starts the clients and watchers.
    pub fn start(router: &Router, seed: u64, config: &WorkloadConfig) -> Workload {
        let recorder = Arc::new(Recorder::new());
        let (stop_clients, stop_rx) = watch::channel(false);
        let (stop_watchers, watch_rx) = watch::channel(None);
        let clients = config
            .clients
            .iter()
            .enumerate()
            .map(|(i, &home)| {
                let client = Client {
                    id: i as u64,
                    home,
                    router: router.clone(),
                    recorder: Arc::clone(&recorder),
                    rng: StdRng::seed_from_u64(
                        seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    ),
                    keys: config.keys,
                    pause: config.pause,
                    last_read: HashMap::new(),
                    next_value: 0,
                    stats: ClientStats::default(),
                };
                tokio::spawn(client.run(config.max_ops_per_client, stop_rx.clone()))
            })
            .collect();
        let watchers = config
            .watchers
            .iter()
            .map(|spec| tokio::spawn(watch_chain(router.clone(), spec.clone(), watch_rx.clone())))
            .collect();
        Workload {
            recorder,
            stop_clients,
            stop_watchers,
            clients,
            watchers,
        }
    }

    /// The history recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Stops the clients and waits for their in-flight operations.
    pub async fn stop_clients(&mut self) -> ClientStats {
        let _ = self.stop_clients.send(true);
        let mut total = ClientStats::default();
        for c in self.clients.drain(..) {
            if let Ok(stats) = c.await {
                total += stats;
            }
        }
        total
    }

    /// Lets every watcher run until it has seen everything through
    /// `through` (or `timeout` passes), then collects the chains.
    pub async fn finish_watchers(&mut self, through: u64, timeout: Duration) -> Vec<WatchChain> {
        let _ = self
            .stop_watchers
            .send(Some((through, Instant::now() + timeout)));
        let mut chains = Vec::new();
        for w in self.watchers.drain(..) {
            match w.await {
                Ok(chain) => chains.push(chain),
                Err(e) => panic!("watcher task failed: {e}"),
            }
        }
        chains
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for t in &self.clients {
            t.abort();
        }
        for t in &self.watchers {
            t.abort();
        }
    }
}

struct Client {
    id: u64,
    home: NodeId,
    router: Router,
    recorder: Arc<Recorder>,
    rng: StdRng,
    keys: usize,
    pause: (Duration, Duration),
    /// Per key: the last value this client read, with its mod revision.
    last_read: HashMap<usize, Option<(Bytes, u64)>>,
    next_value: u64,
    stats: ClientStats,
}

fn key_name(k: usize) -> Bytes {
    Bytes::from(format!("{KEY_PREFIX}{k}"))
}

fn put(key: &Bytes, value: &Bytes) -> Op {
    Op::Put {
        key: key.clone(),
        value: value.clone(),
    }
}

impl Client {
    async fn run(mut self, max_ops: usize, stop: watch::Receiver<bool>) -> ClientStats {
        for _ in 0..max_ops {
            if *stop.borrow() {
                break;
            }
            let Some(replica) = self.pick_replica() else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            self.one_op(&replica).await;
            drop(replica);
            let pause = self.rng.random_range(self.pause.0..=self.pause.1);
            tokio::time::sleep(pause).await;
        }
        self.stats
    }

    fn pick_replica(&mut self) -> Option<Replica<Router>> {
        if let Some(r) = self.router.replica(self.home) {
            return Some(r);
        }
        let running = self.router.running();
        if running.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..running.len());
        self.router.replica(running[i])
    }

    fn fresh_value(&mut self) -> Bytes {
        self.next_value += 1;
        Bytes::from(format!("c{}-{}", self.id, self.next_value))
    }

    async fn one_op(&mut self, replica: &Replica<Router>) {
        let k = self.rng.random_range(0..self.keys);
        let key = key_name(k);
        let roll = self.rng.random_range(0..100u32);
        if roll < 40 {
            return self.read(replica, k, key).await;
        }
        let value = self.fresh_value();
        let last = self.last_read.get(&k).cloned();
        let (op, txn) = if roll < 65 || last.is_none() {
            let txn = Txn {
                success: vec![put(&key, &value)],
                ..Txn::default()
            };
            (linearizability::Op::Write(value.to_vec()), txn)
        } else if roll < 70 {
            let txn = Txn {
                success: vec![Op::Delete { key: key.clone() }],
                ..Txn::default()
            };
            (linearizability::Op::Delete, txn)
        } else {
            let last = last.flatten();
            let by_revision = roll >= 85;
            let condition = match &last {
                None => Condition::Absent,
                Some((_, rev)) if by_revision => Condition::ModRevision(*rev),
                Some((v, _)) => Condition::Value(v.clone()),
            };
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    condition,
                }],
                success: vec![put(&key, &value)],
                failure: vec![],
            };
            let op = linearizability::Op::Cas {
                expected: last.map(|(v, _)| v.to_vec()),
                new: value.to_vec(),
            };
            (op, txn)
        };
        let is_cas = matches!(op, linearizability::Op::Cas { .. });
        let id = self.recorder.invoke(self.id, key.to_vec(), op);
        match replica.write(Command::Txn(txn)).await {
            Ok(CommandResult {
                succeeded, error, ..
            }) => {
                assert!(error.is_none(), "a transaction was rejected: {error:?}");
                let outcome = if is_cas {
                    Outcome::Cas(succeeded)
                } else {
                    Outcome::Done
                };
                self.recorder.complete(id, outcome);
                self.stats.writes += 1;
            }
            Err(ReplicaError::Unavailable(_) | ReplicaError::Invalid(_)) => {
                self.recorder.fail(id);
                self.stats.failed += 1;
            }
            // Indeterminate, and anything that does not prove the write was
            // never proposed.
            Err(_) => {
                self.recorder.timeout(id);
                self.stats.indeterminate += 1;
            }
        }
    }

    async fn read(&mut self, replica: &Replica<Router>, k: usize, key: Bytes) {
        let id = self
            .recorder
            .invoke(self.id, key.to_vec(), linearizability::Op::Read);
        match replica.get(&key, None, Consistency::Linearizable).await {
            Ok(resp) => {
                let value = resp.kv.as_ref().map(|kv| kv.value.to_vec());
                self.recorder.complete(id, Outcome::Read(value));
                self.last_read
                    .insert(k, resp.kv.map(|kv| (kv.value, kv.mod_revision)));
                self.stats.reads += 1;
            }
            Err(_) => {
                self.recorder.fail(id);
                self.stats.failed += 1;
            }
        }
    }
}

/// A store revision as the watch checker sees it.
pub fn to_changes(ev: &RevisionEvents) -> RevisionChanges {
    RevisionChanges {
        revision: ev.revision,
        changes: ev
            .events
            .iter()
            .map(|e| match e.kind {
                EventKind::Put => Change::put(e.kv.key.to_vec(), e.kv.value.to_vec()),
                EventKind::Delete => Change::delete(e.kv.key.to_vec()),
            })
            .collect(),
    }
}

async fn watch_chain(
    router: Router,
    spec: WatchSpec,
    mut stop: watch::Receiver<Option<(u64, Instant)>>,
) -> WatchChain {
    let mut chain = WatchChain {
        spec: spec.clone(),
        streams: Vec::new(),
        expired: None,
        caught_up: false,
        endings: Vec::new(),
    };
    let prefix = Bytes::from(spec.prefix.clone());
    // The revision to (re)start from; 0 = "now" (first start only).
    let mut from = if spec.from_start { 1 } else { 0 };
    // Marks the value seen, so `changed()` waits for the next change.
    let stopping = |stop: &mut watch::Receiver<Option<(u64, Instant)>>| *stop.borrow_and_update();
    loop {
        let Some(replica) = router.replica(spec.node) else {
            if stopping(&mut stop).is_some() {
                // Its replica is gone for good (crashed, removed).
                return chain;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if let Some((_, deadline)) = stopping(&mut stop)
            && Instant::now() >= deadline
        {
            return chain;
        }
        let opened = replica.watch(from, prefix.clone());
        drop(replica);
        let mut stream = match opened {
            Ok(s) => s,
            Err(ReplicaError::Read(e @ ReadError::Expired { .. })) => {
                chain.expired = Some(e.to_string());
                return chain;
            }
            Err(e) => {
                chain.endings.push(format!("watch refused: {e}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let start = stream.next_revision();
        from = start;
        let mut observed = ObservedStream {
            prefix: prefix.to_vec(),
            start_revision: start,
            batches: Vec::new(),
            ended_with_error: false,
        };
        let mut finished = false;
        loop {
            if let Some((through, deadline)) = stopping(&mut stop) {
                if stream.next_revision() > through {
                    chain.caught_up = true;
                    finished = true;
                    break;
                }
                if Instant::now() >= deadline {
                    finished = true;
                    break;
                }
            }
            tokio::select! {
                item = stream.recv() => match item {
                    Some(Ok(ev)) => {
                        observed.batches.push(to_changes(&ev));
                        from = ev.revision + 1;
                    }
                    Some(Err(e)) => {
                        observed.ended_with_error = true;
                        chain.endings.push(format!("stream error: {e}"));
                        if matches!(e, WatchError::Expired { .. }) {
                            chain.expired = Some(e.to_string());
                            finished = true;
                        }
                        break;
                    }
                    None => {
                        chain.endings.push("stream closed (replica stopped)".into());
                        break;
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = stop.changed() => {}
            }
        }
        drop(stream);
        chain.streams.push(observed);
        if finished {
            return chain;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The store's history, read through full watches, kept across compactions.
#[derive(Debug, Default)]
pub struct ReferenceLog {
    revisions: Vec<RevisionChanges>,
}

impl ReferenceLog {
    /// An empty log (the next revision to capture is 1).
    pub fn new() -> Self {
        ReferenceLog::default()
    }

    /// The next revision to capture.
    pub fn next(&self) -> u64 {
        self.revisions.last().map_or(1, |r| r.revision + 1)
    }

    /// Reads every revision from [`ReferenceLog::next`] through `through`
    /// from `replica` (which must have them), demanding contiguity.
    pub async fn capture(
        &mut self,
        replica: &Replica<Router>,
        through: u64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        if self.next() > through {
            return Ok(());
        }
        let mut stream = replica
            .watch(self.next(), Bytes::new())
            .context("opening the reference watch")?;
        while self.next() <= through {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match tokio::time::timeout(left, stream.recv()).await {
                Err(_) => bail!(
                    "reference watch stuck before revision {} (wanted {through})",
                    self.next()
                ),
                Ok(None) => bail!("reference watch closed at revision {}", self.next()),
                Ok(Some(Err(e))) => bail!("reference watch failed: {e}"),
                Ok(Some(Ok(ev))) => ev,
            };
            if ev.revision != self.next() {
                bail!(
                    "reference watch skipped from revision {} to {}",
                    self.next(),
                    ev.revision
                );
            }
            self.revisions.push(to_changes(&ev));
        }
        Ok(())
    }

    /// The reference for the watch checker.
    pub fn reference(&self) -> Reference {
        Reference::new(self.revisions.iter().cloned())
    }
}

/// Checks the recorded history; `Unknown` counts as failure.
pub fn check_linearizable(recorder: &Recorder, seed: u64) -> anyhow::Result<usize> {
    let history = recorder.history();
    let started = Instant::now();
    let verdict = linearizability::check(&history);
    let took = started.elapsed();
    match verdict {
        CheckResult::Ok => Ok(history.len()),
        CheckResult::Violation(v) => bail!(
            "seed {seed}: history of {} operations is NOT linearizable (key {:?}):\n{v}",
            history.len(),
            String::from_utf8_lossy(&v.key)
        ),
        CheckResult::Unknown { key, steps } => bail!(
            "seed {seed}: linearizability check undecided on key {:?} after {steps} steps \
             ({took:?}); shrink the history",
            String::from_utf8_lossy(&key)
        ),
    }
}

/// Checks every chain: all are ordered, duplicate-free, atomic and correctly
/// resumed; chains on a replica still `running` that did not end with
/// `Expired` must also have delivered everything through `through`.
pub fn check_watches(
    reference: &Reference,
    chains: &[WatchChain],
    running: &[NodeId],
    through: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for (i, chain) in chains.iter().enumerate() {
        let live = chain.expired.is_none() && running.contains(&chain.spec.node);
        let result = if !live {
            watch_check::check_resumed(reference, &chain.streams)
        } else {
            watch_check::check_caught_up(reference, &chain.streams, through)
        };
        if let Err(violations) = result {
            for v in violations {
                problems.push(format!("watcher {i} ({:?}): {v}", chain.spec));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "seed {seed}: watch promises broken:\n{}",
            problems.join("\n")
        )
    }
}

/// Writes a marker key through the leader (retrying while no leader is
/// reachable) and returns its revision: everything before it is settled.
pub async fn barrier(cluster: &Cluster, timeout: Duration) -> anyhow::Result<(NodeId, u64)> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let leader = cluster.wait_leader(left).await?;
        let replica = cluster.must(leader)?;
        let txn = Txn {
            success: vec![put(
                &Bytes::from_static(b"/barrier"),
                &Bytes::from_static(b"x"),
            )],
            ..Txn::default()
        };
        match replica.write(Command::Txn(txn)).await {
            Ok(r) => return Ok((leader, r.revision)),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no barrier write succeeded within {timeout:?}: {last}")
}

/// The end of every scenario: stop the clients, heal the network, settle
/// everything, collect the watchers and the reference, and check both
/// histories.
pub async fn finish(
    cluster: &Cluster,
    mut workload: Workload,
    mut reference: ReferenceLog,
) -> anyhow::Result<Finished> {
    let seed = cluster.seed();
    let stats = workload.stop_clients().await;
    cluster.heal();
    let (leader, through) = barrier(cluster, Duration::from_secs(10)).await?;
    cluster
        .wait_revision(through, Duration::from_secs(10))
        .await?;
    let chains = workload
        .finish_watchers(through, Duration::from_secs(10))
        .await;
    reference
        .capture(&cluster.must(leader)?, through, Duration::from_secs(10))
        .await?;
    let ops = check_linearizable(workload.recorder(), seed)?;
    check_watches(
        &reference.reference(),
        &chains,
        &cluster.running(),
        through,
        seed,
    )?;
    if stats.reads < 10 || stats.writes < 10 {
        bail!("seed {seed}: too little progress to prove anything: {stats:?}");
    }
    let streams: usize = chains.iter().map(|c| c.streams.len()).sum();
    let batches: usize = chains
        .iter()
        .flat_map(|c| &c.streams)
        .map(|s| s.batches.len())
        .sum();
    let summary = format!(
        "seed {seed}: {ops} ops checked ({stats:?}), {through} revisions, {} watch chains / \
         {streams} streams / {batches} batches checked",
        chains.len()
    );
    Ok(Finished {
        summary,
        leader,
        through,
        chains,
    })
}

/// What [`finish`] found, once every check passed.
#[derive(Debug)]
pub struct Finished {
    /// One line for the test's output.
    pub summary: String,
    /// The leader at the end.
    pub leader: NodeId,
    /// The last revision (the barrier write).
    pub through: u64,
    /// The watch chains, already checked.
    pub chains: Vec<WatchChain>,
}

//! Tier 2: in-process Raft clusters of 3 and 5 replicas under network faults,
//! crashes and membership changes, with concurrent register clients whose
//! history must be linearizable and watchers whose streams must keep the
//! watch promises.
//!
//! Every scenario is seeded: the seed (printed at the start, shown when a
//! test fails; override with `CAPSTAN_SEED=<n>`) decides the fault schedule
//! (which replica is cut off, when, for how long), each client's operations
//! and the router's per-message drops and delays. What a seed cannot fix is
//! thread scheduling: how the clients' operations interleave with each other
//! and with Raft's timers, and therefore which message meets which random
//! draw, varies from run to run. A failing seed reproduces the same faults
//! and load, not the same execution; rerun it a few times.
//!
//! Each scenario runs a few seconds and is bounded by [`SCENARIO_LIMIT`].

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use capstan_raftstore::command::{Command, Compare, Condition, Op, Txn};
use capstan_raftstore::node::{Consistency, ReplicaError};
use capstan_raftstore::storage::{RangeRequest, ReadError};
use capstan_raftstore::transport::PeerRequest;
use capstan_raftstore::types::NodeId;
use capstan_tests::cluster::workload::{
    self, Finished, ReferenceLog, WatchSpec, Workload, WorkloadConfig,
};
use capstan_tests::cluster::{Cluster, ClusterConfig, MessageFilter, member};
use capstan_tests::linearizability::{self, Outcome, Recorder};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// No scenario may run longer than this.
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

/// The seed: `CAPSTAN_SEED` if set, else the scenario's default.
fn seed(default: u64) -> u64 {
    let seed = std::env::var("CAPSTAN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (replay with CAPSTAN_SEED={seed})");
    seed
}

/// Runs `body` under the time limit, naming the seed in any failure.
async fn bounded(seed: u64, body: impl Future<Output = anyhow::Result<()>>) {
    let started = Instant::now();
    match tokio::time::timeout(SCENARIO_LIMIT, body).await {
        Ok(Ok(())) => eprintln!("passed in {:?}", started.elapsed()),
        Ok(Err(e)) => panic!("seed {seed}: {e:#}"),
        Err(_) => panic!("seed {seed}: scenario exceeded {SCENARIO_LIMIT:?}"),
    }
}

/// A cluster with load running on it.
struct Run {
    cluster: Cluster,
    workload: Workload,
    reference: ReferenceLog,
    /// The fault schedule's randomness (separate from the clients' and the router's).
    rng: StdRng,
}

impl Run {
    async fn start(
        n: u64,
        seed: u64,
        config: ClusterConfig,
        load: WorkloadConfig,
    ) -> anyhow::Result<Run> {
        let cluster = Cluster::start(n, seed, config).await?;
        let workload = Workload::start(cluster.router(), seed, &load);
        Ok(Run {
            cluster,
            workload,
            reference: ReferenceLog::new(),
            rng: StdRng::seed_from_u64(seed.rotate_left(17) ^ 0x5EED),
        })
    }

    async fn pause(&mut self, lo_ms: u64, hi_ms: u64) {
        let ms = self.rng.random_range(lo_ms..=hi_ms);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// The running replicas other than `id`, in seeded random order.
    fn others(&mut self, id: NodeId) -> Vec<NodeId> {
        let mut others: Vec<NodeId> = self
            .cluster
            .running()
            .into_iter()
            .filter(|&o| o != id)
            .collect();
        others.shuffle(&mut self.rng);
        others
    }

    async fn finish(self) -> anyhow::Result<(Cluster, Finished)> {
        let finished = workload::finish(&self.cluster, self.workload, self.reference).await?;
        eprintln!("{}", finished.summary);
        Ok((self.cluster, finished))
    }
}

const SECOND: Duration = Duration::from_secs(1);

async fn leader_in_minority(n: u64, seed: u64) -> anyhow::Result<()> {
    let mut run = Run::start(
        n,
        seed,
        ClusterConfig::default(),
        WorkloadConfig::spread(n, 4),
    )
    .await?;
    run.pause(300, 600).await;
    let leader = run.cluster.wait_leader(5 * SECOND).await?;
    let others = run.others(leader);
    let minority_size = (n as usize - 1) / 2; // with the leader: (n-1)/2 + 1 < majority
    let mut minority = vec![leader];
    minority.extend(&others[..minority_size - 1]);
    let majority: Vec<NodeId> = others[minority_size - 1..].to_vec();
    eprintln!("partition: leader side {minority:?} | {majority:?}");
    run.cluster.partition(&[&minority, &majority]);
    let new = run.cluster.wait_new_leader(leader, 5 * SECOND).await?;
    ensure!(
        majority.contains(&new),
        "new leader {new} is not in the majority {majority:?}"
    );
    run.pause(1200, 1800).await;
    run.cluster.heal();
    run.pause(500, 900).await;
    let (cluster, _) = run.finish().await?;
    cluster.shutdown().await;
    Ok(())
}

async fn leader_in_majority(n: u64, seed: u64) -> anyhow::Result<()> {
    let mut run = Run::start(
        n,
        seed,
        ClusterConfig::default(),
        WorkloadConfig::spread(n, 4),
    )
    .await?;
    run.pause(300, 600).await;
    let leader = run.cluster.wait_leader(5 * SECOND).await?;
    let others = run.others(leader);
    let cut = (n as usize - 1) / 2;
    let minority: Vec<NodeId> = others[..cut].to_vec();
    let mut majority = vec![leader];
    majority.extend(&others[cut..]);
    eprintln!("partition: {minority:?} | leader side {majority:?}");
    run.cluster.partition(&[&minority, &majority]);
    run.pause(1200, 1800).await;
    let during = run.cluster.wait_leader(5 * SECOND).await?;
    ensure!(
        majority.contains(&during),
        "leader {during} is not in the majority {majority:?}"
    );
    run.cluster.heal();
    run.pause(500, 900).await;
    let (cluster, _) = run.finish().await?;
    cluster.shutdown().await;
    Ok(())
}

async fn drop_and_delay(n: u64, seed: u64) -> anyhow::Result<()> {
    let mut run = Run::start(
        n,
        seed,
        ClusterConfig::default(),
        WorkloadConfig::spread(n, 4),
    )
    .await?;
    run.pause(200, 400).await;
    let p = run.rng.random_range(0.05..0.15);
    let max_delay = Duration::from_millis(run.rng.random_range(5..25));
    eprintln!("dropping requests and responses with p={p:.3}, delaying up to {max_delay:?}");
    run.cluster.router().update_faults(|f| {
        f.drop_request = p;
        f.drop_response = p;
        f.delay = Some((Duration::ZERO, max_delay));
    });
    run.pause(2000, 2800).await;
    run.cluster.heal();
    run.pause(300, 500).await;
    let dropped = run
        .cluster
        .router()
        .stats()
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    ensure!(dropped > 0, "no message was dropped");
    let (cluster, _) = run.finish().await?;
    cluster.shutdown().await;
    Ok(())
}

/// Crashes `id`, keeps it down a while, restarts it from its data dir and
/// checks it came back with at least the state it had.
async fn crash_and_restart(run: &mut Run, id: NodeId) -> anyhow::Result<()> {
    let replica = run.cluster.must(id)?;
    let before = replica.reader().current_revision()?;
    let applied_before = replica.reader().applied_log_id()?;
    drop(replica);
    run.cluster.crash(id).await?;
    run.pause(500, 900).await;
    let replica = run.cluster.restart(id).await?;
    let after = replica.reader().current_revision()?;
    let applied_after = replica.reader().applied_log_id()?;
    eprintln!(
        "replica {id}: revision {before} (applied {applied_before:?}) before the crash, \
         {after} (applied {applied_after:?}) on reopening"
    );
    ensure!(
        after >= before && applied_after >= applied_before,
        "replica {id} came back with less than it had: revision {after} < {before} or \
         applied {applied_after:?} < {applied_before:?}"
    );
    Ok(())
}

async fn crash_restart(n: u64, seed: u64) -> anyhow::Result<()> {
    let mut run = Run::start(
        n,
        seed,
        ClusterConfig::default(),
        WorkloadConfig::spread(n, 4),
    )
    .await?;
    run.pause(300, 600).await;
    let leader = run.cluster.wait_leader(5 * SECOND).await?;
    let follower = run.others(leader)[0];
    eprintln!("crashing follower {follower}");
    crash_and_restart(&mut run, follower).await?;
    run.pause(300, 600).await;
    let leader = run.cluster.wait_leader(5 * SECOND).await?;
    eprintln!("crashing leader {leader}");
    let replica = run.cluster.must(leader)?;
    let before = replica.reader().current_revision()?;
    drop(replica);
    run.cluster.crash(leader).await?;
    let new = run.cluster.wait_new_leader(leader, 5 * SECOND).await?;
    eprintln!("new leader {new}");
    run.pause(300, 600).await;
    let replica = run.cluster.restart(leader).await?;
    let after = replica.reader().current_revision()?;
    ensure!(
        after >= before,
        "old leader {leader} came back at revision {after} < {before}"
    );
    drop(replica);
    run.pause(500, 800).await;
    let (cluster, _) = run.finish().await?;
    cluster.shutdown().await;
    Ok(())
}

fn put_txn(key: String, value: String) -> Command {
    Command::Txn(Txn {
        success: vec![Op::Put {
            key: Bytes::from(key),
            value: Bytes::from(value),
        }],
        ..Txn::default()
    })
}

async fn snapshot_catch_up(seed: u64) -> anyhow::Result<()> {
    let n = 3;
    let config = ClusterConfig {
        snapshot_after_logs: 64,
        logs_kept_after_snapshot: 4,
        ..ClusterConfig::default()
    };
    let mut run = Run::start(n, seed, config, WorkloadConfig::spread(n, 4)).await?;
    run.pause(300, 500).await;
    let leader_id = run.cluster.wait_leader(5 * SECOND).await?;
    let cut_off = run.others(leader_id)[0];
    let f = run.cluster.must(cut_off)?;
    run.cluster.isolate(cut_off);
    // Let anything in flight land, then note where the follower stands.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let f_log = f.metrics().last_log_index.unwrap_or(0);
    let f_revision = f.reader().current_revision()?;
    eprintln!("cut off follower {cut_off} at log index {f_log}, revision {f_revision}");
    drop(f);

    // Build history the follower will not have.
    let leader = run.cluster.must(leader_id)?;
    let mut written = 0u64;
    let mut last_revision = 0;
    for _ in 0..150 {
        let r = leader
            .write(put_txn(format!("/bulk/{written}"), format!("v{written}")))
            .await
            .context("bulk write on the leader")?;
        last_revision = r.revision;
        written += 1;
    }
    // Record the history before forgetting it, then compact past the follower.
    run.reference
        .capture(&leader, last_revision, 10 * SECOND)
        .await?;
    let compact_to = last_revision;
    let result = leader.compact(compact_to).await?;
    ensure!(
        result.error.is_none(),
        "compaction refused: {:?}",
        result.error
    );
    ensure!(
        compact_to > f_revision + 1,
        "compaction did not pass the follower"
    );
    let compact_index = leader.metrics().last_applied.map_or(0, |l| l.index);
    match leader.watch(f_revision + 1, Bytes::new()) {
        Err(ReplicaError::Read(ReadError::Expired {
            requested,
            compacted,
        })) => ensure!(
            requested == f_revision + 1 && compacted == compact_to,
            "Expired names revision {requested} / compacted {compacted}"
        ),
        Err(e) => bail!("a watch at a compacted revision failed with {e}, not Expired"),
        Ok(_) => bail!(
            "a watch at compacted revision {} was accepted",
            f_revision + 1
        ),
    }
    // Write on until the leader's snapshot covers the compaction and its log
    // no longer holds what the follower lacks.
    let deadline = Instant::now() + 20 * SECOND;
    loop {
        let m = leader.metrics();
        let purged = m.purged.map_or(0, |l| l.index);
        let snapshot = m.snapshot.map_or(0, |l| l.index);
        if purged > f_log && snapshot >= compact_index {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "leader purged its log only to {purged} (follower needs {f_log}), snapshot at \
                 {snapshot} (compaction at {compact_index}) after {written} writes"
            );
        }
        leader
            .write(put_txn(format!("/bulk/{written}"), format!("v{written}")))
            .await
            .context("bulk write on the leader")?;
        written += 1;
    }
    let purged = leader.metrics().purged.map_or(0, |l| l.index);
    let leader_applied = leader.metrics().last_applied.map_or(0, |l| l.index);
    eprintln!(
        "{written} bulk writes, compacted to {compact_to}; leader purged log to {purged} \
         (follower has up to {f_log}), applied {leader_applied}"
    );
    drop(leader);

    run.cluster.heal();
    let f = run.cluster.must(cut_off)?;
    let deadline = Instant::now() + 10 * SECOND;
    while f.metrics().last_applied.map_or(0, |l| l.index) < leader_applied {
        if Instant::now() >= deadline {
            bail!(
                "follower {cut_off} did not catch up: applied {:?}, leader was at {leader_applied}",
                f.metrics().last_applied
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = f.metrics();
    let snapshot = m.snapshot.map_or(0, |l| l.index);
    eprintln!(
        "follower {cut_off} caught up: applied {:?}, snapshot {:?}, purged {:?}, compacted {}",
        m.last_applied,
        m.snapshot,
        m.purged,
        f.reader().compacted_revision()?
    );
    // Its log ended at f_log and the leader no longer had the entries after
    // it: the only way to catch up was a snapshot.
    ensure!(
        snapshot > f_log,
        "follower {cut_off} has no snapshot past its old log end {f_log}: {:?}",
        m.snapshot
    );
    ensure!(
        f.reader().compacted_revision()? >= compact_to,
        "follower {cut_off} did not take the compaction"
    );
    drop(f);
    run.pause(300, 600).await;

    let (cluster, finished) = run.finish().await?;
    // Watchers on the cut-off follower were behind the compaction when the
    // snapshot replaced its state: they must have been told Expired.
    for chain in finished.chains.iter().filter(|c| c.spec.node == cut_off) {
        ensure!(
            chain.expired.is_some(),
            "watcher on {cut_off} ({:?}) was not told Expired; endings {:?}",
            chain.spec,
            chain.endings
        );
    }
    // The follower's reads equal the leader's.
    let leader = cluster.must(finished.leader)?;
    let all = leader
        .range(
            &RangeRequest::prefix(Bytes::new()),
            Consistency::Linearizable,
        )
        .await?;
    cluster.wait_revision(all.revision, 10 * SECOND).await?;
    let f = cluster.must(cut_off)?;
    let mut at = RangeRequest::prefix(Bytes::new());
    at.revision = Some(all.revision);
    let mine = f.range(&at, Consistency::Stale).await?;
    ensure!(
        mine.kvs == all.kvs,
        "follower {cut_off} reads {} keys at revision {}, the leader {}",
        mine.kvs.len(),
        all.revision,
        all.kvs.len()
    );
    ensure!(all.kvs.len() >= 150, "only {} keys", all.kvs.len());
    drop((leader, f));
    cluster.shutdown().await;
    Ok(())
}

async fn membership(seed: u64, remove_leader: bool) -> anyhow::Result<()> {
    let n = 3;
    let mut load = WorkloadConfig::spread(n, 4);
    load.clients.push(4);
    load.watchers.push(WatchSpec::all(4, true));
    let mut run = Run::start(n, seed, ClusterConfig::default(), load).await?;
    run.pause(300, 500).await;
    let leader_id = run.cluster.wait_leader(5 * SECOND).await?;
    run.cluster.start_node(4).await?;
    let leader = run.cluster.must(leader_id)?;
    tokio::time::timeout(10 * SECOND, leader.add_learner(4, member(4)))
        .await
        .context("adding learner 4 timed out")??;
    let learners: BTreeSet<NodeId> = leader
        .metrics()
        .membership_config
        .membership()
        .learner_ids()
        .collect();
    ensure!(learners.contains(&4), "4 is not a learner: {learners:?}");
    run.pause(200, 400).await;
    tokio::time::timeout(10 * SECOND, leader.promote(BTreeSet::from([4])))
        .await
        .context("promoting 4 timed out")??;
    let voters: BTreeSet<NodeId> = leader
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    ensure!(voters.contains(&4), "4 is not a voter: {voters:?}");
    eprintln!("voters now {voters:?}");
    run.pause(300, 500).await;
    let victim = if remove_leader {
        leader_id
    } else {
        *run.others(leader_id)
            .iter()
            .find(|&&id| id != 4)
            .context("no follower to remove")?
    };
    eprintln!("removing voter {victim} (leader {leader_id})");
    tokio::time::timeout(10 * SECOND, leader.remove(victim))
        .await
        .context("removing a voter timed out")??;
    drop(leader);
    // The remaining voters agree on a leader among themselves.
    let deadline = Instant::now() + 10 * SECOND;
    let new_leader = loop {
        let l = run.cluster.wait_leader(5 * SECOND).await?;
        if l != victim {
            break l;
        }
        ensure!(
            Instant::now() < deadline,
            "removed leader {victim} stays leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let voters: BTreeSet<NodeId> = run
        .cluster
        .must(new_leader)?
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    ensure!(
        !voters.contains(&victim) && voters.len() == 3,
        "voters after removal: {voters:?}"
    );
    run.cluster.crash(victim).await?;
    run.pause(600, 900).await;
    let (cluster, _) = run.finish().await?;
    cluster.shutdown().await;
    Ok(())
}

/// A seeded random schedule: every few hundred milliseconds one of isolate a
/// replica, partition the group in two, drop and delay messages, heal, crash
/// a replica (keeping a majority of them running) or restart one.
async fn random_faults(n: u64, seed: u64) -> anyhow::Result<()> {
    let mut run = Run::start(
        n,
        seed,
        ClusterConfig::default(),
        WorkloadConfig::spread(n, 5),
    )
    .await?;
    let max_down = ((n - 1) / 2) as usize;
    let mut down: Vec<NodeId> = Vec::new();
    let until = Instant::now() + 5 * SECOND;
    let mut step = 0;
    while Instant::now() < until {
        run.pause(200, 600).await;
        step += 1;
        let running = run.cluster.running();
        let pick = |rng: &mut StdRng, ids: &[NodeId]| ids[rng.random_range(0..ids.len())];
        let what = match run.rng.random_range(0..6u32) {
            0 => {
                let id = pick(&mut run.rng, &running);
                run.cluster.isolate(id);
                format!("isolate {id}")
            }
            1 => {
                let mut all: Vec<NodeId> = (1..=n).collect();
                all.shuffle(&mut run.rng);
                let k = run.rng.random_range(1..=(n as usize) / 2);
                let (a, b) = all.split_at(k);
                run.cluster.partition(&[a, b]);
                format!("partition {a:?} | {b:?}")
            }
            2 => {
                let p = run.rng.random_range(0.02..0.2);
                let max_delay = Duration::from_millis(run.rng.random_range(1..30));
                run.cluster.router().update_faults(|f| {
                    f.drop_request = p;
                    f.drop_response = p;
                    f.delay = Some((Duration::ZERO, max_delay));
                });
                format!("drop p={p:.2}, delay up to {max_delay:?}")
            }
            3 => {
                run.cluster.heal();
                "heal".to_owned()
            }
            4 if down.len() < max_down => {
                let id = pick(&mut run.rng, &running);
                run.cluster.crash(id).await?;
                down.push(id);
                format!("crash {id}")
            }
            _ if !down.is_empty() => {
                let id = down.swap_remove(run.rng.random_range(0..down.len()));
                run.cluster.restart(id).await?;
                format!("restart {id}")
            }
            _ => "nothing".to_owned(),
        };
        eprintln!("step {step}: {what}");
    }
    for id in down {
        run.cluster.restart(id).await?;
    }
    run.cluster.heal();
    let (cluster, _) = run.finish().await?;
    cluster.shutdown().await;
    Ok(())
}

/// Waits for `cond` (polled every 20 ms) or fails after `timeout` with `what`.
async fn wait_for(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A write whose log entry is truncated on the leader it was proposed to,
/// while a copy survives on another replica and is committed later, must
/// not be retried as if it had never been proposed.
///
/// openraft answers `ForwardToLeader` to a client whose entry was truncated
/// by a new leader (`DeleteConflictLog`). That entry can still be committed:
/// here the old leader A replicated it to B only; a leader X of a higher term
/// (elected by C, D, E, whose own entries never leave X) truncates it on A;
/// then B, whose log is more up to date than D's and E's, is elected by them
/// and commits it. A create-if-absent proposed on A is thus applied once by
/// B, and `Replica::write`, taking the `ForwardToLeader` as "retry", proposes
/// it again: the retry finds the key present and reports "not swapped" for a
/// write that took effect.
async fn truncated_write_is_not_retried(seed: u64) -> anyhow::Result<()> {
    let config = ClusterConfig {
        request_timeout: Duration::from_secs(20),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(5, seed, config).await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let a = cluster.wait_leader(5 * SECOND).await?;
    let mut others: Vec<NodeId> = (1..=5).filter(|&i| i != a).collect();
    others.shuffle(&mut rng);
    let b = others[0];
    let cde: Vec<NodeId> = others[1..].to_vec();
    eprintln!("old leader {a}, its last follower {b}, the others {cde:?}");

    // C, D and E never send entries except to A: whoever of them leads
    // keeps its entries to itself (and later hands them to A only).
    let senders = cde.clone();
    cluster.router().update_faults(|f| {
        f.filter = Some(MessageFilter(Arc::new(move |from, to, req| {
            senders.contains(&from)
                && to != a
                && matches!(req, PeerRequest::AppendEntries(r) if !r.entries.is_empty())
        })));
    });
    cluster.partition(&[&[a, b], &cde]);
    let ra = cluster.must(a)?;
    let rb = cluster.must(b)?;
    let start_index = ra.metrics().last_log_index.unwrap_or(0);
    let key = Bytes::from_static(b"/reg/truncated");
    let value = Bytes::from_static(b"created-once");
    let create = Command::Txn(Txn {
        compares: vec![Compare {
            key: key.clone(),
            condition: Condition::Absent,
        }],
        success: vec![Op::Put {
            key: key.clone(),
            value: value.clone(),
        }],
        failure: vec![],
    });
    let recorder = Arc::new(Recorder::new());
    let op = recorder.invoke(
        1,
        key.to_vec(),
        linearizability::Op::Cas {
            expected: None,
            new: value.to_vec(),
        },
    );
    let writer = {
        let ra = ra.clone();
        tokio::spawn(async move { ra.write(create).await })
    };
    wait_for(5 * SECOND, "the create to reach A and B", || {
        ra.metrics().last_log_index > Some(start_index)
            && rb.metrics().last_log_index > Some(start_index)
    })
    .await?;
    let x = {
        let deadline = Instant::now() + 5 * SECOND;
        loop {
            if let Some(x) = cde
                .iter()
                .copied()
                .find(|&id| cluster.replica(id).is_some_and(|r| r.is_leader()))
            {
                break x;
            }
            ensure!(Instant::now() < deadline, "C, D, E elected no leader");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let rest: Vec<NodeId> = cde.iter().copied().filter(|&i| i != x).collect();
    eprintln!("X = {x} leads {cde:?} with entries nobody else has");

    // A meets X (and loses its copy); B meets D and E (and wins with it).
    let mut b_side = vec![b];
    b_side.extend(&rest);
    cluster.partition(&[&[a, x], &b_side]);
    wait_for(
        10 * SECOND,
        "B to lead D and E and apply the create",
        || {
            rb.is_leader()
                && rb
                    .reader()
                    .get(&key, None)
                    .is_ok_and(|r| r.kv.is_some_and(|kv| kv.value == value))
        },
    )
    .await?;
    eprintln!("B = {b} committed the create that A's client still waits for");
    cluster.heal();
    let result = tokio::time::timeout(30 * SECOND, writer)
        .await
        .context("the create never returned")?
        .context("the writer task failed")?;
    eprintln!("the create returned {result:?}");
    match &result {
        Ok(r) => recorder.complete(op, Outcome::Cas(r.succeeded)),
        Err(_) => recorder.timeout(op),
    }
    let leader = cluster.wait_leader(5 * SECOND).await?;
    let read = recorder.invoke(2, key.to_vec(), linearizability::Op::Read);
    let now = cluster
        .must(leader)?
        .get(&key, None, Consistency::Linearizable)
        .await?;
    recorder.complete(read, Outcome::Read(now.kv.map(|kv| kv.value.to_vec())));
    let verdict = linearizability::check(&recorder.history());
    drop((ra, rb));
    cluster.shutdown().await;
    match verdict {
        linearizability::CheckResult::Ok => Ok(()),
        linearizability::CheckResult::Violation(v) => {
            bail!("the create took effect but its client was told {result:?}:\n{v}")
        }
        other => bail!("undecided: {other:?}"),
    }
}

/// The checker is not vacuous here: a read served stale by an old leader cut
/// off from the group is a violation it must report. Deterministic: the old
/// leader cannot learn of the new write while partitioned.
async fn stale_read_is_caught(seed: u64) -> anyhow::Result<()> {
    let cluster = Cluster::start(3, seed, ClusterConfig::default()).await?;
    let recorder = Recorder::new();
    let key = b"/reg/stale".to_vec();
    let old = cluster.wait_leader(5 * SECOND).await?;
    let old_leader = cluster.must(old)?;

    let id = recorder.invoke(1, key.clone(), linearizability::Op::Write(b"v1".to_vec()));
    old_leader
        .write(put_txn("/reg/stale".into(), "v1".into()))
        .await?;
    recorder.complete(id, Outcome::Done);

    let majority: Vec<NodeId> = (1..=3).filter(|&i| i != old).collect();
    cluster.partition(&[&[old], &majority]);
    let new = cluster.wait_new_leader(old, 5 * SECOND).await?;
    let id = recorder.invoke(2, key.clone(), linearizability::Op::Write(b"v2".to_vec()));
    cluster
        .must(new)?
        .write(put_txn("/reg/stale".into(), "v2".into()))
        .await?;
    recorder.complete(id, Outcome::Done);

    // A linearizable read on the old leader must not answer.
    let id = recorder.invoke(3, key.clone(), linearizability::Op::Read);
    match old_leader.get(&key, None, Consistency::Linearizable).await {
        Ok(resp) => {
            recorder.complete(id, Outcome::Read(resp.kv.map(|kv| kv.value.to_vec())));
            let verdict = linearizability::check(&recorder.history());
            bail!("the partitioned old leader served a linearizable read; verdict {verdict:?}");
        }
        Err(ReplicaError::Unavailable(_)) => recorder.fail(id),
        Err(e) => bail!("linearizable read on the old leader failed with {e}, not Unavailable"),
    }
    ensure!(
        linearizability::check(&recorder.history()).is_ok(),
        "the honest history was rejected"
    );

    // A stale read there returns the old value; recorded as if it were
    // linearizable, the checker must reject the history.
    let id = recorder.invoke(3, key.clone(), linearizability::Op::Read);
    let resp = old_leader.get(&key, None, Consistency::Stale).await?;
    let value = resp.kv.map(|kv| kv.value.to_vec());
    ensure!(
        value.as_deref() == Some(b"v1".as_slice()),
        "stale read returned {value:?}"
    );
    recorder.complete(id, Outcome::Read(value));
    match linearizability::check(&recorder.history()) {
        linearizability::CheckResult::Violation(v) => eprintln!("rejected as expected:\n{v}"),
        other => bail!("the checker accepted a stale read: {other:?}"),
    }
    drop(old_leader);
    cluster.shutdown().await;
    Ok(())
}

macro_rules! scenario {
    ($(#[$attr:meta])* $name:ident, $default_seed:expr, $body:expr) => {
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let seed = seed($default_seed);
            bounded(seed, $body(seed)).await;
        }
    };
}

scenario!(leader_in_minority_3, 11, |s| leader_in_minority(3, s));
scenario!(leader_in_minority_5, 12, |s| leader_in_minority(5, s));
scenario!(leader_in_majority_3, 21, |s| leader_in_majority(3, s));
scenario!(leader_in_majority_5, 22, |s| leader_in_majority(5, s));
scenario!(drop_and_delay_3, 31, |s| drop_and_delay(3, s));
scenario!(drop_and_delay_5, 32, |s| drop_and_delay(5, s));
scenario!(crash_restart_3, 41, |s| crash_restart(3, s));
scenario!(crash_restart_5, 42, |s| crash_restart(5, s));
scenario!(snapshot_catch_up_3, 51, snapshot_catch_up);
scenario!(membership_remove_follower, 61, |s| membership(s, false));
scenario!(membership_remove_leader, 62, |s| membership(s, true));
scenario!(random_faults_3, 81, |s| random_faults(3, s));
scenario!(random_faults_5, 82, |s| random_faults(5, s));
scenario!(
    truncated_write_is_not_retried_5,
    91,
    truncated_write_is_not_retried
);
scenario!(
    stale_read_from_cut_off_leader_is_caught,
    71,
    stale_read_is_caught
);

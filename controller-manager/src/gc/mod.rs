//! The garbage collector: deletes objects whose owners are all gone, and
//! carries out the `orphan` and `foregroundDeletion` finalizers that the
//! apiserver puts on an owner deleted with propagationPolicy Orphan or
//! Foreground (Background, the default, removes the owner at once and
//! leaves its dependents to this collector).
//!
//! - [`kinds`]: every served kind behind one trait, for run-time kinds.
//! - [`graph`]: objects by uid with their owners; dependents by owner.
//! - [`decide`]: the pure decisions.
//!
//! Every watched kind's shared informer feeds the [`graph::Graph`]; each
//! change queues the uids that need a look (the object, its dependents
//! when it goes, its owners being deleted). Workers start once every
//! informer has listed. An owner absent from the graph is checked with a
//! linearizable GET before its dependents are deleted, since the owner's
//! watch may lag its dependents'. Every delete carries the uid it was
//! decided for as a precondition. Events (source `garbage-collector`):
//! `GarbageCollected` on a deleted dependent, `OrphanedDependents` and
//! `DeletingDependents` on an owner.
//!
//! Watched: every served kind but ClusterRole and ClusterRoleBinding (the
//! controller-manager may not read them); an owner of an unwatched or
//! unknown kind is looked up with a GET, and an owner that cannot be read
//! keeps its dependents (a retry with back-off).

pub mod config;
pub mod decide;
pub mod graph;
pub mod kinds;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_client::events::{EventType, Recorder};
use capstan_client::runtime::{Action, RateLimit, WorkQueue, run_workers};
use capstan_client::{DeleteParams, Error};
use capstan_proto::api::core::v1::ObjectReference;
use capstan_proto::api::meta::v1::OwnerReference;
use capstan_proto::kinds::lookup;

use crate::controller::{Context, Shutdown};
use decide::{DependentPlan, OwnerDuty, OwnerState};
use graph::{FOREGROUND, Graph, Item, ORPHAN};
use kinds::{KindOps, MetaChange};

pub use config::GarbageCollectorConfig;

/// Kinds the controller-manager may not list, hence not watched.
const UNWATCHED: &[&str] = &["ClusterRole", "ClusterRoleBinding"];

/// How soon an owner waiting for its dependents is looked at again.
const FOREGROUND_RECHECK: Duration = Duration::from_secs(1);

struct Shared {
    ctx: Context,
    graph: Mutex<Graph>,
    kinds: Vec<Box<dyn KindOps>>,
    recorder: Recorder,
}

/// Runs until `stop`.
pub async fn run(ctx: Context, stop: Shutdown) -> anyhow::Result<()> {
    let config = ctx.config.garbage_collector_controller.clone();
    if !config.enable_garbage_collector {
        stop.requested().await;
        return Ok(());
    }
    let shared = Arc::new(Shared {
        recorder: ctx.recorder("garbage-collector"),
        graph: Mutex::new(Graph::default()),
        kinds: kinds::all(),
        ctx,
    });
    let queue: WorkQueue<String> = WorkQueue::new(RateLimit::default());
    let watched: Vec<&dyn KindOps> = shared
        .kinds
        .iter()
        .map(|k| k.as_ref())
        .filter(|k| !UNWATCHED.contains(&k.info().kind))
        .collect();
    for ops in &watched {
        let info = ops.info();
        let (q, s) = (queue.clone(), Arc::downgrade(&shared));
        ops.watch(
            &shared.ctx.informers,
            Box::new(move |change| {
                let Some(s) = s.upgrade() else { return };
                let uids = {
                    let mut g = s.graph.lock().unwrap_or_else(|p| p.into_inner());
                    match change {
                        MetaChange::Restarted(all) => g.replace_kind(
                            info,
                            all.iter()
                                .filter_map(|m| Item::from_meta(info, m))
                                .collect(),
                        ),
                        MetaChange::Applied(m) => Item::from_meta(info, &m)
                            .map(|i| g.upsert(i))
                            .unwrap_or_default(),
                        MetaChange::Deleted(m) => g.remove(&m.uid),
                    }
                };
                uids.into_iter().for_each(|u| q.add(u));
            }),
        );
    }
    while !watched.iter().all(|k| k.is_synced(&shared.ctx.informers)) {
        tokio::select! {
            () = stop.requested() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    tracing::info!(
        objects = shared.graph.lock().map(|g| g.len()).unwrap_or(0),
        "garbage collector synced"
    );
    let workers = {
        let shared = shared.clone();
        run_workers(
            queue.clone(),
            config.concurrent_gc_syncs,
            move |uid: String| {
                let shared = shared.clone();
                async move { shared.reconcile(&uid).await }
            },
        )
    };
    tokio::select! {
        () = workers => {}
        () = stop.requested() => queue.shutdown(),
    }
    Ok(())
}

fn reference(item: &Item) -> ObjectReference {
    ObjectReference {
        kind: item.info.kind.into(),
        api_version: item.info.api_version.into(),
        namespace: item.namespace.clone(),
        name: item.name.clone(),
        uid: item.uid.clone(),
        ..Default::default()
    }
}

impl Shared {
    fn ops(&self, info: &capstan_proto::KindInfo) -> &dyn KindOps {
        self.kinds
            .iter()
            .find(|k| k.info() == info)
            .map(|k| k.as_ref())
            .expect("every KindInfo comes from KINDS")
    }

    async fn reconcile(&self, uid: &str) -> Result<Action, Error> {
        let (item, duty, known, has_dependents) = {
            let g = self.graph.lock().unwrap_or_else(|p| p.into_inner());
            let Some(item) = g.get(uid).cloned() else {
                return Ok(Action::Done);
            };
            let duty = decide::owner_duty(&item, &g);
            let known: Vec<Option<OwnerState>> = item
                .owners
                .iter()
                .map(|r| decide::owner_state_in_graph(r, &g))
                .collect();
            let has_dependents = !g.dependents(uid).is_empty();
            (item, duty, known, has_dependents)
        };
        match duty {
            Some(OwnerDuty::Orphan(dependents)) => self.orphan(&item, dependents).await,
            Some(OwnerDuty::Foreground { delete, done }) => {
                self.foreground(&item, delete, done).await
            }
            None => {
                let mut states = Vec::with_capacity(known.len());
                for (r, s) in item.owners.iter().zip(known) {
                    states.push(match s {
                        Some(s) => s,
                        None => self.owner_state_live(&item, r).await?,
                    });
                }
                let plan = decide::dependent_plan(&item, &states, has_dependents);
                self.carry_out(&item, plan).await
            }
        }
    }

    /// The state of owner `r` of `item` from the apiserver.
    async fn owner_state_live(&self, item: &Item, r: &OwnerReference) -> Result<OwnerState, Error> {
        let Some(info) = lookup(&r.api_version, &r.kind) else {
            tracing::warn!(dependent = %item.describe(), owner = %format!("{}/{}", r.api_version, r.kind), "owner of an unknown kind; the dependent is kept");
            return Ok(OwnerState::Solid);
        };
        let namespace = if info.namespaced {
            item.namespace.as_str()
        } else {
            ""
        };
        if info.namespaced && item.namespace.is_empty() {
            // A cluster-scoped object cannot have a namespaced owner: keep it.
            return Ok(OwnerState::Solid);
        }
        let meta = self
            .ops(info)
            .get_meta(&self.ctx.client, namespace, &r.name)
            .await?;
        Ok(match meta {
            Some(m) if m.uid == r.uid => {
                if m.deletion_timestamp.is_some() && m.finalizers.iter().any(|f| f == FOREGROUND) {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                }
            }
            _ => OwnerState::Dangling,
        })
    }

    async fn carry_out(&self, item: &Item, plan: DependentPlan) -> Result<Action, Error> {
        let ops = self.ops(item.info);
        match plan {
            DependentPlan::Keep => {}
            DependentPlan::RemoveOwnerRefs(uids) => {
                let drop = uids.clone();
                ops.edit_meta(
                    &self.ctx.client,
                    &item.namespace,
                    &item.name,
                    &item.uid,
                    Box::new(move |m| {
                        let before = m.owner_references.len();
                        m.owner_references.retain(|r| !drop.contains(&r.uid));
                        m.owner_references.len() != before
                    }),
                )
                .await?;
                tracing::info!(object = %item.describe(), owners = ?uids, "removed references to owners that are gone");
            }
            DependentPlan::Delete(policy) => {
                let params = DeleteParams {
                    precondition_uid: item.uid.clone(),
                    propagation_policy: policy.into(),
                    ..Default::default()
                };
                match ops
                    .delete(&self.ctx.client, &item.namespace, &item.name, params)
                    .await
                {
                    Ok(()) => {}
                    // The uid changed: a new object of that name, not ours.
                    Err(e) if e.is_conflict() => return Ok(Action::Done),
                    Err(e) => return Err(e),
                }
                let owners: Vec<String> = item
                    .owners
                    .iter()
                    .map(|r| format!("{} {}", r.kind, r.name))
                    .collect();
                tracing::info!(object = %item.describe(), policy, "garbage collected: its owners are gone");
                self.recorder.publish_ref(
                    reference(item),
                    EventType::Normal,
                    "GarbageCollected",
                    &format!(
                        "Deleted {} ({policy}): its owners ({}) are gone",
                        item.describe(),
                        owners.join(", ")
                    ),
                );
            }
        }
        Ok(Action::Done)
    }

    async fn orphan(&self, owner: &Item, dependents: Vec<Item>) -> Result<Action, Error> {
        for d in &dependents {
            let owner_uid = owner.uid.clone();
            self.ops(d.info)
                .edit_meta(
                    &self.ctx.client,
                    &d.namespace,
                    &d.name,
                    &d.uid,
                    Box::new(move |m| {
                        let before = m.owner_references.len();
                        m.owner_references.retain(|r| r.uid != owner_uid);
                        m.owner_references.len() != before
                    }),
                )
                .await?;
        }
        self.remove_finalizer(owner, ORPHAN).await?;
        tracing::info!(owner = %owner.describe(), dependents = dependents.len(), "orphaned dependents");
        self.recorder.publish_ref(
            reference(owner),
            EventType::Normal,
            "OrphanedDependents",
            &format!(
                "Removed the ownerReference to {} from {} dependents",
                owner.describe(),
                dependents.len()
            ),
        );
        Ok(Action::Done)
    }

    async fn foreground(
        &self,
        owner: &Item,
        delete: Vec<(Item, &'static str)>,
        done: bool,
    ) -> Result<Action, Error> {
        if !delete.is_empty() {
            self.recorder.publish_ref(
                reference(owner),
                EventType::Normal,
                "DeletingDependents",
                &format!(
                    "Deleting {} dependents of {} before it",
                    delete.len(),
                    owner.describe()
                ),
            );
        }
        for (d, policy) in &delete {
            let params = DeleteParams {
                precondition_uid: d.uid.clone(),
                propagation_policy: (*policy).into(),
                ..Default::default()
            };
            match self
                .ops(d.info)
                .delete(&self.ctx.client, &d.namespace, &d.name, params)
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e),
            }
        }
        if done {
            self.remove_finalizer(owner, FOREGROUND).await?;
            tracing::info!(owner = %owner.describe(), "dependents gone; foreground deletion finished");
            Ok(Action::Done)
        } else {
            Ok(Action::RequeueAfter(FOREGROUND_RECHECK))
        }
    }

    async fn remove_finalizer(&self, item: &Item, finalizer: &'static str) -> Result<bool, Error> {
        self.ops(item.info)
            .edit_meta(
                &self.ctx.client,
                &item.namespace,
                &item.name,
                &item.uid,
                Box::new(move |m| {
                    let before = m.finalizers.len();
                    m.finalizers.retain(|f| f != finalizer);
                    m.finalizers.len() != before
                }),
            )
            .await
    }
}

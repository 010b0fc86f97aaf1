//! One reconcile of a Deployment (Kubernetes's `syncDeployment`): claim
//! its ReplicaSets, then — deleted: status only; paused or resized: scale
//! without rolling; otherwise roll out with its strategy. Idempotent; it
//! reads the informers' stores and writes only what differs.

use std::time::Duration;

use capstan_client::events::{EventType, Recorder};
use capstan_client::runtime::Action;
use capstan_client::watcher::{ObjectKey, Store};
use capstan_client::{Api, Client};
use capstan_proto::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use capstan_proto::api::core::v1::Pod;
use capstan_proto::labels::Selector;
use capstan_proto::timestamp::Time;

use super::hash::equal_ignore_hash;
use super::revision::{DESIRED_REPLICAS, set_replicas_annotations};
use super::rolling::{desired, is_rolling, max_surge, replicas};
use super::status;
use crate::pods::{controller_of, controller_ref, is_being_deleted};

/// The Deployment controller's shared state.
pub struct DeploymentController {
    /// The client.
    pub client: Client,
    /// Every Deployment.
    pub deployments: Store<Deployment>,
    /// Every ReplicaSet.
    pub sets: Store<ReplicaSet>,
    /// Every pod (Recreate waits for old ones to go).
    pub pods: Store<Pod>,
    /// Events about Deployments.
    pub recorder: Recorder,
}

/// A Deployment's ReplicaSets during one sync, updated as they are written.
pub struct Sets {
    /// Every ReplicaSet the Deployment controls.
    pub all: Vec<ReplicaSet>,
}

impl Sets {
    /// The index of the new ReplicaSet: the oldest whose template equals
    /// the Deployment's (Kubernetes's `FindNewReplicaSet`).
    pub fn new_index(&self, d: &Deployment) -> Option<usize> {
        let template = d.spec.as_ref().and_then(|s| s.template.as_ref())?;
        let mut candidates: Vec<usize> = (0..self.all.len())
            .filter(|i| {
                self.all[*i]
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, template))
            })
            .collect();
        candidates.sort_by_key(|i| {
            let m = self.all[*i].metadata.as_ref();
            let t = m.and_then(|m| m.creation_timestamp);
            (
                t.map_or(0, |t| t.seconds),
                t.map_or(0, |t| t.nanos),
                m.map(|m| m.name.clone()),
            )
        });
        candidates.first().copied()
    }

    /// The new set and the old ones.
    pub fn split(&self, d: &Deployment) -> (Option<&ReplicaSet>, Vec<&ReplicaSet>) {
        let new = self.new_index(d);
        let old = (0..self.all.len())
            .filter(|i| Some(*i) != new)
            .map(|i| &self.all[i])
            .collect();
        (new.map(|i| &self.all[i]), old)
    }

    /// Replaces the set with `rs`'s name by `rs`.
    pub fn replace(&mut self, rs: ReplicaSet) {
        let name = super::rolling::name(&rs).to_owned();
        match self
            .all
            .iter_mut()
            .find(|s| super::rolling::name(s) == name)
        {
            Some(slot) => *slot = rs,
            None => self.all.push(rs),
        }
    }

    /// The set named `name`.
    pub fn get(&self, name: &str) -> Option<&ReplicaSet> {
        self.all.iter().find(|s| super::rolling::name(s) == name)
    }
}

impl DeploymentController {
    /// Reconciles the Deployment `key`.
    pub async fn sync(&self, key: &ObjectKey) -> anyhow::Result<Action> {
        let Some(d) = self.deployments.get(&key.namespace, &key.name) else {
            return Ok(Action::Done);
        };
        let mut d = (*d).clone();
        let selector = match d.spec.as_ref().and_then(|s| s.selector.as_ref()) {
            Some(s) => crate::selector::from_label_selector(s),
            None => Ok(Selector::everything()),
        };
        let selector = match selector {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => {
                self.recorder.publish(
                    &d,
                    EventType::Warning,
                    "SelectingAll",
                    "This deployment is selecting all pods. A non-empty selector is required.",
                );
                return Ok(Action::Done);
            }
            Err(e) => {
                self.recorder
                    .publish(&d, EventType::Warning, "InvalidSelector", &e);
                return Ok(Action::Done);
            }
        };
        let mut sets = Sets {
            all: self.claim(&d, &selector).await?,
        };
        if is_being_deleted(d.metadata.as_ref()) {
            self.sync_status(&mut d, &sets).await?;
            return Ok(Action::Done);
        }
        self.check_paused_conditions(&mut d).await?;
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || self.is_scaling_event(&d, &sets) {
            self.scale_and_clean(&mut d, &mut sets, paused).await?;
            return Ok(Action::Done);
        }
        if is_rolling(&d) {
            self.rollout_rolling(&mut d, &mut sets).await
        } else {
            self.rollout_recreate(&mut d, &mut sets).await
        }
    }

    /// Kubernetes's `ClaimReplicaSets`: owned sets that still match are
    /// kept, matching orphans adopted, owned non-matching ones released.
    async fn claim(&self, d: &Deployment, selector: &Selector) -> anyhow::Result<Vec<ReplicaSet>> {
        let meta = d.metadata.clone().unwrap_or_default();
        let deleting = is_being_deleted(Some(&meta));
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &meta.namespace);
        let mut owned = Vec::new();
        for rs in self.sets.list() {
            let Some(rm) = rs.metadata.as_ref() else {
                continue;
            };
            if rm.namespace != meta.namespace {
                continue;
            }
            let matches = selector.matches(&rm.labels);
            match controller_of(Some(rm)) {
                Some(r) if r.uid == meta.uid && r.kind == "Deployment" => {
                    if matches || deleting {
                        owned.push((*rs).clone());
                        continue;
                    }
                    let mut released = (*rs).clone();
                    released
                        .metadata
                        .get_or_insert_with(Default::default)
                        .owner_references
                        .retain(|r| r.uid != meta.uid);
                    match api.update(&released).await {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => anyhow::bail!("releasing ReplicaSet {}: {e}", rm.name),
                    }
                }
                Some(_) => {}
                None if matches && !deleting && !is_being_deleted(Some(rm)) => {
                    let mut adopted = (*rs).clone();
                    adopted
                        .metadata
                        .get_or_insert_with(Default::default)
                        .owner_references
                        .push(controller_ref(d));
                    match api.update(&adopted).await {
                        Ok(updated) => owned.push(updated),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => anyhow::bail!("adopting ReplicaSet {}: {e}", rm.name),
                    }
                }
                None => {}
            }
        }
        Ok(owned)
    }

    /// Whether some active set was sized for a different `spec.replicas`.
    fn is_scaling_event(&self, d: &Deployment, sets: &Sets) -> bool {
        let want = desired(d).to_string();
        sets.all.iter().filter(|rs| replicas(rs) > 0).any(|rs| {
            rs.metadata
                .as_ref()
                .and_then(|m| m.annotations.get(DESIRED_REPLICAS))
                .is_some_and(|v| *v != want)
        })
    }

    /// Sets Progressing to DeploymentPaused / DeploymentResumed on change.
    async fn check_paused_conditions(&self, d: &mut Deployment) -> anyhow::Result<()> {
        if status::progress_deadline(d).is_none() {
            return Ok(());
        }
        let mut st = d.status.clone().unwrap_or_default();
        let cond = status::get(&st, status::PROGRESSING);
        if cond.is_some_and(|c| c.reason == status::TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| c.reason == status::PAUSED);
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let now = Time::now();
        if paused && !paused_cond {
            status::set(
                &mut st,
                status::condition(
                    status::PROGRESSING,
                    "Unknown",
                    status::PAUSED,
                    "Deployment is paused".into(),
                    now,
                ),
            );
        } else if !paused && paused_cond {
            status::set(
                &mut st,
                status::condition(
                    status::PROGRESSING,
                    "Unknown",
                    status::RESUMED,
                    "Deployment is resumed".into(),
                    now,
                ),
            );
        } else {
            return Ok(());
        }
        self.write_status(d, st).await
    }

    /// Writes `st` as the Deployment's status; `d` becomes the stored object.
    pub async fn write_status(
        &self,
        d: &mut Deployment,
        st: DeploymentStatus,
    ) -> anyhow::Result<()> {
        d.status = Some(st);
        let api: Api<Deployment> = Api::all(self.client.clone());
        *d = api
            .update_status(d)
            .await
            .map_err(|e| anyhow::anyhow!("Deployment {}: status update: {e}", name(d)))?;
        Ok(())
    }

    /// Sets the Deployment's revision annotation to `revision` if it differs.
    pub async fn set_revision(&self, d: &mut Deployment, revision: i64) -> anyhow::Result<()> {
        let r = revision.to_string();
        let meta = d.metadata.get_or_insert_with(Default::default);
        if meta.annotations.get(super::revision::REVISION) == Some(&r) {
            return Ok(());
        }
        meta.annotations
            .insert(super::revision::REVISION.to_owned(), r);
        let api: Api<Deployment> = Api::all(self.client.clone());
        *d = api
            .update(d)
            .await
            .map_err(|e| anyhow::anyhow!("Deployment {}: revision annotation: {e}", name(d)))?;
        Ok(())
    }

    /// Resizes `rs` to `size` and refreshes its replicas annotations;
    /// records a ScalingReplicaSet Event. Whether the size changed.
    pub async fn scale(
        &self,
        d: &Deployment,
        sets: &mut Sets,
        rs_name: &str,
        size: i32,
    ) -> anyhow::Result<bool> {
        let Some(rs) = sets.get(rs_name) else {
            return Ok(false);
        };
        let from = replicas(rs);
        let mut copy = rs.clone();
        let annotations_changed =
            set_replicas_annotations(&mut copy, desired(d), desired(d) + max_surge(d));
        if from == size && !annotations_changed {
            return Ok(false);
        }
        copy.spec.get_or_insert_with(Default::default).replicas = Some(size);
        let api: Api<ReplicaSet> = Api::all(self.client.clone());
        let updated = api
            .update(&copy)
            .await
            .map_err(|e| anyhow::anyhow!("scaling ReplicaSet {rs_name} to {size}: {e}"))?;
        sets.replace(updated);
        if from != size {
            let direction = if size > from { "up" } else { "down" };
            self.recorder.publish(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                &format!("Scaled {direction} replica set {rs_name} to {size}"),
            );
        }
        Ok(from != size)
    }

    /// Counters and Available only (Kubernetes's `syncDeploymentStatus`).
    pub async fn sync_status(&self, d: &mut Deployment, sets: &Sets) -> anyhow::Result<()> {
        let (new, _) = sets.split(d);
        let all: Vec<&ReplicaSet> = sets.all.iter().collect();
        let st = status::calculate(d, &all, new, Time::now());
        if Some(&st) != d.status.as_ref() {
            self.write_status(d, st).await?;
        }
        Ok(())
    }

    /// Counters and both conditions (Kubernetes's `syncRolloutStatus`);
    /// asks to come back when the progress deadline would pass.
    pub async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        sets: &Sets,
    ) -> anyhow::Result<Action> {
        let (new, _) = sets.split(d);
        let all: Vec<&ReplicaSet> = sets.all.iter().collect();
        let now = Time::now();
        let mut st = status::calculate(d, &all, new, now);
        status::rollout_conditions(d, new.map(super::rolling::name), &mut st, now);
        if Some(&st) != d.status.as_ref() {
            self.write_status(d, st.clone()).await?;
        }
        Ok(match status::deadline_in(d, &st, now) {
            Some(secs) if !status::complete(d, &st) && secs >= 0 => {
                Action::RequeueAfter(Duration::from_secs(secs as u64 + 1))
            }
            _ => Action::Done,
        })
    }
}

/// The Deployment's name.
pub fn name(d: &Deployment) -> &str {
    d.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("")
}

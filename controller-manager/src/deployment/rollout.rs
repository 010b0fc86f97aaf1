//! The strategies and the scale-only path (Kubernetes's `rolloutRolling`,
//! `rolloutRecreate`, `sync`/`scale` and `cleanupDeployment`). Each step
//! does one round of resizes and returns; the ReplicaSets' status changes
//! bring the Deployment back for the next.

use capstan_client::events::EventType;
use capstan_client::runtime::Action;
use capstan_client::{Api, DeleteParams};
use capstan_proto::api::apps::v1::{Deployment, ReplicaSet};

use super::revision::{DESIRED_REPLICAS, revision};
use super::rolling::{self, available, desired, is_rolling, name, replicas};
use super::status;
use super::sync::{DeploymentController, Sets};
use crate::pods::is_being_deleted;

/// `spec.revisionHistoryLimit` (apps/v1 default 10).
fn history_limit(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
}

fn old_names(sets: &Sets, d: &Deployment) -> Vec<String> {
    sets.split(d)
        .1
        .iter()
        .map(|rs| name(rs).to_owned())
        .collect()
}

impl DeploymentController {
    /// One RollingUpdate step: grow the new set within maxSurge, else
    /// shrink old sets within maxUnavailable, else (complete) prune history.
    pub async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        sets: &mut Sets,
    ) -> anyhow::Result<Action> {
        let new_name = self.new_replica_set(d, sets, true).await?;
        // Scale up the new set.
        if let Some(new_name) = &new_name {
            let new = sets.get(new_name).cloned().unwrap_or_default();
            let target = if replicas(&new) > desired(d) {
                desired(d)
            } else {
                let all: Vec<&ReplicaSet> = sets.all.iter().collect();
                rolling::new_rs_new_replicas(d, &all, &new)
            };
            if target != replicas(&new) && self.scale(d, sets, new_name, target).await? {
                return self.sync_rollout_status(d, sets).await;
            }
        }
        // Scale down old sets.
        let plan = {
            let (new, old) = sets.split(d);
            let active: Vec<&ReplicaSet> = old.into_iter().filter(|rs| replicas(rs) > 0).collect();
            rolling::reconcile_old(d, new, &active)
        };
        let mut scaled = false;
        for (rs_name, size) in plan {
            scaled |= self.scale(d, sets, &rs_name, size).await?;
        }
        if scaled {
            return self.sync_rollout_status(d, sets).await;
        }
        let (new, _) = sets.split(d);
        let all: Vec<&ReplicaSet> = sets.all.iter().collect();
        let st = status::calculate(d, &all, new, capstan_proto::timestamp::Time::now());
        if status::complete(d, &st) {
            self.cleanup(d, sets).await?;
        }
        self.sync_rollout_status(d, sets).await
    }

    /// One Recreate step: old sets to 0; wait until their pods are gone;
    /// then the new set to `spec.replicas`.
    pub async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        sets: &mut Sets,
    ) -> anyhow::Result<Action> {
        self.new_replica_set(d, sets, false).await?;
        let mut scaled = false;
        for rs_name in old_names(sets, d) {
            if sets.get(&rs_name).is_some_and(|rs| replicas(rs) > 0) {
                scaled |= self.scale(d, sets, &rs_name, 0).await?;
            }
        }
        if scaled || self.old_pods_running(d, sets) {
            return self.sync_rollout_status(d, sets).await;
        }
        let Some(new_name) = self.new_replica_set(d, sets, true).await? else {
            return self.sync_rollout_status(d, sets).await;
        };
        self.scale(d, sets, &new_name, desired(d)).await?;
        let (new, _) = sets.split(d);
        let all: Vec<&ReplicaSet> = sets.all.iter().collect();
        let st = status::calculate(d, &all, new, capstan_proto::timestamp::Time::now());
        if status::complete(d, &st) {
            self.cleanup(d, sets).await?;
        }
        self.sync_rollout_status(d, sets).await
    }

    /// Whether any pod of an old set is still there and not finished.
    fn old_pods_running(&self, d: &Deployment, sets: &Sets) -> bool {
        let (_, old) = sets.split(d);
        if old
            .iter()
            .any(|rs| rs.status.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
        {
            return true;
        }
        let uids: Vec<&str> = old
            .iter()
            .filter_map(|rs| rs.metadata.as_ref().map(|m| m.uid.as_str()))
            .collect();
        self.pods.list().iter().any(|p| {
            let phase = p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
            crate::pods::controller_of(p.metadata.as_ref())
                .is_some_and(|r| uids.contains(&r.uid.as_str()))
                && phase != "Succeeded"
                && phase != "Failed"
        })
    }

    /// Paused or resized: scale without rolling (Kubernetes's `sync`), and
    /// while paused prune history.
    pub async fn scale_and_clean(
        &self,
        d: &mut Deployment,
        sets: &mut Sets,
        paused: bool,
    ) -> anyhow::Result<()> {
        self.new_replica_set(d, sets, false).await?;
        self.scale_sets(d, sets).await?;
        if paused {
            self.cleanup(d, sets).await?;
        }
        self.sync_status(d, sets).await
    }

    /// Kubernetes's `scale`: one active set takes `spec.replicas`; a
    /// saturated new set means old ones go to 0; otherwise the change is
    /// spread proportionally (RollingUpdate).
    async fn scale_sets(&self, d: &Deployment, sets: &mut Sets) -> anyhow::Result<()> {
        let (new, old) = sets.split(d);
        let active: Vec<&ReplicaSet> = new
            .into_iter()
            .chain(old.iter().copied())
            .filter(|rs| replicas(rs) > 0)
            .collect();
        let lone = match active.len() {
            0 => {
                // The newest set takes them (new first, else the latest old).
                let mut old_sorted = old.clone();
                rolling::sort_oldest_first(&mut old_sorted);
                new.or(old_sorted.last().copied())
                    .map(|rs| name(rs).to_owned())
            }
            1 => Some(name(active[0]).to_owned()),
            _ => None,
        };
        if let Some(lone) = lone {
            if sets.get(&lone).is_some_and(|rs| replicas(rs) != desired(d)) {
                self.scale(d, sets, &lone, desired(d)).await?;
            }
            return Ok(());
        }
        let saturated = new.is_some_and(|n| {
            replicas(n) == desired(d)
                && available(n) == desired(d)
                && n.metadata
                    .as_ref()
                    .and_then(|m| m.annotations.get(DESIRED_REPLICAS))
                    == Some(&desired(d).to_string())
        });
        if saturated {
            for rs_name in old_names(sets, d) {
                if sets.get(&rs_name).is_some_and(|rs| replicas(rs) > 0) {
                    self.scale(d, sets, &rs_name, 0).await?;
                }
            }
            return Ok(());
        }
        if is_rolling(d) {
            let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let plan = rolling::proportional(d, &active, status_replicas);
            let touched: Vec<String> = active.iter().map(|rs| name(rs).to_owned()).collect();
            for rs_name in touched {
                let size = plan.iter().find(|(n, _)| *n == rs_name).map(|(_, s)| *s);
                let current = sets.get(&rs_name).map(replicas).unwrap_or(0);
                // Every active set gets the new replicas annotations.
                self.scale(d, sets, &rs_name, size.unwrap_or(current))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes old sets beyond `revisionHistoryLimit` that have no
    /// replicas left, lowest revision first.
    async fn cleanup(&self, d: &Deployment, sets: &mut Sets) -> anyhow::Result<()> {
        let limit = history_limit(d).max(0) as usize;
        let (_, old) = sets.split(d);
        let mut cleanable: Vec<&ReplicaSet> = old
            .into_iter()
            .filter(|rs| !is_being_deleted(rs.metadata.as_ref()))
            .collect();
        if cleanable.len() <= limit {
            return Ok(());
        }
        let diff = cleanable.len() - limit;
        cleanable.sort_by_key(|rs| {
            let t = rs.metadata.as_ref().and_then(|m| m.creation_timestamp);
            (
                revision(rs),
                t.map_or(0, |t| t.seconds),
                t.map_or(0, |t| t.nanos),
            )
        });
        let doomed: Vec<ReplicaSet> = cleanable
            .into_iter()
            .take(diff)
            .filter(|rs| {
                let st = rs.status.clone().unwrap_or_default();
                let generation = rs.metadata.as_ref().and_then(|m| m.generation).unwrap_or(0);
                st.replicas.unwrap_or(0) == 0
                    && replicas(rs) == 0
                    && generation <= st.observed_generation.unwrap_or(0)
            })
            .cloned()
            .collect();
        let api: Api<ReplicaSet> = Api::all(self.client.clone());
        for rs in doomed {
            let meta = rs.metadata.clone().unwrap_or_default();
            let params = DeleteParams {
                precondition_uid: meta.uid.clone(),
                ..Default::default()
            };
            let ns_api: Api<ReplicaSet> = Api::namespaced(api.client().clone(), &meta.namespace);
            match ns_api.delete(&meta.name, &params).await {
                Ok(_) => {
                    sets.all.retain(|s| name(s) != meta.name);
                    self.recorder.publish(
                        d,
                        EventType::Normal,
                        "DeletedReplicaSet",
                        &format!(
                            "Deleted old replica set {} (revision {})",
                            meta.name,
                            revision(&rs)
                        ),
                    );
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => anyhow::bail!("deleting old ReplicaSet {}: {e}", meta.name),
            }
        }
        Ok(())
    }
}

//! Finding or creating the Deployment's new ReplicaSet (Kubernetes's
//! `getNewReplicaSet`), with revision bookkeeping: the new set's revision
//! is one above every old set's; an old set brought back (rollback) keeps
//! its name and pods and gets that new revision.

use capstan_client::Api;
use capstan_client::events::EventType;
use capstan_proto::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::timestamp::Time;

use super::hash::{POD_TEMPLATE_HASH, compute_hash, equal_ignore_hash};
use super::revision::{max_revision, revision, set_new_replica_set_annotations};
use super::rolling::{desired, max_surge, new_rs_new_replicas};
use super::status;
use super::sync::{DeploymentController, Sets, name};
use crate::pods::{controller_ref, is_controlled_by};

fn min_ready_seconds(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.min_ready_seconds)
}

impl DeploymentController {
    /// The new ReplicaSet's name: the existing one brought up to date
    /// (annotations, minReadySeconds), or with `create` a new one sized by
    /// the strategy; `None` when there is none and `create` is false.
    pub async fn new_replica_set(
        &self,
        d: &mut Deployment,
        sets: &mut Sets,
        create: bool,
    ) -> anyhow::Result<Option<String>> {
        let (existing, old) = sets.split(d);
        let new_revision = max_revision(old.iter().copied()) + 1;
        if let Some(existing) = existing {
            let rs_name = super::rolling::name(existing).to_owned();
            let mut copy = existing.clone();
            let annotations_changed = set_new_replica_set_annotations(
                d,
                &mut copy,
                new_revision,
                true,
                desired(d),
                desired(d) + max_surge(d),
            );
            let spec = copy.spec.get_or_insert_with(Default::default);
            let min_ready_changed = spec.min_ready_seconds != min_ready_seconds(d);
            if annotations_changed || min_ready_changed {
                spec.min_ready_seconds = min_ready_seconds(d);
                let api: Api<ReplicaSet> = Api::all(self.client.clone());
                let updated = api
                    .update(&copy)
                    .await
                    .map_err(|e| anyhow::anyhow!("updating ReplicaSet {rs_name}: {e}"))?;
                sets.replace(updated);
            }
            let rev = sets.get(&rs_name).map(revision).unwrap_or(new_revision);
            self.set_revision(d, rev).await?;
            let st = d.status.clone().unwrap_or_default();
            if status::progress_deadline(d).is_some()
                && status::get(&st, status::PROGRESSING).is_none()
            {
                let mut st = st;
                status::set(
                    &mut st,
                    status::condition(
                        status::PROGRESSING,
                        "True",
                        status::FOUND_NEW_RS,
                        format!("Found new replica set \"{rs_name}\""),
                        Time::now(),
                    ),
                );
                self.write_status(d, st).await?;
            }
            return Ok(Some(rs_name));
        }
        if !create {
            return Ok(None);
        }

        let meta = d.metadata.clone().unwrap_or_default();
        let spec = d.spec.clone().unwrap_or_default();
        let mut template = spec.template.clone().unwrap_or_default();
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&template, collision_count);
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let mut selector = spec.selector.clone().unwrap_or_default();
        selector
            .match_labels
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let rs_name = format!("{}-{hash}", meta.name);
        let mut rs = ReplicaSet {
            metadata: Some(ObjectMeta {
                name: rs_name.clone(),
                namespace: meta.namespace.clone(),
                labels: template
                    .metadata
                    .as_ref()
                    .map(|m| m.labels.clone())
                    .unwrap_or_default(),
                owner_references: vec![controller_ref(d)],
                ..Default::default()
            }),
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector: Some(selector),
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = sets.all.iter().chain(std::iter::once(&rs)).collect();
        let size = new_rs_new_replicas(d, &all, &rs);
        rs.spec.get_or_insert_with(Default::default).replicas = Some(size);
        set_new_replica_set_annotations(
            d,
            &mut rs,
            new_revision,
            false,
            desired(d),
            desired(d) + max_surge(d),
        );

        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &meta.namespace);
        let created = match api.create(&rs).await {
            Ok(created) => created,
            Err(capstan_client::Error::AlreadyExists { .. }) => {
                // Ours from an earlier sync not yet seen, or a hash collision.
                let current = api
                    .get(&rs_name)
                    .await
                    .map_err(|e| anyhow::anyhow!("reading ReplicaSet {rs_name}: {e}"))?;
                let same = current
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .zip(spec.template.as_ref())
                    .is_some_and(|(a, b)| equal_ignore_hash(a, b));
                if is_controlled_by(current.metadata.as_ref(), d) && same {
                    sets.replace(current);
                    return Ok(Some(rs_name));
                }
                let mut st = d.status.clone().unwrap_or_default();
                st.collision_count = Some(collision_count.unwrap_or(0) + 1);
                self.write_status(d, st).await?;
                anyhow::bail!(
                    "ReplicaSet {rs_name} exists with another template (hash collision); collisionCount raised"
                );
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set \"{rs_name}\": {e}");
                self.recorder
                    .publish(d, EventType::Warning, status::FAILED_RS_CREATE, &msg);
                if status::progress_deadline(d).is_some() {
                    let mut st = d.status.clone().unwrap_or_default();
                    status::set(
                        &mut st,
                        status::condition(
                            status::PROGRESSING,
                            "False",
                            status::FAILED_RS_CREATE,
                            msg.clone(),
                            Time::now(),
                        ),
                    );
                    self.write_status(d, st).await?;
                }
                anyhow::bail!("{msg}");
            }
        };
        if size > 0 {
            self.recorder.publish(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                &format!("Scaled up replica set {rs_name} to {size}"),
            );
        }
        sets.replace(created);
        self.set_revision(d, new_revision).await?;
        if status::progress_deadline(d).is_some() {
            let mut st = d.status.clone().unwrap_or_default();
            status::set(
                &mut st,
                status::condition(
                    status::PROGRESSING,
                    "True",
                    status::NEW_RS_CREATED,
                    format!("Created new replica set \"{rs_name}\""),
                    Time::now(),
                ),
            );
            self.write_status(d, st).await?;
        }
        tracing::debug!(deployment = name(d), replica_set = %rs_name, revision = new_revision, "created new ReplicaSet");
        Ok(Some(rs_name))
    }
}

//! The creates and deletes of one sync (Kubernetes's `manageReplicas`):
//! at most [`BURST_REPLICAS`] per sync, creations in slow-start batches
//! (1, 2, 4, ... stopping at the first batch with a failure, so a
//! quota or admission refusal costs one request, not hundreds), every
//! outcome an Event on the owner and recorded in the expectations first.

use std::sync::Arc;

use capstan_client::events::EventType;
use capstan_client::watcher::ObjectKey;
use capstan_client::{Api, DeleteParams};
use capstan_proto::api::core::v1::Pod;
use capstan_proto::api::meta::v1::ObjectMeta;

use super::sync::ReplicaController;
use super::{BURST_REPLICAS, Replicated, rank};
use crate::pods::controller_ref;

/// A pod from `owner`'s template (Kubernetes's `GetPodFromTemplate`):
/// its labels, annotations and spec, generateName `<owner>-`, and a
/// controller reference to `owner`.
pub fn pod_from_template<K: Replicated>(owner: &K) -> anyhow::Result<Pod> {
    let meta = owner.metadata().cloned().unwrap_or_default();
    let template = owner.pod_template().ok_or_else(|| {
        anyhow::anyhow!(
            "{} {}/{} has no spec.template",
            K::INFO.kind,
            meta.namespace,
            meta.name
        )
    })?;
    let tmeta = template.metadata.clone().unwrap_or_default();
    Ok(Pod {
        metadata: Some(ObjectMeta {
            generate_name: format!("{}-", meta.name),
            namespace: meta.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            owner_references: vec![controller_ref(owner)],
            ..Default::default()
        }),
        spec: template.spec.clone(),
        status: None,
    })
}

/// Brings the number of `pods` (active, claimed) to the owner's desired
/// replicas.
pub async fn manage_replicas<K: Replicated>(
    rc: &ReplicaController<K>,
    owner: &K,
    key: &ObjectKey,
    pods: &[Arc<Pod>],
) -> anyhow::Result<()> {
    let desired = owner.desired_replicas().max(0) as usize;
    if pods.len() < desired {
        let count = (desired - pods.len()).min(BURST_REPLICAS);
        let pod = pod_from_template(owner)?;
        rc.expectations.expect(key, count as i64, []);
        create_in_batches(rc, owner, key, &pod, count).await
    } else if pods.len() > desired {
        let count = (pods.len() - desired).min(BURST_REPLICAS);
        let refs: Vec<&Pod> = pods.iter().map(|p| &**p).collect();
        let victims = rank::pods_to_delete(&refs, count);
        let uid = |p: &Pod| {
            p.metadata
                .as_ref()
                .map(|m| m.uid.clone())
                .unwrap_or_default()
        };
        rc.expectations
            .expect(key, 0, victims.iter().map(|p| uid(p)));
        let api: Api<Pod> = Api::namespaced(rc.client.clone(), &key.namespace);
        let results = futures::future::join_all(victims.iter().map(|p| {
            let api = api.clone();
            async move {
                let name = p
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                let params = DeleteParams {
                    precondition_uid: uid(p),
                    ..Default::default()
                };
                let result = api.delete(&name, &params).await;
                (name, uid(p), result)
            }
        }))
        .await;
        let mut first_error = None;
        for (name, pod_uid, result) in results {
            match result {
                Ok(_) => rc.recorder.publish(
                    owner,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                ),
                Err(e) => {
                    rc.expectations.deletion_observed(key, &pod_uid);
                    if !e.is_not_found() {
                        rc.recorder.publish(
                            owner,
                            EventType::Warning,
                            "FailedDelete",
                            &format!("Error deleting: {e}"),
                        );
                        first_error.get_or_insert(anyhow::anyhow!("deleting pod {name}: {e}"));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    } else {
        Ok(())
    }
}

async fn create_in_batches<K: Replicated>(
    rc: &ReplicaController<K>,
    owner: &K,
    key: &ObjectKey,
    pod: &Pod,
    count: usize,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(rc.client.clone(), &key.namespace);
    let mut remaining = count;
    let mut batch = 1usize;
    while remaining > 0 {
        let size = batch.min(remaining);
        let results = futures::future::join_all((0..size).map(|_| api.create(pod))).await;
        remaining -= size;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(created) => {
                    let name = created
                        .metadata
                        .as_ref()
                        .map(|m| m.name.as_str())
                        .unwrap_or("");
                    rc.recorder.publish(
                        owner,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {name}"),
                    );
                }
                Err(e) => {
                    // Never to be observed: lower the expectation now.
                    rc.expectations.creation_observed(key);
                    rc.recorder.publish(
                        owner,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    first_error.get_or_insert(anyhow::anyhow!("creating a pod: {e}"));
                }
            }
        }
        if let Some(e) = first_error {
            // The batches not tried will not be observed either.
            for _ in 0..remaining {
                rc.expectations.creation_observed(key);
            }
            return Err(e);
        }
        batch *= 2;
    }
    Ok(())
}

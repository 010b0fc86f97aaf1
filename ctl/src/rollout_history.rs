//! `rollout history` and `rollout undo` for a Deployment, from the
//! ReplicaSets it controls (an ownerReference with `controller: true` and
//! its uid): each carries its revision in the
//! `deployment.kubernetes.io/revision` annotation and the change cause in
//! `kubernetes.io/change-cause`.
//!
//! Undo is kubectl's client-side rollback: find the ReplicaSet of the
//! revision asked for (default: the highest below the current one), copy
//! its pod template, minus the `pod-template-hash` label, into the
//! Deployment with its annotations (except the controller's own), in one
//! JSON patch that carries the resourceVersion read. The controller then
//! rolls forward to it as a new revision.

use std::collections::BTreeMap;

use capstan_client::Api;
use capstan_client::api::{ListParams, Patch};
use capstan_proto::api::apps::v1::{Deployment, ReplicaSet};
use capstan_proto::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};

use crate::rollout::reference;
use crate::{Context, Error};

/// The ReplicaSet annotation holding its revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The annotation recording why a revision was made.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// The label the controller adds to tell its ReplicaSets apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Annotations of a ReplicaSet that are the controller's, never copied
/// back to the Deployment on rollback (kubectl's `annotationsToSkip`).
const SKIPPED_ANNOTATIONS: &[&str] = &[
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// One revision: the ReplicaSet that holds it.
#[derive(Clone, Debug)]
pub struct Revision {
    /// The revision number.
    pub number: i64,
    /// The ReplicaSet's name.
    pub replica_set: String,
    /// `kubernetes.io/change-cause`, if set.
    pub change_cause: Option<String>,
    /// The ReplicaSet's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The ReplicaSet's pod template.
    pub template: PodTemplateSpec,
}

/// The revisions of the deployment with `uid`, from the ReplicaSets it
/// controls, in ascending order. ReplicaSets without a readable revision
/// are left out (kubectl counts them as revision 0, which it never shows).
pub fn revisions(uid: &str, replica_sets: &[ReplicaSet]) -> Vec<Revision> {
    let mut out: Vec<Revision> = replica_sets
        .iter()
        .filter_map(|rs| {
            let meta = rs.metadata.as_ref()?;
            let controlled = meta
                .owner_references
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid);
            if !controlled {
                return None;
            }
            let number: i64 = meta.annotations.get(REVISION)?.parse().ok()?;
            Some(Revision {
                number,
                replica_set: meta.name.clone(),
                change_cause: meta.annotations.get(CHANGE_CAUSE).cloned(),
                annotations: meta.annotations.clone(),
                template: rs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.clone())
                    .unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by_key(|r| r.number);
    out
}

/// The revision undo rolls back to: `to` when non-zero, else the highest
/// below the current (highest) one.
pub fn target(name: &str, history: &[Revision], to: i64) -> Result<Revision, String> {
    if to != 0 {
        return history
            .iter()
            .find(|r| r.number == to)
            .cloned()
            .ok_or_else(|| format!("unable to find specified revision {to} in history"));
    }
    match history {
        [] => Err(format!("no rollout history found for deployment {name:?}")),
        [_] => Err(format!(
            "no revision to roll back to: deployment {name:?} has only one revision"
        )),
        [.., previous, _current] => Ok(previous.clone()),
    }
}

/// The template without the controller's `pod-template-hash` label.
fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    if let Some(meta) = t.metadata.as_mut() {
        meta.labels.remove(POD_TEMPLATE_HASH);
    }
    t
}

fn uid(d: &Deployment) -> String {
    d.metadata
        .as_ref()
        .map(|m| m.uid.clone())
        .unwrap_or_default()
}

async fn history_of(ctx: &Context, d: &Deployment) -> Result<Vec<Revision>, Error> {
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let replica_sets = api.list_all(&ListParams::default()).await?.items;
    Ok(revisions(&uid(d), &replica_sets))
}

fn yaml(template: &PodTemplateSpec) -> Result<String, Error> {
    serde_json::to_value(template)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_yaml_ng::to_string(&v).map_err(|e| e.to_string()))
        .map_err(|e| Error::Other(format!("cannot encode the pod template: {e}")))
}

/// Runs `rollout history`.
pub async fn history(
    ctx: &Context,
    api: &Api<Deployment>,
    name: &str,
    revision: Option<i64>,
) -> Result<(), Error> {
    let d = crate::rollout::get(api, name).await?;
    let history = history_of(ctx, &d).await?;
    if let Some(number) = revision {
        let Some(r) = history.iter().find(|r| r.number == number) else {
            return Err(Error::Other(format!(
                "unable to find the specified revision {number} of {}",
                reference(name)
            )));
        };
        println!("{} with revision #{number}", reference(name));
        println!("Pod Template:");
        for line in yaml(&r.template)?.lines() {
            println!("  {line}");
        }
        return Ok(());
    }
    if history.is_empty() {
        println!("No rollout history found in {}.", reference(name));
        return Ok(());
    }
    // kubectl's layout: a tab writer with two spaces of padding.
    println!("{} ", reference(name));
    let width = "REVISION".len().max(
        history
            .iter()
            .map(|r| r.number.to_string().len())
            .max()
            .unwrap_or(0),
    );
    println!("{:<width$}  CHANGE-CAUSE", "REVISION");
    for r in &history {
        println!(
            "{:<width$}  {}",
            r.number,
            r.change_cause.as_deref().unwrap_or("<none>")
        );
    }
    println!();
    Ok(())
}

/// Runs `rollout undo`.
pub async fn undo(
    ctx: &Context,
    api: &Api<Deployment>,
    name: &str,
    to_revision: i64,
) -> Result<(), Error> {
    if to_revision < 0 {
        return Err(Error::Usage(format!(
            "--to-revision={to_revision}: must not be negative"
        )));
    }
    let d = crate::rollout::get(api, name).await?;
    let spec = d.spec.clone().unwrap_or_default();
    if spec.paused == Some(true) {
        return Err(Error::Other(format!(
            "you cannot rollback a paused deployment; resume it first with 'capctl rollout resume {}' and try again",
            reference(name)
        )));
    }
    let history = history_of(ctx, &d).await?;
    let revision = target(name, &history, to_revision).map_err(Error::Other)?;
    let template = without_hash(&revision.template);
    if spec.template.as_ref() == Some(&template) {
        println!(
            "{} skipped rollback (current template already matches revision {})",
            reference(name),
            revision.number
        );
        return Ok(());
    }
    let meta = d.metadata.clone().unwrap_or_default();
    let mut annotations = meta.annotations.clone();
    for (k, v) in &revision.annotations {
        if !SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let template = serde_json::to_value(&template)
        .map_err(|e| Error::Other(format!("cannot encode the pod template: {e}")))?;
    let patch = json!([
        {"op": "add", "path": "/metadata/resourceVersion", "value": meta.resource_version},
        {"op": "add", "path": "/metadata/annotations", "value": Value::from(serde_json::Map::from_iter(
            annotations.into_iter().map(|(k, v)| (k, Value::String(v)))
        ))},
        {"op": "add", "path": "/spec/template", "value": template},
    ]);
    api.patch(name, &Patch::Json(patch)).await?;
    println!("{} rolled back", reference(name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::apps::v1::ReplicaSetSpec;
    use capstan_proto::api::meta::v1::{ObjectMeta, OwnerReference};

    fn rs(name: &str, owner: &str, revision: Option<&str>) -> ReplicaSet {
        let mut annotations = BTreeMap::new();
        if let Some(r) = revision {
            annotations.insert(REVISION.to_owned(), r.to_owned());
        }
        ReplicaSet {
            metadata: Some(ObjectMeta {
                name: name.into(),
                annotations,
                owner_references: vec![OwnerReference {
                    uid: owner.into(),
                    controller: Some(true),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            spec: Some(ReplicaSetSpec::default()),
            status: None,
        }
    }

    #[test]
    fn revisions_of_the_owner_only_in_order() {
        let sets = [
            rs("web-3", "u1", Some("3")),
            rs("web-1", "u1", Some("1")),
            rs("other", "u2", Some("2")),
            rs("web-x", "u1", None),
        ];
        let h = revisions("u1", &sets);
        let numbers: Vec<i64> = h.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [1, 3]);
        assert_eq!(target("web", &h, 0).unwrap().replica_set, "web-1");
        assert_eq!(target("web", &h, 3).unwrap().replica_set, "web-3");
        let err = target("web", &h, 2).unwrap_err();
        assert_eq!(err, "unable to find specified revision 2 in history");
        assert!(target("web", &h[..1], 0).is_err());
        assert!(target("web", &[], 0).is_err());
    }
}

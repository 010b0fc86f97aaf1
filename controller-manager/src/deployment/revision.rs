//! Revision bookkeeping on ReplicaSets, as Kubernetes's deployment util:
//! each template a Deployment has run is a ReplicaSet whose
//! `deployment.kubernetes.io/revision` is its latest revision; when a
//! Deployment goes back to an old template (rollback), that ReplicaSet
//! gets the next revision number and its old one is appended to
//! `deployment.kubernetes.io/revision-history`.

use std::collections::BTreeMap;

use capstan_proto::api::apps::v1::{Deployment, ReplicaSet};

/// The revision of a ReplicaSet (and the Deployment's latest).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions of the same ReplicaSet, comma-separated.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled by it.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas + maxSurge then.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The longest revision history kept, in characters (as Kubernetes).
pub const MAX_HISTORY_CHARS: usize = 2000;

/// Deployment annotations never copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// A ReplicaSet's revision (0 when missing or unreadable).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .as_ref()
        .and_then(|m| m.annotations.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among `sets`.
pub fn max_revision<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter().map(revision).max().unwrap_or(0)
}

/// Copies the Deployment's own annotations to the ReplicaSet; whether any
/// changed.
fn copy_deployment_annotations(d: &Deployment, annotations: &mut BTreeMap<String, String>) -> bool {
    let mut changed = false;
    if let Some(m) = d.metadata.as_ref() {
        for (k, v) in &m.annotations {
            if NOT_COPIED.contains(&k.as_str()) || annotations.get(k) == Some(v) {
                continue;
            }
            annotations.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Sets desired-replicas and max-replicas; whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = &mut rs.metadata.get_or_insert_with(Default::default).annotations;
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_owned(), v);
            changed = true;
        }
    }
    changed
}

/// Kubernetes's `SetNewReplicaSetAnnotations`: the Deployment's
/// annotations, the revision raised to `new_revision` (the old one going
/// to the history), and for a new ReplicaSet (`exists` false) the replicas
/// annotations. Whether anything changed.
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    desired: i32,
    max: i32,
) -> bool {
    let a = &mut rs.metadata.get_or_insert_with(Default::default).annotations;
    let mut changed = copy_deployment_annotations(d, a);
    let old = a.get(REVISION).cloned().unwrap_or_default();
    let old_revision: i64 = match old.parse() {
        Ok(r) => r,
        Err(_) if old.is_empty() => 0,
        Err(_) => return changed,
    };
    if old_revision < new_revision {
        a.insert(REVISION.to_owned(), new_revision.to_string());
        changed = true;
        if !old.is_empty() {
            let history = match a.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => {
                    let mut entries: Vec<&str> = h.split(',').collect();
                    entries.push(&old);
                    while entries.join(",").len() > MAX_HISTORY_CHARS && entries.len() > 1 {
                        entries.remove(0);
                    }
                    entries.join(",")
                }
                _ => old.clone(),
            };
            a.insert(REVISION_HISTORY.to_owned(), history);
        }
    }
    if !exists && set_replicas_annotations(rs, desired, max) {
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn rs(revision: &str) -> ReplicaSet {
        ReplicaSet {
            metadata: Some(ObjectMeta {
                annotations: if revision.is_empty() {
                    BTreeMap::new()
                } else {
                    [(REVISION.to_owned(), revision.to_owned())].into()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn new_replica_set_gets_the_next_revision_and_replica_annotations() {
        let d = Deployment {
            metadata: Some(ObjectMeta {
                annotations: [
                    ("team".to_owned(), "a".to_owned()),
                    (REVISION.to_owned(), "9".to_owned()),
                ]
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let olds = [rs("1"), rs("3"), rs("x")];
        assert_eq!(max_revision(&olds), 3);
        let mut new = rs("");
        assert!(set_new_replica_set_annotations(
            &d, &mut new, 4, false, 3, 4
        ));
        let a = &new.metadata.as_ref().unwrap().annotations;
        assert_eq!(a[REVISION], "4");
        assert_eq!(a["team"], "a");
        assert_eq!(a[DESIRED_REPLICAS], "3");
        assert_eq!(a[MAX_REPLICAS], "4");
        assert!(!a.contains_key(REVISION_HISTORY));
        assert!(
            !set_new_replica_set_annotations(&d, &mut new, 4, true, 3, 4),
            "idempotent"
        );
    }

    #[test]
    fn rollback_moves_the_old_revision_to_the_history() {
        let d = Deployment::default();
        let mut old = rs("1");
        assert!(set_new_replica_set_annotations(&d, &mut old, 3, true, 1, 1));
        assert!(set_new_replica_set_annotations(&d, &mut old, 5, true, 1, 1));
        let a = &old.metadata.as_ref().unwrap().annotations;
        assert_eq!(a[REVISION], "5");
        assert_eq!(a[REVISION_HISTORY], "1,3");
        assert!(
            !a.contains_key(DESIRED_REPLICAS),
            "existing sets keep theirs"
        );
        // Never lowered.
        assert!(!set_new_replica_set_annotations(
            &d, &mut old, 2, true, 1, 1
        ));
        assert_eq!(revision(&old), 5);
    }
}

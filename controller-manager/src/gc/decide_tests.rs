//! Owner graph decisions: background, orphan and foreground deletion.

use super::*;
use capstan_proto::Resource as _;
use capstan_proto::api::apps::v1::ReplicaSet;
use capstan_proto::api::core::v1::Pod;

fn owner_ref(uid: &str, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: format!("rs-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

fn rs(uid: &str, deleting: bool, finalizers: &[&str]) -> Item {
    Item {
        info: &ReplicaSet::INFO,
        namespace: "default".into(),
        name: format!("rs-{uid}"),
        uid: uid.into(),
        owners: vec![],
        deleting,
        finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
    }
}

fn pod(uid: &str, owners: Vec<OwnerReference>) -> Item {
    Item {
        info: &Pod::INFO,
        namespace: "default".into(),
        name: format!("pod-{uid}"),
        uid: uid.into(),
        owners,
        deleting: false,
        finalizers: vec![],
    }
}

#[test]
fn graph_tracks_dependents_and_what_to_look_at() {
    let mut g = Graph::default();
    let out = g.upsert(pod("p1", vec![owner_ref("r1", true)]));
    assert_eq!(out, vec!["p1".to_string()]);
    // The owner is not watched (yet): the dependent is indexed anyway.
    assert!(g.get("r1").is_none());
    g.upsert(rs("r1", false, &[]));
    assert_eq!(g.dependents("r1").len(), 1);
    // The owner goes: its dependents are to be looked at.
    assert_eq!(g.remove("r1"), vec!["p1".to_string()]);
    // An owner being deleted is looked at when a dependent changes or goes.
    g.upsert(rs("r2", true, &[FOREGROUND]));
    let out = g.upsert(pod("p2", vec![owner_ref("r2", true)]));
    assert!(out.contains(&"r2".to_string()), "{out:?}");
    assert!(g.remove("p2").contains(&"r2".to_string()));
    // A relist drops what is no longer there.
    let out = g.replace_kind(&Pod::INFO, vec![]);
    assert!(out.is_empty(), "{out:?}");
    assert!(g.get("p1").is_none());
    assert_eq!(g.len(), 1);
}

#[test]
fn dependents_of_gone_owners_are_deleted_in_the_background() {
    let item = pod("p", vec![owner_ref("r", true)]);
    assert_eq!(
        dependent_plan(&item, &[OwnerState::Dangling], false),
        DependentPlan::Delete("Background")
    );
    assert_eq!(
        dependent_plan(&item, &[OwnerState::Solid], false),
        DependentPlan::Keep
    );
    // One live owner keeps it; the dangling reference is dropped.
    let two = pod("p", vec![owner_ref("r", true), owner_ref("s", false)]);
    assert_eq!(
        dependent_plan(&two, &[OwnerState::Dangling, OwnerState::Solid], false),
        DependentPlan::RemoveOwnerRefs(vec!["r".into()])
    );
    // No owners, or already being deleted: nothing to do.
    assert_eq!(
        dependent_plan(&pod("p", vec![]), &[], false),
        DependentPlan::Keep
    );
    let mut deleting = item.clone();
    deleting.deleting = true;
    assert_eq!(
        dependent_plan(&deleting, &[OwnerState::Dangling], false),
        DependentPlan::Keep
    );
    // An owner waiting in the foreground: deleted, in the foreground when
    // it has dependents of its own.
    assert_eq!(
        dependent_plan(&item, &[OwnerState::WaitingForDependents], true),
        DependentPlan::Delete("Foreground")
    );
    assert_eq!(
        dependent_plan(&item, &[OwnerState::WaitingForDependents], false),
        DependentPlan::Delete("Background")
    );
}

#[test]
fn orphan_and_foreground_duties() {
    let mut g = Graph::default();
    g.upsert(pod("p1", vec![owner_ref("r", true)]));
    g.upsert(pod("p2", vec![owner_ref("r", false)]));
    // Not being deleted: no duty.
    g.upsert(rs("r", false, &[]));
    assert_eq!(owner_duty(g.get("r").unwrap(), &g), None);

    g.upsert(rs("r", true, &[ORPHAN]));
    let Some(OwnerDuty::Orphan(deps)) = owner_duty(g.get("r").unwrap(), &g) else {
        panic!("orphan duty expected");
    };
    assert_eq!(deps.len(), 2);
    assert_eq!(
        owner_state_in_graph(&owner_ref("r", true), &g),
        Some(OwnerState::Solid),
        "an orphaning owner keeps its dependents"
    );

    g.upsert(rs("r", true, &[FOREGROUND]));
    assert_eq!(
        owner_state_in_graph(&owner_ref("r", true), &g),
        Some(OwnerState::WaitingForDependents)
    );
    let Some(OwnerDuty::Foreground { delete, done }) = owner_duty(g.get("r").unwrap(), &g) else {
        panic!("foreground duty expected");
    };
    assert_eq!(delete.len(), 2);
    assert!(!done, "p1 blocks the owner's deletion");
    // p1 gone: only the non-blocking p2 is left, the owner may go.
    g.remove("p1");
    let Some(OwnerDuty::Foreground { done, .. }) = owner_duty(g.get("r").unwrap(), &g) else {
        panic!("foreground duty expected");
    };
    assert!(done);
    assert_eq!(owner_state_in_graph(&owner_ref("x", true), &g), None);
}

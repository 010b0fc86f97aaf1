//! The garbage collector's decisions, pure: what an object owes as an
//! owner being deleted ([`owner_duty`]: orphan its dependents, or delete
//! them first), and what becomes of it as a dependent given the state of
//! each of its owners ([`dependent_plan`]), as Kubernetes's
//! `attemptToDeleteItem` / `attemptToOrphan` / `processDeletingDependentsItem`.

use capstan_proto::api::meta::v1::OwnerReference;

use super::graph::{FOREGROUND, Graph, Item, ORPHAN};

/// What an owner reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists with the referenced uid (and is not waiting for dependents).
    Solid,
    /// Absent, or present with another uid.
    Dangling,
    /// Being deleted in the foreground: waits for its dependents to go.
    WaitingForDependents,
}

/// An owner's duty while it is being deleted.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnerDuty {
    /// `orphan`: remove the reference from these dependents, then the finalizer.
    Orphan(Vec<Item>),
    /// `foregroundDeletion`: delete these dependents (with this
    /// propagation policy); remove the finalizer when `done` (no dependent
    /// with `blockOwnerDeletion` left).
    Foreground {
        /// Dependents not being deleted yet, with the policy to delete them with.
        delete: Vec<(Item, &'static str)>,
        /// No blocking dependent remains.
        done: bool,
    },
}

/// What to do with a dependent.
#[derive(Clone, Debug, PartialEq)]
pub enum DependentPlan {
    /// Keep it as it is.
    Keep,
    /// It has a live owner: drop the references to these (dangling or
    /// waiting) owner uids.
    RemoveOwnerRefs(Vec<String>),
    /// Every owner is gone or going: delete it with this propagation policy.
    Delete(&'static str),
}

fn blocks(dependent: &Item, owner_uid: &str) -> bool {
    dependent
        .owners
        .iter()
        .any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true))
}

/// The duty of `item` as an owner being deleted, if any.
pub fn owner_duty(item: &Item, graph: &Graph) -> Option<OwnerDuty> {
    if !item.deleting {
        return None;
    }
    let dependents = graph.dependents(&item.uid);
    if item.has_finalizer(ORPHAN) {
        return Some(OwnerDuty::Orphan(dependents.into_iter().cloned().collect()));
    }
    if !item.has_finalizer(FOREGROUND) {
        return None;
    }
    let done = !dependents.iter().any(|d| blocks(d, &item.uid));
    let delete = dependents
        .iter()
        .filter(|d| !d.deleting)
        .map(|d| {
            let policy = if blocks(d, &item.uid) && !graph.dependents(&d.uid).is_empty() {
                "Foreground"
            } else {
                "Background"
            };
            ((*d).clone(), policy)
        })
        .collect();
    Some(OwnerDuty::Foreground { delete, done })
}

/// The state of owner `r` as far as the graph knows; `None` when the
/// graph has no object with that uid (the caller asks the apiserver, since
/// the owner's watch may lag the dependent's).
pub fn owner_state_in_graph(r: &OwnerReference, graph: &Graph) -> Option<OwnerState> {
    graph.get(&r.uid).map(|o| {
        if o.waits_for_dependents() {
            OwnerState::WaitingForDependents
        } else {
            OwnerState::Solid
        }
    })
}

/// What becomes of `item` given its owners' states (in `item.owners`
/// order); `has_dependents`: whether anything names it as owner.
pub fn dependent_plan(item: &Item, states: &[OwnerState], has_dependents: bool) -> DependentPlan {
    if item.deleting || item.owners.is_empty() {
        return DependentPlan::Keep;
    }
    let solid = states.contains(&OwnerState::Solid);
    let waiting = states.contains(&OwnerState::WaitingForDependents);
    if solid {
        let drop: Vec<String> = item
            .owners
            .iter()
            .zip(states)
            .filter(|(_, s)| **s != OwnerState::Solid)
            .map(|(r, _)| r.uid.clone())
            .collect();
        return if drop.is_empty() {
            DependentPlan::Keep
        } else {
            DependentPlan::RemoveOwnerRefs(drop)
        };
    }
    if waiting && has_dependents {
        DependentPlan::Delete("Foreground")
    } else {
        DependentPlan::Delete("Background")
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

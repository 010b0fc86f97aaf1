//! Informer events to work-queue keys, as Kubernetes's ReplicaSet
//! controller's event handlers: a pod change wakes its controller (and,
//! for an orphan, every controller whose selector matches it, so it can be
//! adopted), and lowers the controller's expectations when it is a
//! creation or deletion the controller was waiting to see.

use std::sync::Arc;

use capstan_client::runtime::WorkQueue;
use capstan_client::watcher::{ObjectKey, Store};
use capstan_proto::api::core::v1::Pod;
use capstan_proto::api::meta::v1::OwnerReference;

use super::Replicated;
use crate::expectations::Expectations;
use crate::informer::Change;
use crate::pods::{controller_of, is_being_deleted};

/// Every change of an owner object queues it.
pub fn on_owner<K: Replicated>(queue: WorkQueue<ObjectKey>) -> impl Fn(Change<'_, K>) {
    move |change| match change {
        Change::Restarted(all) => all.iter().for_each(|o| queue.add(ObjectKey::of(o))),
        Change::Applied { new, .. } => queue.add(ObjectKey::of(new)),
        Change::Deleted(o) => queue.add(ObjectKey::of(o)),
    }
}

/// Pod changes to owner keys and expectations.
pub fn on_pod<K: Replicated>(
    queue: WorkQueue<ObjectKey>,
    owners: Store<K>,
    expectations: Expectations,
) -> impl Fn(Change<'_, Pod>) {
    move |change| {
        let ctx = PodEvents {
            queue: &queue,
            owners: &owners,
            expectations: &expectations,
        };
        match change {
            Change::Restarted(_) => {
                // A relist: whatever was awaited is in it or never will be.
                for owner in owners.list() {
                    let key = ObjectKey::of(&*owner);
                    expectations.forget(&key);
                    queue.add(key);
                }
            }
            Change::Applied { old: None, new } => ctx.added(new),
            Change::Applied {
                old: Some(old),
                new,
            } => ctx.updated(&old, new),
            Change::Deleted(pod) => ctx.deleted(pod),
        }
    }
}

struct PodEvents<'a, K> {
    queue: &'a WorkQueue<ObjectKey>,
    owners: &'a Store<K>,
    expectations: &'a Expectations,
}

impl<K: Replicated> PodEvents<'_, K> {
    /// The key of the owner `reference` points to, if it is ours and known.
    fn resolve(&self, namespace: &str, reference: &OwnerReference) -> Option<ObjectKey> {
        if reference.kind != K::INFO.kind {
            return None;
        }
        let owner = self.owners.get(namespace, &reference.name)?;
        let uid = owner.metadata().map(|m| m.uid.as_str()).unwrap_or("");
        (uid == reference.uid).then(|| ObjectKey::of(&*owner))
    }

    fn owner_key(&self, pod: &Pod) -> Option<ObjectKey> {
        let meta = pod.metadata.as_ref()?;
        self.resolve(&meta.namespace, controller_of(Some(meta))?)
    }

    /// Queues every owner in the pod's namespace whose selector matches it.
    fn queue_matching(&self, pod: &Pod) {
        let Some(meta) = pod.metadata.as_ref() else {
            return;
        };
        for owner in self.owners.list() {
            let same_ns = owner
                .metadata()
                .is_some_and(|m| m.namespace == meta.namespace);
            if same_ns
                && let Ok(Some(sel)) = owner.pod_selector()
                && sel.matches(&meta.labels)
            {
                self.queue.add(ObjectKey::of(&*owner));
            }
        }
    }

    fn added(&self, pod: &Pod) {
        if is_being_deleted(pod.metadata.as_ref()) {
            return self.deleted(pod);
        }
        match self.owner_key(pod) {
            Some(key) => {
                self.expectations.creation_observed(&key);
                self.queue.add(key);
            }
            None if controller_of(pod.metadata.as_ref()).is_none() => self.queue_matching(pod),
            None => {}
        }
    }

    fn updated(&self, old: &Arc<Pod>, new: &Pod) {
        let (om, nm) = (old.metadata.as_ref(), new.metadata.as_ref());
        if is_being_deleted(nm) && !is_being_deleted(om) {
            // Marked for deletion: as good as gone for counting.
            return self.deleted(new);
        }
        let old_ref = controller_of(om);
        let new_ref = controller_of(nm);
        if old_ref != new_ref
            && let Some(key) = old_ref.and_then(|r| {
                self.resolve(
                    &old.metadata
                        .as_ref()
                        .map(|m| m.namespace.clone())
                        .unwrap_or_default(),
                    r,
                )
            })
        {
            self.queue.add(key);
        }
        match self.owner_key(new) {
            Some(key) => self.queue.add(key),
            None if new_ref.is_none() => {
                let labels_changed = om.map(|m| &m.labels) != nm.map(|m| &m.labels);
                if labels_changed || old_ref.is_some() {
                    self.queue_matching(new);
                }
            }
            None => {}
        }
    }

    fn deleted(&self, pod: &Pod) {
        if let Some(key) = self.owner_key(pod) {
            let uid = pod.metadata.as_ref().map(|m| m.uid.as_str()).unwrap_or("");
            self.expectations.deletion_observed(&key, uid);
            self.queue.add(key);
        }
    }
}

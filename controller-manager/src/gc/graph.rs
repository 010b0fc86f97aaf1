//! The garbage collector's graph: every watched object by uid, with its
//! ownerReferences, whether it is being deleted and its finalizers, and
//! the reverse index owner uid → dependents (kept even while the owner is
//! absent, so its dependents can be found when it is gone). Updating it
//! returns the uids that need a look. Pure data; no IO.

use std::collections::{BTreeSet, HashMap};

use capstan_proto::KindInfo;
use capstan_proto::api::meta::v1::{ObjectMeta, OwnerReference};

/// The finalizer that orphans dependents.
pub const ORPHAN: &str = "orphan";
/// The finalizer that deletes dependents first.
pub const FOREGROUND: &str = "foregroundDeletion";

/// One object as the graph holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Its kind.
    pub info: &'static KindInfo,
    /// Its namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its ownerReferences.
    pub owners: Vec<OwnerReference>,
    /// Whether it has a deletionTimestamp.
    pub deleting: bool,
    /// Its finalizers.
    pub finalizers: Vec<String>,
}

impl Item {
    /// The item of an object of kind `info`; `None` without a uid.
    pub fn from_meta(info: &'static KindInfo, meta: &ObjectMeta) -> Option<Item> {
        (!meta.uid.is_empty()).then(|| Item {
            info,
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            uid: meta.uid.clone(),
            owners: meta.owner_references.clone(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone(),
        })
    }

    /// Whether it carries finalizer `f`.
    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted with `foregroundDeletion`: waits for its dependents.
    pub fn waits_for_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// `kind namespace/name`, for logs and Events.
    pub fn describe(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.info.kind, self.name)
        } else {
            format!("{} {}/{}", self.info.kind, self.namespace, self.name)
        }
    }
}

/// Objects by uid and dependents by owner uid.
#[derive(Debug, Default)]
pub struct Graph {
    items: HashMap<String, Item>,
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    fn unlink(&mut self, item: &Item) {
        for r in &item.owners {
            if let Some(set) = self.dependents.get_mut(&r.uid) {
                set.remove(&item.uid);
                if set.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
    }

    fn deleting_owners(&self, item: &Item, out: &mut Vec<String>) {
        for r in &item.owners {
            if self.items.get(&r.uid).is_some_and(|o| o.deleting) {
                out.push(r.uid.clone());
            }
        }
    }

    /// Records `item` (new or changed); returns the uids to look at: the
    /// item, and its (former) owners that are being deleted (they may be
    /// waiting for it).
    pub fn upsert(&mut self, item: Item) -> Vec<String> {
        let mut out = vec![item.uid.clone()];
        if let Some(old) = self.items.remove(&item.uid) {
            self.unlink(&old);
            self.deleting_owners(&old, &mut out);
        }
        for r in &item.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(item.uid.clone());
        }
        self.deleting_owners(&item, &mut out);
        // Its dependents, if it starts being deleted, are looked at too.
        if item.deleting {
            out.extend(
                self.dependents
                    .get(&item.uid)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        self.items.insert(item.uid.clone(), item);
        out.dedup();
        out
    }

    /// Forgets the object `uid`; returns its dependents (their owner may
    /// be gone) and its owners that are being deleted.
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(old) = self.items.remove(uid) {
            self.unlink(&old);
            self.deleting_owners(&old, &mut out);
        }
        out
    }

    /// Replaces every object of kind `info` with `items` (a relist).
    pub fn replace_kind(&mut self, info: &'static KindInfo, items: Vec<Item>) -> Vec<String> {
        let keep: BTreeSet<&str> = items.iter().map(|i| i.uid.as_str()).collect();
        let gone: Vec<String> = self
            .items
            .values()
            .filter(|i| i.info == info && !keep.contains(i.uid.as_str()))
            .map(|i| i.uid.clone())
            .collect();
        let mut out = Vec::new();
        for uid in gone {
            out.extend(self.remove(&uid));
        }
        for item in items {
            out.extend(self.upsert(item));
        }
        out
    }

    /// The object `uid`, if watched and present.
    pub fn get(&self, uid: &str) -> Option<&Item> {
        self.items.get(uid)
    }

    /// The present objects that name `uid` as an owner.
    pub fn dependents(&self, uid: &str) -> Vec<&Item> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.items.get(d))
            .collect()
    }

    /// How many objects the graph holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

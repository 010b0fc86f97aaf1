//! Kubernetes's `ControllerExpectations` (UID-tracking flavour): what a
//! controller has asked the apiserver to create or delete and has not yet
//! seen in its informer. While a controller's expectations are pending it
//! does not create or delete again, so a slow watch never makes it
//! double-create; expectations lapse after [`EXPECTATIONS_TTL`] in case an
//! event is lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capstan_client::watcher::ObjectKey;

/// After this long, pending expectations are considered met (as Kubernetes's
/// `ExpectationsTimeout`).
pub const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Pending {
    adds: i64,
    /// UIDs of pods asked to be deleted and not yet seen going.
    deletes: HashSet<String>,
    since: Instant,
}

/// Pending creations and deletions per controller key. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    inner: Arc<Mutex<HashMap<ObjectKey, Pending>>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Pending>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` may act: nothing pending, or it lapsed, or it was never
    /// recorded.
    pub fn satisfied(&self, key: &ObjectKey) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(p) => {
                (p.adds <= 0 && p.deletes.is_empty()) || p.since.elapsed() > EXPECTATIONS_TTL
            }
        }
    }

    /// Records that `key` is about to create `adds` objects and delete the
    /// objects with `delete_uids`, replacing what was recorded.
    pub fn expect(
        &self,
        key: &ObjectKey,
        adds: i64,
        delete_uids: impl IntoIterator<Item = String>,
    ) {
        self.lock().insert(
            key.clone(),
            Pending {
                adds,
                deletes: delete_uids.into_iter().collect(),
                since: Instant::now(),
            },
        );
    }

    /// One creation by `key` was seen (or failed, so will never be seen).
    pub fn creation_observed(&self, key: &ObjectKey) {
        if let Some(p) = self.lock().get_mut(key) {
            p.adds -= 1;
        }
    }

    /// The deletion of the object `uid` by `key` was seen (or failed).
    pub fn deletion_observed(&self, key: &ObjectKey, uid: &str) {
        if let Some(p) = self.lock().get_mut(key) {
            p.deletes.remove(uid);
        }
    }

    /// Forgets `key` (its controller object is gone).
    pub fn forget(&self, key: &ObjectKey) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_until_every_create_and_delete_is_seen() {
        let e = Expectations::default();
        let k = ObjectKey {
            namespace: "a".into(),
            name: "rs".into(),
        };
        assert!(e.satisfied(&k));
        e.expect(&k, 2, ["u1".to_string()]);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        e.creation_observed(&k);
        assert!(!e.satisfied(&k));
        e.deletion_observed(&k, "other");
        assert!(!e.satisfied(&k));
        e.deletion_observed(&k, "u1");
        e.deletion_observed(&k, "u1");
        assert!(e.satisfied(&k));
        e.expect(&k, 1, []);
        e.forget(&k);
        assert!(e.satisfied(&k));
    }
}

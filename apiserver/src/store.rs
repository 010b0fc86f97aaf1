//! Objects in the Raft store: keys, encoding and the transactions behind
//! each API verb.
//!
//! An object lives under `/registry/<group>/<plural>/<namespace>/<name>`
//! (`core` for the core group; no namespace segment for cluster-scoped
//! kinds), encoded as its kind's protobuf message *without* its
//! resourceVersion: the key's mod revision is the resourceVersion, as in
//! Kubernetes over etcd. Every change is one transaction that compares the
//! key first — absent for create, the expected mod revision for update and
//! delete — so concurrent writers never lose each other's changes.
//!
//! Objects that hold allocations (a Service's ClusterIP and node ports,
//! [`allocation::reservations`]) write, keep and release the allocation
//! keys in the same transaction as the object itself.

use bytes::Bytes;
use capstan_proto::{KindInfo, Object};
use capstan_raftstore::command::{Command, Compare, Condition, KeyValue, Op, Txn};
use capstan_raftstore::node::{Consistency, Replica, ReplicaError};
use capstan_raftstore::storage::{ContinueToken, RangeRequest, ReadError};
use capstan_raftstore::transport::PeerTransport;

use crate::registry::allocation;

/// Why a store operation failed. Nothing was written unless the error says
/// the outcome is unknown.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("not found")]
    NotFound,
    /// An object with this name exists already.
    #[error("already exists")]
    AlreadyExists,
    /// The object changed since the resourceVersion the caller had.
    #[error(
        "the object has been modified (stored resourceVersion {current}); read it again and retry"
    )]
    Conflict {
        /// The stored resourceVersion, 0 if the object is gone.
        current: u64,
    },
    /// An allocation key the object needs (a ClusterIP, a node port) is
    /// held by another object.
    #[error("allocation {} is held by another object", String::from_utf8_lossy(.0))]
    Reserved(Bytes),
    /// A resourceVersion or continue token refers to compacted history.
    #[error("{0}")]
    Expired(String),
    /// The request cannot be served (bad continue token, future revision).
    #[error("{0}")]
    BadRequest(String),
    /// The object is too large to store.
    #[error("{0}")]
    TooLarge(String),
    /// No leader could be reached; nothing was written.
    #[error("{0}")]
    Unavailable(String),
    /// The write may or may not have been applied.
    #[error("{0}")]
    Indeterminate(String),
    /// Stored data could not be decoded, or the store failed.
    #[error("{0}")]
    Internal(String),
}

impl From<ReplicaError> for StoreError {
    fn from(e: ReplicaError) -> Self {
        match e {
            ReplicaError::Unavailable(m) => StoreError::Unavailable(m),
            ReplicaError::NotLeader { leader } => {
                StoreError::Unavailable(format!("not the leader; leader is {leader:?}"))
            }
            ReplicaError::Indeterminate(m) => StoreError::Indeterminate(m),
            ReplicaError::Invalid(e) => StoreError::TooLarge(e.to_string()),
            ReplicaError::Read(e) => e.into(),
            other => StoreError::Internal(other.to_string()),
        }
    }
}

impl From<ReadError> for StoreError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Expired { .. } => StoreError::Expired(e.to_string()),
            ReadError::FutureRevision { .. } => StoreError::BadRequest(e.to_string()),
            ReadError::Closed => StoreError::Unavailable(e.to_string()),
            ReadError::Storage(m) => StoreError::Internal(m),
        }
    }
}

/// The key prefix of every object of `info` (in `namespace`, when given and
/// the kind is namespaced), ending in `/`.
pub fn prefix(info: &KindInfo, namespace: Option<&str>) -> Vec<u8> {
    let group = if info.group.is_empty() {
        "core"
    } else {
        info.group
    };
    let mut key = format!("/registry/{group}/{}/", info.plural);
    if info.namespaced
        && let Some(ns) = namespace.filter(|ns| !ns.is_empty())
    {
        key.push_str(ns);
        key.push('/');
    }
    key.into_bytes()
}

/// The key of one object.
pub fn key(info: &KindInfo, namespace: &str, name: &str) -> Bytes {
    let mut key = prefix(info, Some(namespace));
    key.extend_from_slice(name.as_bytes());
    Bytes::from(key)
}

/// The key of a stored or to-be-stored object.
pub fn key_of(obj: &Object) -> Bytes {
    key(obj.info(), obj.namespace(), obj.name())
}

/// Encodes an object for storage (its resourceVersion is not stored).
pub fn encode(obj: &Object) -> Bytes {
    if obj
        .metadata()
        .is_some_and(|m| !m.resource_version.is_empty())
    {
        let mut copy = obj.clone();
        copy.metadata_mut().resource_version.clear();
        Bytes::from(copy.encode_to_vec())
    } else {
        Bytes::from(obj.encode_to_vec())
    }
}

/// The wire encoding of a stored object with its resourceVersion set,
/// without decoding it: protobuf merges a repeated occurrence of an
/// embedded message field, and every kind's `metadata` is field 1, so
/// appending `metadata { resourceVersion: REV }` to the stored bytes sets
/// it. Used where objects go out unfiltered (watches and lists without
/// selectors), so they are not decoded and re-encoded per client.
pub fn encode_with_revision(value: &[u8], revision: u64) -> Vec<u8> {
    let meta = capstan_proto::api::meta::v1::ObjectMeta {
        resource_version: revision.to_string(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(value.len() + 16);
    out.extend_from_slice(value);
    prost::encoding::message::encode(1, &meta, &mut out);
    out
}

/// Decodes a stored version, setting its resourceVersion.
pub fn decode(info: &KindInfo, kv: &KeyValue) -> Result<Object, StoreError> {
    let mut obj = Object::decode(info, &kv.value).map_err(|e| {
        StoreError::Internal(format!(
            "stored object {} is undecodable: {e}",
            String::from_utf8_lossy(&kv.key)
        ))
    })?;
    obj.metadata_mut().resource_version = kv.mod_revision.to_string();
    Ok(obj)
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T = Object> {
    /// The objects, in key order.
    pub items: Vec<T>,
    /// The revision the page was read at.
    pub revision: u64,
    /// Where the next page starts, when there is one.
    pub continue_token: Option<String>,
}

/// Adds to `txn` the compares (absent) and puts for `keys`, each holding
/// the owner's key.
fn reserve(txn: &mut Txn, owner: &Bytes, keys: &std::collections::BTreeSet<Bytes>) {
    for k in keys {
        txn.compares.push(Compare {
            key: k.clone(),
            condition: Condition::Absent,
        });
        txn.success.push(Op::Put {
            key: k.clone(),
            value: owner.clone(),
        });
    }
}

/// Objects on top of one replica.
pub struct ObjectStore<T> {
    replica: Replica<T>,
}

impl<T> Clone for ObjectStore<T> {
    fn clone(&self) -> Self {
        Self {
            replica: self.replica.clone(),
        }
    }
}

impl<T: PeerTransport> ObjectStore<T> {
    /// Objects stored through `replica`.
    pub fn new(replica: Replica<T>) -> Self {
        Self { replica }
    }

    /// The replica underneath.
    pub fn replica(&self) -> &Replica<T> {
        &self.replica
    }

    /// Stores a new object; fails with `AlreadyExists` if the name is taken,
    /// or `Reserved` if one of its allocations is held by another object.
    /// Returns the object with its resourceVersion.
    pub async fn create(&self, mut obj: Object) -> Result<Object, StoreError> {
        let key = key_of(&obj);
        let reserved = allocation::reservations(&obj);
        let mut txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                condition: Condition::Absent,
            }],
            success: vec![Op::Put {
                key: key.clone(),
                value: encode(&obj),
            }],
            failure: vec![],
        };
        reserve(&mut txn, &key, &reserved);
        let result = self.replica.write(Command::Txn(txn)).await?;
        if !result.succeeded {
            return Err(match self.held(&reserved)? {
                Some(taken) if !self.exists(&key)? => StoreError::Reserved(taken),
                _ => StoreError::AlreadyExists,
            });
        }
        obj.metadata_mut().resource_version = result.revision.to_string();
        Ok(obj)
    }

    /// Replaces a stored object (`previous`, as read) if its mod revision is
    /// still `expected`; takes the allocations `obj` gains and releases
    /// those it drops.
    pub async fn update(
        &self,
        mut obj: Object,
        previous: &Object,
        expected: u64,
    ) -> Result<Object, StoreError> {
        let key = key_of(&obj);
        let before = allocation::reservations(previous);
        let after = allocation::reservations(&obj);
        let gained: std::collections::BTreeSet<Bytes> =
            after.difference(&before).cloned().collect();
        let mut txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                condition: Condition::ModRevision(expected),
            }],
            success: vec![Op::Put {
                key: key.clone(),
                value: encode(&obj),
            }],
            failure: vec![],
        };
        reserve(&mut txn, &key, &gained);
        txn.success.extend(
            before
                .difference(&after)
                .map(|k| Op::Delete { key: k.clone() }),
        );
        let result = self.replica.write(Command::Txn(txn)).await?;
        if !result.succeeded {
            let err = self.conflict_or_gone(&obj).await;
            if let StoreError::Conflict { current } = err
                && current == expected
                && let Some(taken) = self.held(&gained)?
            {
                return Err(StoreError::Reserved(taken));
            }
            return Err(err);
        }
        obj.metadata_mut().resource_version = result.revision.to_string();
        Ok(obj)
    }

    /// The first of `keys` that is present, if any.
    fn held(&self, keys: &std::collections::BTreeSet<Bytes>) -> Result<Option<Bytes>, StoreError> {
        for k in keys {
            if self.exists(k)? {
                return Ok(Some(k.clone()));
            }
        }
        Ok(None)
    }

    fn exists(&self, key: &Bytes) -> Result<bool, StoreError> {
        Ok(self.replica.reader().get(key, None)?.kv.is_some())
    }

    /// Every allocation key held now (read from this replica's state).
    pub fn allocated(&self) -> Result<allocation::Allocated, StoreError> {
        let response = self
            .replica
            .reader()
            .range(&RangeRequest::prefix(Bytes::from_static(
                allocation::PREFIX.as_bytes(),
            )))?;
        Ok(allocation::Allocated::from_keys(
            response.kvs.iter().map(|kv| kv.key.as_ref()),
        ))
    }

    /// Removes a stored object if its mod revision is still `expected`.
    /// Returns the deletion revision.
    pub async fn delete(&self, obj: &Object, expected: u64) -> Result<u64, StoreError> {
        let key = key_of(obj);
        let mut txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                condition: Condition::ModRevision(expected),
            }],
            success: vec![Op::Delete { key }],
            failure: vec![],
        };
        txn.success.extend(
            allocation::reservations(obj)
                .into_iter()
                .map(|key| Op::Delete { key }),
        );
        let result = self.replica.write(Command::Txn(txn)).await?;
        if !result.succeeded {
            return Err(self.conflict_or_gone(obj).await);
        }
        Ok(result.revision)
    }

    /// After a failed compare: NotFound if the object is gone, else Conflict.
    async fn conflict_or_gone(&self, obj: &Object) -> StoreError {
        match self.replica.reader().get(&key_of(obj), None) {
            Ok(r) => match r.kv {
                Some(kv) => StoreError::Conflict {
                    current: kv.mod_revision,
                },
                None => StoreError::NotFound,
            },
            Err(e) => e.into(),
        }
    }

    /// Reads one object.
    pub async fn get(
        &self,
        info: &KindInfo,
        namespace: &str,
        name: &str,
        consistency: Consistency,
    ) -> Result<Option<Object>, StoreError> {
        let r = self
            .replica
            .get(&key(info, namespace, name), None, consistency)
            .await?;
        r.kv.map(|kv| decode(info, &kv)).transpose()
    }

    /// Reads one page of objects of `info` (in `namespace`, or all when
    /// `None`), at most `limit` (0: all), resuming from `continue_token`.
    /// `keep` filters objects (selectors); filtered objects do not count
    /// towards the limit.
    pub async fn list(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        limit: usize,
        continue_token: Option<&str>,
        consistency: Consistency,
        keep: impl Fn(&Object) -> bool,
    ) -> Result<Page, StoreError> {
        self.list_map(info, namespace, limit, continue_token, consistency, |kv| {
            let obj = decode(info, kv)?;
            Ok(keep(&obj).then_some(obj))
        })
        .await
    }

    /// As [`ObjectStore::list`] without a filter, each object in its wire
    /// encoding with its resourceVersion ([`encode_with_revision`]): no
    /// decode and re-encode.
    pub async fn list_encoded(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        limit: usize,
        continue_token: Option<&str>,
        consistency: Consistency,
    ) -> Result<Page<Vec<u8>>, StoreError> {
        self.list_map(info, namespace, limit, continue_token, consistency, |kv| {
            Ok(Some(encode_with_revision(&kv.value, kv.mod_revision)))
        })
        .await
    }

    /// The paging behind both lists: `pick` turns a stored version into an
    /// item, or `None` to leave it out.
    async fn list_map<I>(
        &self,
        info: &KindInfo,
        namespace: Option<&str>,
        limit: usize,
        continue_token: Option<&str>,
        consistency: Consistency,
        pick: impl Fn(&KeyValue) -> Result<Option<I>, StoreError>,
    ) -> Result<Page<I>, StoreError> {
        let prefix = Bytes::from(prefix(info, namespace));
        let mut request = match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let token = decode_continue(token)?;
                if !token.start_after.starts_with(&prefix) {
                    return Err(StoreError::BadRequest(
                        "continue token belongs to another list".into(),
                    ));
                }
                RangeRequest::resume(prefix.clone(), &token, 0)
            }
            None => RangeRequest::prefix(prefix.clone()),
        };
        self.replica.read_barrier(consistency).await?;
        // Selectors may drop items; read in chunks until the page is full.
        let chunk = if limit == 0 { 0 } else { limit.max(64) };
        let mut items = Vec::new();
        loop {
            request.limit = chunk;
            let response = self.replica.reader().range(&request)?;
            let revision = response.revision;
            let mut last_key = None;
            for kv in &response.kvs {
                last_key = Some(kv.key.clone());
                if let Some(item) = pick(kv)? {
                    items.push(item);
                    if limit != 0 && items.len() == limit {
                        break;
                    }
                }
            }
            let consumed_all = last_key.as_ref() == response.kvs.last().map(|kv| &kv.key);
            let page_full = limit != 0 && items.len() == limit;
            if page_full && (!consumed_all || response.more) {
                let token = ContinueToken {
                    start_after: last_key.expect("a full page read at least one key"),
                    revision,
                };
                return Ok(Page {
                    items,
                    revision,
                    continue_token: Some(encode_continue(&token)),
                });
            }
            match response.continue_token {
                Some(token) if response.more => {
                    request = RangeRequest::resume(prefix.clone(), &token, chunk);
                }
                _ => {
                    return Ok(Page {
                        items,
                        revision,
                        continue_token: None,
                    });
                }
            }
        }
    }
}

/// A continue token as clients see it: URL-safe base64 of the store's token.
fn encode_continue(token: &ContinueToken) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_bytes())
}

fn decode_continue(text: &str) -> Result<ContinueToken, StoreError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| ContinueToken::from_bytes(&b))
        .ok_or_else(|| StoreError::BadRequest(format!("continue token {text:?} is malformed")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_the_revision_sets_it_for_every_kind() {
        for info in capstan_proto::KINDS {
            let mut obj = Object::decode(info, &[]).expect("an empty message decodes");
            let meta = obj.metadata_mut();
            meta.name = "x".into();
            meta.labels.insert("a".into(), "b".into());
            meta.resource_version = "7".into();
            let stored = encode(&obj);
            let out = Object::decode(info, &encode_with_revision(&stored, 42)).unwrap();
            let meta = out.metadata().unwrap();
            assert_eq!(meta.resource_version, "42", "{}", info.kind);
            assert_eq!(meta.name, "x", "{}: other fields kept", info.kind);
            assert_eq!(meta.labels.get("a").map(String::as_str), Some("b"));
        }
    }
}

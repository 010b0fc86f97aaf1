//! [`Api<K>`]: the typed API for one kind, over the generic `Resources`
//! service. Objects travel as the protobuf encoding of `K`; answers are
//! decoded back to `K`; failures come back as [`Error`] with the server's
//! reason.
//!
//! An `Api` is scoped to one namespace ([`Api::namespaced`],
//! [`Api::default_namespaced`]) or to all of them ([`Api::all`], also the
//! scope of cluster-wide kinds). In the all-namespaces scope, calls about
//! one object take its namespace from the object (`create`, `update`) and
//! list and watch span every namespace.

use std::marker::PhantomData;
use std::pin::Pin;

use capstan_proto::Resource;
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{
    CreateRequest, DeleteCollectionRequest, DeleteRequest, EventType, GetRequest, ListRequest,
    PatchRequest, PatchType, Preconditions, ResourceRef, UpdateRequest, WatchRequest,
};
use futures::{Stream, StreamExt as _};

use crate::Error;
use crate::connection::{CallKind, Client};

/// Selectors and paging for list, watch and delete-collection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// `a=b,c!=d,e in (x,y),!f`.
    pub label_selector: String,
    /// `metadata.name=x,spec.nodeName=n`.
    pub field_selector: String,
    /// At most this many items per page (0: no limit).
    pub limit: i64,
    /// The continue token of the previous page.
    pub continue_token: String,
    /// Serve from the answering replica's applied state (faster, possibly
    /// stale) instead of a linearizable read.
    pub allow_stale: bool,
}

impl ListParams {
    /// With a label selector.
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = selector.to_owned();
        self
    }

    /// With a field selector.
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = selector.to_owned();
        self
    }

    /// With a page size.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectList<K> {
    /// The objects.
    pub items: Vec<K>,
    /// The revision the list was read at; a watch from it misses nothing.
    pub resource_version: String,
    /// Non-empty when more items follow.
    pub continue_token: String,
}

/// How to delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// Seconds before removal (0: now); `None`: the kind's default.
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the object still has this resourceVersion.
    pub precondition_resource_version: String,
    /// Delete only if the object still has this uid.
    pub precondition_uid: String,
    /// `Orphan`, `Background` or `Foreground`; empty: the kind's default.
    pub propagation_policy: String,
    /// Check but do not delete.
    pub dry_run: bool,
}

/// The outcome of a delete.
#[derive(Clone, Debug, PartialEq)]
pub struct Deleted<K> {
    /// The object as removed, or as it now stands (marked for deletion)
    /// when finalizers or a grace period hold it.
    pub object: K,
    /// True when the object is gone from the store.
    pub removed: bool,
}

/// A patch document.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// RFC 7386 JSON merge patch.
    Merge(serde_json::Value),
    /// RFC 6902 JSON patch (a list of operations).
    Json(serde_json::Value),
}

/// One change seen by [`Api::watch`].
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<K> {
    /// The object was created (or matched the selectors) at its resourceVersion.
    Added(K),
    /// The object changed.
    Modified(K),
    /// The object was removed; its last state.
    Deleted(K),
    /// Every change up to this resourceVersion has been delivered.
    Bookmark(String),
}

/// The events of one watch stream; it ends when the server ends it. An
/// `Err` item (e.g. [`Error::Expired`]) is the last.
pub type WatchStream<K> = Pin<Box<dyn Stream<Item = Result<WatchEvent<K>, Error>> + Send>>;

/// The typed API for kind `K` in one scope.
pub struct Api<K> {
    client: Client,
    namespace: String,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("namespace", &self.namespace)
            .finish()
    }
}

fn resource_ref<K: Resource>() -> Option<ResourceRef> {
    Some(ResourceRef {
        group: K::INFO.group.to_owned(),
        version: K::INFO.version.to_owned(),
        resource: K::INFO.plural.to_owned(),
    })
}

fn decode<K: Resource>(bytes: &[u8]) -> Result<K, Error> {
    K::decode(bytes).map_err(|e| Error::Decode(format!("{}: {e}", K::INFO.kind)))
}

impl<K: Resource> Api<K> {
    /// Objects in `namespace` (for a cluster-wide kind the namespace is ignored).
    pub fn namespaced(client: Client, namespace: &str) -> Self {
        let namespace = if K::INFO.namespaced {
            namespace.to_owned()
        } else {
            String::new()
        };
        Self {
            client,
            namespace,
            _kind: PhantomData,
        }
    }

    /// Objects in the client's default namespace.
    pub fn default_namespaced(client: Client) -> Self {
        let ns = client.default_namespace().to_owned();
        Self::namespaced(client, &ns)
    }

    /// Objects in every namespace (and the scope of cluster-wide kinds).
    pub fn all(client: Client) -> Self {
        Self::namespaced(client, "")
    }

    /// The namespace this `Api` is scoped to (empty: all, or cluster-wide).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The request namespace for `obj`: this scope's, else the object's.
    fn namespace_for(&self, obj: &K) -> String {
        if !self.namespace.is_empty() {
            return self.namespace.clone();
        }
        if K::INFO.namespaced {
            obj.metadata()
                .map(|m| m.namespace.clone())
                .unwrap_or_default()
        } else {
            String::new()
        }
    }

    /// Creates `obj`; returns it as stored.
    pub async fn create(&self, obj: &K) -> Result<K, Error> {
        let req = CreateRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace_for(obj),
            object: obj.encode_to_vec(),
            dry_run: false,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).create(req).await }
            })
            .await?;
        decode(&resp.object)
    }

    /// Reads one object (linearizable).
    pub async fn get(&self, name: &str) -> Result<K, Error> {
        let req = GetRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            allow_stale: false,
        };
        let resp = self
            .client
            .call(CallKind::Read, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).get(req).await }
            })
            .await?;
        decode(&resp.object)
    }

    /// Reads one object, `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, Error> {
        match self.get(name).await {
            Ok(obj) => Ok(Some(obj)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of objects.
    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        let req = ListRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace.clone(),
            label_selector: params.label_selector.clone(),
            field_selector: params.field_selector.clone(),
            limit: params.limit,
            r#continue: params.continue_token.clone(),
            allow_stale: params.allow_stale,
        };
        let resp = self
            .client
            .call(CallKind::Read, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).list(req).await }
            })
            .await?;
        Ok(ObjectList {
            items: resp
                .items
                .iter()
                .map(|b| decode(b))
                .collect::<Result<_, _>>()?,
            resource_version: resp.resource_version,
            continue_token: resp.r#continue,
        })
    }

    /// Every object, following continue tokens page by page (`limit` is
    /// the page size). The resourceVersion is the first page's: every page
    /// is read at it, so a watch from it misses nothing.
    pub async fn list_all(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        let mut params = params.clone();
        params.continue_token.clear();
        let mut all = self.list(&params).await?;
        while !all.continue_token.is_empty() {
            params.continue_token = std::mem::take(&mut all.continue_token);
            let page = self.list(&params).await?;
            all.items.extend(page.items);
            all.continue_token = page.continue_token;
        }
        Ok(all)
    }

    async fn put(&self, obj: &K, status: bool) -> Result<K, Error> {
        let req = UpdateRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace_for(obj),
            object: obj.encode_to_vec(),
            dry_run: false,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move {
                    let mut c = ResourcesClient::new(ch);
                    if status {
                        c.update_status(req).await
                    } else {
                        c.update(req).await
                    }
                }
            })
            .await?;
        decode(&resp.object)
    }

    /// Replaces the object (spec and metadata; status is kept for kinds
    /// with a status subresource). With `metadata.resourceVersion` set, the
    /// update is refused with `Conflict` unless it is the stored one.
    pub async fn update(&self, obj: &K) -> Result<K, Error> {
        self.put(obj, false).await
    }

    /// Replaces the object's status only.
    pub async fn update_status(&self, obj: &K) -> Result<K, Error> {
        self.put(obj, true).await
    }

    async fn patch_inner(&self, name: &str, patch: &Patch, status: bool) -> Result<K, Error> {
        let (patch_type, doc) = match patch {
            Patch::Merge(v) => (PatchType::Merge, v),
            Patch::Json(v) => (PatchType::Json, v),
        };
        let req = PatchRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            patch_type: patch_type as i32,
            patch: serde_json::to_vec(doc).map_err(|e| Error::Decode(e.to_string()))?,
            status,
            dry_run: false,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).patch(req).await }
            })
            .await?;
        decode(&resp.object)
    }

    /// Patches the object (the document uses the Kubernetes JSON field names).
    pub async fn patch(&self, name: &str, patch: &Patch) -> Result<K, Error> {
        self.patch_inner(name, patch, false).await
    }

    /// Patches the object's status subresource.
    pub async fn patch_status(&self, name: &str, patch: &Patch) -> Result<K, Error> {
        self.patch_inner(name, patch, true).await
    }

    /// Deletes one object.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<Deleted<K>, Error> {
        let preconditions = (!params.precondition_uid.is_empty()
            || !params.precondition_resource_version.is_empty())
        .then(|| Preconditions {
            uid: params.precondition_uid.clone(),
            resource_version: params.precondition_resource_version.clone(),
        });
        let req = DeleteRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            grace_period_seconds: params.grace_period_seconds,
            preconditions,
            propagation_policy: params.propagation_policy.clone(),
            dry_run: params.dry_run,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).delete(req).await }
            })
            .await?;
        Ok(Deleted {
            object: decode(&resp.object)?,
            removed: resp.removed,
        })
    }

    /// Deletes every object matching the selectors; returns them.
    pub async fn delete_collection(
        &self,
        list: &ListParams,
        params: &DeleteParams,
    ) -> Result<Vec<K>, Error> {
        let req = DeleteCollectionRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace.clone(),
            label_selector: list.label_selector.clone(),
            field_selector: list.field_selector.clone(),
            grace_period_seconds: params.grace_period_seconds,
            dry_run: params.dry_run,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).delete_collection(req).await }
            })
            .await?;
        resp.items.iter().map(|b| decode(b)).collect()
    }

    /// Watches changes after `resource_version` (empty or "0": from now
    /// on), with bookmarks. Opening the stream fails over across replicas;
    /// the stream itself ends when its replica ends it — [`crate::watcher`]
    /// resumes it.
    pub async fn watch(
        &self,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream<K>, Error> {
        let req = WatchRequest {
            resource: resource_ref::<K>(),
            namespace: self.namespace.clone(),
            label_selector: params.label_selector.clone(),
            field_selector: params.field_selector.clone(),
            resource_version: resource_version.to_owned(),
            allow_bookmarks: true,
        };
        let stream = self
            .client
            .call(CallKind::Read, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).watch(req).await }
            })
            .await?;
        Ok(Box::pin(
            stream
                .map(move |item| {
                    let event = item.map_err(|s| Error::from_status(&s))?;
                    match EventType::try_from(event.r#type) {
                        Ok(EventType::Added) => Ok(WatchEvent::Added(decode(&event.object)?)),
                        Ok(EventType::Modified) => Ok(WatchEvent::Modified(decode(&event.object)?)),
                        Ok(EventType::Deleted) => Ok(WatchEvent::Deleted(decode(&event.object)?)),
                        Ok(EventType::Bookmark) => Ok(WatchEvent::Bookmark(event.resource_version)),
                        Ok(EventType::Error) => {
                            let status = event.error.unwrap_or_default();
                            let details = prost::Message::encode_to_vec(&status);
                            Err(Error::from_status(&tonic::Status::with_details(
                                tonic::Code::Unknown,
                                status.message.clone(),
                                details.into(),
                            )))
                        }
                        Err(_) => Err(Error::Decode(format!(
                            "unknown watch event type {}",
                            event.r#type
                        ))),
                    }
                })
                .scan(false, |done, item| {
                    // End the stream after the first error.
                    let out = if *done { None } else { Some(item) };
                    if let Some(Err(_)) = &out {
                        *done = true;
                    }
                    futures::future::ready(out)
                }),
        ))
    }
}

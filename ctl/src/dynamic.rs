//! [`DynApi`]: the generic `Resources` service for a kind chosen at run
//! time (a [`KindInfo`] from the CLI's argument or a manifest's
//! `apiVersion`/`kind`), with objects as [`Object`]. It goes through
//! [`Client::call`], so it has the typed API's failover rule.
//!
//! `capstan_client::Api<K>` is typed by `K`; a kind-agnostic twin of it
//! (this module) belongs in the client crate and would replace this one.

use capstan_client::{CallKind, Client, Error};
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{
    CreateRequest, DeleteCollectionRequest, DeleteRequest, GetRequest, ListRequest, PatchRequest,
    PatchType, ResourceRef, UpdateRequest, WatchEvent, WatchRequest,
};
use capstan_proto::{KindInfo, Object};

/// The generic API for one kind in one namespace (empty: all namespaces,
/// or a cluster-wide kind).
#[derive(Clone, Debug)]
pub struct DynApi {
    client: Client,
    info: &'static KindInfo,
    namespace: String,
}

fn resource_ref(info: &KindInfo) -> Option<ResourceRef> {
    Some(ResourceRef {
        group: info.group.to_owned(),
        version: info.version.to_owned(),
        resource: info.plural.to_owned(),
    })
}

fn decode(info: &KindInfo, bytes: &[u8]) -> Result<Object, Error> {
    Object::decode(info, bytes).map_err(|e| Error::Decode(format!("{}: {e}", info.kind)))
}

impl DynApi {
    /// The API of `info` in `namespace` (ignored for cluster-wide kinds).
    pub fn new(client: &Client, info: &'static KindInfo, namespace: &str) -> Self {
        Self {
            client: client.clone(),
            info,
            namespace: if info.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
        }
    }

    /// The kind.
    pub fn info(&self) -> &'static KindInfo {
        self.info
    }

    /// One object, `None` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Object>, Error> {
        let req = GetRequest {
            resource: resource_ref(self.info),
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
            .await;
        match resp {
            Ok(r) => decode(self.info, &r.object).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every object matching the selectors, all pages.
    pub async fn list(&self, labels: &str, fields: &str) -> Result<Vec<Object>, Error> {
        Ok(self.list_at(labels, fields).await?.0)
    }

    /// Every object matching the selectors, and the revision the list was
    /// read at (a watch from it misses nothing).
    pub async fn list_at(
        &self,
        labels: &str,
        fields: &str,
    ) -> Result<(Vec<Object>, String), Error> {
        let mut req = ListRequest {
            resource: resource_ref(self.info),
            namespace: self.namespace.clone(),
            label_selector: labels.to_owned(),
            field_selector: fields.to_owned(),
            limit: 500,
            r#continue: String::new(),
            allow_stale: false,
        };
        let mut items = Vec::new();
        loop {
            let resp = self
                .client
                .call(CallKind::Read, |ch| {
                    let req = req.clone();
                    async move { ResourcesClient::new(ch).list(req).await }
                })
                .await?;
            for bytes in &resp.items {
                items.push(decode(self.info, bytes)?);
            }
            if resp.r#continue.is_empty() {
                return Ok((items, resp.resource_version));
            }
            req.r#continue = resp.r#continue;
        }
    }

    /// Opens a watch of changes after `resource_version`, with bookmarks.
    /// Opening fails over across replicas; the stream ends when its
    /// replica ends it.
    pub async fn watch(
        &self,
        labels: &str,
        fields: &str,
        resource_version: &str,
    ) -> Result<tonic::Streaming<WatchEvent>, Error> {
        let req = WatchRequest {
            resource: resource_ref(self.info),
            namespace: self.namespace.clone(),
            label_selector: labels.to_owned(),
            field_selector: fields.to_owned(),
            resource_version: resource_version.to_owned(),
            allow_bookmarks: true,
        };
        self.client
            .call(CallKind::Read, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).watch(req).await }
            })
            .await
    }

    /// Decodes an object of this kind from a watch event.
    pub fn decode(&self, bytes: &[u8]) -> Result<Object, Error> {
        decode(self.info, bytes)
    }

    /// Creates `obj`; returns it as stored.
    pub async fn create(&self, obj: &Object) -> Result<Object, Error> {
        self.create_with(obj, false).await
    }

    /// Creates `obj`, or with `dry_run` has the server default and
    /// validate it without storing it; returns it as (it would be) stored.
    pub async fn create_with(&self, obj: &Object, dry_run: bool) -> Result<Object, Error> {
        let req = CreateRequest {
            resource: resource_ref(self.info),
            namespace: self.namespace.clone(),
            object: obj.encode_to_vec(),
            dry_run,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).create(req).await }
            })
            .await?;
        decode(self.info, &resp.object)
    }

    /// Replaces `obj` (Conflict unless its resourceVersion, when set, is
    /// the stored one); returns it as stored, or with `dry_run` as it
    /// would be stored (defaulted and validated, nothing written).
    pub async fn update(&self, obj: &Object, dry_run: bool) -> Result<Object, Error> {
        let req = UpdateRequest {
            resource: resource_ref(self.info),
            namespace: self.namespace.clone(),
            object: obj.encode_to_vec(),
            dry_run,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).update(req).await }
            })
            .await?;
        decode(self.info, &resp.object)
    }

    /// Applies a JSON merge patch (RFC 7386, Kubernetes field names) to
    /// one object; returns it as stored.
    pub async fn merge_patch(
        &self,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Object, Error> {
        let req = PatchRequest {
            resource: resource_ref(self.info),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            patch_type: PatchType::Merge as i32,
            patch: patch.to_string().into_bytes(),
            status: false,
            dry_run: false,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).patch(req).await }
            })
            .await?;
        decode(self.info, &resp.object)
    }

    /// Deletes one object; `true` when it is gone (not held by finalizers
    /// or a grace period).
    pub async fn delete(&self, name: &str, grace: Option<i64>) -> Result<bool, Error> {
        let req = DeleteRequest {
            resource: resource_ref(self.info),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            grace_period_seconds: grace,
            preconditions: None,
            propagation_policy: String::new(),
            dry_run: false,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).delete(req).await }
            })
            .await?;
        Ok(resp.removed)
    }

    /// Deletes every object matching the selectors; returns them.
    pub async fn delete_collection(
        &self,
        labels: &str,
        fields: &str,
        grace: Option<i64>,
    ) -> Result<Vec<Object>, Error> {
        let req = DeleteCollectionRequest {
            resource: resource_ref(self.info),
            namespace: self.namespace.clone(),
            label_selector: labels.to_owned(),
            field_selector: fields.to_owned(),
            grace_period_seconds: grace,
            dry_run: false,
        };
        let resp = self
            .client
            .call(CallKind::Write, |ch| {
                let req = req.clone();
                async move { ResourcesClient::new(ch).delete_collection(req).await }
            })
            .await?;
        resp.items.iter().map(|b| decode(self.info, b)).collect()
    }
}

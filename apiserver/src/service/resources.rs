//! The generic `Resources` service: every verb for every kind.
//!
//! Each call: authenticate (certificate subject) → resolve the kind →
//! read what the verb needs → authorize (the node authorizer may look at the
//! objects) → registry (defaults, validation, spec/status) → one
//! compare-and-swap transaction in the store. Reads are linearizable unless
//! the caller opts into `allow_stale`.
//!
//! Writes read the current object from this replica's applied state first
//! (cheap) and write with a compare on the mod revision they read, so a
//! stale read can only cause a conflict, never a lost update: an
//! unconditional update (no resourceVersion) retries on a linearizable
//! read; a conditional one is a `Conflict` for the caller.

use std::sync::Arc;

use capstan_proto::rpc::resources_server::Resources;
use capstan_proto::rpc::{
    CreateRequest, DeleteCollectionRequest, DeleteCollectionResponse, DeleteRequest,
    DeleteResponse, GetRequest, ListRequest, ListResponse, ObjectResponse, PatchRequest, PatchType,
    ResourceRef, UpdateRequest, WatchEvent, WatchRequest,
};
use capstan_proto::timestamp::Time;
use capstan_proto::{KindInfo, Object};
use capstan_raftstore::node::Consistency;
use capstan_raftstore::transport::PeerTransport;
use tonic::{Request, Response, Status};

use super::Api;
use super::errors::ApiError;
use super::request::{Call, Filter, resolve};
use crate::auth::Verb;
use crate::registry::{allocation, strategy, validation};
use crate::store::StoreError;

/// Attempts of a read-modify-write before giving up on contention.
const MAX_ATTEMPTS: usize = 8;

/// The `Resources` gRPC service of one replica.
pub struct ResourceService<T> {
    api: Arc<Api<T>>,
}

impl<T> ResourceService<T> {
    /// The service over shared replica state.
    pub fn new(api: Arc<Api<T>>) -> Self {
        Self { api }
    }
}

fn consistency(allow_stale: bool) -> Consistency {
    if allow_stale {
        Consistency::Stale
    } else {
        Consistency::Linearizable
    }
}

fn decode_object(info: &KindInfo, bytes: &[u8]) -> Result<Object, ApiError> {
    Object::decode(info, bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "object is not a valid {} ({}) message: {e}",
            info.kind, info.message
        ))
    })
}

/// The resourceVersion of an object as a number (0 when unset).
fn resource_version(obj: &Object) -> Result<u64, ApiError> {
    let rv = obj.metadata().map_or("", |m| m.resource_version.as_str());
    parse_rv(rv)
}

fn parse_rv(rv: &str) -> Result<u64, ApiError> {
    if rv.is_empty() {
        return Ok(0);
    }
    rv.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "metadata.resourceVersion: Invalid value: {rv:?}: must be a revision number"
        ))
    })
}

/// The namespace of a request about `info`: the request's, or the object's;
/// both set and different is an error; cluster-scoped kinds have none.
fn namespace_for(info: &KindInfo, request: &str, object: &str) -> Result<String, ApiError> {
    if !info.namespaced {
        if !object.is_empty() {
            return Err(ApiError::bad_request(format!(
                "metadata.namespace: Forbidden: {} is cluster-scoped, namespace {object:?} not allowed",
                info.kind
            )));
        }
        return Ok(String::new());
    }
    match (request, object) {
        (r, o) if !r.is_empty() && !o.is_empty() && r != o => Err(ApiError::bad_request(format!(
            "the namespace of the object ({o:?}) does not match the namespace of the request ({r:?})"
        ))),
        ("", "") => Err(ApiError::bad_request(format!(
            "metadata.namespace: Required value: {} is namespaced",
            info.kind
        ))),
        ("", o) => Ok(o.to_owned()),
        (r, _) => Ok(r.to_owned()),
    }
}

/// Five random characters as Kubernetes appends to a generateName.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

impl<T: PeerTransport> ResourceService<T> {
    async fn fetch(
        &self,
        info: &KindInfo,
        namespace: &str,
        name: &str,
        consistency: Consistency,
    ) -> Result<Option<Object>, ApiError> {
        self.api
            .store
            .get(info, namespace, name, consistency)
            .await
            .map_err(|e| ApiError::from_store(e, info, name))
    }

    /// A namespaced object needs its namespace to exist and not be
    /// terminating.
    async fn check_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        use capstan_proto::Resource as _;
        let ns_info = &capstan_proto::api::core::v1::Namespace::INFO;
        let mut found = self
            .fetch(ns_info, "", namespace, Consistency::Stale)
            .await?;
        if found.is_none() {
            found = self
                .fetch(ns_info, "", namespace, Consistency::Linearizable)
                .await?;
        }
        match found {
            None => Err(ApiError::not_found(ns_info, namespace)),
            Some(ns)
                if ns
                    .metadata()
                    .is_some_and(|m| m.deletion_timestamp.is_some()) =>
            {
                Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Gives a Service the ClusterIP and node ports it lacks (keeping, on
    /// update, what `existing` holds); returns what the caller asked for
    /// explicitly. Other kinds allocate nothing.
    fn allocate(
        &self,
        obj: &mut Object,
        existing: Option<&Object>,
    ) -> Result<allocation::Requested, ApiError> {
        let info = obj.info();
        let name = obj.name().to_owned();
        let Object::Service(svc) = obj else {
            return Ok(Default::default());
        };
        if let Some(Object::Service(old)) = existing {
            allocation::carry_over(svc, old);
        }
        let holds = existing.map(allocation::reservations).unwrap_or_default();
        let allocated = self
            .api
            .store
            .allocated()
            .map_err(|e| ApiError::from_store(e, info, &name))?;
        allocation::allocate(svc, &self.api.service_ranges, &allocated, &holds)
            .map_err(|errors| ApiError::invalid(info, &name, &errors))
    }

    /// After the store refused an allocation `key`: `Invalid` if the
    /// caller asked for it, `Ok` (choose again) if it was chosen here.
    fn refused_allocation(
        &self,
        obj: &Object,
        requested: &allocation::Requested,
        key: &[u8],
    ) -> Result<(), ApiError> {
        match obj {
            Object::Service(svc) if requested.contains(key) => Err(ApiError::invalid(
                obj.info(),
                obj.name(),
                &[allocation::already_allocated(svc, key)],
            )),
            _ => Ok(()),
        }
    }

    async fn create_inner(&self, call: &mut Call, r: CreateRequest) -> Result<Object, ApiError> {
        let info = call.info;
        let mut obj = decode_object(info, &r.object)?;
        call.namespace = namespace_for(info, &r.namespace, obj.namespace())?;
        {
            let meta = obj.metadata_mut();
            meta.namespace = call.namespace.clone();
            meta.resource_version.clear();
            meta.uid = uuid::Uuid::new_v4().to_string();
            meta.creation_timestamp = Some(Time::now());
            meta.deletion_timestamp = None;
            meta.deletion_grace_period_seconds = None;
        }
        let generate =
            obj.name().is_empty() && obj.metadata().is_some_and(|m| !m.generate_name.is_empty());
        call.name = obj.name().to_owned();
        call.authorize(&self.api, &[], None, Some(&obj))?;
        for _ in 0..MAX_ATTEMPTS {
            if generate {
                let meta = obj.metadata_mut();
                meta.name = format!("{}{}", meta.generate_name, random_suffix());
                call.name = meta.name.clone();
            }
            validation::defaults(&mut obj);
            strategy::prepare_create(&mut obj);
            let errors = validation::validate(&obj);
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, obj.name(), &errors));
            }
            if info.namespaced {
                self.check_namespace(&call.namespace).await?;
            }
            let unallocated = obj.clone();
            let requested = self.allocate(&mut obj, None)?;
            if r.dry_run {
                return Ok(obj);
            }
            match self.api.store.create(obj.clone()).await {
                Err(StoreError::AlreadyExists) if generate => obj = unallocated,
                Err(StoreError::Reserved(key)) => {
                    self.refused_allocation(&obj, &requested, &key)?;
                    obj = unallocated; // another writer took it: choose again
                }
                result => return result.map_err(|e| ApiError::from_store(e, info, &call.name)),
            }
        }
        Err(ApiError::already_exists(info, &call.name))
    }

    async fn get_inner(&self, call: &mut Call, r: GetRequest) -> Result<Object, ApiError> {
        call.namespace = namespace_for(call.info, &r.namespace, "")?;
        call.name = r.name.clone();
        if r.name.is_empty() {
            return Err(ApiError::bad_request("name: required"));
        }
        let found = self
            .fetch(
                call.info,
                &call.namespace,
                &r.name,
                consistency(r.allow_stale),
            )
            .await?;
        call.authorize(&self.api, &[], found.as_ref(), None)?;
        found.ok_or_else(|| ApiError::not_found(call.info, &r.name))
    }

    async fn list_inner(&self, call: &mut Call, r: ListRequest) -> Result<ListResponse, ApiError> {
        let info = call.info;
        call.namespace = if info.namespaced {
            r.namespace.clone()
        } else {
            String::new()
        };
        let filter = Filter::parse(info, &r.label_selector, &r.field_selector)?;
        call.authorize(&self.api, &filter.fields.exact(), None, None)?;
        if r.limit < 0 {
            return Err(ApiError::bad_request("limit: must not be negative"));
        }
        let namespace = (!call.namespace.is_empty()).then_some(call.namespace.as_str());
        let page = if filter.is_everything() {
            self.api
                .store
                .list_encoded(
                    info,
                    namespace,
                    r.limit as usize,
                    Some(&r.r#continue),
                    consistency(r.allow_stale),
                )
                .await
        } else {
            self.api
                .store
                .list(
                    info,
                    namespace,
                    r.limit as usize,
                    Some(&r.r#continue),
                    consistency(r.allow_stale),
                    |o| filter.matches(o),
                )
                .await
                .map(|page| crate::store::Page {
                    items: page.items.iter().map(Object::encode_to_vec).collect(),
                    revision: page.revision,
                    continue_token: page.continue_token,
                })
        }
        .map_err(|e| ApiError::from_store(e, info, ""))?;
        Ok(ListResponse {
            items: page.items,
            resource_version: page.revision.to_string(),
            r#continue: page.continue_token.unwrap_or_default(),
        })
    }

    /// The read-modify-write behind update, update-status and patch.
    /// `change` builds the candidate from the stored object.
    async fn modify(
        &self,
        call: &mut Call,
        dry_run: bool,
        change: impl Fn(&Object) -> Result<Object, ApiError>,
    ) -> Result<Object, ApiError> {
        let info = call.info;
        let status = call.subresource == "status";
        let mut consistency = Consistency::Stale;
        for _ in 0..MAX_ATTEMPTS {
            let existing = self
                .fetch(info, &call.namespace, &call.name, consistency)
                .await?;
            let Some(existing) = existing else {
                if consistency == Consistency::Stale {
                    consistency = Consistency::Linearizable;
                    continue;
                }
                call.authorize(&self.api, &[], None, None)?;
                return Err(ApiError::not_found(info, &call.name));
            };
            let mut new = change(&existing)?;
            call.authorize(&self.api, &[], Some(&existing), Some(&new))?;
            let stored_rv = resource_version(&existing)?;
            let wanted_rv = resource_version(&new)?;
            if wanted_rv != 0 && wanted_rv != stored_rv {
                if wanted_rv > stored_rv && consistency == Consistency::Stale {
                    // This replica is behind the caller; read through the leader.
                    consistency = Consistency::Linearizable;
                    continue;
                }
                return Err(ApiError::conflict(
                    info,
                    &call.name,
                    format!(
                        "the object has been modified; please apply your changes to the latest version and try again (stored resourceVersion {stored_rv}, given {wanted_rv})"
                    ),
                ));
            }
            carry_over_metadata(&mut new, &existing);
            // Defaults first, so a replacement identical to the stored
            // object (which was defaulted when written) is a no-op and does
            // not bump the generation.
            validation::defaults(&mut new);
            let requested = if status {
                Default::default()
            } else {
                self.allocate(&mut new, Some(&existing))?
            };
            // Kept to name a refused allocation (only Services hold any).
            let allocating = matches!(new, Object::Service(_)).then(|| new.clone());
            if status {
                strategy::prepare_status_update(&mut new, &existing);
            } else {
                strategy::prepare_update(&mut new, &existing);
            }
            let mut errors = validation::validate(&new);
            errors.extend(validation::validate_update(&new, &existing));
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, &call.name, &errors));
            }
            new.metadata_mut().resource_version = existing
                .metadata()
                .map(|m| m.resource_version.clone())
                .unwrap_or_default();
            if new == existing || dry_run {
                return Ok(new);
            }
            let finalized = new.metadata().is_some_and(|m| {
                m.deletion_timestamp.is_some()
                    && m.finalizers.is_empty()
                    && m.deletion_grace_period_seconds.unwrap_or(0) == 0
            }) && !strategy::held_by_spec_finalizers(&new);
            let result = if finalized {
                // The last finalizer is gone from an object being deleted.
                self.api.store.delete(&new, stored_rv).await.map(|_| new)
            } else {
                self.api.store.update(new, &existing, stored_rv).await
            };
            match result {
                Err(StoreError::Conflict { .. }) if wanted_rv == 0 => {
                    consistency = Consistency::Linearizable;
                    continue;
                }
                Err(StoreError::Reserved(key)) => {
                    if let Some(candidate) = &allocating {
                        self.refused_allocation(candidate, &requested, &key)?;
                    }
                    continue; // another writer took it: choose again
                }
                other => return other.map_err(|e| ApiError::from_store(e, info, &call.name)),
            }
        }
        Err(ApiError::conflict(
            info,
            &call.name,
            "too many concurrent changes; try again",
        ))
    }

    async fn update_inner(&self, call: &mut Call, r: UpdateRequest) -> Result<Object, ApiError> {
        let info = call.info;
        let obj = decode_object(info, &r.object)?;
        call.namespace = namespace_for(info, &r.namespace, obj.namespace())?;
        call.name = obj.name().to_owned();
        if call.name.is_empty() {
            return Err(ApiError::invalid(
                info,
                "",
                &[capstan_proto::FieldError::new(
                    "metadata.name",
                    capstan_proto::Reason::Required,
                    "Required value: name is required for update",
                )],
            ));
        }
        let namespace = call.namespace.clone();
        self.modify(call, r.dry_run, |_| {
            let mut new = obj.clone();
            new.metadata_mut().namespace = namespace.clone();
            Ok(new)
        })
        .await
    }

    async fn patch_inner(&self, call: &mut Call, r: PatchRequest) -> Result<Object, ApiError> {
        let info = call.info;
        call.namespace = if info.namespaced {
            if r.namespace.is_empty() {
                return Err(ApiError::bad_request("namespace: required"));
            }
            r.namespace.clone()
        } else {
            String::new()
        };
        call.name = r.name.clone();
        if r.name.is_empty() {
            return Err(ApiError::bad_request("name: required"));
        }
        let patch: serde_json::Value = serde_json::from_slice(&r.patch)
            .map_err(|e| ApiError::bad_request(format!("patch is not valid JSON: {e}")))?;
        let patch_type = PatchType::try_from(r.patch_type)
            .map_err(|_| ApiError::bad_request(format!("unknown patch type {}", r.patch_type)))?;
        let json_patch = match patch_type {
            PatchType::Json => Some(
                serde_json::from_value::<json_patch::Patch>(patch.clone())
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?,
            ),
            PatchType::Merge => None,
        };
        self.modify(call, r.dry_run, |existing| {
            let mut doc = existing
                .to_value()
                .map_err(|e| ApiError::internal(format!("cannot encode stored object: {e}")))?;
            // A patch only carries a resourceVersion when it means one.
            if let Some(meta) = doc.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("resourceVersion");
            }
            match &json_patch {
                Some(p) => json_patch::patch(&mut doc, p)
                    .map_err(|e| ApiError::bad_request(format!("JSON patch failed: {e}")))?,
                None => json_patch::merge(&mut doc, &patch),
            }
            let new = Object::from_value(doc).map_err(|e| {
                let errors = e.errors;
                ApiError::invalid(info, &r.name, &errors)
            })?;
            if new.info() != info {
                return Err(ApiError::bad_request(format!(
                    "a patch may not change apiVersion/kind (from {}/{} to {}/{})",
                    info.api_version,
                    info.kind,
                    new.info().api_version,
                    new.info().kind
                )));
            }
            if new.name() != r.name || new.namespace() != existing.namespace() {
                return Err(ApiError::bad_request(
                    "a patch may not change metadata.name or metadata.namespace",
                ));
            }
            Ok(new)
        })
        .await
    }

    /// Deletes one object: removes it, or marks it (deletionTimestamp)
    /// while finalizers or a grace period hold it.
    async fn delete_one(
        &self,
        call: &Call,
        name: &str,
        r: &DeleteRequest,
        authorize: bool,
    ) -> Result<DeleteResponse, ApiError> {
        let info = call.info;
        let mut consistency = Consistency::Linearizable;
        for _ in 0..MAX_ATTEMPTS {
            let existing = self.fetch(info, &call.namespace, name, consistency).await?;
            if authorize {
                call.authorize(&self.api, &[], existing.as_ref(), None)?;
            }
            let existing = existing.ok_or_else(|| ApiError::not_found(info, name))?;
            let meta = existing.metadata().cloned().unwrap_or_default();
            if let Some(pre) = &r.preconditions {
                if !pre.uid.is_empty() && pre.uid != meta.uid {
                    return Err(ApiError::conflict(
                        info,
                        name,
                        format!(
                            "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                            pre.uid, meta.uid
                        ),
                    ));
                }
                if !pre.resource_version.is_empty() && pre.resource_version != meta.resource_version
                {
                    return Err(ApiError::conflict(
                        info,
                        name,
                        format!(
                            "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {}",
                            pre.resource_version, meta.resource_version
                        ),
                    ));
                }
            }
            let stored_rv = resource_version(&existing)?;
            let grace = grace_period(&existing, r.grace_period_seconds)?;
            let mut finalizers = meta.finalizers.clone();
            match r.propagation_policy.as_str() {
                "" | "Background" => {}
                "Orphan" => add_finalizer(&mut finalizers, "orphan"),
                "Foreground" => add_finalizer(&mut finalizers, "foregroundDeletion"),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "propagationPolicy: Unsupported value: {other:?}: supported values: \"Orphan\", \"Background\", \"Foreground\""
                    )));
                }
            }
            let held = !finalizers.is_empty() || strategy::held_by_spec_finalizers(&existing);
            if r.dry_run {
                return Ok(DeleteResponse {
                    object: existing.encode_to_vec(),
                    removed: grace == 0 && !held,
                });
            }
            let result = if grace == 0 && !held {
                self.api
                    .store
                    .delete(&existing, stored_rv)
                    .await
                    .map(|_| DeleteResponse {
                        object: existing.encode_to_vec(),
                        removed: true,
                    })
            } else {
                let mut marked = existing.clone();
                let m = marked.metadata_mut();
                let shorter = m.deletion_grace_period_seconds.is_none_or(|g| grace < g);
                if m.deletion_timestamp.is_none() || shorter {
                    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(grace);
                    m.deletion_timestamp = Some(Time::from_offset_date_time(at));
                    m.deletion_grace_period_seconds = Some(grace);
                }
                m.finalizers = finalizers;
                strategy::prepare_deletion(&mut marked);
                if marked == existing {
                    return Ok(DeleteResponse {
                        object: existing.encode_to_vec(),
                        removed: false,
                    });
                }
                self.api
                    .store
                    .update(marked, &existing, stored_rv)
                    .await
                    .map(|o| DeleteResponse {
                        object: o.encode_to_vec(),
                        removed: false,
                    })
            };
            match result {
                Err(StoreError::Conflict { .. }) => {
                    consistency = Consistency::Linearizable;
                    continue;
                }
                Err(StoreError::NotFound) => return Err(ApiError::not_found(info, name)),
                other => return other.map_err(|e| ApiError::from_store(e, info, name)),
            }
        }
        Err(ApiError::conflict(
            info,
            name,
            "too many concurrent changes; try again",
        ))
    }

    async fn delete_collection_inner(
        &self,
        call: &mut Call,
        r: DeleteCollectionRequest,
    ) -> Result<DeleteCollectionResponse, ApiError> {
        let info = call.info;
        call.namespace = if info.namespaced {
            r.namespace.clone()
        } else {
            String::new()
        };
        let filter = Filter::parse(info, &r.label_selector, &r.field_selector)?;
        call.authorize(&self.api, &filter.fields.exact(), None, None)?;
        let namespace = (!call.namespace.is_empty()).then_some(call.namespace.as_str());
        let page = self
            .api
            .store
            .list(info, namespace, 0, None, Consistency::Linearizable, |o| {
                filter.matches(o)
            })
            .await
            .map_err(|e| ApiError::from_store(e, info, ""))?;
        let mut items = Vec::new();
        for obj in page.items {
            let mut one = Call::new(call.user.clone(), Verb::Delete, info);
            one.namespace = obj.namespace().to_owned();
            let request = DeleteRequest {
                grace_period_seconds: r.grace_period_seconds,
                dry_run: r.dry_run,
                ..Default::default()
            };
            match self.delete_one(&one, obj.name(), &request, false).await {
                Ok(d) => items.push(d.object),
                // Deleted meanwhile by someone else: nothing left to do.
                Err(e) if e.reason == "NotFound" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(DeleteCollectionResponse { items })
    }
}

/// Fields an update cannot change are taken from the stored object, as
/// Kubernetes does (uid and creationTimestamp if left empty; deletion
/// fields always: only delete sets them).
fn carry_over_metadata(new: &mut Object, old: &Object) {
    let Some(old) = old.metadata() else { return };
    let m = new.metadata_mut();
    if m.uid.is_empty() {
        m.uid = old.uid.clone();
    }
    if m.creation_timestamp.is_none() {
        m.creation_timestamp = old.creation_timestamp;
    }
    m.deletion_timestamp = old.deletion_timestamp;
    m.deletion_grace_period_seconds = old.deletion_grace_period_seconds;
    m.generation = old.generation;
    m.generate_name = old.generate_name.clone();
}

fn add_finalizer(finalizers: &mut Vec<String>, f: &str) {
    if !finalizers.iter().any(|x| x == f) {
        finalizers.push(f.to_owned());
    }
}

/// The grace period of a delete: only pods bound to a node and not finished
/// get one (their kubelet stops them, then deletes with grace 0).
fn grace_period(obj: &Object, requested: Option<i64>) -> Result<i64, ApiError> {
    if let Some(g) = requested
        && g < 0
    {
        return Err(ApiError::bad_request(
            "gracePeriodSeconds: must not be negative",
        ));
    }
    let Object::Pod(pod) = obj else {
        return Ok(0);
    };
    let bound = pod.spec.as_ref().is_some_and(|s| !s.node_name.is_empty());
    let finished = pod
        .status
        .as_ref()
        .is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed");
    if !bound || finished {
        return Ok(0);
    }
    Ok(requested.unwrap_or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
    }))
}

type WatchStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<WatchEvent, Status>> + Send + 'static>>;

/// A request that names the resource it is about.
trait Addressed {
    fn resource(&self) -> Option<&ResourceRef>;
}

macro_rules! addressed {
    ($($t:ty),*) => {
        $(impl Addressed for $t {
            fn resource(&self) -> Option<&ResourceRef> {
                self.resource.as_ref()
            }
        })*
    };
}

addressed!(
    CreateRequest,
    GetRequest,
    ListRequest,
    UpdateRequest,
    PatchRequest,
    DeleteRequest,
    DeleteCollectionRequest,
    WatchRequest
);

fn object_response(obj: Object) -> Response<ObjectResponse> {
    Response::new(ObjectResponse {
        object: obj.encode_to_vec(),
    })
}

impl<T: PeerTransport> ResourceService<T> {
    /// Authenticates the caller and resolves the kind: the call and the
    /// request body.
    fn begin<R: Addressed>(&self, request: Request<R>, verb: Verb) -> Result<(Call, R), Status> {
        let user = self
            .api
            .authenticator
            .authenticate(&request)
            .map_err(ApiError::unauthorized)?;
        let r = request.into_inner();
        let info = resolve(r.resource())?;
        Ok((Call::new(user, verb, info), r))
    }

    fn no_status(info: &KindInfo) -> ApiError {
        ApiError::method_not_supported(format!("{} has no status subresource", info.plural))
    }
}

#[tonic::async_trait]
impl<T: PeerTransport> Resources for ResourceService<T> {
    async fn create(
        &self,
        request: Request<CreateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::Create)?;
        let result = self.create_inner(&mut call, r).await;
        Ok(object_response(call.finish(&self.api, result)?))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<ObjectResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::Get)?;
        let result = self.get_inner(&mut call, r).await;
        Ok(object_response(call.finish(&self.api, result)?))
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::List)?;
        let result = self.list_inner(&mut call, r).await;
        Ok(Response::new(call.finish(&self.api, result)?))
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::Update)?;
        let result = self.update_inner(&mut call, r).await;
        Ok(object_response(call.finish(&self.api, result)?))
    }

    async fn update_status(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::Update)?;
        call.subresource = "status";
        let result = if call.info.has_status {
            self.update_inner(&mut call, r).await
        } else {
            Err(Self::no_status(call.info))
        };
        Ok(object_response(call.finish(&self.api, result)?))
    }

    async fn patch(
        &self,
        request: Request<PatchRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::Patch)?;
        if r.status {
            call.subresource = "status";
        }
        let result = if r.status && !call.info.has_status {
            Err(Self::no_status(call.info))
        } else {
            self.patch_inner(&mut call, r).await
        };
        Ok(object_response(call.finish(&self.api, result)?))
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::Delete)?;
        call.name = r.name.clone();
        let result = match namespace_for(call.info, &r.namespace, "") {
            Err(e) => Err(e),
            Ok(_) if r.name.is_empty() => Err(ApiError::bad_request("name: required")),
            Ok(ns) => {
                call.namespace = ns;
                self.delete_one(&call, &r.name, &r, true).await
            }
        };
        Ok(Response::new(call.finish(&self.api, result)?))
    }

    async fn delete_collection(
        &self,
        request: Request<DeleteCollectionRequest>,
    ) -> Result<Response<DeleteCollectionResponse>, Status> {
        let (mut call, r) = self.begin(request, Verb::DeleteCollection)?;
        let result = self.delete_collection_inner(&mut call, r).await;
        Ok(Response::new(call.finish(&self.api, result)?))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (mut call, r) = self.begin(request, Verb::Watch)?;
        let result = super::watch::start(&self.api, &mut call, r).await;
        Ok(Response::new(call.finish(&self.api, result)?))
    }
}

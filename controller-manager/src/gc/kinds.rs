//! Every served kind behind one object-safe trait, [`KindOps`], so the
//! garbage collector and the namespace controller can act on objects of a
//! kind known only at run time (an ownerReference's `apiVersion`/`kind`, a
//! namespace's contents) through the typed [`Api`]. [`all`] has one entry
//! per entry of [`KINDS`] (a unit test keeps them in step).

use std::marker::PhantomData;

use capstan_client::{Api, Client, DeleteParams, Error, ListParams};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::api::{apps, autoscaling, coordination, core, rbac};
use capstan_proto::{KINDS, KindInfo, Resource};
use futures::future::BoxFuture;

use crate::informer::{Change, Informers};

/// One change of an object's metadata, as the garbage collector's graph needs it.
#[derive(Debug)]
pub enum MetaChange {
    /// A relist: these are all the objects of the kind now.
    Restarted(Vec<ObjectMeta>),
    /// Created or changed.
    Applied(ObjectMeta),
    /// Gone.
    Deleted(ObjectMeta),
}

/// A function that edits metadata; returns whether it changed anything.
pub type EditMeta = Box<dyn Fn(&mut ObjectMeta) -> bool + Send + Sync>;

/// What can be done with objects of one kind, whatever its Rust type.
pub trait KindOps: Send + Sync {
    /// The kind.
    fn info(&self) -> &'static KindInfo;

    /// Calls `sink` with every change of this kind's shared informer.
    fn watch(&self, informers: &Informers, sink: Box<dyn Fn(MetaChange) + Send + Sync>);

    /// Whether this kind's shared informer has listed.
    fn is_synced(&self, informers: &Informers) -> bool;

    /// The object's metadata, `None` when it does not exist (linearizable).
    fn get_meta<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectMeta>, Error>>;

    /// Deletes one object.
    fn delete<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
        name: &'a str,
        params: DeleteParams,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Reads the object, applies `edit` to its metadata and writes it back
    /// (refused on a concurrent change; `uid` must still match). Ok(false)
    /// when it is gone, has another uid or `edit` changed nothing.
    fn edit_meta<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
        name: &'a str,
        uid: &'a str,
        edit: EditMeta,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Deletes every object of the kind in `namespace`.
    fn delete_all<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// How many objects of the kind are in `namespace`.
    fn count<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<usize, Error>>;
}

struct Typed<K>(PhantomData<fn() -> K>);

impl<K: Resource + Send + Sync> KindOps for Typed<K> {
    fn info(&self) -> &'static KindInfo {
        KINDS
            .iter()
            .find(|k| **k == K::INFO)
            .expect("every Resource is in KINDS")
    }

    fn watch(&self, informers: &Informers, sink: Box<dyn Fn(MetaChange) + Send + Sync>) {
        let informer = informers.get::<K>();
        informer.add_handler(move |change: Change<'_, K>| {
            let meta = |o: &K| o.metadata().cloned().unwrap_or_default();
            sink(match change {
                Change::Restarted(all) => MetaChange::Restarted(all.iter().map(meta).collect()),
                Change::Applied { new, .. } => MetaChange::Applied(meta(new)),
                Change::Deleted(old) => MetaChange::Deleted(meta(old)),
            })
        });
    }

    fn is_synced(&self, informers: &Informers) -> bool {
        informers.get::<K>().store().is_ready()
    }

    fn get_meta<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectMeta>, Error>> {
        Box::pin(async move {
            let api: Api<K> = Api::namespaced(client.clone(), namespace);
            Ok(api
                .get_opt(name)
                .await?
                .map(|o| o.metadata().cloned().unwrap_or_default()))
        })
    }

    fn delete<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
        name: &'a str,
        params: DeleteParams,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let api: Api<K> = Api::namespaced(client.clone(), namespace);
            match api.delete(name, &params).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn edit_meta<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
        name: &'a str,
        uid: &'a str,
        edit: EditMeta,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let api: Api<K> = Api::namespaced(client.clone(), namespace);
            let Some(mut obj) = api.get_opt(name).await? else {
                return Ok(false);
            };
            let meta = obj.metadata_mut();
            if meta.uid != uid || !edit(meta) {
                return Ok(false);
            }
            match api.update(&obj).await {
                Ok(_) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn delete_all<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let api: Api<K> = Api::namespaced(client.clone(), namespace);
            api.delete_collection(&ListParams::default(), &DeleteParams::default())
                .await
                .map(|_| ())
        })
    }

    fn count<'a>(
        &'a self,
        client: &'a Client,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<usize, Error>> {
        Box::pin(async move {
            let api: Api<K> = Api::namespaced(client.clone(), namespace);
            Ok(api.list_all(&ListParams::default()).await?.items.len())
        })
    }
}

macro_rules! typed {
    ($($t:ty),* $(,)?) => {
        vec![$(Box::new(Typed::<$t>(PhantomData)) as Box<dyn KindOps>),*]
    };
}

/// One [`KindOps`] per served kind, in [`KINDS`]'s order.
pub fn all() -> Vec<Box<dyn KindOps>> {
    typed![
        core::v1::Namespace,
        core::v1::Node,
        core::v1::Pod,
        core::v1::Service,
        core::v1::Endpoints,
        core::v1::Event,
        core::v1::ServiceAccount,
        core::v1::Secret,
        core::v1::ConfigMap,
        core::v1::PersistentVolume,
        core::v1::PersistentVolumeClaim,
        core::v1::ReplicationController,
        apps::v1::ReplicaSet,
        apps::v1::Deployment,
        apps::v1::StatefulSet,
        apps::v1::ControllerRevision,
        autoscaling::v1::HorizontalPodAutoscaler,
        rbac::v1::Role,
        rbac::v1::ClusterRole,
        rbac::v1::RoleBinding,
        rbac::v1::ClusterRoleBinding,
        coordination::v1::Lease,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_served_kind() {
        let ops = all();
        let infos: Vec<&KindInfo> = ops.iter().map(|o| o.info()).collect();
        let expected: Vec<&KindInfo> = KINDS.iter().collect();
        assert_eq!(infos, expected);
    }
}

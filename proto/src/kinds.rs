//! The served kinds: the one table that knows, per kind, its group,
//! version, plural resource name, scope and Rust type. Everything generic —
//! the decoder, [`Object`], a generic apiserver and CLI — goes through it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::meta::v1::ObjectMeta;
use crate::api::{apps, autoscaling, coordination, core, rbac};

/// Static facts about one served kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version within the group, e.g. `v1`.
    pub version: &'static str,
    /// `apiVersion` as written in documents: `v1` or `apps/v1`.
    pub api_version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name used in paths and the CLI, e.g. `deployments`.
    pub plural: &'static str,
    /// Short names the CLI accepts, e.g. `deploy`.
    pub short_names: &'static [&'static str],
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
    /// Whether the kind has a `status` (served as a status subresource).
    pub has_status: bool,
    /// Full name of the protobuf message, e.g. `capstan.apps.v1.Deployment`.
    pub message: &'static str,
}

impl KindInfo {
    /// The schema of this kind's message.
    pub fn schema(&self) -> &'static crate::schema::MessageSchema {
        crate::schema::schema()
            .message(self.message)
            .expect("every served kind has a message in the descriptor set")
    }
}

/// A served kind's Rust type: a protobuf message with Kubernetes JSON, and
/// an `ObjectMeta`.
pub trait Resource:
    prost::Message + Default + Clone + PartialEq + Serialize + DeserializeOwned + 'static
{
    /// The kind's entry in [`KINDS`].
    const INFO: KindInfo;

    /// The object's metadata, if set.
    fn metadata(&self) -> Option<&ObjectMeta>;

    /// The object's metadata, inserted empty if unset.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;

    /// Wraps the object in [`Object`].
    fn into_object(self) -> Object;

    /// Unwraps an [`Object`] of this kind, or gives it back unchanged.
    #[allow(clippy::result_large_err)] // the object is returned as it came, not copied
    fn from_object(object: Object) -> Result<Self, Object>;
}

macro_rules! served_kinds {
    ($(
        $variant:ident($ty:ty) {
            group: $group:literal,
            version: $version:literal,
            api_version: $api_version:literal,
            plural: $plural:literal,
            short: [$($short:literal),*],
            namespaced: $namespaced:literal,
            status: $status:literal,
            message: $message:literal $(,)?
        }
    ),* $(,)?) => {
        $(
            impl Resource for $ty {
                const INFO: KindInfo = KindInfo {
                    group: $group,
                    version: $version,
                    api_version: $api_version,
                    kind: stringify!($variant),
                    plural: $plural,
                    short_names: &[$($short),*],
                    namespaced: $namespaced,
                    has_status: $status,
                    message: $message,
                };

                fn metadata(&self) -> Option<&ObjectMeta> {
                    self.metadata.as_ref()
                }

                fn metadata_mut(&mut self) -> &mut ObjectMeta {
                    self.metadata.get_or_insert_with(ObjectMeta::default)
                }

                fn into_object(self) -> Object {
                    Object::$variant(self)
                }

                fn from_object(object: Object) -> Result<Self, Object> {
                    match object {
                        Object::$variant(o) => Ok(o),
                        other => Err(other),
                    }
                }
            }

            impl From<$ty> for Object {
                fn from(object: $ty) -> Self {
                    Object::$variant(object)
                }
            }

            impl TryFrom<Object> for $ty {
                type Error = Object;

                fn try_from(object: Object) -> Result<Self, Object> {
                    match object {
                        Object::$variant(o) => Ok(o),
                        other => Err(other),
                    }
                }
            }
        )*

        /// Every served kind, in a stable order.
        pub static KINDS: &[KindInfo] = &[$(<$ty as Resource>::INFO),*];

        /// An object of any served kind.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Object {
            $(
                #[doc = concat!("A `", stringify!($variant), "` (", $api_version, ").")]
                $variant($ty),
            )*
        }

        impl Object {
            /// The kind's entry in [`KINDS`].
            pub fn info(&self) -> &'static KindInfo {
                match self {
                    $(Object::$variant(_) => &<$ty as Resource>::INFO,)*
                }
            }

            /// The object's metadata, if set.
            pub fn metadata(&self) -> Option<&ObjectMeta> {
                match self {
                    $(Object::$variant(o) => o.metadata(),)*
                }
            }

            /// The object's metadata, inserted empty if unset.
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(Object::$variant(o) => o.metadata_mut(),)*
                }
            }

            /// The protobuf encoding of the object (without apiVersion/kind,
            /// which the caller keeps alongside, e.g. from [`Object::info`]).
            pub fn encode_to_vec(&self) -> Vec<u8> {
                match self {
                    $(Object::$variant(o) => prost::Message::encode_to_vec(o),)*
                }
            }

            /// Decodes the protobuf encoding of an object of kind `info`.
            ///
            /// # Panics
            ///
            /// If `info` is not one of [`KINDS`] (all lookups return those).
            pub fn decode(info: &KindInfo, bytes: &[u8]) -> Result<Object, prost::DecodeError> {
                $(
                    if info.message == $message {
                        return <$ty as prost::Message>::decode(bytes).map(Object::$variant);
                    }
                )*
                unreachable!("KindInfo values come from KINDS")
            }

            /// Deserializes an already-checked JSON document of kind `info`.
            pub(crate) fn from_checked_value(
                info: &KindInfo,
                value: serde_json::Value,
            ) -> Result<Object, serde_json::Error> {
                $(
                    if info.message == $message {
                        return serde_json::from_value::<$ty>(value).map(Object::$variant);
                    }
                )*
                unreachable!("KindInfo values come from KINDS")
            }
        }

        impl Serialize for Object {
            /// Serializes as Kubernetes writes it, `apiVersion` and `kind` first.
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Object::$variant(o) => crate::codec::Typed::new(o).serialize(serializer),)*
                }
            }
        }
    };
}

served_kinds! {
    Namespace(core::v1::Namespace) {
        group: "", version: "v1", api_version: "v1", plural: "namespaces", short: ["ns"],
        namespaced: false, status: true, message: "capstan.core.v1.Namespace",
    },
    Node(core::v1::Node) {
        group: "", version: "v1", api_version: "v1", plural: "nodes", short: ["no"],
        namespaced: false, status: true, message: "capstan.core.v1.Node",
    },
    Pod(core::v1::Pod) {
        group: "", version: "v1", api_version: "v1", plural: "pods", short: ["po"],
        namespaced: true, status: true, message: "capstan.core.v1.Pod",
    },
    Service(core::v1::Service) {
        group: "", version: "v1", api_version: "v1", plural: "services", short: ["svc"],
        namespaced: true, status: true, message: "capstan.core.v1.Service",
    },
    Endpoints(core::v1::Endpoints) {
        group: "", version: "v1", api_version: "v1", plural: "endpoints", short: ["ep"],
        namespaced: true, status: false, message: "capstan.core.v1.Endpoints",
    },
    Event(core::v1::Event) {
        group: "", version: "v1", api_version: "v1", plural: "events", short: ["ev"],
        namespaced: true, status: false, message: "capstan.core.v1.Event",
    },
    ServiceAccount(core::v1::ServiceAccount) {
        group: "", version: "v1", api_version: "v1", plural: "serviceaccounts", short: ["sa"],
        namespaced: true, status: false, message: "capstan.core.v1.ServiceAccount",
    },
    Secret(core::v1::Secret) {
        group: "", version: "v1", api_version: "v1", plural: "secrets", short: [],
        namespaced: true, status: false, message: "capstan.core.v1.Secret",
    },
    ConfigMap(core::v1::ConfigMap) {
        group: "", version: "v1", api_version: "v1", plural: "configmaps", short: ["cm"],
        namespaced: true, status: false, message: "capstan.core.v1.ConfigMap",
    },
    PersistentVolume(core::v1::PersistentVolume) {
        group: "", version: "v1", api_version: "v1", plural: "persistentvolumes", short: ["pv"],
        namespaced: false, status: true, message: "capstan.core.v1.PersistentVolume",
    },
    PersistentVolumeClaim(core::v1::PersistentVolumeClaim) {
        group: "", version: "v1", api_version: "v1", plural: "persistentvolumeclaims", short: ["pvc"],
        namespaced: true, status: true, message: "capstan.core.v1.PersistentVolumeClaim",
    },
    ReplicationController(core::v1::ReplicationController) {
        group: "", version: "v1", api_version: "v1", plural: "replicationcontrollers", short: ["rc"],
        namespaced: true, status: true, message: "capstan.core.v1.ReplicationController",
    },
    ReplicaSet(apps::v1::ReplicaSet) {
        group: "apps", version: "v1", api_version: "apps/v1", plural: "replicasets", short: ["rs"],
        namespaced: true, status: true, message: "capstan.apps.v1.ReplicaSet",
    },
    Deployment(apps::v1::Deployment) {
        group: "apps", version: "v1", api_version: "apps/v1", plural: "deployments", short: ["deploy"],
        namespaced: true, status: true, message: "capstan.apps.v1.Deployment",
    },
    StatefulSet(apps::v1::StatefulSet) {
        group: "apps", version: "v1", api_version: "apps/v1", plural: "statefulsets", short: ["sts"],
        namespaced: true, status: true, message: "capstan.apps.v1.StatefulSet",
    },
    ControllerRevision(apps::v1::ControllerRevision) {
        group: "apps", version: "v1", api_version: "apps/v1", plural: "controllerrevisions", short: [],
        namespaced: true, status: false, message: "capstan.apps.v1.ControllerRevision",
    },
    HorizontalPodAutoscaler(autoscaling::v1::HorizontalPodAutoscaler) {
        group: "autoscaling", version: "v1", api_version: "autoscaling/v1",
        plural: "horizontalpodautoscalers", short: ["hpa"], namespaced: true, status: true,
        message: "capstan.autoscaling.v1.HorizontalPodAutoscaler",
    },
    Role(rbac::v1::Role) {
        group: "rbac.authorization.k8s.io", version: "v1",
        api_version: "rbac.authorization.k8s.io/v1", plural: "roles", short: [],
        namespaced: true, status: false, message: "capstan.rbac.v1.Role",
    },
    ClusterRole(rbac::v1::ClusterRole) {
        group: "rbac.authorization.k8s.io", version: "v1",
        api_version: "rbac.authorization.k8s.io/v1", plural: "clusterroles", short: [],
        namespaced: false, status: false, message: "capstan.rbac.v1.ClusterRole",
    },
    RoleBinding(rbac::v1::RoleBinding) {
        group: "rbac.authorization.k8s.io", version: "v1",
        api_version: "rbac.authorization.k8s.io/v1", plural: "rolebindings", short: [],
        namespaced: true, status: false, message: "capstan.rbac.v1.RoleBinding",
    },
    ClusterRoleBinding(rbac::v1::ClusterRoleBinding) {
        group: "rbac.authorization.k8s.io", version: "v1",
        api_version: "rbac.authorization.k8s.io/v1", plural: "clusterrolebindings", short: [],
        namespaced: false, status: false, message: "capstan.rbac.v1.ClusterRoleBinding",
    },
    Lease(coordination::v1::Lease) {
        group: "coordination.k8s.io", version: "v1",
        api_version: "coordination.k8s.io/v1", plural: "leases", short: [],
        namespaced: true, status: false, message: "capstan.coordination.v1.Lease",
    },
}

impl Object {
    /// The object's name (`metadata.name`), empty when unset.
    pub fn name(&self) -> &str {
        self.metadata().map_or("", |m| m.name.as_str())
    }

    /// The object's namespace (`metadata.namespace`), empty when unset.
    pub fn namespace(&self) -> &str {
        self.metadata().map_or("", |m| m.namespace.as_str())
    }
}

/// The served kind with this `apiVersion` and `kind`.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

/// The served kind with this group, version and kind.
pub fn lookup_gvk(group: &str, version: &str, kind: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// The served kind with this group and plural resource name (`apps`, `deployments`).
pub fn lookup_resource(group: &str, plural: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.plural == plural)
}

/// The served kind a CLI user means by `name`: a kind (`Deployment`, any
/// case), a plural or singular resource name (`deployments`, `deployment`)
/// or a short name (`deploy`), optionally qualified by group
/// (`deployments.apps`).
pub fn lookup_cli(name: &str) -> Option<&'static KindInfo> {
    let name = name.to_ascii_lowercase();
    let (resource, group) = match name.split_once('.') {
        Some((resource, group)) => (resource, Some(group)),
        None => (name.as_str(), None),
    };
    KINDS.iter().find(|k| {
        group.is_none_or(|g| g == k.group)
            && (k.plural == resource
                || k.kind.eq_ignore_ascii_case(resource)
                || k.short_names.contains(&resource))
    })
}

/// The served kind named `kind`, in whichever group serves it.
pub fn lookup_kind(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, info) in KINDS.iter().enumerate() {
            assert!(
                crate::schema::schema().message(info.message).is_some(),
                "{info:?}"
            );
            let expected = if info.group.is_empty() {
                info.version.to_owned()
            } else {
                format!("{}/{}", info.group, info.version)
            };
            assert_eq!(info.api_version, expected);
            assert!(info.message.ends_with(&format!(".{}", info.kind)));
            assert_eq!(
                info.schema().field("status").is_some(),
                info.has_status,
                "{}",
                info.kind
            );
            assert!(info.schema().field("metadata").is_some());
            assert!(
                KINDS[..i].iter().all(|k| k.kind != info.kind),
                "duplicate {}",
                info.kind
            );
        }
        assert_eq!(
            lookup("apps/v1", "Deployment").unwrap().plural,
            "deployments"
        );
        assert_eq!(lookup_resource("", "pods").unwrap().kind, "Pod");
        assert!(lookup("extension/v1beta1", "Deployment").is_none());
        assert_eq!(lookup_cli("deploy").unwrap().kind, "Deployment");
        assert_eq!(lookup_cli("Pods").unwrap().kind, "Pod");
        assert_eq!(lookup_cli("hpa").unwrap().kind, "HorizontalPodAutoscaler");
        assert_eq!(lookup_cli("rolebinding").unwrap().kind, "RoleBinding");
        assert_eq!(
            lookup_cli("leases.coordination.k8s.io").unwrap().kind,
            "Lease"
        );
        assert!(lookup_cli("deployments.core").is_none());
    }
}

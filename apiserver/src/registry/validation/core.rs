//! The kinds with small specs: Namespace, Node, Endpoints, Event, Secret,
//! ConfigMap, PersistentVolume and PersistentVolumeClaim (core/v1),
//! ControllerRevision (apps/v1), HorizontalPodAutoscaler (autoscaling/v1)
//! and Lease (coordination.k8s.io/v1): their defaults, validation and
//! update rules (immutable Secrets and ConfigMaps, PV sources, PVC specs,
//! ControllerRevision data).

use std::collections::BTreeSet;

use capstan_proto::FieldError;
use capstan_proto::api::apps::v1::ControllerRevision;
use capstan_proto::api::autoscaling::v1::HorizontalPodAutoscaler;
use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::{
    ConfigMap, EndpointAddress, Endpoints, Event, Namespace, NamespaceStatus, Node,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, PersistentVolumeStatus, Secret,
};
use capstan_proto::labels::{dns1123_subdomain_errors, qualified_name_errors};
use capstan_proto::quantity::Quantity;

use super::field::{
    config_key_errors, dns1123_label_errors, duplicate, forbidden, invalid, invalid_each,
    ip_errors, non_negative, not_supported, path_segment_errors, port_num_errors, required,
    special_ip_errors, too_long, validate_label_name,
};
use super::meta::validate_label_selector;
use super::pod::{validate_protocol, validate_quantity, validate_taint_effect};

/// Most bytes the data of one Secret or ConfigMap may hold (1 MiB).
pub(crate) const MAX_SECRET_SIZE: usize = 1024 * 1024;
/// The label every Namespace carries with its own name.
pub(crate) const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

// ---- Namespace ----

/// A Namespace is labelled with its name and starts Active.
pub(crate) fn default_namespace(ns: &mut Namespace) {
    if let Some(meta) = ns.metadata.as_mut().filter(|m| !m.name.is_empty()) {
        meta.labels
            .insert(NAMESPACE_NAME_LABEL.to_owned(), meta.name.clone());
    }
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    if status.phase.is_empty() {
        status.phase = "Active".to_owned();
    }
}

/// `spec.finalizers` are qualified names, or one of the standard ones.
pub(crate) fn validate_namespace(ns: &Namespace) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for f in ns.spec.iter().flat_map(|s| &s.finalizers) {
        let path = "spec.finalizers";
        errors.extend(invalid_each(path, f, qualified_name_errors(f)));
        if !f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&f.as_str())
        {
            errors.push(invalid(
                path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errors
}

// ---- Node ----

/// Taints: valid key and value, a known effect, unique by key and effect.
pub(crate) fn validate_node(node: &Node) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, taint) in node.spec.iter().flat_map(|s| &s.taints).enumerate() {
        let path = format!("spec.taints[{i}]");
        errors.extend(validate_label_name(&taint.key, &format!("{path}.key")));
        let value_errors = capstan_proto::labels::label_value_errors(&taint.value);
        if !value_errors.is_empty() {
            errors.push(invalid(
                format!("{path}.value"),
                &taint.value,
                &value_errors.join(";"),
            ));
        }
        if taint.effect.is_empty() {
            errors.push(required(format!("{path}.effect"), ""));
        } else {
            validate_taint_effect(&taint.effect, &format!("{path}.effect"), &mut errors);
        }
        if !seen.insert((taint.key.as_str(), taint.effect.as_str())) {
            let mut e = duplicate(&path, format!("{}:{}", taint.key, taint.effect));
            e.message
                .push_str(": taints must be unique by key and effect pair");
            errors.push(e);
        }
    }
    errors
}

// ---- Endpoints ----

/// Endpoint ports default to TCP.
pub(crate) fn default_endpoints(ep: &mut Endpoints) {
    for port in ep.subsets.iter_mut().flat_map(|s| &mut s.ports) {
        if port.protocol.is_empty() {
            port.protocol = "TCP".to_owned();
        }
    }
}

fn validate_endpoint_address(a: &EndpointAddress, path: &str, errors: &mut Vec<FieldError>) {
    let ip_path = format!("{path}.ip");
    let ip_problems = ip_errors(&a.ip);
    if ip_problems.is_empty() {
        errors.extend(invalid_each(&ip_path, &a.ip, special_ip_errors(&a.ip)));
    } else {
        errors.extend(invalid_each(&ip_path, &a.ip, ip_problems));
    }
    if !a.hostname.is_empty() {
        errors.extend(invalid_each(
            &format!("{path}.hostname"),
            &a.hostname,
            dns1123_label_errors(&a.hostname),
        ));
    }
    if let Some(node) = a.node_name.as_ref() {
        errors.extend(invalid_each(
            &format!("{path}.nodeName"),
            node,
            dns1123_subdomain_errors(node),
        ));
    }
}

/// Each subset has addresses (valid, non-special IPs) and valid ports,
/// named when there are several.
pub(crate) fn validate_endpoints(ep: &Endpoints) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, subset) in ep.subsets.iter().enumerate() {
        let path = format!("subsets[{i}]");
        if subset.addresses.is_empty() && subset.not_ready_addresses.is_empty() {
            errors.push(required(
                &path,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in subset.addresses.iter().enumerate() {
            validate_endpoint_address(a, &format!("{path}.addresses[{j}]"), &mut errors);
        }
        for (j, a) in subset.not_ready_addresses.iter().enumerate() {
            validate_endpoint_address(a, &format!("{path}.notReadyAddresses[{j}]"), &mut errors);
        }
        for (j, p) in subset.ports.iter().enumerate() {
            let ppath = format!("{path}.ports[{j}]");
            if p.name.is_empty() {
                if subset.ports.len() > 1 {
                    errors.push(required(format!("{ppath}.name"), ""));
                }
            } else {
                errors.extend(invalid_each(
                    &format!("{ppath}.name"),
                    &p.name,
                    dns1123_label_errors(&p.name),
                ));
            }
            let port = p.port.unwrap_or(0);
            for m in port_num_errors(i64::from(port)) {
                errors.push(invalid(format!("{ppath}.port"), port, &m));
            }
            validate_protocol(&p.protocol, &format!("{ppath}.protocol"), &mut errors);
        }
    }
    errors
}

// ---- Event ----

/// An Event names the object it is about (Capstan requires
/// `involvedObject`; Kubernetes tolerates an empty one), in the Event's own
/// namespace (or none, for an Event in `default`).
pub(crate) fn validate_event(ev: &Event) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let namespace = ev.metadata.as_ref().map_or("", |m| m.namespace.as_str());
    match ev.involved_object.as_ref() {
        None => errors.push(required("involvedObject", "")),
        Some(obj) => {
            let agrees = if obj.namespace.is_empty() {
                namespace.is_empty() || namespace == "default"
            } else {
                obj.namespace == namespace
            };
            if !agrees && ev.event_time.is_none() {
                errors.push(invalid(
                    "involvedObject.namespace",
                    &obj.namespace,
                    "does not match event.namespace",
                ));
            }
        }
    }
    errors
}

// ---- Secret ----

/// `stringData` is merged into `data` (it is write-only), and the type
/// defaults to Opaque.
pub(crate) fn default_secret(secret: &mut Secret) {
    for (key, value) in std::mem::take(&mut secret.string_data) {
        secret.data.insert(key, value.into_bytes());
    }
    if secret.r#type.is_empty() {
        secret.r#type = "Opaque".to_owned();
    }
}

/// Keys are config keys; at most 1 MiB of data; the well-known types carry
/// the keys they promise.
pub(crate) fn validate_secret(secret: &Secret) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0;
    for (key, value) in &secret.data {
        errors.extend(invalid_each(
            &format!("data[{key}]"),
            key,
            config_key_errors(key),
        ));
        total += value.len();
    }
    for (key, value) in &secret.string_data {
        errors.extend(invalid_each(
            &format!("stringData[{key}]"),
            key,
            config_key_errors(key),
        ));
        total += value.len();
    }
    if total > MAX_SECRET_SIZE {
        errors.push(too_long("data", MAX_SECRET_SIZE));
    }
    let has = |key: &str| secret.data.contains_key(key) || secret.string_data.contains_key(key);
    let annotations = secret.metadata.as_ref().map(|m| &m.annotations);
    match secret.r#type.as_str() {
        "kubernetes.io/service-account-token" => {
            let key = "kubernetes.io/service-account.name";
            if annotations
                .and_then(|a| a.get(key))
                .is_none_or(String::is_empty)
            {
                errors.push(required(format!("metadata.annotations[{key}]"), ""));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if secret.r#type.ends_with("json") {
                ".dockerconfigjson"
            } else {
                ".dockercfg"
            };
            match secret.data.get(key) {
                None if !has(key) => errors.push(required(format!("data[{key}]"), "")),
                None => {}
                Some(bytes) => {
                    if let Err(e) =
                        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
                    {
                        errors.push(invalid(
                            format!("data[{key}]"),
                            "<secret contents redacted>",
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errors.push(required("data[username]", ""));
            errors.push(required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" => {
            let empty = secret.data.get("ssh-privatekey").is_none_or(Vec::is_empty)
                && secret
                    .string_data
                    .get("ssh-privatekey")
                    .is_none_or(String::is_empty);
            if empty {
                errors.push(required("data[ssh-privatekey]", ""));
            }
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errors.push(required(format!("data[{key}]"), ""));
                }
            }
        }
        _ => {}
    }
    errors
}

/// The type never changes; an immutable Secret stays immutable and keeps
/// its data.
pub(crate) fn validate_secret_update(new: &Secret, old: &Secret) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if new.r#type != old.r#type {
        errors.push(invalid("type", &new.r#type, "field is immutable"));
    }
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errors.push(forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        if new.data != old.data {
            errors.push(forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errors
}

// ---- ConfigMap ----

/// Keys are config keys, in `data` or `binaryData` but not both; at most
/// 1 MiB in all.
pub(crate) fn validate_config_map(cm: &ConfigMap) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0;
    for (key, value) in &cm.data {
        let path = format!("data[{key}]");
        errors.extend(invalid_each(&path, key, config_key_errors(key)));
        if cm.binary_data.contains_key(key) {
            errors.push(invalid(
                &path,
                key,
                "duplicate of key present in binaryData",
            ));
        }
        total += value.len();
    }
    for (key, value) in &cm.binary_data {
        let path = format!("binaryData[{key}]");
        errors.extend(invalid_each(&path, key, config_key_errors(key)));
        if cm.data.contains_key(key) {
            errors.push(invalid(&path, key, "duplicate of key present in data"));
        }
        total += value.len();
    }
    if total > MAX_SECRET_SIZE {
        errors.push(too_long("", MAX_SECRET_SIZE));
    }
    errors
}

/// An immutable ConfigMap stays immutable and keeps its data.
pub(crate) fn validate_config_map_update(new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errors.push(forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        if new.data != old.data {
            errors.push(forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
        if new.binary_data != old.binary_data {
            errors.push(forbidden(
                "binaryData",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errors
}

// ---- PersistentVolume and PersistentVolumeClaim ----

fn validate_access_modes(modes: &[String], path: &str, detail: &str, errors: &mut Vec<FieldError>) {
    if modes.is_empty() {
        errors.push(required(path, detail));
    }
    for mode in modes {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            errors.push(not_supported(path, mode, ACCESS_MODES));
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        errors.push(forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn validate_volume_mode(mode: Option<&String>, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(mode) = mode
        && !VOLUME_MODES.contains(&mode.as_str())
    {
        errors.push(not_supported(path, mode, VOLUME_MODES));
    }
}

fn validate_positive_quantity(q: &Quantity, path: &str, errors: &mut Vec<FieldError>) {
    let before = errors.len();
    validate_quantity(q, path, errors);
    if errors.len() == before && !q.cmp_value(&Quantity::zero()).is_gt() {
        errors.push(invalid(path, q.as_str(), "must be greater than zero"));
    }
}

/// A PV is Pending until bound, Retain'ed when released, a filesystem.
pub(crate) fn default_persistent_volume(pv: &mut PersistentVolume) {
    let spec = pv.spec.get_or_insert_with(Default::default);
    if spec.persistent_volume_reclaim_policy.is_empty() {
        spec.persistent_volume_reclaim_policy = "Retain".to_owned();
    }
    spec.volume_mode
        .get_or_insert_with(|| "Filesystem".to_owned());
    if let Some(host_path) = spec.host_path.as_mut() {
        host_path.r#type.get_or_insert_with(String::new);
    }
    let status = pv
        .status
        .get_or_insert_with(PersistentVolumeStatus::default);
    if status.phase.is_empty() {
        status.phase = "Pending".to_owned();
    }
}

/// The sources a PV sets, by JSON name.
fn pv_sources(spec: &capstan_proto::api::core::v1::PersistentVolumeSpec) -> Vec<&'static str> {
    [
        ("hostPath", spec.host_path.is_some()),
        ("nfs", spec.nfs.is_some()),
        ("local", spec.local.is_some()),
        ("csi", spec.csi.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect()
}

/// Access modes, a storage capacity (and nothing else), exactly one source,
/// a known reclaim policy and volume mode.
pub(crate) fn validate_persistent_volume(pv: &PersistentVolume) -> Vec<FieldError> {
    let default = Default::default();
    let spec = pv.spec.as_ref().unwrap_or(&default);
    let mut errors = Vec::new();
    validate_access_modes(&spec.access_modes, "spec.accessModes", "", &mut errors);
    if spec.capacity.is_empty() {
        errors.push(required("spec.capacity", ""));
    } else if !spec.capacity.contains_key("storage") || spec.capacity.len() > 1 {
        let names: Vec<&str> = spec.capacity.keys().map(String::as_str).collect();
        errors.push(not_supported(
            "spec.capacity",
            &names.join(","),
            &["storage"],
        ));
    }
    for (name, q) in &spec.capacity {
        validate_positive_quantity(q, &format!("spec.capacity[{name}]"), &mut errors);
    }
    if !spec.storage_class_name.is_empty() {
        errors.extend(invalid_each(
            "spec.storageClassName",
            &spec.storage_class_name,
            dns1123_subdomain_errors(&spec.storage_class_name),
        ));
    }
    match pv_sources(spec).as_slice() {
        [] => errors.push(required("spec", "must specify a volume type")),
        [_] => {}
        [_, extra @ ..] => {
            for source in extra {
                errors.push(forbidden(
                    format!("spec.{source}"),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if let Some(host_path) = spec.host_path.as_ref()
        && host_path.path.is_empty()
    {
        errors.push(required("spec.hostPath.path", ""));
    }
    if let Some(nfs) = spec.nfs.as_ref() {
        if nfs.server.is_empty() {
            errors.push(required("spec.nfs.server", ""));
        }
        if nfs.path.is_empty() {
            errors.push(required("spec.nfs.path", ""));
        }
    }
    if let Some(local) = spec.local.as_ref()
        && local.path.is_empty()
    {
        errors.push(required("spec.local.path", ""));
    }
    if let Some(csi) = spec.csi.as_ref() {
        if csi.driver.is_empty() {
            errors.push(required("spec.csi.driver", ""));
        }
        if csi.volume_handle.is_empty() {
            errors.push(required("spec.csi.volumeHandle", ""));
        }
    }
    let policy = &spec.persistent_volume_reclaim_policy;
    if !policy.is_empty() && !RECLAIM_POLICIES.contains(&policy.as_str()) {
        errors.push(not_supported(
            "spec.persistentVolumeReclaimPolicy",
            policy,
            RECLAIM_POLICIES,
        ));
    }
    validate_volume_mode(spec.volume_mode.as_ref(), "spec.volumeMode", &mut errors);
    errors
}

/// A PV's source and volume mode never change.
pub(crate) fn validate_persistent_volume_update(
    new: &PersistentVolume,
    old: &PersistentVolume,
) -> Vec<FieldError> {
    let default = Default::default();
    let n = new.spec.as_ref().unwrap_or(&default);
    let o = old.spec.as_ref().unwrap_or(&default);
    let mut errors = Vec::new();
    if (&n.host_path, &n.nfs, &n.local, &n.csi) != (&o.host_path, &o.nfs, &o.local, &o.csi) {
        errors.push(forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    if n.volume_mode != o.volume_mode {
        errors.push(invalid(
            "spec.volumeMode",
            n.volume_mode.as_deref().unwrap_or(""),
            "field is immutable",
        ));
    }
    errors
}

/// A claim's spec defaults: a filesystem.
pub(crate) fn default_pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    spec.volume_mode
        .get_or_insert_with(|| "Filesystem".to_owned());
}

/// A PVC is a filesystem and starts Pending.
pub(crate) fn default_persistent_volume_claim(pvc: &mut PersistentVolumeClaim) {
    default_pvc_spec(pvc.spec.get_or_insert_with(Default::default));
    let status = pvc
        .status
        .get_or_insert_with(PersistentVolumeClaimStatus::default);
    if status.phase.is_empty() {
        status.phase = "Pending".to_owned();
    }
}

/// `ValidatePersistentVolumeClaimSpec` under `path`: access modes, a valid
/// selector, a positive storage request, storage class and volume mode.
pub(crate) fn validate_pvc_spec(spec: &PersistentVolumeClaimSpec, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_access_modes(
        &spec.access_modes,
        &format!("{path}.accessModes"),
        "at least 1 access mode is required",
        &mut errors,
    );
    if let Some(selector) = spec.selector.as_ref() {
        errors.extend(validate_label_selector(
            selector,
            &format!("{path}.selector"),
        ));
    }
    let storage_path = format!("{path}.resources[storage]");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.get("storage"))
    {
        None => errors.push(required(storage_path, "")),
        Some(q) => validate_positive_quantity(q, &storage_path, &mut errors),
    }
    if let Some(class) = spec.storage_class_name.as_ref().filter(|c| !c.is_empty()) {
        errors.extend(invalid_each(
            &format!("{path}.storageClassName"),
            class,
            dns1123_subdomain_errors(class),
        ));
    }
    validate_volume_mode(
        spec.volume_mode.as_ref(),
        &format!("{path}.volumeMode"),
        &mut errors,
    );
    errors
}

/// `ValidatePersistentVolumeClaim`.
pub(crate) fn validate_persistent_volume_claim(pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
    let default = Default::default();
    validate_pvc_spec(pvc.spec.as_ref().unwrap_or(&default), "spec")
}

fn storage_request(spec: &PersistentVolumeClaimSpec) -> Option<&Quantity> {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.get("storage"))
}

/// A claim's spec is immutable, except that volumeName may be set once and
/// a bound claim's storage request may grow.
pub(crate) fn validate_persistent_volume_claim_update(
    new: &PersistentVolumeClaim,
    old: &PersistentVolumeClaim,
) -> Vec<FieldError> {
    let default = Default::default();
    let n = new.spec.as_ref().unwrap_or(&default);
    let o = old.spec.as_ref().unwrap_or(&default);
    let bound = old.status.as_ref().is_some_and(|s| s.phase == "Bound");
    let mut errors = Vec::new();
    let mut mutated = o.clone();
    if o.volume_name.is_empty() {
        mutated.volume_name.clone_from(&n.volume_name);
    }
    if bound {
        let resources = mutated.resources.get_or_insert_with(Default::default);
        match storage_request(n) {
            Some(q) => {
                resources.requests.insert("storage".to_owned(), q.clone());
            }
            None => {
                resources.requests.remove("storage");
            }
        }
        if let (Some(new_q), Some(old_q)) = (storage_request(n), storage_request(o))
            && new_q.cmp_value(old_q).is_lt()
        {
            errors.push(forbidden(
                "spec.resources.requests.storage",
                "field can not be less than previous value",
            ));
        }
    }
    if &mutated != n {
        errors.push(forbidden(
            "spec",
            "spec is immutable after creation except resources.requests for bound claims",
        ));
    }
    errors
}

// ---- ControllerRevision ----

/// `data` is required; `revision` is not negative.
pub(crate) fn validate_controller_revision(cr: &ControllerRevision) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if cr.data.as_ref().is_none_or(|d| d.raw.is_empty()) {
        errors.push(required("data", "data is mandatory"));
    }
    errors.extend(non_negative("revision", cr.revision.unwrap_or(0)));
    errors
}

/// A revision's `data` never changes.
pub(crate) fn validate_controller_revision_update(
    new: &ControllerRevision,
    old: &ControllerRevision,
) -> Vec<FieldError> {
    if new.data == old.data {
        return Vec::new();
    }
    let shown = new.data.as_ref().map_or_else(String::new, |d| {
        String::from_utf8_lossy(&d.raw).into_owned()
    });
    vec![invalid("data", shown, "field is immutable")]
}

// ---- HorizontalPodAutoscaler ----

/// `minReplicas` defaults to 1.
pub(crate) fn default_hpa(hpa: &mut HorizontalPodAutoscaler) {
    hpa.spec
        .get_or_insert_with(Default::default)
        .min_replicas
        .get_or_insert(1);
}

/// A scale target named by kind and name; 1 ≤ minReplicas ≤ maxReplicas;
/// a positive CPU target.
pub(crate) fn validate_hpa(hpa: &HorizontalPodAutoscaler) -> Vec<FieldError> {
    let default = Default::default();
    let spec = hpa.spec.as_ref().unwrap_or(&default);
    let mut errors = Vec::new();
    let max = spec.max_replicas.unwrap_or(0);
    if let Some(min) = spec.min_replicas
        && min < 1
    {
        errors.push(invalid(
            "spec.minReplicas",
            min,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errors.push(invalid("spec.maxReplicas", max, "must be greater than 0"));
    }
    if let Some(min) = spec.min_replicas
        && max < min
    {
        errors.push(invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = spec.scale_target_ref.clone().unwrap_or_default();
    for (field, value) in [("kind", &target.kind), ("name", &target.name)] {
        let path = format!("spec.scaleTargetRef.{field}");
        if value.is_empty() {
            errors.push(required(path, ""));
        } else {
            errors.extend(invalid_each(
                &path,
                value,
                path_segment_errors(value, false),
            ));
        }
    }
    if let Some(cpu) = spec.target_cpu_utilization_percentage
        && cpu < 1
    {
        errors.push(invalid(
            "spec.targetCPUUtilizationPercentage",
            cpu,
            "must be greater than 0",
        ));
    }
    errors
}

// ---- Lease ----

/// A positive duration, non-negative transitions, a known strategy, and a
/// preferred holder only with a strategy.
pub(crate) fn validate_lease(lease: &Lease) -> Vec<FieldError> {
    let default = Default::default();
    let spec = lease.spec.as_ref().unwrap_or(&default);
    let mut errors = Vec::new();
    if let Some(d) = spec.lease_duration_seconds.filter(|&d| d <= 0) {
        errors.push(invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions {
        errors.extend(non_negative("spec.leaseTransitions", i64::from(t)));
    }
    let strategy = spec.strategy.as_deref().unwrap_or("");
    if !strategy.is_empty() && strategy != "OldestEmulationVersion" {
        errors.push(not_supported(
            "spec.strategy",
            strategy,
            &["OldestEmulationVersion"],
        ));
    }
    if spec
        .preferred_holder
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && strategy.is_empty()
    {
        errors.push(forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
    errors
}

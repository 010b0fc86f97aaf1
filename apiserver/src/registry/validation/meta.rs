//! `metadata` of every kind (Kubernetes's `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate`), and `LabelSelector`s wherever they appear.

use std::collections::BTreeMap;

use capstan_proto::FieldError;
use capstan_proto::api::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use capstan_proto::labels::{Selector, dns1123_subdomain_errors, qualified_name_errors};

use super::field::{
    NameRule, dns1123_label_errors, forbidden, immutable, invalid, invalid_each, non_negative,
    required, too_long, validate_label_name, validate_labels,
};

/// Most bytes all annotations of one object may hold together (keys and values).
pub(crate) const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Validates `metadata` of an object whose name follows `rule`, namespaced
/// or not.
pub(crate) fn validate_object_meta(
    meta: Option<&ObjectMeta>,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let default = ObjectMeta::default();
    let meta = meta.unwrap_or(&default);
    let mut errors = Vec::new();

    if !meta.generate_name.is_empty() {
        errors.extend(invalid_each(
            "metadata.generateName",
            &meta.generate_name,
            rule.errors(&meta.generate_name, true),
        ));
    }
    if meta.name.is_empty() {
        if meta.generate_name.is_empty() {
            errors.push(required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        errors.extend(invalid_each(
            "metadata.name",
            &meta.name,
            rule.errors(&meta.name, false),
        ));
    }

    if namespaced {
        if meta.namespace.is_empty() {
            errors.push(required("metadata.namespace", ""));
        } else {
            errors.extend(invalid_each(
                "metadata.namespace",
                &meta.namespace,
                dns1123_label_errors(&meta.namespace),
            ));
        }
    } else if !meta.namespace.is_empty() {
        errors.push(forbidden("metadata.namespace", "not allowed on this type"));
    }

    if let Some(generation) = meta.generation {
        errors.extend(non_negative("metadata.generation", generation));
    }
    errors.extend(validate_labels(&meta.labels, "metadata.labels"));
    errors.extend(validate_annotations(
        &meta.annotations,
        "metadata.annotations",
    ));
    errors.extend(validate_owner_references(&meta.owner_references));
    errors.extend(validate_finalizers(&meta.finalizers, "metadata.finalizers"));
    errors
}

/// Annotation keys are qualified names (checked lowercased, as Kubernetes
/// does); keys and values together hold at most 256 KiB.
pub(crate) fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0;
    for (key, value) in annotations {
        errors.extend(invalid_each(
            path,
            key,
            qualified_name_errors(&key.to_lowercase()),
        ));
        total += key.len() + value.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errors.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errors
}

fn validate_owner_references(refs: &[OwnerReference]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut controller: Option<String> = None;
    for (i, r) in refs.iter().enumerate() {
        let path = format!("metadata.ownerReferences[{i}]");
        // `group/version` or `version`; more than one `/` is no version at all.
        let version = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
            [version] | [_, version] => *version,
            _ => "",
        };
        if version.is_empty() {
            errors.push(invalid(
                format!("{path}.apiVersion"),
                &r.api_version,
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errors.push(invalid(
                format!("{path}.kind"),
                &r.kind,
                "kind must not be empty",
            ));
        }
        if r.name.is_empty() {
            errors.push(invalid(
                format!("{path}.name"),
                &r.name,
                "name must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errors.push(invalid(
                format!("{path}.uid"),
                &r.uid,
                "uid must not be empty",
            ));
        }
        if r.api_version == "v1" && r.kind == "Event" {
            errors.push(invalid(
                &path,
                format!("{}/{}", r.kind, r.name),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &controller {
                Some(first) => errors.push(invalid(
                    "metadata.ownerReferences",
                    &this,
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in \
                         references for {first} and {this}"
                    ),
                )),
                None => controller = Some(this),
            }
        }
    }
    errors
}

/// Finalizers are qualified names; `orphan` and `foregroundDeletion` exclude
/// each other.
pub(crate) fn validate_finalizers(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for finalizer in finalizers {
        errors.extend(invalid_each(
            path,
            finalizer,
            qualified_name_errors(finalizer),
        ));
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    if has("orphan") && has("foregroundDeletion") {
        errors.push(invalid(
            path,
            finalizers,
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errors
}

/// Update rules for `metadata`: name, namespace, uid and creationTimestamp
/// never change; no finalizer may be added once deletion has started.
///
/// As in Kubernetes, the caller copies `uid` and `creationTimestamp` from
/// the stored object when the update leaves them empty (`BeforeUpdate`)
/// before calling this.
pub(crate) fn validate_object_meta_update(
    new: Option<&ObjectMeta>,
    old: Option<&ObjectMeta>,
) -> Vec<FieldError> {
    let default = ObjectMeta::default();
    let new = new.unwrap_or(&default);
    let old = old.unwrap_or(&default);
    let mut errors = Vec::new();
    errors.extend(immutable("metadata.name", &new.name, &old.name));
    errors.extend(immutable(
        "metadata.namespace",
        &new.namespace,
        &old.namespace,
    ));
    errors.extend(immutable("metadata.uid", &new.uid, &old.uid));
    if new.creation_timestamp != old.creation_timestamp {
        let shown = |t: &Option<capstan_proto::timestamp::Time>| {
            t.as_ref().map_or_else(String::new, ToString::to_string)
        };
        errors.push(invalid(
            "metadata.creationTimestamp",
            shown(&new.creation_timestamp),
            "field is immutable",
        ));
    }
    if old.deletion_timestamp.is_some() {
        let added: Vec<&String> = new
            .finalizers
            .iter()
            .filter(|f| !old.finalizers.contains(f))
            .collect();
        if !added.is_empty() {
            errors.push(forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new \
                     finalizers {added:?}"
                ),
            ));
        }
    }
    errors
}

/// A `LabelSelector` (`ValidateLabelSelector`): matchLabels are labels,
/// each expression has a valid key, a known operator, and values as the
/// operator wants them.
pub(crate) fn validate_label_selector(selector: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errors = validate_labels(&selector.match_labels, &format!("{path}.matchLabels"));
    for (i, expr) in selector.match_expressions.iter().enumerate() {
        let epath = format!("{path}.matchExpressions[{i}]");
        match expr.operator.as_str() {
            "In" | "NotIn" => {
                if expr.values.is_empty() {
                    errors.push(required(
                        format!("{epath}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !expr.values.is_empty() {
                    errors.push(forbidden(
                        format!("{epath}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errors.push(invalid(
                format!("{epath}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errors.extend(validate_label_name(&expr.key, &format!("{epath}.key")));
        for (j, value) in expr.values.iter().enumerate() {
            errors.extend(invalid_each(
                &format!("{epath}.values[{j}]"),
                value,
                capstan_proto::labels::label_value_errors(value),
            ));
        }
    }
    errors
}

/// The selector a valid `LabelSelector` stands for; `None` if it is invalid
/// (its problems are reported by [`validate_label_selector`]).
pub(crate) fn selector_of(selector: &LabelSelector) -> Option<Selector> {
    Selector::from_parts(
        &selector.match_labels,
        selector
            .match_expressions
            .iter()
            .map(|e| (e.key.clone(), e.operator.clone(), e.values.clone())),
    )
    .ok()
}

/// A name referring to an object of a kind named by DNS subdomain, as in
/// `serviceAccountName` or `nodeName`.
pub(crate) fn validate_subdomain_ref(value: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, value, dns1123_subdomain_errors(value))
}

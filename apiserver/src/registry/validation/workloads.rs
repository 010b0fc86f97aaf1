//! Controllers of pods: ReplicationController (core/v1), ReplicaSet,
//! Deployment and StatefulSet (apps/v1). Defaults (`replicas: 1`, the
//! Deployment strategy, history limits), validation (a selector that
//! matches the template's labels, a template valid as a pod spec whose
//! restartPolicy is Always) and the apps/v1 rule that selectors never change.

use std::collections::BTreeMap;

use capstan_proto::FieldError;
use capstan_proto::api::apps::v1::{
    Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment,
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetUpdateStrategy,
};
use capstan_proto::api::core::v1::{PodTemplateSpec, ReplicationController};
use capstan_proto::api::meta::v1::LabelSelector;
use capstan_proto::intstr::IntOrString;
use capstan_proto::labels::Selector;

use super::core::{default_pvc_spec, validate_pvc_spec};
use super::field::{forbidden, invalid, non_negative, not_supported, required};
use super::meta::{selector_of, validate_label_selector};
use super::pod::{default_template, validate_template};

const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// `SetDefaults_ReplicationController`: the selector and the object's labels
/// default to the template's labels; one replica.
pub(crate) fn default_replication_controller(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    if let Some(template) = spec.template.as_mut() {
        default_template(template);
        let labels = template
            .metadata
            .as_ref()
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        if !labels.is_empty() {
            if spec.selector.is_empty() {
                spec.selector = labels.clone();
            }
            let meta = rc.metadata.get_or_insert_with(Default::default);
            if meta.labels.is_empty() {
                meta.labels = labels;
            }
        }
    }
    spec.replicas.get_or_insert(1);
}

/// One replica.
pub(crate) fn default_replica_set(rs: &mut ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    if let Some(template) = spec.template.as_mut() {
        default_template(template);
    }
}

/// One replica, RollingUpdate 25%/25%, 10 old ReplicaSets kept, a 600 s
/// progress deadline.
pub(crate) fn default_deployment(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    if strategy.r#type.is_empty() {
        strategy.r#type = "RollingUpdate".to_owned();
    }
    if strategy.r#type == "RollingUpdate" {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        rolling
            .max_unavailable
            .get_or_insert_with(|| IntOrString::from("25%"));
        rolling
            .max_surge
            .get_or_insert_with(|| IntOrString::from("25%"));
    }
    spec.revision_history_limit
        .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
    spec.progress_deadline_seconds
        .get_or_insert(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    if let Some(template) = spec.template.as_mut() {
        default_template(template);
    }
}

/// OrderedReady pods, RollingUpdate with partition 0, claims retained, one
/// replica, 10 revisions kept.
pub(crate) fn default_stateful_set(s: &mut StatefulSet) {
    let spec = s.spec.get_or_insert_with(Default::default);
    if spec.pod_management_policy.is_empty() {
        spec.pod_management_policy = "OrderedReady".to_owned();
    }
    let strategy = spec
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    if strategy.r#type.is_empty() {
        strategy.r#type = "RollingUpdate".to_owned();
        strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
    }
    if strategy.r#type == "RollingUpdate"
        && let Some(rolling) = strategy.rolling_update.as_mut()
    {
        rolling.partition.get_or_insert(0);
    }
    let retention = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    for policy in [&mut retention.when_deleted, &mut retention.when_scaled] {
        if policy.is_empty() {
            *policy = "Retain".to_owned();
        }
    }
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit
        .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
    if let Some(template) = spec.template.as_mut() {
        default_template(template);
    }
    for claim in &mut spec.volume_claim_templates {
        default_pvc_spec(claim.spec.get_or_insert_with(Default::default));
    }
}

fn template_labels(template: Option<&PodTemplateSpec>) -> BTreeMap<String, String> {
    template
        .and_then(|t| t.metadata.as_ref())
        .map(|m| m.labels.clone())
        .unwrap_or_default()
}

/// The template checks every controller shares (`ValidatePodTemplateSpecFor…`):
/// a non-empty selector must match the template's labels; the template is a
/// valid pod template whose restartPolicy is Always and which has no
/// activeDeadlineSeconds.
fn validate_controller_template(
    template: Option<&PodTemplateSpec>,
    selector: Option<&Selector>,
    kind: &str,
) -> Vec<FieldError> {
    let path = "spec.template";
    let mut errors = validate_template(template, path);
    let Some(template) = template else {
        return errors;
    };
    if let Some(selector) = selector.filter(|s| !s.is_empty()) {
        let labels = template_labels(Some(template));
        if !selector.matches(&labels) {
            errors.push(invalid(
                format!("{path}.metadata.labels"),
                &labels,
                "`selector` does not match template `labels`",
            ));
        }
    }
    if let Some(spec) = template.spec.as_ref() {
        if !spec.restart_policy.is_empty() && spec.restart_policy != "Always" {
            errors.push(not_supported(
                format!("{path}.spec.restartPolicy"),
                &spec.restart_policy,
                &["Always"],
            ));
        }
        if let Some(deadline) = spec.active_deadline_seconds {
            errors.push(invalid(
                format!("{path}.spec.activeDeadlineSeconds"),
                deadline,
                &format!("activeDeadlineSeconds in {kind} is not Supported"),
            ));
        }
    }
    errors
}

fn validate_counts(replicas: Option<i32>, min_ready: Option<i32>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(r) = replicas {
        errors.extend(non_negative("spec.replicas", i64::from(r)));
    }
    if let Some(m) = min_ready {
        errors.extend(non_negative("spec.minReadySeconds", i64::from(m)));
    }
    errors
}

/// `ValidateReplicationController`.
pub(crate) fn validate_replication_controller(rc: &ReplicationController) -> Vec<FieldError> {
    let default = Default::default();
    let spec = rc.spec.as_ref().unwrap_or(&default);
    let mut errors = validate_counts(spec.replicas, spec.min_ready_seconds);
    let selector = if spec.selector.is_empty() {
        errors.push(required("spec.selector", ""));
        None
    } else {
        errors.extend(super::field::validate_labels(
            &spec.selector,
            "spec.selector",
        ));
        Selector::from_labels(&spec.selector).ok()
    };
    errors.extend(validate_controller_template(
        spec.template.as_ref(),
        selector.as_ref(),
        "ReplicationController",
    ));
    errors
}

/// A required, non-empty, valid apps/v1 selector; the selector if usable.
fn validate_apps_selector(
    selector: Option<&LabelSelector>,
    kind: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Selector> {
    let Some(selector) = selector else {
        errors.push(required("spec.selector", ""));
        return None;
    };
    let problems = validate_label_selector(selector, "spec.selector");
    let invalid_selector = !problems.is_empty();
    errors.extend(problems);
    if selector.match_labels.is_empty() && selector.match_expressions.is_empty() {
        errors.push(invalid(
            "spec.selector",
            "",
            &format!("empty selector is invalid for {kind}"),
        ));
        return None;
    }
    if invalid_selector {
        return None;
    }
    selector_of(selector)
}

/// `ValidateReplicaSet`.
pub(crate) fn validate_replica_set(rs: &ReplicaSet) -> Vec<FieldError> {
    let default = Default::default();
    let spec = rs.spec.as_ref().unwrap_or(&default);
    let mut errors = validate_counts(spec.replicas, spec.min_ready_seconds);
    // Kubernetes's message says "deployment" for ReplicaSets too.
    let selector = validate_apps_selector(spec.selector.as_ref(), "deployment", &mut errors);
    errors.extend(validate_controller_template(
        spec.template.as_ref(),
        selector.as_ref(),
        "ReplicaSet",
    ));
    errors
}

/// `ValidateDeployment`.
pub(crate) fn validate_deployment(d: &Deployment) -> Vec<FieldError> {
    let default = Default::default();
    let spec = d.spec.as_ref().unwrap_or(&default);
    let mut errors = validate_counts(spec.replicas, spec.min_ready_seconds);
    let selector = validate_apps_selector(spec.selector.as_ref(), "deployment", &mut errors);
    errors.extend(validate_controller_template(
        spec.template.as_ref(),
        selector.as_ref(),
        "ReplicaSet",
    ));
    match spec.strategy.as_ref() {
        None => errors.push(required("spec.strategy.type", "")),
        Some(strategy) => validate_deployment_strategy(strategy, &mut errors),
    }
    if let Some(limit) = spec.revision_history_limit {
        errors.extend(non_negative("spec.revisionHistoryLimit", i64::from(limit)));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        errors.extend(non_negative(
            "spec.progressDeadlineSeconds",
            i64::from(deadline),
        ));
        if deadline <= spec.min_ready_seconds.unwrap_or(0) {
            errors.push(invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errors
}

fn validate_deployment_strategy(strategy: &DeploymentStrategy, errors: &mut Vec<FieldError>) {
    match strategy.r#type.as_str() {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errors.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.rolling_update.as_ref() {
            None => errors.push(required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(rolling) => validate_rolling_update(rolling, errors),
        },
        other => errors.push(not_supported(
            "spec.strategy.type",
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
}

/// The value of an int-or-percent (`25%` → 25), if well-formed.
fn int_or_percent(value: &IntOrString) -> Option<i64> {
    match value {
        IntOrString::Int(v) => Some(i64::from(*v)),
        IntOrString::String(s) => s.strip_suffix('%').and_then(|n| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse().ok())
                .flatten()
        }),
    }
}

/// `ValidatePositiveIntOrPercent`: a non-negative integer or `N%`.
fn validate_int_or_percent(value: &IntOrString, path: &str, errors: &mut Vec<FieldError>) {
    match value {
        IntOrString::Int(v) => errors.extend(non_negative(path, i64::from(*v))),
        IntOrString::String(s) => {
            if int_or_percent(value).is_none() {
                errors.push(invalid(
                    path,
                    s,
                    "a valid percent string must be a numeric string followed by an ending '%' \
                     (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
            }
        }
    }
}

fn validate_rolling_update(rolling: &RollingUpdateDeployment, errors: &mut Vec<FieldError>) {
    let unavailable_path = "spec.strategy.rollingUpdate.maxUnavailable";
    let surge_path = "spec.strategy.rollingUpdate.maxSurge";
    let zero = IntOrString::Int(0);
    let unavailable = rolling.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = rolling.max_surge.as_ref().unwrap_or(&zero);
    validate_int_or_percent(unavailable, unavailable_path, errors);
    validate_int_or_percent(surge, surge_path, errors);
    if int_or_percent(unavailable) == Some(0) && int_or_percent(surge) == Some(0) {
        errors.push(invalid(
            unavailable_path,
            unavailable.to_string(),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if let IntOrString::String(s) = unavailable
        && int_or_percent(unavailable).is_some_and(|p| p > 100)
    {
        errors.push(invalid(
            unavailable_path,
            s,
            "must not be greater than 100%",
        ));
    }
}

/// `ValidateStatefulSet`.
pub(crate) fn validate_stateful_set(s: &StatefulSet) -> Vec<FieldError> {
    let default = Default::default();
    let spec = s.spec.as_ref().unwrap_or(&default);
    let mut errors = Vec::new();
    match spec.pod_management_policy.as_str() {
        "" => errors.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errors.push(invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy_type = spec
        .update_strategy
        .as_ref()
        .map_or("", |u| u.r#type.as_str());
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref());
    match strategy_type {
        "" => errors.push(required("spec.updateStrategy", "")),
        "OnDelete" => {
            if rolling.is_some() {
                errors.push(invalid(
                    "spec.updateStrategy.rollingUpdate",
                    "",
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(partition) = rolling.and_then(|r| r.partition) {
                errors.extend(non_negative(
                    "spec.updateStrategy.rollingUpdate.partition",
                    i64::from(partition),
                ));
            }
        }
        other => errors.push(invalid(
            "spec.updateStrategy",
            other,
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(limit) = spec.revision_history_limit {
        errors.extend(non_negative("spec.revisionHistoryLimit", i64::from(limit)));
    }
    errors.extend(validate_counts(spec.replicas, spec.min_ready_seconds));
    if let Some(start) = spec.ordinals.as_ref().and_then(|o| o.start) {
        errors.extend(non_negative("spec.ordinals.start", i64::from(start)));
    }
    if let Some(retention) = spec.persistent_volume_claim_retention_policy.as_ref() {
        for (field, value) in [
            ("whenDeleted", &retention.when_deleted),
            ("whenScaled", &retention.when_scaled),
        ] {
            if !["Retain", "Delete"].contains(&value.as_str()) {
                errors.push(not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{field}"),
                    value,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    let selector = validate_apps_selector(spec.selector.as_ref(), "statefulset", &mut errors);
    errors.extend(validate_controller_template(
        spec.template.as_ref(),
        selector.as_ref(),
        "StatefulSet",
    ));
    for (i, claim) in spec.volume_claim_templates.iter().enumerate() {
        let path = format!("spec.volumeClaimTemplates[{i}]");
        let name = claim.metadata.as_ref().map_or("", |m| m.name.as_str());
        if name.is_empty() {
            errors.push(required(format!("{path}.metadata.name"), ""));
        }
        let default = Default::default();
        errors.extend(validate_pvc_spec(
            claim.spec.as_ref().unwrap_or(&default),
            &format!("{path}.spec"),
        ));
    }
    errors
}

/// apps/v1: `spec.selector` never changes.
pub(crate) fn selector_immutable(
    new: Option<&LabelSelector>,
    old: Option<&LabelSelector>,
) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    let shown = new
        .and_then(selector_of)
        .map_or_else(String::new, |s| s.to_string());
    vec![invalid("spec.selector", shown, "field is immutable")]
}

/// A StatefulSet's selector never changes, and of the rest of its spec only
/// replicas, ordinals, template, updateStrategy, revisionHistoryLimit,
/// persistentVolumeClaimRetentionPolicy and minReadySeconds may.
pub(crate) fn validate_stateful_set_update(
    new: &StatefulSet,
    old: &StatefulSet,
) -> Vec<FieldError> {
    let default = Default::default();
    let new_spec = new.spec.as_ref().unwrap_or(&default);
    let old_spec = old.spec.as_ref().unwrap_or(&default);
    let mut errors = selector_immutable(new_spec.selector.as_ref(), old_spec.selector.as_ref());
    let mut mutated = old_spec.clone();
    mutated.replicas = new_spec.replicas;
    mutated.ordinals.clone_from(&new_spec.ordinals);
    mutated.template.clone_from(&new_spec.template);
    mutated
        .update_strategy
        .clone_from(&new_spec.update_strategy);
    mutated.revision_history_limit = new_spec.revision_history_limit;
    mutated
        .persistent_volume_claim_retention_policy
        .clone_from(&new_spec.persistent_volume_claim_retention_policy);
    mutated.min_ready_seconds = new_spec.min_ready_seconds;
    mutated.selector.clone_from(&new_spec.selector);
    if &mutated != new_spec {
        errors.push(forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', \
             'template', 'updateStrategy', 'revisionHistoryLimit', \
             'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errors
}

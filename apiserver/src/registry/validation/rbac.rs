//! RBAC (`rbac.authorization.k8s.io/v1`): policy rules of Roles and
//! ClusterRoles, roleRefs and subjects of bindings, their defaults (API
//! groups) and the rule that a binding's roleRef never changes.

use capstan_proto::FieldError;
use capstan_proto::api::rbac::v1::{ClusterRole, PolicyRule, RoleRef, Subject};

use super::field::{invalid, invalid_each, not_supported, path_segment_errors, required};
use super::meta::validate_label_selector;

/// The RBAC API group.
pub(crate) const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `roleRef.apiGroup` defaults to the RBAC group; so does the apiGroup of
/// User and Group subjects (ServiceAccounts are in the core group).
pub(crate) fn default_binding(role_ref: &mut Option<RoleRef>, subjects: &mut [Subject]) {
    if let Some(r) = role_ref.as_mut()
        && r.api_group.is_empty()
    {
        r.api_group = RBAC_GROUP.to_owned();
    }
    for s in subjects {
        if s.api_group.is_empty() && matches!(s.kind.as_str(), "User" | "Group") {
            s.api_group = RBAC_GROUP.to_owned();
        }
    }
}

/// `ValidatePolicyRule` for each rule: verbs are required; a rule names
/// either resources (with API groups) or non-resource URLs (only in
/// cluster roles), never both.
pub(crate) fn validate_rules(rules: &[PolicyRule], namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        if rule.verbs.is_empty() {
            errors.push(required(
                format!("{path}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        if !rule.non_resource_urls.is_empty() {
            let urls = format!("{:?}", rule.non_resource_urls);
            if namespaced {
                errors.push(invalid(
                    format!("{path}.nonResourceURLs"),
                    &urls,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !rule.api_groups.is_empty()
                || !rule.resources.is_empty()
                || !rule.resource_names.is_empty()
            {
                errors.push(invalid(
                    format!("{path}.nonResourceURLs"),
                    &urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if rule.api_groups.is_empty() {
            errors.push(required(
                format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if rule.resources.is_empty() {
            errors.push(required(
                format!("{path}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errors
}

/// Rules, and an aggregation rule with at least one valid selector.
pub(crate) fn validate_cluster_role(role: &ClusterRole) -> Vec<FieldError> {
    let mut errors = validate_rules(&role.rules, false);
    if let Some(aggregation) = role.aggregation_rule.as_ref() {
        let path = "aggregationRule.clusterRoleSelectors";
        if aggregation.cluster_role_selectors.is_empty() {
            errors.push(required(
                path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, selector) in aggregation.cluster_role_selectors.iter().enumerate() {
            errors.extend(validate_label_selector(selector, &format!("{path}[{i}]")));
        }
    }
    errors
}

/// A binding's roleRef (a Role or ClusterRole for a RoleBinding, a
/// ClusterRole for a ClusterRoleBinding, in the RBAC group, named) and
/// subjects (User, Group or ServiceAccount, named; a ServiceAccount of a
/// ClusterRoleBinding names its namespace).
pub(crate) fn validate_binding(
    role_ref: Option<&RoleRef>,
    subjects: &[Subject],
    namespaced: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let default = RoleRef::default();
    let role_ref = role_ref.unwrap_or(&default);
    if role_ref.api_group != RBAC_GROUP {
        errors.push(not_supported(
            "roleRef.apiGroup",
            &role_ref.api_group,
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errors.push(not_supported("roleRef.kind", &role_ref.kind, kinds));
    }
    if role_ref.name.is_empty() {
        errors.push(required("roleRef.name", ""));
    } else {
        errors.extend(invalid_each(
            "roleRef.name",
            &role_ref.name,
            path_segment_errors(&role_ref.name, false),
        ));
    }
    for (i, s) in subjects.iter().enumerate() {
        let path = format!("subjects[{i}]");
        if s.name.is_empty() {
            errors.push(required(format!("{path}.name"), ""));
        }
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    errors.extend(invalid_each(
                        &format!("{path}.name"),
                        &s.name,
                        capstan_proto::labels::dns1123_subdomain_errors(&s.name),
                    ));
                }
                if !s.api_group.is_empty() {
                    errors.push(not_supported(
                        format!("{path}.apiGroup"),
                        &s.api_group,
                        &[""],
                    ));
                }
                if !namespaced && s.namespace.is_empty() {
                    errors.push(required(format!("{path}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if s.api_group != RBAC_GROUP {
                    errors.push(not_supported(
                        format!("{path}.apiGroup"),
                        &s.api_group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errors.push(not_supported(
                format!("{path}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errors
}

/// A binding's roleRef never changes.
pub(crate) fn role_ref_immutable(new: Option<&RoleRef>, old: Option<&RoleRef>) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    let shown = new.map_or_else(String::new, |r| {
        format!("{}/{} {}", r.api_group, r.kind, r.name)
    });
    vec![invalid("roleRef", shown, "cannot change roleRef")]
}

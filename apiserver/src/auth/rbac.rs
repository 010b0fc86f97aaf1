//! Role-based access control, evaluated as Kubernetes evaluates it.
//!
//! [`RbacAuthorizer`] holds the cluster's Roles, ClusterRoles, RoleBindings
//! and ClusterRoleBindings in memory. The apiserver feeds it from a watch
//! ([`RbacAuthorizer::upsert`], [`RbacAuthorizer::remove`], and
//! [`RbacAuthorizer::replace_all`] on a relist) while requests read it, so
//! it sits behind one `RwLock` and is shared through an `Arc`.
//!
//! Semantics (those of Kubernetes's `rbac` authorizer):
//! - A ClusterRoleBinding grants its ClusterRole everywhere: cluster-scoped
//!   resources and every namespace. A ClusterRoleBinding that names a Role
//!   grants nothing.
//! - A RoleBinding grants its Role (looked up in the binding's namespace) or
//!   its ClusterRole only within the binding's namespace; never for
//!   cluster-scoped requests or requests across all namespaces.
//! - Subjects: `User` matches by name, `Group` by membership, and every
//!   caller is a member of [`AUTHENTICATED_GROUP`] (all callers here are
//!   authenticated). A `ServiceAccount` subject matches the user
//!   `system:serviceaccount:NS:NAME`; in a RoleBinding an empty subject
//!   namespace means the binding's namespace, in a ClusterRoleBinding it
//!   matches nobody.
//! - Roles are resolved when a request is checked, not when a binding is
//!   stored, so the order of watch events does not matter; a binding to a
//!   role that does not exist (yet) grants nothing.
//! - A rule matches when its verbs (`*` or the verb), apiGroups (`*` or the
//!   group, `""` being core), resources (`*`, `pods`, `pods/status`,
//!   `*/status`) and resourceNames all match. A rule with resourceNames
//!   never matches a request without a name. As in Kubernetes, create (of
//!   the main resource) and deletecollection are treated as having no name,
//!   even when the object's name is known, and list/watch take their name
//!   from a `metadata.name=` field requirement.
//! - RBAC only adds permissions: the answer is [`Decision::Allow`] or
//!   [`Decision::NoOpinion`], never a denial.
//!
//! Deliberately left out: `nonResourceURLs` (requests here are all resource
//! requests, so such rules match nothing), ClusterRole aggregation (an
//! `aggregationRule` is not evaluated; the role's own `rules` are used), and
//! the escalation check on writes of roles and bindings (that belongs to
//! the registry). Service-account groups (`system:serviceaccounts`,
//! `system:serviceaccounts:NS`) are whatever authentication puts in
//! [`super::User::groups`]; only `system:authenticated` is implied.
//!
//! Speed: a request looks up the bindings of its user name and of each of
//! its groups (an index kept up to date on every write), restricted to
//! ClusterRoleBindings and RoleBindings of the request's namespace, and
//! evaluates only those roles' rules. Nothing is allocated per request.

use std::collections::{HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use capstan_proto::Object;
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::api::rbac::v1::{PolicyRule, RoleRef, Subject};

use super::{AUTHENTICATED_GROUP, Attributes, Decision, Verb};

/// The prefix of service-account user names (`system:serviceaccount:NS:NAME`).
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// RBAC over the cluster's roles and bindings; `Send + Sync`, updated from a
/// watch while requests read it.
#[derive(Default)]
pub struct RbacAuthorizer {
    state: RwLock<State>,
}

impl RbacAuthorizer {
    /// An authorizer with no roles or bindings (it allows nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a Role, ClusterRole, RoleBinding or
    /// ClusterRoleBinding (identified by namespace and name); other kinds are
    /// ignored.
    pub fn upsert(&self, obj: &Object) {
        if is_rbac(obj) {
            self.write().upsert(obj);
        }
    }

    /// Removes a Role, ClusterRole, RoleBinding or ClusterRoleBinding
    /// (identified by namespace and name); other kinds are ignored.
    pub fn remove(&self, obj: &Object) {
        if is_rbac(obj) {
            self.write().remove(obj);
        }
    }

    /// Replaces everything with these objects (a relist), atomically:
    /// requests see either the old set or the new one.
    pub fn replace_all(&self, objs: Vec<Object>) {
        let mut state = State::default();
        for obj in &objs {
            state.upsert(obj);
        }
        *self.write() = state;
    }

    /// [`Decision::Allow`] if some binding of the user or one of their
    /// groups grants a rule that matches the request, else
    /// [`Decision::NoOpinion`].
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let request = Request::new(attrs);
        let state = self.read();
        let user = attrs.user;
        // Authentication lists system:authenticated; it is implied anyway.
        let implied = (!user.in_group(AUTHENTICATED_GROUP)).then_some(AUTHENTICATED_GROUP);
        let groups = user
            .groups
            .iter()
            .map(String::as_str)
            .chain(implied)
            .filter_map(|g| state.groups.get(g));
        let allowed = state
            .users
            .get(&user.name)
            .into_iter()
            .chain(groups)
            .any(|grants| state.grants_allow(grants, &request));
        if allowed {
            Decision::Allow
        } else {
            Decision::NoOpinion
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic halfway through a write can at worst leave an index entry
        // pointing at a missing binding, which grants nothing, so a poisoned
        // lock is still safe to use.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn is_rbac(obj: &Object) -> bool {
    matches!(
        obj,
        Object::Role(_)
            | Object::ClusterRole(_)
            | Object::RoleBinding(_)
            | Object::ClusterRoleBinding(_)
    )
}

/// The parts of a request that rules are matched against.
struct Request<'a> {
    verb: &'static str,
    group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    namespace: &'a str,
    /// The name resourceNames are matched against (empty: none).
    name: &'a str,
}

impl<'a> Request<'a> {
    fn new(attrs: &Attributes<'a>) -> Self {
        let name = match attrs.verb {
            // Kubernetes authorizes a create before the name is known.
            Verb::Create if attrs.subresource.is_empty() => "",
            Verb::DeleteCollection => "",
            Verb::List | Verb::Watch if attrs.name.is_empty() => attrs
                .field_requirements
                .iter()
                .find(|(field, _)| field == "metadata.name")
                .map_or("", |(_, value)| value.as_str()),
            _ => attrs.name,
        };
        Self {
            verb: attrs.verb.as_str(),
            group: attrs.group,
            resource: attrs.resource,
            subresource: attrs.subresource,
            namespace: attrs.namespace,
            name,
        }
    }
}

/// Whether `rule` allows `request` (Kubernetes's `RuleAllows` for resource
/// requests).
fn rule_allows(rule: &PolicyRule, request: &Request<'_>) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == request.verb)
        && rule
            .api_groups
            .iter()
            .any(|g| g == "*" || g == request.group)
        && rule.resources.iter().any(|r| resource_matches(r, request))
        && (rule.resource_names.is_empty()
            || (!request.name.is_empty() && rule.resource_names.iter().any(|n| n == request.name)))
}

/// Whether a rule's resource entry (`*`, `pods`, `pods/status`, `*/status`)
/// covers the request's resource and subresource.
fn resource_matches(rule_resource: &str, request: &Request<'_>) -> bool {
    if rule_resource == "*" {
        return true;
    }
    if request.subresource.is_empty() {
        return rule_resource == request.resource;
    }
    match rule_resource.split_once('/') {
        Some(("*", sub)) => sub == request.subresource,
        Some((resource, sub)) => resource == request.resource && sub == request.subresource,
        None => false,
    }
}

/// A subject, reduced to what a request is matched on.
#[derive(Clone, PartialEq, Eq, Hash)]
enum SubjectKey {
    User(String),
    Group(String),
}

/// What a binding grants.
enum Target {
    Role(String),
    ClusterRole(String),
    /// A roleRef that cannot resolve (unknown kind, or a Role from a
    /// ClusterRoleBinding).
    Nothing,
}

struct Binding {
    target: Target,
    subjects: Vec<SubjectKey>,
}

/// The bindings one user or group is a subject of.
#[derive(Default)]
struct Grants {
    /// Names of ClusterRoleBindings.
    cluster: HashSet<String>,
    /// Namespace → names of RoleBindings there.
    namespaced: HashMap<String, HashSet<String>>,
}

impl Grants {
    fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.namespaced.is_empty()
    }
}

#[derive(Default)]
struct State {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// Namespace → name → rules.
    roles: HashMap<String, HashMap<String, Vec<PolicyRule>>>,
    cluster_role_bindings: HashMap<String, Binding>,
    /// Namespace → name → binding.
    role_bindings: HashMap<String, HashMap<String, Binding>>,
    /// User name → the bindings naming that user.
    users: HashMap<String, Grants>,
    /// Group name → the bindings naming that group.
    groups: HashMap<String, Grants>,
}

fn namespace_and_name(meta: Option<&ObjectMeta>) -> (String, String) {
    meta.map(|m| (m.namespace.clone(), m.name.clone()))
        .unwrap_or_default()
}

impl State {
    fn upsert(&mut self, obj: &Object) {
        let (namespace, name) = namespace_and_name(obj.metadata());
        match obj {
            Object::ClusterRole(role) => {
                self.cluster_roles.insert(name, role.rules.clone());
            }
            Object::Role(role) => {
                self.roles
                    .entry(namespace)
                    .or_default()
                    .insert(name, role.rules.clone());
            }
            Object::ClusterRoleBinding(b) => {
                self.remove_cluster_binding(&name);
                let target = match b.role_ref.as_ref() {
                    Some(RoleRef { kind, name, .. }) if kind == "ClusterRole" => {
                        Target::ClusterRole(name.clone())
                    }
                    _ => Target::Nothing,
                };
                let subjects = subject_keys(&b.subjects, "");
                for key in &subjects {
                    self.grants_mut(key).cluster.insert(name.clone());
                }
                self.cluster_role_bindings
                    .insert(name, Binding { target, subjects });
            }
            Object::RoleBinding(b) => {
                self.remove_role_binding(&namespace, &name);
                let target = match b.role_ref.as_ref() {
                    Some(RoleRef { kind, name, .. }) if kind == "ClusterRole" => {
                        Target::ClusterRole(name.clone())
                    }
                    Some(RoleRef { kind, name, .. }) if kind == "Role" => {
                        Target::Role(name.clone())
                    }
                    _ => Target::Nothing,
                };
                let subjects = subject_keys(&b.subjects, &namespace);
                for key in &subjects {
                    self.grants_mut(key)
                        .namespaced
                        .entry(namespace.clone())
                        .or_default()
                        .insert(name.clone());
                }
                self.role_bindings
                    .entry(namespace)
                    .or_default()
                    .insert(name, Binding { target, subjects });
            }
            _ => {}
        }
    }

    fn remove(&mut self, obj: &Object) {
        let (namespace, name) = namespace_and_name(obj.metadata());
        match obj {
            Object::ClusterRole(_) => {
                self.cluster_roles.remove(&name);
            }
            Object::Role(_) => {
                if let Some(roles) = self.roles.get_mut(&namespace) {
                    roles.remove(&name);
                    if roles.is_empty() {
                        self.roles.remove(&namespace);
                    }
                }
            }
            Object::ClusterRoleBinding(_) => self.remove_cluster_binding(&name),
            Object::RoleBinding(_) => self.remove_role_binding(&namespace, &name),
            _ => {}
        }
    }

    fn grants_mut(&mut self, key: &SubjectKey) -> &mut Grants {
        match key {
            SubjectKey::User(n) => self.users.entry(n.clone()).or_default(),
            SubjectKey::Group(n) => self.groups.entry(n.clone()).or_default(),
        }
    }

    /// Unindexes a subject's grants, dropping the entry once empty.
    fn unindex(&mut self, key: &SubjectKey, edit: impl FnOnce(&mut Grants)) {
        let map = match key {
            SubjectKey::User(_) => &mut self.users,
            SubjectKey::Group(_) => &mut self.groups,
        };
        let (SubjectKey::User(n) | SubjectKey::Group(n)) = key;
        if let Some(grants) = map.get_mut(n) {
            edit(grants);
            if grants.is_empty() {
                map.remove(n);
            }
        }
    }

    fn remove_cluster_binding(&mut self, name: &str) {
        let Some(old) = self.cluster_role_bindings.remove(name) else {
            return;
        };
        for key in &old.subjects {
            self.unindex(key, |g| {
                g.cluster.remove(name);
            });
        }
    }

    fn remove_role_binding(&mut self, namespace: &str, name: &str) {
        let Some(bindings) = self.role_bindings.get_mut(namespace) else {
            return;
        };
        let Some(old) = bindings.remove(name) else {
            return;
        };
        if bindings.is_empty() {
            self.role_bindings.remove(namespace);
        }
        for key in &old.subjects {
            self.unindex(key, |g| {
                if let Some(names) = g.namespaced.get_mut(namespace) {
                    names.remove(name);
                    if names.is_empty() {
                        g.namespaced.remove(namespace);
                    }
                }
            });
        }
    }

    /// Whether one of the bindings in `grants` allows the request.
    fn grants_allow(&self, grants: &Grants, request: &Request<'_>) -> bool {
        let cluster = grants
            .cluster
            .iter()
            .filter_map(|name| self.cluster_role_bindings.get(name))
            .any(|b| self.binding_allows(b, "", request));
        if cluster {
            return true;
        }
        if request.namespace.is_empty() {
            return false;
        }
        let (Some(names), Some(bindings)) = (
            grants.namespaced.get(request.namespace),
            self.role_bindings.get(request.namespace),
        ) else {
            return false;
        };
        names
            .iter()
            .filter_map(|name| bindings.get(name))
            .any(|b| self.binding_allows(b, request.namespace, request))
    }

    fn binding_allows(&self, binding: &Binding, namespace: &str, request: &Request<'_>) -> bool {
        let rules = match &binding.target {
            Target::ClusterRole(name) => self.cluster_roles.get(name),
            Target::Role(name) => self.roles.get(namespace).and_then(|r| r.get(name)),
            Target::Nothing => None,
        };
        rules.is_some_and(|rules| rules.iter().any(|r| rule_allows(r, request)))
    }
}

/// The users and groups a binding's subjects match; `namespace` is the
/// binding's (empty for a ClusterRoleBinding), the default namespace of
/// ServiceAccount subjects.
fn subject_keys(subjects: &[Subject], namespace: &str) -> Vec<SubjectKey> {
    let mut keys = Vec::with_capacity(subjects.len());
    for s in subjects {
        let key = match s.kind.as_str() {
            "User" => SubjectKey::User(s.name.clone()),
            "Group" => SubjectKey::Group(s.name.clone()),
            "ServiceAccount" => {
                let ns = if s.namespace.is_empty() {
                    namespace
                } else {
                    &s.namespace
                };
                if ns.is_empty() {
                    continue;
                }
                SubjectKey::User(format!("{SERVICE_ACCOUNT_USER_PREFIX}{ns}:{}", s.name))
            }
            _ => continue,
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

#[cfg(test)]
#[path = "rbac_tests.rs"]
mod tests;

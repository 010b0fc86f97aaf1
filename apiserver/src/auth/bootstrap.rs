//! The RBAC policy every cluster starts with, named as Kubernetes names it.
//!
//! [`rbac_objects`] returns the default ClusterRoles and their
//! ClusterRoleBindings, plus one Role and RoleBinding in `kube-system`, all
//! labeled `kubernetes.io/bootstrapping: rbac-defaults` and annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` like Kubernetes's
//! bootstrap policy:
//!
//! | role | bound to | grants |
//! |---|---|---|
//! | `cluster-admin` | group `system:masters` | everything |
//! | `admin`, `edit`, `view` | nobody (bind them per namespace) | namespace use |
//! | `system:kube-scheduler` | user `system:kube-scheduler` | read what placement needs; bind pods |
//! | `system:kube-controller-manager` | user `system:kube-controller-manager` | run the controllers |
//! | `system:node` | group `system:nodes` | read services and endpoints; write events |
//! | `system:node-proxier` | user `system:kube-proxy` | read services, endpoints, nodes; update services/status (LoadBalancer ingress); write events |
//!
//! Decisions:
//! - `admin`, `edit` and `view` are flat: Kubernetes builds them by
//!   aggregation (`aggregate-to-*` labels), which Capstan does not evaluate.
//!   They list the served kinds (and their `status`/`scale` subresources)
//!   with Kubernetes's verbs for each role: `view` reads everything but
//!   Secrets, `edit` also writes workloads, Secrets and ConfigMaps, `admin`
//!   also manages Roles and RoleBindings in the namespace.
//! - The scheduler binds through `Pods.Bind` (create on `pods/binding`,
//!   many bindings per call) and sets `PodScheduled=False` through
//!   `pods/status`; unlike Kubernetes's role it cannot delete pods, since
//!   Capstan's scheduler does not preempt.
//! - The scheduler's leader-election Lease is granted by the Role
//!   `system::leader-locking-kube-scheduler` in `kube-system` (get, create,
//!   update leases), so its Lease rights stop at that namespace. The
//!   controller-manager's ClusterRole covers Leases everywhere already.
//! - `system:node` is bound to `system:nodes` (Kubernetes leaves the binding
//!   empty since the node authorizer): it carries only what the node
//!   authorizer leaves to RBAC ([`super::node`]).
//! - The controller-manager's rights to delete and deletecollection every
//!   namespaced kind (namespace cascade delete, garbage collection) are
//!   derived from [`KINDS`], so a new kind is covered without an edit here.
//!   It cannot create or update Roles or bindings (Capstan has no RBAC
//!   escalation check yet), so the garbage collector cannot orphan or
//!   finalize RBAC objects; it may update Services (ownerReferences).
//! - `nonResourceURLs` appear only in `cluster-admin`, for fidelity; RBAC
//!   here ignores them ([`super::rbac`]).

use std::collections::BTreeMap;

use capstan_pki::bootstrap::{
    CONTROLLER_MANAGER_USER, MASTERS_GROUP, NODES_GROUP, PROXY_USER, SCHEDULER_USER,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use capstan_proto::{KINDS, Object};

/// The label every bootstrap object carries.
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
/// The value of [`BOOTSTRAPPING_LABEL`].
pub const BOOTSTRAPPING_VALUE: &str = "rbac-defaults";
/// Kubernetes's annotation marking bootstrap policy as kept up to date by
/// the apiserver.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// The namespace of the system components' leader-election Leases.
pub const SYSTEM_NAMESPACE: &str = "kube-system";

const RBAC_API_GROUP: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const EVENT_WRITE: &[&str] = &["create", "patch", "update"];
/// Every verb but deletecollection.
const MANAGE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// The roles and bindings every cluster starts with: ClusterRoles and
/// ClusterRoleBindings, and the scheduler's leader-election Role and
/// RoleBinding in `kube-system` (which the caller should create with that
/// namespace).
pub fn rbac_objects() -> Vec<Object> {
    let mut objects = Vec::new();
    let mut bound = |name: &str, rules: Vec<PolicyRule>, subject: Subject| {
        objects.push(cluster_role(name, rules));
        objects.push(cluster_role_binding(name, vec![subject]));
    };
    bound("cluster-admin", cluster_admin(), group(MASTERS_GROUP));
    bound("system:kube-scheduler", scheduler(), user(SCHEDULER_USER));
    bound(
        "system:kube-controller-manager",
        controller_manager(),
        user(CONTROLLER_MANAGER_USER),
    );
    bound("system:node", node(), group(NODES_GROUP));
    bound("system:node-proxier", node_proxier(), user(PROXY_USER));

    objects.push(cluster_role("admin", admin()));
    objects.push(cluster_role("edit", edit()));
    objects.push(cluster_role("view", view()));

    let leader = "system::leader-locking-kube-scheduler";
    objects.push(Object::Role(Role {
        metadata: Some(meta(SYSTEM_NAMESPACE, leader)),
        rules: vec![rule(
            &["get", "create", "update"],
            &["coordination.k8s.io"],
            &["leases"],
        )],
    }));
    objects.push(Object::RoleBinding(RoleBinding {
        metadata: Some(meta(SYSTEM_NAMESPACE, leader)),
        subjects: vec![user(SCHEDULER_USER)],
        role_ref: Some(role_ref("Role", leader)),
    }));
    objects
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: strings(verbs),
        api_groups: strings(groups),
        resources: strings(resources),
        ..Default::default()
    }
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: namespace.into(),
        name: name.into(),
        labels: BTreeMap::from([(BOOTSTRAPPING_LABEL.into(), BOOTSTRAPPING_VALUE.into())]),
        annotations: BTreeMap::from([(AUTOUPDATE_ANNOTATION.into(), "true".into())]),
        ..Default::default()
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> Object {
    Object::ClusterRole(ClusterRole {
        metadata: Some(meta("", name)),
        rules,
        aggregation_rule: None,
    })
}

fn cluster_role_binding(name: &str, subjects: Vec<Subject>) -> Object {
    Object::ClusterRoleBinding(ClusterRoleBinding {
        metadata: Some(meta("", name)),
        subjects,
        role_ref: Some(role_ref("ClusterRole", name)),
    })
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_API_GROUP.into(),
        kind: kind.into(),
        name: name.into(),
    }
}

fn subject(kind: &str, name: &str) -> Subject {
    Subject {
        kind: kind.into(),
        api_group: RBAC_API_GROUP.into(),
        name: name.into(),
        namespace: String::new(),
    }
}

fn user(name: &str) -> Subject {
    subject("User", name)
}

fn group(name: &str) -> Subject {
    subject("Group", name)
}

fn cluster_admin() -> Vec<PolicyRule> {
    vec![
        rule(&["*"], &["*"], &["*"]),
        PolicyRule {
            verbs: strings(&["*"]),
            non_resource_urls: strings(&["*"]),
            ..Default::default()
        },
    ]
}

fn view() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "pods",
                "pods/log",
                "pods/status",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "replicationcontrollers/status",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
                "serviceaccounts",
                "events",
                "namespaces",
                "namespaces/status",
            ],
        ),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
    ]
}

fn edit() -> Vec<PolicyRule> {
    let mut rules = view();
    rules.extend([
        rule(
            READ,
            &[""],
            &[
                "secrets",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "services/proxy",
            ],
        ),
        rule(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "services",
                "services/proxy",
                "endpoints",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "serviceaccounts",
            ],
        ),
        rule(
            &["create"],
            &[""],
            &["pods/eviction", "serviceaccounts/token"],
        ),
        rule(
            WRITE,
            &["apps"],
            &[
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
    ]);
    rules
}

fn admin() -> Vec<PolicyRule> {
    let mut rules = edit();
    rules.push(rule(
        &[READ, WRITE].concat(),
        &[RBAC_API_GROUP],
        &["roles", "rolebindings"],
    ));
    rules
}

fn scheduler() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "pods",
                "nodes",
                "namespaces",
                "services",
                "persistentvolumeclaims",
                "persistentvolumes",
                "replicationcontrollers",
            ],
        ),
        rule(READ, &["apps"], &["replicasets", "statefulsets"]),
        // Binding through the Pods.Bind RPC; the PodScheduled=False
        // condition of an unschedulable pod through its status. (No delete:
        // Capstan's scheduler does not preempt.)
        rule(&["create"], &[""], &["pods/binding"]),
        rule(&["update", "patch"], &[""], &["pods/status"]),
        rule(EVENT_WRITE, &[""], &["events"]),
    ]
}

fn controller_manager() -> Vec<PolicyRule> {
    let mut rules = vec![
        rule(
            MANAGE,
            &[""],
            &[
                "pods",
                "pods/status",
                "endpoints",
                "events",
                "nodes",
                "nodes/status",
                "namespaces",
                "namespaces/status",
                "serviceaccounts",
                "secrets",
                "configmaps",
                "replicationcontrollers",
                "replicationcontrollers/status",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "persistentvolumes",
                "persistentvolumes/status",
            ],
        ),
        rule(
            MANAGE,
            &["apps"],
            &[
                "replicasets",
                "replicasets/status",
                "deployments",
                "deployments/status",
                "statefulsets",
                "statefulsets/status",
                "controllerrevisions",
            ],
        ),
        rule(
            MANAGE,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(MANAGE, &["coordination.k8s.io"], &["leases"]),
        // The endpoints controller reads services; the garbage collector
        // updates their ownerReferences and finalizers.
        rule(
            &["get", "list", "watch", "update", "patch"],
            &[""],
            &["services"],
        ),
        // The HorizontalPodAutoscaler scales through the scale subresource.
        rule(&["get", "update", "patch"], &["", "apps"], &["*/scale"]),
    ];
    // Namespace cascade delete and garbage collection: every namespaced
    // kind, grouped by API group.
    let mut namespaced: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for kind in KINDS.iter().filter(|k| k.namespaced) {
        namespaced.entry(kind.group).or_default().push(kind.plural);
    }
    for (group, resources) in namespaced {
        rules.push(rule(
            &["get", "list", "watch", "delete", "deletecollection"],
            &[group],
            &resources,
        ));
    }
    rules
}

fn node() -> Vec<PolicyRule> {
    vec![
        rule(READ, &[""], &["services", "endpoints"]),
        rule(EVENT_WRITE, &[""], &["events"]),
    ]
}

fn node_proxier() -> Vec<PolicyRule> {
    vec![
        rule(READ, &[""], &["services", "endpoints", "nodes"]),
        // LoadBalancer services get the node's address as their ingress.
        rule(&["update", "patch"], &[""], &["services/status"]),
        rule(EVENT_WRITE, &[""], &["events"]),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use capstan_pki::bootstrap::{ADMIN_USER, node_user};

    use super::*;
    use crate::auth::rbac::RbacAuthorizer;
    use crate::auth::{Attributes, Decision, User, Verb};

    fn authz() -> RbacAuthorizer {
        let a = RbacAuthorizer::new();
        a.replace_all(rbac_objects());
        a
    }

    fn who(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: strings(groups),
        }
    }

    /// Whether RBAC allows `verb` on `group`'s `resource` (`pods/status`) in
    /// `namespace`.
    fn can(
        a: &RbacAuthorizer,
        u: &User,
        verb: Verb,
        group: &str,
        resource: &str,
        ns: &str,
    ) -> bool {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let attrs = Attributes {
            user: u,
            verb,
            group,
            resource,
            subresource,
            namespace: ns,
            name: "x",
            field_requirements: &[],
            existing: None,
            new: None,
        };
        a.authorize(&attrs) == Decision::Allow
    }

    #[test]
    fn objects_are_labeled_and_uniquely_named() {
        let mut seen = HashSet::new();
        for obj in rbac_objects() {
            let meta = obj.metadata().expect("metadata");
            assert_eq!(
                meta.labels.get(BOOTSTRAPPING_LABEL).map(String::as_str),
                Some(BOOTSTRAPPING_VALUE),
                "{}",
                meta.name
            );
            assert!(
                seen.insert((obj.info().kind, meta.namespace.clone(), meta.name.clone())),
                "duplicate {} {}",
                obj.info().kind,
                meta.name
            );
        }
        for name in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:kube-scheduler",
            "system:kube-controller-manager",
            "system:node",
            "system:node-proxier",
        ] {
            assert!(
                seen.contains(&("ClusterRole", String::new(), name.to_string())),
                "{name}"
            );
        }
    }

    #[test]
    fn masters_can_do_anything_and_strangers_nothing() {
        let a = authz();
        let admin = who(ADMIN_USER, &[MASTERS_GROUP]);
        assert!(can(&a, &admin, Verb::Delete, "", "nodes", ""));
        assert!(can(
            &a,
            &admin,
            Verb::DeleteCollection,
            "",
            "secrets",
            "kube-system"
        ));
        assert!(can(
            &a,
            &admin,
            Verb::Update,
            "apps",
            "deployments/status",
            "a"
        ));
        assert!(can(
            &a,
            &admin,
            Verb::Create,
            RBAC_API_GROUP,
            "clusterrolebindings",
            ""
        ));
        // The admin user name alone grants nothing: it is the group.
        let no_group = who(ADMIN_USER, &[]);
        assert!(!can(&a, &no_group, Verb::Get, "", "pods", "a"));
        let stranger = who("mallory", &["devs"]);
        assert!(!can(&a, &stranger, Verb::Get, "", "pods", "a"));
        assert!(!can(&a, &stranger, Verb::List, "", "namespaces", ""));
    }

    #[test]
    fn scheduler_gets_what_it_needs_and_no_more() {
        let a = authz();
        let s = who(SCHEDULER_USER, &[]);
        for (group, resource) in [
            ("", "pods"),
            ("", "nodes"),
            ("", "namespaces"),
            ("", "services"),
            ("", "persistentvolumeclaims"),
            ("", "persistentvolumes"),
            ("", "replicationcontrollers"),
            ("apps", "replicasets"),
            ("apps", "statefulsets"),
        ] {
            for verb in [Verb::Get, Verb::List, Verb::Watch] {
                assert!(
                    can(&a, &s, verb, group, resource, ""),
                    "{verb:?} {resource}"
                );
            }
        }
        assert!(can(&a, &s, Verb::Create, "", "pods/binding", "a"));
        assert!(
            !can(&a, &s, Verb::Update, "", "pods", "a"),
            "binds, never edits pods"
        );
        assert!(can(&a, &s, Verb::Patch, "", "pods/status", "a"));
        assert!(can(&a, &s, Verb::Create, "", "events", "a"));
        for verb in [Verb::Get, Verb::Create, Verb::Update] {
            assert!(can(
                &a,
                &s,
                verb,
                "coordination.k8s.io",
                "leases",
                SYSTEM_NAMESPACE
            ));
            assert!(!can(
                &a,
                &s,
                verb,
                "coordination.k8s.io",
                "leases",
                "default"
            ));
        }
        assert!(!can(
            &a,
            &s,
            Verb::Delete,
            "coordination.k8s.io",
            "leases",
            SYSTEM_NAMESPACE
        ));
        // Not: secrets, configmaps, writing nodes, creating or deleting pods.
        assert!(!can(&a, &s, Verb::Get, "", "secrets", "a"));
        assert!(!can(&a, &s, Verb::List, "", "configmaps", ""));
        assert!(!can(&a, &s, Verb::Update, "", "nodes", ""));
        assert!(!can(&a, &s, Verb::Create, "", "pods", "a"));
        assert!(!can(&a, &s, Verb::Delete, "", "pods", "a"));
        assert!(!can(&a, &s, Verb::Update, "apps", "replicasets", "a"));
    }

    #[test]
    fn controller_manager_runs_controllers_without_escalating() {
        let a = authz();
        let cm = who(CONTROLLER_MANAGER_USER, &[]);
        assert!(can(&a, &cm, Verb::Create, "", "pods", "a"));
        assert!(can(&a, &cm, Verb::Delete, "", "pods", "a"));
        assert!(can(
            &a,
            &cm,
            Verb::Update,
            "apps",
            "deployments/status",
            "a"
        ));
        assert!(can(
            &a,
            &cm,
            Verb::Create,
            "apps",
            "controllerrevisions",
            "a"
        ));
        assert!(can(&a, &cm, Verb::Update, "", "nodes/status", ""));
        assert!(can(&a, &cm, Verb::Create, "", "secrets", "a"));
        assert!(can(&a, &cm, Verb::Update, "", "endpoints", "a"));
        assert!(can(&a, &cm, Verb::Update, "apps", "deployments/scale", "a"));
        // Leases are in coordination.k8s.io, not the core group.
        assert!(!can(&a, &cm, Verb::Update, "", "leases", "kube-system"));
        assert!(can(
            &a,
            &cm,
            Verb::Update,
            "coordination.k8s.io",
            "leases",
            "kube-system"
        ));
        // Namespace cascade delete reaches every namespaced kind.
        for kind in KINDS.iter().filter(|k| k.namespaced) {
            assert!(
                can(
                    &a,
                    &cm,
                    Verb::DeleteCollection,
                    kind.group,
                    kind.plural,
                    "a"
                ),
                "{}",
                kind.plural
            );
        }
        assert!(!can(&a, &cm, Verb::DeleteCollection, "", "nodes", ""));
        // No way to grant itself or others more.
        for resource in [
            "roles",
            "rolebindings",
            "clusterroles",
            "clusterrolebindings",
        ] {
            assert!(
                !can(&a, &cm, Verb::Create, RBAC_API_GROUP, resource, "a"),
                "{resource}"
            );
            assert!(
                !can(&a, &cm, Verb::Update, RBAC_API_GROUP, resource, "a"),
                "{resource}"
            );
        }
        assert!(!can(
            &a,
            &cm,
            Verb::Delete,
            RBAC_API_GROUP,
            "clusterroles",
            ""
        ));
    }

    #[test]
    fn nodes_and_proxy() {
        let a = authz();
        let n = who(&node_user("w1"), &[NODES_GROUP]);
        assert!(can(&a, &n, Verb::List, "", "services", ""));
        assert!(can(&a, &n, Verb::Watch, "", "endpoints", ""));
        assert!(can(&a, &n, Verb::Create, "", "events", "a"));
        // The rest is the node authorizer's, not RBAC's.
        assert!(!can(&a, &n, Verb::List, "", "pods", ""));
        assert!(!can(&a, &n, Verb::Get, "", "secrets", "a"));
        assert!(!can(&a, &n, Verb::Get, "", "nodes", ""));

        let p = who(PROXY_USER, &[]);
        for resource in ["services", "endpoints", "nodes"] {
            assert!(can(&a, &p, Verb::Watch, "", resource, ""), "{resource}");
            assert!(!can(&a, &p, Verb::Update, "", resource, ""), "{resource}");
        }
        assert!(can(&a, &p, Verb::Patch, "", "events", "a"));
        assert!(!can(&a, &p, Verb::List, "", "pods", ""));
        assert!(!can(&a, &p, Verb::Get, "", "secrets", "a"));
    }

    #[test]
    fn view_edit_admin_within_a_namespace() {
        let mut objects = rbac_objects();
        for role in ["view", "edit", "admin"] {
            objects.push(Object::RoleBinding(RoleBinding {
                metadata: Some(meta("a", role)),
                subjects: vec![user(role)],
                role_ref: Some(role_ref("ClusterRole", role)),
            }));
        }
        let a = RbacAuthorizer::new();
        a.replace_all(objects);
        let (view, edit, admin) = (who("view", &[]), who("edit", &[]), who("admin", &[]));

        assert!(can(&a, &view, Verb::List, "", "pods", "a"));
        assert!(can(&a, &view, Verb::Get, "apps", "deployments", "a"));
        assert!(!can(&a, &view, Verb::Get, "", "secrets", "a"));
        assert!(!can(&a, &view, Verb::Update, "", "configmaps", "a"));
        assert!(!can(&a, &view, Verb::List, "", "pods", "b"));

        assert!(can(&a, &edit, Verb::Get, "", "secrets", "a"));
        assert!(can(&a, &edit, Verb::Create, "apps", "deployments", "a"));
        assert!(can(
            &a,
            &edit,
            Verb::Update,
            "apps",
            "deployments/scale",
            "a"
        ));
        assert!(!can(
            &a,
            &edit,
            Verb::Create,
            RBAC_API_GROUP,
            "rolebindings",
            "a"
        ));
        assert!(!can(&a, &edit, Verb::Create, "apps", "deployments", "b"));
        // Status belongs to controllers.
        assert!(!can(
            &a,
            &edit,
            Verb::Update,
            "apps",
            "deployments/status",
            "a"
        ));

        assert!(can(
            &a,
            &admin,
            Verb::Create,
            RBAC_API_GROUP,
            "rolebindings",
            "a"
        ));
        assert!(can(&a, &admin, Verb::Delete, "", "secrets", "a"));
        assert!(!can(
            &a,
            &admin,
            Verb::Create,
            RBAC_API_GROUP,
            "clusterrolebindings",
            ""
        ));
        assert!(!can(&a, &admin, Verb::Delete, "", "namespaces", ""));
        assert!(!can(
            &a,
            &admin,
            Verb::Create,
            RBAC_API_GROUP,
            "rolebindings",
            "b"
        ));
    }
}

//! Tests of [`super::RbacAuthorizer`]: each grant is checked together with
//! the neighbouring requests it must not grant.

use capstan_proto::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

use super::*;
use crate::auth::User;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn meta(namespace: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    })
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

fn named_rule(verbs: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: strings(names),
        ..rule(verbs, &[""], resources)
    }
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Object {
    Object::Role(Role {
        metadata: meta(namespace, name),
        rules,
    })
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> Object {
    Object::ClusterRole(ClusterRole {
        metadata: meta("", name),
        rules,
        aggregation_rule: None,
    })
}

fn role_ref(kind: &str, name: &str) -> Option<RoleRef> {
    Some(RoleRef {
        api_group: RBAC_GROUP.into(),
        kind: kind.into(),
        name: name.into(),
    })
}

fn role_binding(
    namespace: &str,
    name: &str,
    kind: &str,
    role: &str,
    subjects: Vec<Subject>,
) -> Object {
    Object::RoleBinding(RoleBinding {
        metadata: meta(namespace, name),
        subjects,
        role_ref: role_ref(kind, role),
    })
}

fn cluster_binding(name: &str, kind: &str, role: &str, subjects: Vec<Subject>) -> Object {
    Object::ClusterRoleBinding(ClusterRoleBinding {
        metadata: meta("", name),
        subjects,
        role_ref: role_ref(kind, role),
    })
}

fn subject(kind: &str, name: &str) -> Subject {
    Subject {
        kind: kind.into(),
        api_group: RBAC_GROUP.into(),
        name: name.into(),
        namespace: String::new(),
    }
}

fn user_subject(name: &str) -> Subject {
    subject("User", name)
}

fn group_subject(name: &str) -> Subject {
    subject("Group", name)
}

fn sa_subject(namespace: &str, name: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        api_group: String::new(),
        name: name.into(),
        namespace: namespace.into(),
    }
}

fn user(name: &str, groups: &[&str]) -> User {
    User {
        name: name.into(),
        groups: strings(groups),
    }
}

/// A core-group request; `resource` may be `pods/status`.
fn req<'a>(
    user: &'a User,
    verb: Verb,
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
) -> Attributes<'a> {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    Attributes {
        user,
        verb,
        group: "",
        resource,
        subresource,
        namespace,
        name,
        field_requirements: &[],
        existing: None,
        new: None,
    }
}

fn allows(authz: &RbacAuthorizer, attrs: Attributes<'_>) -> bool {
    match authz.authorize(&attrs) {
        Decision::Allow => true,
        Decision::NoOpinion => false,
        Decision::Deny(reason) => panic!("RBAC never denies, got {reason}"),
    }
}

fn authz(objs: Vec<Object>) -> RbacAuthorizer {
    let a = RbacAuthorizer::new();
    a.replace_all(objs);
    a
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RbacAuthorizer>();
}

#[test]
fn nothing_bound_means_no_opinion() {
    let alice = user("alice", &["devs"]);
    let empty = RbacAuthorizer::new();
    assert!(!allows(&empty, req(&alice, Verb::Get, "pods", "a", "p")));
    // A role that nobody is bound to grants nothing.
    let a = authz(vec![
        cluster_role("all", vec![rule(&["*"], &["*"], &["*"])]),
        role("a", "all", vec![rule(&["*"], &["*"], &["*"])]),
    ]);
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert_eq!(
        a.authorize(&req(&alice, Verb::Get, "pods", "a", "p")),
        Decision::NoOpinion
    );
}

#[test]
fn role_grants_exactly_its_verbs_resources_and_namespace() {
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    let a = authz(vec![
        role(
            "a",
            "reader",
            vec![rule(&["get", "list"], &[""], &["pods"])],
        ),
        role_binding(
            "a",
            "alice-reads",
            "Role",
            "reader",
            vec![user_subject("alice")],
        ),
    ]);
    assert!(allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert!(allows(&a, req(&alice, Verb::List, "pods", "a", "")));
    // Other verbs.
    for verb in [
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::Patch,
        Verb::Delete,
        Verb::DeleteCollection,
    ] {
        assert!(!allows(&a, req(&alice, verb, "pods", "a", "p")), "{verb:?}");
    }
    // Other resources, subresources, groups.
    assert!(!allows(&a, req(&alice, Verb::Get, "secrets", "a", "s")));
    assert!(!allows(&a, req(&alice, Verb::Get, "pods/status", "a", "p")));
    let apps = Attributes {
        group: "apps",
        ..req(&alice, Verb::Get, "pods", "a", "p")
    };
    assert!(!allows(&a, apps));
    // Other namespaces, and across all namespaces.
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "b", "p")));
    assert!(!allows(&a, req(&alice, Verb::List, "pods", "", "")));
    // Other users.
    assert!(!allows(&a, req(&bob, Verb::Get, "pods", "a", "p")));
}

#[test]
fn role_binding_resolves_roles_in_its_own_namespace_only() {
    let alice = user("alice", &[]);
    // The Role lives in b; a RoleBinding in a naming it finds nothing.
    let a = authz(vec![
        role("b", "reader", vec![rule(&["get"], &[""], &["pods"])]),
        role_binding("a", "x", "Role", "reader", vec![user_subject("alice")]),
    ]);
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "b", "p")));
}

#[test]
fn cluster_role_through_role_binding_is_limited_to_the_namespace() {
    let alice = user("alice", &[]);
    let a = authz(vec![
        cluster_role(
            "edit",
            vec![rule(&["*"], &["", "apps"], &["pods", "nodes"])],
        ),
        role_binding(
            "a",
            "alice-edit",
            "ClusterRole",
            "edit",
            vec![user_subject("alice")],
        ),
    ]);
    assert!(allows(&a, req(&alice, Verb::Delete, "pods", "a", "p")));
    assert!(!allows(&a, req(&alice, Verb::Delete, "pods", "b", "p")));
    // Cluster-scoped resources and all-namespace lists are out of reach.
    assert!(!allows(&a, req(&alice, Verb::Get, "nodes", "", "n1")));
    assert!(!allows(&a, req(&alice, Verb::List, "pods", "", "")));
}

#[test]
fn cluster_role_binding_grants_everywhere() {
    let alice = user("alice", &[]);
    let a = authz(vec![
        cluster_role(
            "reader",
            vec![rule(&["get", "list"], &[""], &["pods", "nodes"])],
        ),
        cluster_binding(
            "alice",
            "ClusterRole",
            "reader",
            vec![user_subject("alice")],
        ),
    ]);
    assert!(allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert!(allows(&a, req(&alice, Verb::Get, "pods", "zzz", "p")));
    assert!(allows(&a, req(&alice, Verb::List, "pods", "", "")));
    assert!(allows(&a, req(&alice, Verb::Get, "nodes", "", "n1")));
    assert!(!allows(&a, req(&alice, Verb::Delete, "nodes", "", "n1")));
}

#[test]
fn bindings_to_missing_or_mismatched_roles_grant_nothing() {
    let alice = user("alice", &[]);
    let a = authz(vec![
        role("a", "reader", vec![rule(&["get"], &[""], &["pods"])]),
        // A ClusterRoleBinding cannot use a Role.
        cluster_binding("x", "Role", "reader", vec![user_subject("alice")]),
        // A binding to a role that does not exist yet.
        role_binding(
            "a",
            "y",
            "ClusterRole",
            "later",
            vec![user_subject("alice")],
        ),
    ]);
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert!(!allows(&a, req(&alice, Verb::List, "configmaps", "a", "")));
    // Once the role appears, the binding takes effect.
    a.upsert(&cluster_role(
        "later",
        vec![rule(&["list"], &[""], &["configmaps"])],
    ));
    assert!(allows(&a, req(&alice, Verb::List, "configmaps", "a", "")));
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
}

#[test]
fn resource_names_never_match_requests_without_a_name() {
    let alice = user("alice", &[]);
    let a = authz(vec![
        cluster_role(
            "one-cm",
            vec![named_rule(
                &[
                    "get",
                    "list",
                    "watch",
                    "create",
                    "update",
                    "deletecollection",
                ],
                &["configmaps"],
                &["settings"],
            )],
        ),
        role_binding(
            "a",
            "x",
            "ClusterRole",
            "one-cm",
            vec![user_subject("alice")],
        ),
    ]);
    assert!(allows(
        &a,
        req(&alice, Verb::Get, "configmaps", "a", "settings")
    ));
    assert!(allows(
        &a,
        req(&alice, Verb::Update, "configmaps", "a", "settings")
    ));
    assert!(!allows(
        &a,
        req(&alice, Verb::Get, "configmaps", "a", "other")
    ));
    assert!(!allows(&a, req(&alice, Verb::List, "configmaps", "a", "")));
    assert!(!allows(&a, req(&alice, Verb::Watch, "configmaps", "a", "")));
    assert!(!allows(
        &a,
        req(&alice, Verb::DeleteCollection, "configmaps", "a", "")
    ));
    // As in Kubernetes, create cannot be restricted by name, even when the
    // name is known.
    assert!(!allows(
        &a,
        req(&alice, Verb::Create, "configmaps", "a", "settings")
    ));
    // A list or watch selecting exactly the allowed name is granted.
    let by_name = [("metadata.name".to_string(), "settings".to_string())];
    let other_name = [("metadata.name".to_string(), "other".to_string())];
    let other_field = [("spec.nodeName".to_string(), "settings".to_string())];
    for verb in [Verb::List, Verb::Watch] {
        let selected = Attributes {
            field_requirements: &by_name,
            ..req(&alice, verb, "configmaps", "a", "")
        };
        assert!(allows(&a, selected), "{verb:?}");
        let wrong = Attributes {
            field_requirements: &other_name,
            ..req(&alice, verb, "configmaps", "a", "")
        };
        assert!(!allows(&a, wrong));
        let unrelated = Attributes {
            field_requirements: &other_field,
            ..req(&alice, verb, "configmaps", "a", "")
        };
        assert!(!allows(&a, unrelated));
    }
    let collection = Attributes {
        field_requirements: &by_name,
        ..req(&alice, Verb::DeleteCollection, "configmaps", "a", "")
    };
    assert!(!allows(&a, collection));
}

#[test]
fn subresources_match_exactly_or_by_star_prefix() {
    let alice = user("alice", &[]);
    let a = authz(vec![
        cluster_role(
            "status",
            vec![
                rule(&["update"], &[""], &["pods/status"]),
                rule(&["get"], &["apps"], &["*/scale"]),
                rule(&["get"], &[""], &["nodes"]),
            ],
        ),
        cluster_binding("x", "ClusterRole", "status", vec![user_subject("alice")]),
    ]);
    assert!(allows(
        &a,
        req(&alice, Verb::Update, "pods/status", "a", "p")
    ));
    assert!(!allows(&a, req(&alice, Verb::Update, "pods", "a", "p")));
    assert!(!allows(&a, req(&alice, Verb::Update, "pods/log", "a", "p")));
    assert!(!allows(
        &a,
        req(&alice, Verb::Update, "nodes/status", "", "n")
    ));
    // A main-resource rule does not reach its subresources.
    assert!(allows(&a, req(&alice, Verb::Get, "nodes", "", "n")));
    assert!(!allows(&a, req(&alice, Verb::Get, "nodes/status", "", "n")));
    // */scale matches any resource's scale in the rule's groups.
    let scale = |resource| Attributes {
        group: "apps",
        ..req(&alice, Verb::Get, resource, "a", "d")
    };
    assert!(allows(&a, scale("deployments/scale")));
    assert!(allows(&a, scale("statefulsets/scale")));
    assert!(!allows(&a, scale("deployments")));
    assert!(!allows(&a, scale("deployments/status")));
    assert!(!allows(
        &a,
        req(&alice, Verb::Get, "replicationcontrollers/scale", "a", "r")
    ));
}

#[test]
fn wildcards() {
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    let a = authz(vec![
        cluster_role("all", vec![rule(&["*"], &["*"], &["*"])]),
        cluster_role("any-verb-pods", vec![rule(&["*"], &[""], &["pods"])]),
        cluster_binding("alice", "ClusterRole", "all", vec![user_subject("alice")]),
        cluster_binding(
            "bob",
            "ClusterRole",
            "any-verb-pods",
            vec![user_subject("bob")],
        ),
    ]);
    let apps_status = Attributes {
        group: "apps",
        ..req(&alice, Verb::Update, "deployments/status", "a", "d")
    };
    assert!(allows(&a, apps_status));
    assert!(allows(
        &a,
        req(&alice, Verb::DeleteCollection, "secrets", "a", "")
    ));
    assert!(allows(
        &a,
        req(&alice, Verb::Update, "nodes/status", "", "n")
    ));
    assert!(allows(
        &a,
        req(&bob, Verb::DeleteCollection, "pods", "a", "")
    ));
    assert!(allows(&a, req(&bob, Verb::Watch, "pods", "", "")));
    assert!(!allows(&a, req(&bob, Verb::Get, "pods/status", "a", "p")));
    assert!(!allows(&a, req(&bob, Verb::Get, "secrets", "a", "s")));
    let apps_pods = Attributes {
        group: "apps",
        ..req(&bob, Verb::Get, "pods", "a", "p")
    };
    assert!(!allows(&a, apps_pods));
}

#[test]
fn groups_and_system_authenticated() {
    let dev = user("carol", &["devs"]);
    let ops = user("dave", &["ops"]);
    let a = authz(vec![
        cluster_role("pods", vec![rule(&["get"], &[""], &["pods"])]),
        cluster_role("cms", vec![rule(&["get"], &[""], &["configmaps"])]),
        role_binding(
            "a",
            "devs",
            "ClusterRole",
            "pods",
            vec![group_subject("devs")],
        ),
        // Nobody's credentials list system:authenticated; everyone is in it.
        cluster_binding(
            "everyone",
            "ClusterRole",
            "cms",
            vec![group_subject(AUTHENTICATED_GROUP)],
        ),
    ]);
    assert!(allows(&a, req(&dev, Verb::Get, "pods", "a", "p")));
    assert!(!allows(&a, req(&ops, Verb::Get, "pods", "a", "p")));
    // A user named like the group is not in it.
    let impostor = user("devs", &[]);
    assert!(!allows(&a, req(&impostor, Verb::Get, "pods", "a", "p")));
    assert!(allows(&a, req(&ops, Verb::Get, "configmaps", "z", "c")));
    assert!(allows(&a, req(&dev, Verb::Get, "configmaps", "", "c")));
}

#[test]
fn service_account_subjects() {
    let sa = user("system:serviceaccount:a:builder", &[]);
    let other_ns = user("system:serviceaccount:b:builder", &[]);
    let a = authz(vec![
        cluster_role("pods", vec![rule(&["get"], &[""], &["pods"])]),
        cluster_role("cms", vec![rule(&["get"], &[""], &["configmaps"])]),
        cluster_role("svcs", vec![rule(&["get"], &[""], &["services"])]),
        // An empty namespace defaults to the RoleBinding's.
        role_binding(
            "a",
            "x",
            "ClusterRole",
            "pods",
            vec![sa_subject("", "builder")],
        ),
        // A ClusterRoleBinding has no namespace to default to: nobody.
        cluster_binding("y", "ClusterRole", "cms", vec![sa_subject("", "builder")]),
        cluster_binding("z", "ClusterRole", "svcs", vec![sa_subject("a", "builder")]),
    ]);
    assert!(allows(&a, req(&sa, Verb::Get, "pods", "a", "p")));
    assert!(!allows(&a, req(&other_ns, Verb::Get, "pods", "a", "p")));
    assert!(!allows(&a, req(&sa, Verb::Get, "configmaps", "a", "c")));
    assert!(allows(&a, req(&sa, Verb::Get, "services", "q", "s")));
    assert!(!allows(&a, req(&other_ns, Verb::Get, "services", "q", "s")));
}

#[test]
fn removal_and_replacement_revoke() {
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    let a = authz(vec![
        cluster_role("pods", vec![rule(&["get"], &[""], &["pods"])]),
        role("a", "cms", vec![rule(&["get"], &[""], &["configmaps"])]),
        cluster_binding("alice", "ClusterRole", "pods", vec![user_subject("alice")]),
        role_binding("a", "cms", "Role", "cms", vec![user_subject("alice")]),
    ]);
    assert!(allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert!(allows(&a, req(&alice, Verb::Get, "configmaps", "a", "c")));

    // Removing a binding revokes it (the object's content does not matter).
    a.remove(&cluster_binding("alice", "ClusterRole", "", vec![]));
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert!(allows(&a, req(&alice, Verb::Get, "configmaps", "a", "c")));

    // Removing the role a binding names revokes it too.
    a.remove(&role("a", "cms", vec![]));
    assert!(!allows(&a, req(&alice, Verb::Get, "configmaps", "a", "c")));

    // Updating a binding's subjects moves the grant.
    a.upsert(&cluster_binding(
        "pods",
        "ClusterRole",
        "pods",
        vec![user_subject("alice")],
    ));
    assert!(allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    a.upsert(&cluster_binding(
        "pods",
        "ClusterRole",
        "pods",
        vec![user_subject("bob")],
    ));
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    assert!(allows(&a, req(&bob, Verb::Get, "pods", "a", "p")));

    // Updating a role's rules takes effect.
    a.upsert(&cluster_role(
        "pods",
        vec![rule(&["list"], &[""], &["pods"])],
    ));
    assert!(!allows(&a, req(&bob, Verb::Get, "pods", "a", "p")));
    assert!(allows(&a, req(&bob, Verb::List, "pods", "a", "")));

    // A RoleBinding removed by namespace and name.
    a.upsert(&role_binding(
        "a",
        "bob",
        "ClusterRole",
        "pods",
        vec![user_subject("bob")],
    ));
    a.remove(&cluster_binding("pods", "ClusterRole", "pods", vec![]));
    assert!(allows(&a, req(&bob, Verb::List, "pods", "a", "")));
    a.remove(&role_binding("b", "bob", "ClusterRole", "pods", vec![]));
    assert!(allows(&a, req(&bob, Verb::List, "pods", "a", "")));
    a.remove(&role_binding("a", "bob", "ClusterRole", "pods", vec![]));
    assert!(!allows(&a, req(&bob, Verb::List, "pods", "a", "")));

    // The index holds nothing once every binding is gone.
    a.remove(&role_binding("a", "cms", "Role", "cms", vec![]));
    let state = a.read();
    assert!(state.users.is_empty() && state.groups.is_empty());
    assert!(state.role_bindings.is_empty() && state.cluster_role_bindings.is_empty());
}

#[test]
fn replace_all_drops_what_is_not_listed() {
    let alice = user("alice", &[]);
    let a = authz(vec![
        cluster_role("pods", vec![rule(&["get"], &[""], &["pods"])]),
        cluster_binding("alice", "ClusterRole", "pods", vec![user_subject("alice")]),
    ]);
    assert!(allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
    a.replace_all(vec![cluster_role(
        "pods",
        vec![rule(&["get"], &[""], &["pods"])],
    )]);
    assert!(!allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
}

#[test]
fn other_kinds_are_ignored() {
    use capstan_proto::api::core::v1::ConfigMap;
    let a = RbacAuthorizer::new();
    let cm = Object::ConfigMap(ConfigMap {
        metadata: meta("a", "x"),
        ..Default::default()
    });
    a.upsert(&cm);
    a.remove(&cm);
    let state = a.read();
    assert!(state.roles.is_empty() && state.cluster_roles.is_empty());
}

#[test]
fn concurrent_readers_and_writer() {
    use std::sync::Arc;
    let alice = user("alice", &[]);
    let a = Arc::new(authz(vec![cluster_role(
        "pods",
        vec![rule(&["get"], &[""], &["pods"])],
    )]));
    let writer = {
        let a = Arc::clone(&a);
        std::thread::spawn(move || {
            for i in 0..200 {
                let b = cluster_binding(&format!("b{i}"), "ClusterRole", "pods", vec![]);
                a.upsert(&b);
                a.remove(&b);
            }
            a.upsert(&cluster_binding(
                "alice",
                "ClusterRole",
                "pods",
                vec![user_subject("alice")],
            ));
        })
    };
    for _ in 0..200 {
        let _ = a.authorize(&req(&alice, Verb::Get, "pods", "a", "p"));
    }
    writer.join().expect("writer");
    assert!(allows(&a, req(&alice, Verb::Get, "pods", "a", "p")));
}

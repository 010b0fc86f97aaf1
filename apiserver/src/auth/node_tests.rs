//! Tests of the node authorizer: what node `w1` may and may not do.

use capstan_pki::bootstrap::{NODES_GROUP, node_user};
use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::{Node, Pod, PodSpec};
use capstan_proto::api::meta::v1::ObjectMeta;

use super::*;

fn w1() -> User {
    User {
        name: node_user("w1"),
        groups: vec![NODES_GROUP.to_string()],
    }
}

fn meta(namespace: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    })
}

fn pod(name: &str, node: &str) -> Object {
    Object::Pod(Pod {
        metadata: meta("default", name),
        spec: Some(PodSpec {
            node_name: node.into(),
            ..Default::default()
        }),
        status: None,
    })
}

fn node_obj(name: &str) -> Object {
    Object::Node(Node {
        metadata: meta("", name),
        ..Default::default()
    })
}

fn lease(name: &str) -> Object {
    Object::Lease(Lease {
        metadata: meta(NODE_LEASE_NAMESPACE, name),
        ..Default::default()
    })
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

fn lease_req<'a>(user: &'a User, verb: Verb, namespace: &'a str, name: &'a str) -> Attributes<'a> {
    Attributes {
        group: "coordination.k8s.io",
        ..req(user, verb, "leases", namespace, name)
    }
}

fn field(key: &str, value: &str) -> [(String, String); 1] {
    [(key.to_string(), value.to_string())]
}

#[track_caller]
fn assert_allow(attrs: Attributes<'_>) {
    assert_eq!(authorize(&attrs), Decision::Allow, "{attrs:?}");
}

#[track_caller]
fn assert_no_opinion(attrs: Attributes<'_>) {
    assert_eq!(authorize(&attrs), Decision::NoOpinion, "{attrs:?}");
}

/// Asserts a denial whose reason contains `why`; returns the reason.
#[track_caller]
fn assert_deny(attrs: Attributes<'_>, why: &str) -> String {
    match authorize(&attrs) {
        Decision::Deny(reason) => {
            assert!(reason.contains(why), "{reason:?} does not say {why:?}");
            reason
        }
        other => panic!("expected a denial for {attrs:?}, got {other:?}"),
    }
}

#[test]
fn prefix_matches_pki_user_names() {
    assert_eq!(node_user("w1"), format!("{NODE_USER_PREFIX}w1"));
}

#[test]
fn only_node_identities_in_the_nodes_group() {
    let not_in_group = User {
        name: node_user("w1"),
        groups: vec![],
    };
    let no_name = User {
        name: node_user(""),
        groups: vec![NODES_GROUP.into()],
    };
    let other = User {
        name: "alice".into(),
        groups: vec![NODES_GROUP.into()],
    };
    for user in [&not_in_group, &no_name, &other] {
        assert_eq!(node_name(user), None);
        assert_no_opinion(req(user, Verb::Delete, "nodes", "", "w1"));
        assert_no_opinion(req(user, Verb::Get, "secrets", "default", "s"));
        assert_no_opinion(req(user, Verb::List, "pods", "", ""));
    }
    assert_eq!(node_name(&w1()), Some("w1"));
}

#[test]
fn nodes_only_its_own() {
    let u = w1();
    assert_allow(req(&u, Verb::Get, "nodes", "", "w1"));
    assert_allow(req(&u, Verb::Get, "nodes/status", "", "w1"));
    assert_deny(req(&u, Verb::Get, "nodes", "", "w2"), "\"w2\"");

    let own = node_obj("w1");
    let create = Attributes {
        new: Some(&own),
        ..req(&u, Verb::Create, "nodes", "", "w1")
    };
    assert_allow(create);
    // The name may come from the object alone.
    let create_unnamed = Attributes {
        new: Some(&own),
        ..req(&u, Verb::Create, "nodes", "", "")
    };
    assert_allow(create_unnamed);
    let other = node_obj("w2");
    let create_other = Attributes {
        new: Some(&other),
        ..req(&u, Verb::Create, "nodes", "", "")
    };
    assert_deny(create_other, "own Node");
    let create_mismatch = Attributes {
        new: Some(&other),
        ..req(&u, Verb::Create, "nodes", "", "w1")
    };
    assert_deny(create_mismatch, "own Node");

    for verb in [Verb::Update, Verb::Patch] {
        for resource in ["nodes", "nodes/status"] {
            let own_update = Attributes {
                existing: Some(&own),
                new: Some(&own),
                ..req(&u, verb, resource, "", "w1")
            };
            assert_allow(own_update);
            let other_update = Attributes {
                existing: Some(&other),
                new: Some(&other),
                ..req(&u, verb, resource, "", "w2")
            };
            assert_deny(other_update, "own Node");
        }
    }
    assert_deny(req(&u, Verb::Delete, "nodes", "", "w1"), "may not delete");
    assert_deny(
        req(&u, Verb::DeleteCollection, "nodes", "", ""),
        "deletecollection",
    );
    assert_deny(req(&u, Verb::Get, "nodes/proxy", "", "w1"), "nodes/proxy");
}

#[test]
fn nodes_list_and_watch_need_its_name_selected() {
    let u = w1();
    let own = field("metadata.name", "w1");
    let other = field("metadata.name", "w2");
    for verb in [Verb::List, Verb::Watch] {
        assert_deny(req(&u, verb, "nodes", "", ""), "metadata.name=w1");
        assert_allow(Attributes {
            field_requirements: &own,
            ..req(&u, verb, "nodes", "", "")
        });
        assert_deny(
            Attributes {
                field_requirements: &other,
                ..req(&u, verb, "nodes", "", "")
            },
            "own Node",
        );
    }
}

#[test]
fn leases_only_its_own_in_kube_node_lease() {
    let u = w1();
    let own = lease("w1");
    let other = lease("w2");
    for verb in [Verb::Get, Verb::Update, Verb::Patch, Verb::Delete] {
        assert_allow(lease_req(&u, verb, NODE_LEASE_NAMESPACE, "w1"));
        assert_deny(lease_req(&u, verb, NODE_LEASE_NAMESPACE, "w2"), "own Lease");
    }
    assert_allow(Attributes {
        new: Some(&own),
        ..lease_req(&u, Verb::Create, NODE_LEASE_NAMESPACE, "")
    });
    assert_deny(
        Attributes {
            new: Some(&other),
            ..lease_req(&u, Verb::Create, NODE_LEASE_NAMESPACE, "")
        },
        "own Lease",
    );
    let own_name = field("metadata.name", "w1");
    for verb in [Verb::List, Verb::Watch] {
        assert_deny(
            lease_req(&u, verb, NODE_LEASE_NAMESPACE, ""),
            "metadata.name=w1",
        );
        assert_allow(Attributes {
            field_requirements: &own_name,
            ..lease_req(&u, verb, NODE_LEASE_NAMESPACE, "")
        });
    }
    assert_deny(
        lease_req(&u, Verb::DeleteCollection, NODE_LEASE_NAMESPACE, ""),
        "deletecollection",
    );
    // Leases elsewhere (leader election in kube-system) are RBAC's call.
    assert_no_opinion(lease_req(&u, Verb::Get, "kube-system", "w1"));
    // "leases" of another group are not Leases.
    assert_no_opinion(Attributes {
        group: "other.example.com",
        ..lease_req(&u, Verb::Get, NODE_LEASE_NAMESPACE, "w2")
    });
}

#[test]
fn pods_bound_to_it_only() {
    let u = w1();
    let mine = pod("x", "w1");
    let theirs = pod("x", "w2");
    let pending = pod("x", "");
    for resource in ["pods", "pods/status"] {
        for verb in [Verb::Get, Verb::Delete] {
            assert_allow(Attributes {
                existing: Some(&mine),
                ..req(&u, verb, resource, "default", "x")
            });
        }
        for verb in [Verb::Update, Verb::Patch] {
            assert_allow(Attributes {
                existing: Some(&mine),
                new: Some(&mine),
                ..req(&u, verb, resource, "default", "x")
            });
        }
    }
    // Another node's pod.
    let reason = assert_deny(
        Attributes {
            existing: Some(&theirs),
            ..req(&u, Verb::Get, "pods", "default", "x")
        },
        "node \"w1\" may only read pods bound to it; pod default/x",
    );
    // The reason for a missing pod is the same: no probing for existence.
    let missing = assert_deny(req(&u, Verb::Get, "pods", "default", "x"), "read pods");
    assert_eq!(reason, missing);
    assert!(!reason.contains("w2"), "{reason}");
    assert_deny(
        Attributes {
            existing: Some(&pending),
            ..req(&u, Verb::Get, "pods", "default", "x")
        },
        "read pods bound to it",
    );
    assert_deny(
        Attributes {
            existing: Some(&theirs),
            ..req(&u, Verb::Delete, "pods", "default", "x")
        },
        "delete pods bound to it",
    );
    // Writing another node's pod, even claiming it is now ours.
    assert_deny(
        Attributes {
            existing: Some(&theirs),
            new: Some(&mine),
            ..req(&u, Verb::Update, "pods/status", "default", "x")
        },
        "update pods bound to it",
    );
    // Moving its pod to another node.
    assert_deny(
        Attributes {
            existing: Some(&mine),
            new: Some(&theirs),
            ..req(&u, Verb::Patch, "pods", "default", "x")
        },
        "may not move pod default/x to node \"w2\"",
    );
    // An update without the new object is not allowed blindly.
    assert_deny(
        Attributes {
            existing: Some(&mine),
            ..req(&u, Verb::Update, "pods", "default", "x")
        },
        "missing",
    );
    // The existing object must be a Pod.
    let not_a_pod = node_obj("w1");
    assert_deny(
        Attributes {
            existing: Some(&not_a_pod),
            ..req(&u, Verb::Get, "pods", "default", "w1")
        },
        "read pods",
    );
    // Other subresources.
    assert_deny(
        Attributes {
            existing: Some(&mine),
            ..req(&u, Verb::Get, "pods/log", "default", "x")
        },
        "pods/log",
    );
}

#[test]
fn pods_create_only_mirror_pods_bound_to_it() {
    let u = w1();
    let mine = pod("static-w1", "w1");
    let theirs = pod("static", "w2");
    let pending = pod("p", "");
    assert_allow(Attributes {
        new: Some(&mine),
        ..req(&u, Verb::Create, "pods", "default", "static-w1")
    });
    assert_deny(
        Attributes {
            new: Some(&theirs),
            ..req(&u, Verb::Create, "pods", "default", "static")
        },
        "create pods bound to it",
    );
    assert_deny(
        Attributes {
            new: Some(&pending),
            ..req(&u, Verb::Create, "pods", "default", "p")
        },
        "create pods bound to it",
    );
    assert_deny(
        req(&u, Verb::Create, "pods", "default", "p"),
        "create pods bound to it",
    );
    assert_deny(
        Attributes {
            new: Some(&mine),
            ..req(&u, Verb::Create, "pods/status", "default", "static-w1")
        },
        "may not create pods/status",
    );
}

#[test]
fn pods_list_and_watch_need_its_node_name_selected() {
    let u = w1();
    let own = field("spec.nodeName", "w1");
    let other = field("spec.nodeName", "w2");
    let by_name = field("metadata.name", "w1");
    for verb in [Verb::List, Verb::Watch] {
        for namespace in ["", "default"] {
            assert_deny(req(&u, verb, "pods", namespace, ""), "spec.nodeName=w1");
            assert_allow(Attributes {
                field_requirements: &own,
                ..req(&u, verb, "pods", namespace, "")
            });
            for wrong in [&other, &by_name] {
                assert_deny(
                    Attributes {
                        field_requirements: wrong,
                        ..req(&u, verb, "pods", namespace, "")
                    },
                    "bound to it",
                );
            }
        }
    }
    assert_deny(
        Attributes {
            field_requirements: &own,
            ..req(&u, Verb::DeleteCollection, "pods", "default", "")
        },
        "deletecollection",
    );
}

#[test]
fn events_services_endpoints_and_the_rest() {
    let u = w1();
    for verb in [Verb::Create, Verb::Update, Verb::Patch] {
        assert_allow(req(&u, verb, "events", "default", "e"));
    }
    assert_no_opinion(req(&u, Verb::Delete, "events", "default", "e"));
    assert_no_opinion(req(&u, Verb::List, "events", "", ""));
    for resource in ["services", "endpoints"] {
        for verb in [Verb::Get, Verb::List, Verb::Watch] {
            assert_no_opinion(req(&u, verb, resource, "default", ""));
        }
    }
    for resource in [
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "persistentvolumes",
    ] {
        for verb in [Verb::Get, Verb::List, Verb::Watch, Verb::Create] {
            assert_deny(
                req(&u, verb, resource, "default", "x"),
                "referenced by the node's pods is not implemented yet",
            );
        }
    }
    assert_no_opinion(req(&u, Verb::Get, "namespaces", "", "default"));
    let apps = Attributes {
        group: "apps",
        ..req(&u, Verb::List, "deployments", "", "")
    };
    assert_no_opinion(apps);
}

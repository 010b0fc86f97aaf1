//! The ReplicaSet and ReplicationController controllers against an
//! in-process apiserver, as system:kube-controller-manager: pods created
//! from the template with a controller reference, a deleted pod replaced,
//! scale down deleting surplus, orphans adopted and non-matching pods
//! released, status counted.

mod support;

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, DeleteParams};
use capstan_controller_manager::Config;
use capstan_proto::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use capstan_proto::api::core::v1::{Pod, ReplicationController, ReplicationControllerSpec};
use capstan_proto::api::meta::v1::{LabelSelector, ObjectMeta};
use support::*;

fn replica_set(name: &str, app: &str, replicas: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: Some(LabelSelector {
                match_labels: [("app".to_owned(), app.to_owned())].into(),
                ..Default::default()
            }),
            template: Some(template(app, "web:1")),
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_set_creates_replaces_scales_adopts_and_releases() {
    let server = TestServer::start().await;
    let cm = start(Config::new(cm_kubeconfig(&server)), only(&["replicaset"]));
    let client = admin(&server);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // An orphan matching the selector is adopted, not duplicated.
    let mut orphan = support::template("web", "web:1");
    let orphan_pod = Pod {
        metadata: Some(ObjectMeta {
            name: "orphan".into(),
            labels: orphan.metadata.take().unwrap().labels,
            ..Default::default()
        }),
        spec: orphan.spec,
        status: None,
    };
    pods.create(&orphan_pod).await.unwrap();

    let rs = sets.create(&replica_set("web", "web", 3)).await.unwrap();
    let uid = rs.metadata.as_ref().unwrap().uid.clone();
    let owned = eventually("3 pods owned by the ReplicaSet", || async {
        let live = live_pods(&pods, "web").await;
        let all_owned = live.iter().all(|p| {
            p.metadata
                .as_ref()
                .unwrap()
                .owner_references
                .iter()
                .any(|r| {
                    r.uid == uid
                        && r.controller == Some(true)
                        && r.block_owner_deletion == Some(true)
                })
        });
        (live.len() == 3 && all_owned).then_some(live)
    })
    .await;
    assert!(
        owned.iter().any(|p| name(p) == "orphan"),
        "the orphan was adopted"
    );
    for p in &owned {
        if name(p) != "orphan" {
            assert!(
                name(p).starts_with("web-"),
                "generateName <rs>-: {}",
                name(p)
            );
        }
    }
    // Never more than 3 at once: give it time to misbehave.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(live_pods(&pods, "web").await.len(), 3);

    // Status follows readiness.
    for p in &owned {
        mark_ready(&pods, p).await;
    }
    eventually("status 3 ready, 3 available", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.replicas == Some(3)
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.fully_labeled_replicas == Some(3)
            && s.observed_generation == Some(1))
        .then_some(())
    })
    .await;

    // A deleted pod is replaced.
    let victim = name(&owned[0]);
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted pod replaced", || async {
        let live = live_pods(&pods, "web").await;
        (live.len() == 3 && live.iter().all(|p| name(p) != victim)).then_some(())
    })
    .await;

    // A pod whose labels stop matching is released (and replaced).
    let mut moved = live_pods(&pods, "web").await.remove(0);
    let moved_name = name(&moved);
    moved
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .insert("app".into(), "elsewhere".into());
    pods.update(&moved).await.unwrap();
    eventually("the relabelled pod released and replaced", || async {
        let p = pods.get(&moved_name).await.ok()?;
        let released = p.metadata.as_ref()?.owner_references.is_empty();
        (released && live_pods(&pods, "web").await.len() == 3).then_some(())
    })
    .await;

    // Scale down to 1: two deleted, the ready ones kept first.
    let mut rs = sets.get("web").await.unwrap();
    rs.spec.as_mut().unwrap().replicas = Some(1);
    // Unconditional, so a status write racing it is no Conflict.
    rs.metadata.as_mut().unwrap().resource_version.clear();
    sets.update(&rs).await.unwrap();
    let left = eventually("scaled down to 1", || async {
        let live = live_pods(&pods, "web").await;
        (live.len() == 1).then_some(live)
    })
    .await;
    assert!(
        ready(&left[0]),
        "a not-ready pod is deleted before a ready one"
    );
    eventually("status replicas 1", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.replicas == Some(1) && s.observed_generation == Some(2)).then_some(())
    })
    .await;

    // Events were recorded for what it did.
    let events: Api<capstan_proto::api::core::v1::Event> =
        Api::namespaced(client.clone(), "default");
    eventually("SuccessfulCreate and SuccessfulDelete events", || async {
        let list = events.list(&Default::default()).await.ok()?.items;
        let has = |reason: &str| {
            list.iter().any(|e| {
                e.reason == reason && e.involved_object.as_ref().is_some_and(|o| o.name == "web")
            })
        };
        (has("SuccessfulCreate") && has("SuccessfulDelete")).then_some(())
    })
    .await;
    cm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_keeps_its_replicas() {
    let server = TestServer::start().await;
    let cm = start(
        Config::new(cm_kubeconfig(&server)),
        only(&["replicationcontroller"]),
    );
    let client = admin(&server);
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    rcs.create(&ReplicationController {
        metadata: Some(ObjectMeta {
            name: "legacy".into(),
            ..Default::default()
        }),
        spec: Some(ReplicationControllerSpec {
            replicas: Some(2),
            selector: [("app".to_owned(), "legacy".to_owned())].into(),
            template: Some(template("legacy", "web:1")),
            ..Default::default()
        }),
        status: None,
    })
    .await
    .unwrap();
    let created = eventually("2 pods", || async {
        let live = live_pods(&pods, "legacy").await;
        (live.len() == 2).then_some(live)
    })
    .await;
    assert!(created.iter().all(|p| {
        p.metadata.as_ref().unwrap().owner_references[0].kind == "ReplicationController"
    }));
    pods.delete(&name(&created[0]), &DeleteParams::default())
        .await
        .unwrap();
    eventually("replaced, status replicas 2", || async {
        let live = live_pods(&pods, "legacy").await;
        let s = rcs.get("legacy").await.ok()?.status?;
        (live.len() == 2
            && live.iter().all(|p| name(p) != name(&created[0]))
            && s.replicas == Some(2))
        .then_some(())
    })
    .await;
    cm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_being_deleted_is_replaced_at_once() {
    let server = TestServer::start().await;
    let cm = start(Config::new(cm_kubeconfig(&server)), only(&["replicaset"]));
    let client = admin(&server);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Bound pods (nodeName set) are deleted gracefully: they linger with a
    // deletionTimestamp until their kubelet (none here) confirms.
    let mut rs = replica_set("bound", "bound", 2);
    rs.spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .node_name = "n1".into();
    sets.create(&rs).await.unwrap();
    let created = eventually("2 pods", || async {
        let live = live_pods(&pods, "bound").await;
        (live.len() == 2).then_some(live)
    })
    .await;
    let victim = name(&created[0]);
    let deleted = pods
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    assert!(!deleted.removed, "a bound pod is deleted gracefully");
    eventually("a replacement while the old pod terminates", || async {
        let all = pods.list(&Default::default()).await.ok()?.items;
        let terminating = all.iter().any(|p| {
            name(p) == victim && p.metadata.as_ref().unwrap().deletion_timestamp.is_some()
        });
        let live = live_pods(&pods, "bound").await;
        (terminating && live.len() == 2 && live.iter().all(|p| name(p) != victim)).then_some(())
    })
    .await;
    eventually("status counts only live pods", || async {
        (sets.get("bound").await.ok()?.status?.replicas == Some(2)).then_some(())
    })
    .await;
    cm.stop().await;
}

//! The garbage collector against an in-process apiserver, as
//! system:kube-controller-manager: dependents of a deleted ReplicaSet are
//! deleted (Background, across kinds), orphaned (Orphan: references
//! removed, dependents stay) or deleted before their owner (Foreground).

mod support;

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client, DeleteParams};
use capstan_controller_manager::Config;
use capstan_proto::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use capstan_proto::api::core::v1::{ConfigMap, Pod};
use capstan_proto::api::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use support::*;

async fn owner(client: &Client, name: &str) -> OwnerReference {
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = sets
        .create(&ReplicaSet {
            metadata: Some(ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                selector: Some(LabelSelector {
                    match_labels: [("app".to_owned(), name.to_owned())].into(),
                    ..Default::default()
                }),
                template: Some(template(name, "web:1")),
                ..Default::default()
            }),
            status: None,
        })
        .await
        .expect("create replica set");
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: name.into(),
        uid: rs.metadata.unwrap().uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

async fn dependent_pod(client: &Client, name: &str, app: &str, owner: &OwnerReference, node: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let t = template(app, "web:1");
    let mut spec = t.spec.unwrap();
    spec.node_name = node.into();
    pods.create(&Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            labels: t.metadata.unwrap().labels,
            owner_references: vec![owner.clone()],
            ..Default::default()
        }),
        spec: Some(spec),
        status: None,
    })
    .await
    .expect("create pod");
}

fn owners_of(pod: &Pod) -> usize {
    pod.metadata.as_ref().unwrap().owner_references.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_orphan_and_foreground_deletion() {
    let server = TestServer::start().await;
    let client = admin(&server);
    let cm = start(
        Config::new(cm_kubeconfig(&server)),
        only(&["garbagecollector"]),
    );
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Background: the owner goes at once, then its pods and ConfigMap.
    let bg = owner(&client, "bg").await;
    dependent_pod(&client, "bg-1", "bg", &bg, "").await;
    dependent_pod(&client, "bg-2", "bg", &bg, "").await;
    maps.create(&ConfigMap {
        metadata: Some(ObjectMeta {
            name: "bg-config".into(),
            owner_references: vec![bg.clone()],
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    // A pod whose owner never existed (wrong uid) is collected too.
    let ghost = OwnerReference {
        uid: "00000000-0000-0000-0000-000000000000".into(),
        ..bg.clone()
    };
    dependent_pod(&client, "ghost", "ghost", &ghost, "").await;
    // Keep one with a second, live owner: only the dangling reference goes.
    let keep = owner(&client, "keep").await;
    let pods_api = pods.clone();
    pods_api
        .create(&Pod {
            metadata: Some(ObjectMeta {
                name: "shared".into(),
                owner_references: vec![
                    bg.clone(),
                    OwnerReference {
                        controller: None,
                        ..keep.clone()
                    },
                ],
                ..Default::default()
            }),
            spec: template("shared", "web:1").spec,
            status: None,
        })
        .await
        .unwrap();
    let removed = sets.delete("bg", &DeleteParams::default()).await.unwrap();
    assert!(removed.removed);
    eventually("bg's dependents collected", || async {
        let gone = pods.get_opt("bg-1").await.ok()?.is_none()
            && pods.get_opt("bg-2").await.ok()?.is_none()
            && pods.get_opt("ghost").await.ok()?.is_none()
            && maps.get_opt("bg-config").await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
    let shared = eventually("shared keeps only its live owner", || async {
        let p = pods.get("shared").await.ok()?;
        (owners_of(&p) == 1).then_some(p)
    })
    .await;
    assert_eq!(shared.metadata.unwrap().owner_references[0].uid, keep.uid);

    // Orphan: the owner goes, its pods stay without the reference.
    let or = owner(&client, "or").await;
    dependent_pod(&client, "or-1", "or", &or, "").await;
    dependent_pod(&client, "or-2", "or", &or, "").await;
    let marked = sets
        .delete(
            "or",
            &DeleteParams {
                propagation_policy: "Orphan".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!marked.removed, "held by the orphan finalizer");
    eventually("or gone", || async {
        sets.get_opt("or").await.ok()?.is_none().then_some(())
    })
    .await;
    for name in ["or-1", "or-2"] {
        let p = pods.get(name).await.expect("orphan kept");
        assert_eq!(owners_of(&p), 0, "{name} still references its owner");
        assert!(p.metadata.unwrap().deletion_timestamp.is_none());
    }

    // Foreground: the owner waits for its (bound, hence gracefully
    // terminating) pod; it goes only once the pod is gone.
    let fg = owner(&client, "fg").await;
    dependent_pod(&client, "fg-1", "fg", &fg, "n1").await;
    dependent_pod(&client, "fg-2", "fg", &fg, "").await;
    sets.delete(
        "fg",
        &DeleteParams {
            propagation_policy: "Foreground".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually("fg's dependents deleted", || async {
        let p1 = pods.get("fg-1").await.ok()?;
        let terminating = p1.metadata.unwrap().deletion_timestamp.is_some();
        (terminating && pods.get_opt("fg-2").await.ok()?.is_none()).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let held = sets
        .get("fg")
        .await
        .expect("owner held while a dependent remains");
    assert!(held.metadata.unwrap().deletion_timestamp.is_some());
    // The kubelet finishes the pod's deletion.
    pods.delete(
        "fg-1",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually("fg gone after its dependents", || async {
        sets.get_opt("fg").await.ok()?.is_none().then_some(())
    })
    .await;
    // The orphans and the live owner's pod are still there.
    assert!(pods.get_opt("or-1").await.unwrap().is_some());
    assert!(pods.get_opt("shared").await.unwrap().is_some());
    cm.stop().await;
}

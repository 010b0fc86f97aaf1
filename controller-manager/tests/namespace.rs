//! The namespace controller against an in-process apiserver, as
//! system:kube-controller-manager: a namespace being deleted is emptied
//! (ConfigMaps, Secrets, pods — a gracefully terminating pod holds it)
//! and only then removed; a namespace removed at once loses its leftovers.

mod support;

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client, DeleteParams, ListParams};
use capstan_controller_manager::Config;
use capstan_proto::api::core::v1::{ConfigMap, Namespace, NamespaceSpec, Pod, Secret};
use capstan_proto::api::meta::v1::ObjectMeta;
use support::*;

fn meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: name.into(),
        ..Default::default()
    })
}

async fn fill(client: &Client, ns: &str, bound: bool) {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for i in 0..3 {
        maps.create(&ConfigMap {
            metadata: meta(&format!("cm-{i}")),
            ..Default::default()
        })
        .await
        .expect("configmap");
    }
    secrets
        .create(&Secret {
            metadata: meta("s"),
            ..Default::default()
        })
        .await
        .expect("secret");
    let mut spec = template("x", "web:1").spec.unwrap();
    pods.create(&Pod {
        metadata: meta("free"),
        spec: Some(spec.clone()),
        status: None,
    })
    .await
    .expect("pod");
    if bound {
        spec.node_name = "n1".into();
        pods.create(&Pod {
            metadata: meta("bound"),
            spec: Some(spec),
            status: None,
        })
        .await
        .expect("bound pod");
    }
}

async fn empty(client: &Client, ns: &str) -> bool {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default();
    maps.list(&lp).await.is_ok_and(|l| l.items.is_empty())
        && secrets.list(&lp).await.is_ok_and(|l| l.items.is_empty())
        && pods.list(&lp).await.is_ok_and(|l| l.items.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_is_emptied_then_removed() {
    let server = TestServer::start().await;
    let client = admin(&server);
    let cm = start(Config::new(cm_kubeconfig(&server)), only(&["namespace"]));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&Namespace {
            metadata: Some(ObjectMeta {
                name: "team-a".into(),
                finalizers: vec!["kubernetes".into()],
                ..Default::default()
            }),
            spec: Some(NamespaceSpec {
                finalizers: vec!["kubernetes".into()],
            }),
            status: None,
        })
        .await
        .unwrap();
    fill(&client, "team-a", true).await;
    let marked = namespaces
        .delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    assert!(!marked.removed, "held by its finalizer");

    // Everything but the gracefully terminating pod goes; the namespace
    // stays, Terminating, saying what remains.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team-a");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    let ns = eventually("team-a emptied but for the bound pod", || async {
        let cms = maps.list(&ListParams::default()).await.ok()?.items;
        let left = pods.list(&ListParams::default()).await.ok()?.items;
        let ns = namespaces.get("team-a").await.ok()?;
        let reported = ns.status.as_ref().is_some_and(|s| {
            s.phase == "Terminating"
                && s.conditions
                    .iter()
                    .any(|c| c.r#type == "NamespaceContentRemaining" && c.status == "True")
        });
        (cms.is_empty() && left.len() == 1 && reported).then_some(ns)
    })
    .await;
    let remaining = &ns.status.unwrap().conditions;
    assert!(
        remaining.iter().any(|c| c.message.contains("pods: 1")),
        "{remaining:?}"
    );
    // The kubelet finishes the pod: then the namespace goes.
    pods.delete(
        "bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually("team-a removed", || async {
        namespaces
            .get_opt("team-a")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(empty(&client, "team-a").await);

    // Without its finalizer (cleared by hand) the apiserver removes a
    // namespace at once; its content follows.
    let mut created = namespaces
        .create(&Namespace {
            metadata: meta("team-b"),
            spec: None,
            status: None,
        })
        .await
        .unwrap();
    fill(&client, "team-b", false).await;
    created.spec.as_mut().unwrap().finalizers.clear();
    namespaces.update(&created).await.unwrap();
    let removed = namespaces
        .delete("team-b", &DeleteParams::default())
        .await
        .unwrap();
    assert!(removed.removed);
    eventually("team-b's leftovers deleted", || async {
        empty(&client, "team-b").await.then_some(())
    })
    .await;
    cm.stop().await;
}

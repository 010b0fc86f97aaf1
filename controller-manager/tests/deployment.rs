//! The Deployment controller (with the ReplicaSet controller) against an
//! in-process apiserver, as system:kube-controller-manager. No kubelet
//! runs: the tests mark pods Ready as a kubelet would, one at a time, and
//! check the rollout's promises at every step.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use capstan_apiserver::testing::TestServer;
use capstan_client::Api;
use capstan_controller_manager::Config;
use capstan_proto::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment,
};
use capstan_proto::api::core::v1::Pod;
use capstan_proto::api::meta::v1::{LabelSelector, ObjectMeta};
use capstan_proto::intstr::IntOrString;
use support::*;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn deployment(name: &str, replicas: i32, image: &str, strategy: DeploymentStrategy) -> Deployment {
    Deployment {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: Some(LabelSelector {
                match_labels: [("app".to_owned(), name.to_owned())].into(),
                ..Default::default()
            }),
            template: Some(template(name, image)),
            strategy: Some(strategy),
            ..Default::default()
        }),
        status: None,
    }
}

fn rolling(surge: i32, unavailable: i32) -> DeploymentStrategy {
    DeploymentStrategy {
        r#type: "RollingUpdate".into(),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(surge)),
            max_unavailable: Some(IntOrString::Int(unavailable)),
        }),
    }
}

struct Env {
    _server: TestServer,
    cm: Running,
    deployments: Api<Deployment>,
    sets: Api<ReplicaSet>,
    pods: Api<Pod>,
}

async fn env() -> Env {
    let server = TestServer::start().await;
    let cm = start(
        Config::new(cm_kubeconfig(&server)),
        only(&["deployment", "replicaset"]),
    );
    let client = admin(&server);
    Env {
        deployments: Api::namespaced(client.clone(), "default"),
        sets: Api::namespaced(client.clone(), "default"),
        pods: Api::namespaced(client, "default"),
        _server: server,
        cm,
    }
}

fn image(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0].image.clone()
}

fn annotation(rs: &ReplicaSet, key: &str) -> String {
    rs.metadata
        .as_ref()
        .unwrap()
        .annotations
        .get(key)
        .cloned()
        .unwrap_or_default()
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().unwrap().replicas.unwrap_or(0)
}

async fn sets_of(e: &Env) -> BTreeMap<String, ReplicaSet> {
    e.sets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|rs| (rs.metadata.as_ref().unwrap().name.clone(), rs))
        .collect()
}

/// Marks pods ready one per step until every live pod of `app` runs
/// `image_now` and is ready (and there are `replicas`), calling `check`
/// with the live pods at every step.
async fn roll(e: &Env, app: &str, replicas: usize, image_now: &str, mut check: impl FnMut(&[Pod])) {
    let start = std::time::Instant::now();
    loop {
        let live = live_pods(&e.pods, app).await;
        check(&live);
        if live.len() == replicas && live.iter().all(|p| ready(p) && image(p) == image_now) {
            return;
        }
        if let Some(p) = live.iter().find(|p| !ready(p)) {
            mark_ready(&e.pods, p).await;
        }
        assert!(
            start.elapsed() < WAIT,
            "rollout to {image_now} did not finish in {WAIT:?}; pods: {:?}",
            live.iter()
                .map(|p| (name(p), image(p), ready(p)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_complete(e: &Env, name: &str, replicas: i32) {
    eventually("the rollout complete (NewReplicaSetAvailable)", || async {
        let d = e.deployments.get(name).await.ok()?;
        let s = d.status?;
        let progressing = s.conditions.iter().find(|c| c.r#type == "Progressing")?;
        let available = s.conditions.iter().find(|c| c.r#type == "Available")?;
        (s.updated_replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && progressing.reason == "NewReplicaSetAvailable"
            && available.status == "True"
            && s.observed_generation == d.metadata.as_ref()?.generation)
            .then_some(())
    })
    .await;
}

async fn set_image(e: &Env, name: &str, image: &str) {
    for _ in 0..10 {
        let mut d = e.deployments.get(name).await.unwrap();
        d.spec
            .as_mut()
            .unwrap()
            .template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = image.into();
        match e.deployments.update(&d).await {
            Ok(_) => return,
            Err(err) if err.is_conflict() => continue,
            Err(err) => panic!("updating the deployment: {err}"),
        }
    }
    panic!("too many conflicts updating the deployment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_respects_surge_and_unavailability_then_rolls_back() {
    let e = env().await;
    e.deployments
        .create(&deployment("web", 4, "web:1", rolling(1, 1)))
        .await
        .unwrap();
    roll(&e, "web", 4, "web:1", |_| {}).await;
    wait_complete(&e, "web", 4).await;
    let first = sets_of(&e).await;
    assert_eq!(first.len(), 1);
    let (v1_name, v1) = first.iter().next().unwrap();
    let hash = v1.metadata.as_ref().unwrap().labels["pod-template-hash"].clone();
    assert_eq!(*v1_name, format!("web-{hash}"));
    assert_eq!(annotation(v1, REVISION), "1");
    assert_eq!(
        annotation(v1, "deployment.kubernetes.io/desired-replicas"),
        "4"
    );
    assert_eq!(annotation(v1, "deployment.kubernetes.io/max-replicas"), "5");

    // Roll to web:2: never more than 4+1 pods, never fewer than 4-1 ready.
    set_image(&e, "web", "web:2").await;
    let (mut max_pods, mut min_ready) = (0usize, usize::MAX);
    roll(&e, "web", 4, "web:2", |live| {
        let n_ready = live.iter().filter(|p| ready(p)).count();
        max_pods = max_pods.max(live.len());
        min_ready = min_ready.min(n_ready);
        assert!(live.len() <= 5, "surge exceeded: {} pods", live.len());
        assert!(
            n_ready >= 3,
            "availability below replicas - maxUnavailable: {n_ready} ready"
        );
    })
    .await;
    wait_complete(&e, "web", 4).await;
    assert_eq!(max_pods, 5, "the rollout used its surge");
    assert!(min_ready >= 3);
    let second = sets_of(&e).await;
    assert_eq!(second.len(), 2);
    assert_eq!(rs_replicas(&second[v1_name]), 0);
    let v2_name = second.keys().find(|n| *n != v1_name).unwrap().clone();
    assert_eq!(annotation(&second[&v2_name], REVISION), "2");
    let d = e.deployments.get("web").await.unwrap();
    assert_eq!(d.metadata.as_ref().unwrap().annotations[REVISION], "2");

    // Rollback as kubectl does it: the old set's template (without the
    // hash label) copied into the Deployment reuses that set.
    let mut old_template = v1.spec.as_ref().unwrap().template.clone().unwrap();
    old_template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .remove("pod-template-hash");
    let mut d = e.deployments.get("web").await.unwrap();
    d.spec.as_mut().unwrap().template = Some(old_template);
    // A user's edit: unconditional, so a status write racing it is no
    // Conflict (the apiserver keeps the status of a spec update).
    d.metadata.as_mut().unwrap().resource_version.clear();
    e.deployments.update(&d).await.unwrap();
    roll(&e, "web", 4, "web:1", |live| {
        assert!(live.len() <= 5);
        assert!(live.iter().filter(|p| ready(p)).count() >= 3);
    })
    .await;
    let third = eventually("the old set back at 4 with revision 3", || async {
        let sets = sets_of(&e).await;
        let v1 = sets.get(v1_name)?;
        (rs_replicas(v1) == 4
            && annotation(v1, REVISION) == "3"
            && rs_replicas(&sets[&v2_name]) == 0)
            .then_some(sets)
    })
    .await;
    assert_eq!(
        third.len(),
        2,
        "no new ReplicaSet for a template seen before"
    );
    assert_eq!(
        annotation(&third[v1_name], "deployment.kubernetes.io/revision-history"),
        "1"
    );
    let events: Api<capstan_proto::api::core::v1::Event> =
        Api::namespaced(e.pods.client().clone(), "default");
    let wanted = format!("Scaled down replica set {v2_name} to 0");
    eventually("ScalingReplicaSet events on the Deployment", || async {
        let list = events.list(&Default::default()).await.ok()?.items;
        list.iter()
            .any(|ev| {
                ev.reason == "ScalingReplicaSet"
                    && ev.message == wanted
                    && ev
                        .involved_object
                        .as_ref()
                        .is_some_and(|o| o.kind == "Deployment" && o.name == "web")
            })
            .then_some(())
    })
    .await;
    e.cm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_the_rollout_but_not_scaling() {
    let e = env().await;
    e.deployments
        .create(&deployment("paused", 2, "web:1", rolling(1, 0)))
        .await
        .unwrap();
    roll(&e, "paused", 2, "web:1", |_| {}).await;
    wait_complete(&e, "paused", 2).await;

    let mut d = e.deployments.get("paused").await.unwrap();
    d.spec.as_mut().unwrap().paused = Some(true);
    // A user's edit: unconditional, so a status write racing it is no
    // Conflict (the apiserver keeps the status of a spec update).
    d.metadata.as_mut().unwrap().resource_version.clear();
    e.deployments.update(&d).await.unwrap();
    eventually("Progressing DeploymentPaused", || async {
        let s = e.deployments.get("paused").await.ok()?.status?;
        s.conditions
            .iter()
            .any(|c| c.r#type == "Progressing" && c.reason == "DeploymentPaused")
            .then_some(())
    })
    .await;
    set_image(&e, "paused", "web:2").await;
    let mut d = e.deployments.get("paused").await.unwrap();
    d.spec.as_mut().unwrap().replicas = Some(3);
    // A user's edit: unconditional, so a status write racing it is no
    // Conflict (the apiserver keeps the status of a spec update).
    d.metadata.as_mut().unwrap().resource_version.clear();
    e.deployments.update(&d).await.unwrap();
    let live = eventually("scaled to 3 while paused", || async {
        let live = live_pods(&e.pods, "paused").await;
        (live.len() == 3).then_some(live)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sets_of(&e).await.len(), 1, "no new ReplicaSet while paused");
    assert!(live.iter().all(|p| image(p) == "web:1"));

    let mut d = e.deployments.get("paused").await.unwrap();
    d.spec.as_mut().unwrap().paused = Some(false);
    // A user's edit: unconditional, so a status write racing it is no
    // Conflict (the apiserver keeps the status of a spec update).
    d.metadata.as_mut().unwrap().resource_version.clear();
    e.deployments.update(&d).await.unwrap();
    roll(&e, "paused", 3, "web:2", |live| assert!(live.len() <= 4)).await;
    wait_complete(&e, "paused", 3).await;
    e.cm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_removes_old_pods_before_new_ones_and_history_is_pruned() {
    let e = env().await;
    let mut d = deployment(
        "batch",
        2,
        "job:1",
        DeploymentStrategy {
            r#type: "Recreate".into(),
            rolling_update: None,
        },
    );
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    e.deployments.create(&d).await.unwrap();
    roll(&e, "batch", 2, "job:1", |_| {}).await;
    wait_complete(&e, "batch", 2).await;
    for version in ["job:2", "job:3", "job:4"] {
        set_image(&e, "batch", version).await;
        roll(&e, "batch", 2, version, |live| {
            let new = live.iter().filter(|p| image(p) == version).count();
            let old = live.len() - new;
            assert!(
                new == 0 || old == 0,
                "Recreate ran {old} old and {new} new pods at once"
            );
        })
        .await;
        wait_complete(&e, "batch", 2).await;
    }
    let sets = eventually("history pruned to 1 old set", || async {
        let sets = sets_of(&e).await;
        (sets.len() == 2).then_some(sets)
    })
    .await;
    let mut revisions: Vec<String> = sets.values().map(|rs| annotation(rs, REVISION)).collect();
    revisions.sort();
    assert_eq!(revisions, ["3", "4"]);
    e.cm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_at_rolls_and_a_stuck_rollout_exceeds_its_deadline() {
    let e = env().await;
    let mut d = deployment("api", 2, "api:1", rolling(1, 0));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
    e.deployments.create(&d).await.unwrap();
    roll(&e, "api", 2, "api:1", |_| {}).await;
    wait_complete(&e, "api", 2).await;
    let before: Vec<String> = live_pods(&e.pods, "api").await.iter().map(name).collect();

    // `kubectl rollout restart`: a template annotation is a new template.
    let mut d = e.deployments.get("api").await.unwrap();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .metadata
        .as_mut()
        .unwrap()
        .annotations
        .insert(
            "kubectl.kubernetes.io/restartedAt".into(),
            "2026-11-27T20:00:00Z".into(),
        );
    // A user's edit: unconditional, so a status write racing it is no
    // Conflict (the apiserver keeps the status of a spec update).
    d.metadata.as_mut().unwrap().resource_version.clear();
    e.deployments.update(&d).await.unwrap();
    eventually("every pod replaced", || async {
        let live = live_pods(&e.pods, "api").await;
        assert!(live.len() <= 3, "surge exceeded");
        for p in live.iter().filter(|p| !ready(p)) {
            mark_ready(&e.pods, p).await;
        }
        (live.len() == 2 && live.iter().all(|p| ready(p) && !before.contains(&name(p))))
            .then_some(())
    })
    .await;
    wait_complete(&e, "api", 2).await;
    assert_eq!(sets_of(&e).await.len(), 2);

    // A rollout whose pods never become ready times out.
    set_image(&e, "api", "api:broken").await;
    eventually("Progressing False ProgressDeadlineExceeded", || async {
        let s = e.deployments.get("api").await.ok()?.status?;
        s.conditions
            .iter()
            .any(|c| {
                c.r#type == "Progressing"
                    && c.status == "False"
                    && c.reason == "ProgressDeadlineExceeded"
            })
            .then_some(())
    })
    .await;
    // maxUnavailable 0: the old pods all stay.
    let live = live_pods(&e.pods, "api").await;
    assert_eq!(live.iter().filter(|p| ready(p)).count(), 2);
    e.cm.stop().await;
}

//! capctl's workload commands against an in-process apiserver (no
//! controllers run, so each test plays the controller itself as the
//! admin: it writes Deployment status for `rollout status`, and creates
//! the ReplicaSets with revision annotations for `rollout history|undo`):
//! `create deployment`, `set image`, `rollout …`, `logs` (through a fake
//! kubelet on loopback), and the `get` tables for pods, deployments,
//! replica sets and nodes.

mod support;

use capstan_client::Api;
use capstan_proto::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use serde_json::Value;
use support::{Ctl, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_deployment_and_set_image() {
    let ctl = Ctl::start().await;

    // --dry-run=client prints kubectl's object and stores nothing.
    let dry = ctl
        .ok(&[
            "create",
            "deployment",
            "web",
            "--image",
            "registry.local/nginx:1.25",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .await;
    let doc: Value = serde_yaml_ng::from_str(&dry).unwrap();
    assert_eq!(doc["apiVersion"], "apps/v1");
    assert_eq!(doc["kind"], "Deployment");
    assert_eq!(doc["metadata"]["labels"]["app"], "web");
    assert_eq!(doc["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(doc["spec"]["replicas"], 1);
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"][0]["name"],
        "nginx"
    );
    assert_eq!(ctl.ok(&["get", "deploy", "-o", "name"]).await, "");
    assert_eq!(
        ctl.ok(&["create", "deploy", "web", "--image=nginx:1.25", "--dry-run"])
            .await,
        "deployment.apps/web created (dry run)\n"
    );

    // Created: two images, replicas, a port on the first, a command in each.
    assert_eq!(
        ctl.ok(&[
            "create",
            "deployment",
            "web",
            "--image",
            "nginx:1.25",
            "--image",
            "busybox",
            "--replicas",
            "4",
            "--port",
            "8080",
            "--",
            "sleep",
            "3600",
        ])
        .await,
        "deployment.apps/web created\n"
    );
    let d = json(&ctl.ok(&["get", "deployment", "web", "-o", "json"]).await);
    assert_eq!(d["spec"]["replicas"], 4);
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["name"], "nginx");
    assert_eq!(containers[0]["image"], "nginx:1.25");
    assert_eq!(containers[0]["ports"][0]["containerPort"], 8080);
    assert_eq!(containers[1]["name"], "busybox");
    assert_eq!(
        containers[1]["command"],
        serde_json::json!(["sleep", "3600"])
    );
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "web");
    let stderr = ctl
        .fails(&["create", "deployment", "web", "--image", "nginx"], 1)
        .await;
    assert!(stderr.contains("AlreadyExists"), "{stderr}");
    ctl.fails(&["create", "deployment", "x"], 64).await;

    // set image: one container, then every container; a missing one is an error.
    assert_eq!(
        ctl.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"])
            .await,
        "deployment.apps/web image updated\n"
    );
    let images = ctl
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].image}",
        ])
        .await;
    assert_eq!(images, "nginx:1.26 busybox");
    let stderr = ctl
        .fails(&["set", "image", "deploy/web", "nope=x:1"], 1)
        .await;
    assert!(
        stderr.contains("unable to find container named \"nope\""),
        "{stderr}"
    );
    ctl.ok(&["set", "image", "deploy", "web", "*=alpine:3"])
        .await;
    let images = ctl
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].image}",
        ])
        .await;
    assert_eq!(images, "alpine:3 alpine:3");
    // A pod's own containers.
    ctl.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: solo}\nspec:\n  containers:\n  - {name: app, image: busybox:1}\n",
    )
    .await;
    assert_eq!(
        ctl.ok(&["set", "image", "pod/solo", "app=busybox:2"]).await,
        "pod/solo image updated\n"
    );
    assert_eq!(
        ctl.ok(&[
            "get",
            "pod",
            "solo",
            "-o",
            "jsonpath={.spec.containers[0].image}"
        ])
        .await,
        "busybox:2"
    );
    ctl.fails(&["set", "image", "configmap/x", "a=b"], 64).await;

    // Completion: pods after `logs`, deployment/NAME after `rollout status`.
    let script = ctl.server.dir().join("capctl.bash");
    std::fs::write(&script, ctl.ok(&["completion", "bash"]).await).unwrap();
    let complete = |words: &'static str| {
        let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_capctl"))
            .parent()
            .unwrap()
            .to_owned();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                "source \"$1\" && COMP_WORDS=({words}) && COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)) && _capctl && echo \"${{COMPREPLY[@]}}\""
            ))
            .arg("bash")
            .arg(&script)
            .env("PATH", path)
            .env("KUBECONFIG", &ctl.kubeconfig)
            .current_dir(ctl.server.dir());
        tokio::task::spawn_blocking(move || {
            let out = cmd.output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
    };
    assert_eq!(complete("capctl logs so").await.unwrap(), "solo");
    assert_eq!(
        complete("capctl rollout status dep").await.unwrap(),
        "deployment/web"
    );
    assert_eq!(complete("capctl rollout und").await.unwrap(), "undo");
}

/// Writes the deployment's status as the controller would.
async fn set_status(api: &Api<Deployment>, f: impl FnOnce(&mut DeploymentStatus, i64)) {
    let mut d = api.get("web").await.unwrap();
    let generation = d.metadata.as_ref().unwrap().generation.unwrap_or(1);
    let mut status = d.status.clone().unwrap_or_default();
    f(&mut status, generation);
    d.status = Some(status);
    api.update_status(&d).await.unwrap();
}

fn counts(s: &mut DeploymentStatus, generation: i64, replicas: i32, updated: i32, available: i32) {
    s.observed_generation = Some(generation);
    s.replicas = Some(replicas);
    s.updated_replicas = Some(updated);
    s.ready_replicas = Some(available);
    s.available_replicas = Some(available);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_follows_the_deployment() {
    let ctl = Ctl::start().await;
    let api: Api<Deployment> = Api::namespaced(ctl.client(), "default");
    ctl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=4",
    ])
    .await;

    // Usage and lookup errors.
    ctl.fails(&["rollout", "status", "pod/web"], 64).await;
    let stderr = ctl.fails(&["rollout", "status", "deploy/nope"], 1).await;
    assert!(
        stderr.contains("NotFound") && stderr.contains("deployments.apps \"nope\" not found"),
        "{stderr}"
    );

    // Not observed yet; --watch=false prints the state once.
    assert_eq!(
        ctl.ok(&["rollout", "status", "deployment/web", "--watch=false"])
            .await,
        "Waiting for deployment spec update to be observed...\n"
    );
    let stderr = ctl
        .fails(&["rollout", "status", "deployment/web", "--timeout=1s"], 1)
        .await;
    assert!(
        stderr.contains("timed out waiting for the condition"),
        "{stderr}"
    );

    // Progress lines as the (simulated) controller rolls.
    set_status(&api, |s, g| counts(s, g, 5, 1, 4)).await;
    let mut status = ctl.spawn(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert_eq!(
        status.next_line().await.unwrap(),
        "Waiting for deployment \"web\" rollout to finish: 1 out of 4 new replicas have been updated..."
    );
    set_status(&api, |s, g| counts(s, g, 5, 4, 4)).await;
    assert_eq!(
        status.next_line().await.unwrap(),
        "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination..."
    );
    set_status(&api, |s, g| counts(s, g, 4, 4, 3)).await;
    assert_eq!(
        status.next_line().await.unwrap(),
        "Waiting for deployment \"web\" rollout to finish: 3 of 4 updated replicas are available..."
    );
    set_status(&api, |s, g| counts(s, g, 4, 4, 4)).await;
    assert_eq!(
        status.next_line().await.unwrap(),
        "deployment \"web\" successfully rolled out"
    );
    assert_eq!(status.exit_code().await, 0);
    assert_eq!(
        ctl.ok(&["rollout", "status", "deploy", "web"]).await,
        "deployment \"web\" successfully rolled out\n"
    );

    // A new template: waiting again until observed, then the deadline passes.
    ctl.ok(&["set", "image", "deploy/web", "nginx=nginx:2"])
        .await;
    let mut status = ctl.spawn(&["rollout", "status", "deployment/web"]);
    assert_eq!(
        status.next_line().await.unwrap(),
        "Waiting for deployment spec update to be observed..."
    );
    set_status(&api, |s, g| {
        counts(s, g, 5, 1, 4);
        s.conditions = vec![DeploymentCondition {
            r#type: "Progressing".into(),
            status: "False".into(),
            reason: "ProgressDeadlineExceeded".into(),
            message: "ReplicaSet \"web-2\" has timed out progressing.".into(),
            ..Default::default()
        }];
    })
    .await;
    assert_eq!(status.next_line().await, None);
    assert_eq!(status.exit_code().await, 1);
    let stderr = ctl.fails(&["rollout", "status", "deployment/web"], 1).await;
    assert!(
        stderr.contains("deployment \"web\" exceeded its progress deadline"),
        "{stderr}"
    );

    // Deleted while watched: an error.
    set_status(&api, |s, g| {
        counts(s, g, 4, 1, 4);
        s.conditions.clear();
    })
    .await;
    let mut status = ctl.spawn(&["rollout", "status", "deployment/web"]);
    assert!(status.next_line().await.unwrap().contains("1 out of 4"));
    ctl.ok(&["delete", "deploy", "web"]).await;
    assert_eq!(status.next_line().await, None);
    assert_eq!(status.exit_code().await, 1);
}

/// A ReplicaSet of deployment `uid` at `revision` running `image`.
fn replica_set(uid: &str, revision: u32, image: &str, cause: Option<&str>) -> String {
    let cause = cause
        .map(|c| format!("    kubernetes.io/change-cause: \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web-{revision}\n  labels: {{app: web, pod-template-hash: h{revision}}}\n  annotations:\n    deployment.kubernetes.io/revision: \"{revision}\"\n{cause}\
         \x20 ownerReferences:\n  - {{apiVersion: apps/v1, kind: Deployment, name: web, uid: {uid}, controller: true}}\n\
         spec:\n  replicas: 0\n  selector:\n    matchLabels: {{app: web, pod-template-hash: h{revision}}}\n  template:\n    metadata:\n      labels: {{app: web, pod-template-hash: h{revision}}}\n    spec:\n      containers:\n      - {{name: nginx, image: \"{image}\"}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_history_undo_pause_resume_restart() {
    let ctl = Ctl::start().await;
    ctl.ok(&["create", "deployment", "web", "--image=nginx:3"])
        .await;
    let stderr = ctl.fails(&["rollout", "undo", "deploy/web"], 1).await;
    assert!(stderr.contains("no rollout history found"), "{stderr}");
    assert_eq!(
        ctl.ok(&["rollout", "history", "deploy/web"]).await,
        "No rollout history found in deployment.apps/web.\n"
    );
    let uid = ctl
        .ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"])
        .await;
    ctl.apply(&replica_set(&uid, 1, "nginx:1", Some("first release")))
        .await;
    ctl.apply(&replica_set(&uid, 2, "nginx:2", None)).await;
    ctl.apply(&replica_set(&uid, 3, "nginx:3", None)).await;
    // Another owner's ReplicaSet is not part of this history.
    ctl.apply(&replica_set("someone-else", 7, "nginx:7", None).replace("web-7", "other-7"))
        .await;

    assert_eq!(
        ctl.ok(&["rollout", "history", "deployment/web"]).await,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         first release\n2         <none>\n3         <none>\n\n"
    );
    let one = ctl
        .ok(&["rollout", "history", "deployment/web", "--revision=1"])
        .await;
    assert!(
        one.starts_with("deployment.apps/web with revision #1\nPod Template:\n")
            && one.contains("image: nginx:1"),
        "{one}"
    );
    let stderr = ctl
        .fails(&["rollout", "history", "deployment/web", "--revision=9"], 1)
        .await;
    assert!(stderr.contains("revision 9"), "{stderr}");

    // undo: to the previous revision (2), the hash label left out.
    assert_eq!(
        ctl.ok(&["rollout", "undo", "deployment/web"]).await,
        "deployment.apps/web rolled back\n"
    );
    let d = json(&ctl.ok(&["get", "deploy", "web", "-o", "json"]).await);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert!(
        d["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none(),
        "{d}"
    );
    // --to-revision: the change cause comes along; the revision annotation does not.
    assert_eq!(
        ctl.ok(&["rollout", "undo", "deploy/web", "--to-revision=1"])
            .await,
        "deployment.apps/web rolled back\n"
    );
    let d = json(&ctl.ok(&["get", "deploy", "web", "-o", "json"]).await);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );
    assert_eq!(
        d["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "first release"
    );
    assert!(
        d["metadata"]["annotations"]
            .get("deployment.kubernetes.io/revision")
            .is_none()
    );
    assert_eq!(
        ctl.ok(&["rollout", "undo", "deploy/web", "--to-revision=1"])
            .await,
        "deployment.apps/web skipped rollback (current template already matches revision 1)\n"
    );
    // describe: kubectl's layout, the matching ReplicaSet as the new one.
    let described = ctl.ok(&["describe", "deployment", "web"]).await;
    for want in [
        "Name:                   web\n",
        "Replicas:               1 desired | 0 updated | 0 total | 0 available | 0 unavailable\n",
        "StrategyType:           RollingUpdate\n",
        "    Image:        nginx:1\n",
        "OldReplicaSets:  <none>\n",
        "NewReplicaSet:   web-1 (0/0 replicas created)\n",
        "Events:",
    ] {
        assert!(
            described.contains(want),
            "{want:?} missing in:\n{described}"
        );
    }
    let stderr = ctl
        .fails(&["rollout", "undo", "deploy/web", "--to-revision=5"], 1)
        .await;
    assert!(
        stderr.contains("unable to find specified revision 5 in history"),
        "{stderr}"
    );

    // pause / resume, idempotently; a paused deployment is not rolled back or restarted.
    assert_eq!(
        ctl.ok(&["rollout", "pause", "deployment/web"]).await,
        "deployment.apps/web paused\n"
    );
    assert_eq!(
        ctl.ok(&["rollout", "pause", "deployment/web"]).await,
        "deployment.apps/web already paused\n"
    );
    assert_eq!(
        ctl.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.paused}"])
            .await,
        "true"
    );
    let stderr = ctl.fails(&["rollout", "undo", "deploy/web"], 1).await;
    assert!(
        stderr.contains("cannot rollback a paused deployment"),
        "{stderr}"
    );
    let stderr = ctl.fails(&["rollout", "restart", "deploy/web"], 1).await;
    assert!(
        stderr.contains("can't restart paused deployment"),
        "{stderr}"
    );
    assert_eq!(
        ctl.ok(&["rollout", "resume", "deployment/web"]).await,
        "deployment.apps/web resumed\n"
    );
    assert_eq!(
        ctl.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.paused}"])
            .await,
        "false"
    );

    // restart: a template annotation with the time, RFC 3339.
    let before = ctl
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .await;
    assert_eq!(
        ctl.ok(&["rollout", "restart", "deployment/web"]).await,
        "deployment.apps/web restarted\n"
    );
    let d = json(&ctl.ok(&["get", "deploy", "web", "-o", "json"]).await);
    let at = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap_or_else(|| panic!("no restartedAt: {d}"));
    let at =
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    assert!((time::OffsetDateTime::now_utc() - at).whole_seconds().abs() < 60);
    assert_ne!(d["metadata"]["generation"].to_string(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_tables_for_workloads() {
    let ctl = Ctl::start().await;
    ctl.apply(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {node-role.kubernetes.io/control-plane: \"\"}\n",
    )
    .await;
    let client = ctl.client();
    // Node status as a kubelet would post it.
    let nodes: Api<capstan_proto::api::core::v1::Node> = Api::all(client.clone());
    let mut node = nodes.get("n1").await.unwrap();
    node.status = Some(
        serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "nodeInfo": {"kubeletVersion": "v0.1.0", "osImage": "Linux", "kernelVersion": "6.1",
                         "containerRuntimeVersion": "process://0.1"}
        }))
        .unwrap(),
    );
    nodes.update_status(&node).await.unwrap();
    let table = ctl.ok(&["get", "nodes"]).await;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(lines[1][..3], ["n1", "Ready", "control-plane"]);
    assert_eq!(lines[1][4], "v0.1.0");
    let wide = ctl.ok(&["get", "nodes", "-o", "wide"]).await;
    let header = wide.lines().next().unwrap();
    assert!(
        header.ends_with(
            "VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE   KERNEL-VERSION   CONTAINER-RUNTIME"
        ),
        "{wide}"
    );
    assert!(wide.contains("127.0.0.1"), "{wide}");

    // Pods: a crash-looping one bound to n1, a pending one.
    ctl.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: crash}\nspec:\n  nodeName: n1\n  containers:\n  - {name: a, image: busybox}\n  - {name: b, image: busybox}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: waiting}\nspec:\n  containers:\n  - {name: a, image: busybox}\n",
    )
    .await;
    let pods: Api<capstan_proto::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    let mut crash = pods.get("crash").await.unwrap();
    crash.status = Some(
        serde_json::from_value(serde_json::json!({
            "phase": "Running", "podIP": "127.1.0.9",
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
        }))
        .unwrap(),
    );
    pods.update_status(&crash).await.unwrap();
    let table = ctl.ok(&["get", "pods"]).await;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(lines[1][..4], ["crash", "1/2", "CrashLoopBackOff", "3"]);
    assert_eq!(lines[2][..4], ["waiting", "0/1", "Pending", "0"]);
    let wide = ctl.ok(&["get", "pods", "-o", "wide"]).await;
    let header = wide.lines().next().unwrap();
    assert!(
        header.starts_with("NAME ")
            && header.ends_with("AGE   IP          NODE     NOMINATED NODE   READINESS GATES"),
        "{wide}"
    );
    let crash_line = wide.lines().nth(1).unwrap();
    assert!(
        crash_line.contains("127.1.0.9") && crash_line.contains(" n1 "),
        "{wide}"
    );

    // Deployments and replica sets, wide.
    ctl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
    ])
    .await;
    let wide = ctl.ok(&["get", "deploy", "-o", "wide"]).await;
    let lines: Vec<Vec<&str>> = wide
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(lines[1][..4], ["web", "0/2", "0", "0"]);
    assert_eq!(lines[1][5..], ["nginx", "nginx:1", "app=web"]);
    let uid = ctl
        .ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"])
        .await;
    ctl.apply(&replica_set(&uid, 1, "nginx:1", None)).await;
    let rs = ctl.ok(&["get", "rs"]).await;
    let lines: Vec<Vec<&str>> = rs.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(lines[1][..4], ["web-1", "0", "0", "0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_argument_handling() {
    let ctl = Ctl::start().await;
    ctl.fails(&["logs", "p", "--tail=-5"], 64).await;
    ctl.fails(&["logs", "p", "--limit-bytes=-1"], 64).await;
    let stderr = ctl.fails(&["logs", "missing"], 1).await;
    assert!(
        stderr.contains("NotFound") && stderr.contains("pods \"missing\" not found"),
        "{stderr}"
    );
    ctl.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: two, labels: {app: web}}\nspec:\n  containers:\n  - {name: web, image: nginx}\n  - {name: side, image: envoy}\n",
    )
    .await;
    let stderr = ctl.fails(&["logs", "two", "-c", "db"], 1).await;
    assert!(
        stderr.contains("container \"db\" is not valid for pod \"two\", choose one of: [web side]"),
        "{stderr}"
    );
    // Not bound to a node: the server says so; the defaulted container is named.
    let stderr = ctl.fails(&["logs", "pod/two"], 1).await;
    assert!(
        stderr.contains("Defaulted container \"web\" out of: web, side"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Error from server") && stderr.contains("not scheduled"),
        "{stderr}"
    );
    let stderr = ctl.fails(&["logs", "configmap/x"], 1).await;
    assert!(stderr.contains("NotFound"), "{stderr}");
    let stderr = ctl.fails(&["logs", "deployment/none"], 1).await;
    assert!(stderr.contains("not found"), "{stderr}");
    ctl.ok(&[
        "create",
        "deployment",
        "empty",
        "--image=nginx",
        "--replicas=0",
    ])
    .await;
    let stderr = ctl.fails(&["logs", "deploy/empty"], 1).await;
    assert!(
        stderr.contains("no pods found for deployment.apps/empty"),
        "{stderr}"
    );
}

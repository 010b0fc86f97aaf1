//! Helpers for the workload controllers' tests: a controller-manager run
//! in-process as system:kube-controller-manager, pods marked Ready as a
//! kubelet would, bounded waits.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client, ListParams};
use capstan_controller_manager::{Config, Controller};
use capstan_proto::api::core::v1::{
    Container, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::timestamp::Time;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Longest any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// A controller-manager running in this process.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Asks it to stop and waits (bounded).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let r = tokio::time::timeout(WAIT, t).await;
            assert!(r.is_ok(), "controller-manager did not stop within {WAIT:?}");
        }
    }

    /// Kills it without releasing the Lease, as a crash would.
    pub fn kill(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The controller-manager's kubeconfig.
pub fn cm_kubeconfig(server: &TestServer) -> PathBuf {
    server.kubeconfig("system:kube-controller-manager", None)
}

/// Starts `list` with `config`.
pub fn start(config: Config, list: Vec<Controller>) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(capstan_controller_manager::run_controllers(
        config,
        list,
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        stop: Some(tx),
        task: Some(task),
    }
}

/// Only the controllers named in `names`.
pub fn only(names: &[&str]) -> Vec<Controller> {
    capstan_controller_manager::controllers()
        .into_iter()
        .filter(|c| names.contains(&c.name))
        .collect()
}

/// The admin's client.
pub fn admin(server: &TestServer) -> Client {
    Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).expect("admin client")
}

/// A template with labels `app=<app>` and one container running `image`.
pub fn template(app: &str, image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: [("app".to_owned(), app.to_owned())].into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: image.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

/// Polls `check` every 50 ms until it returns `Some`, at most `WAIT`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The live (not being deleted) pods of `namespace` with label `app=<app>`.
pub async fn live_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| {
            p.metadata
                .as_ref()
                .is_some_and(|m| m.deletion_timestamp.is_none())
        })
        .collect()
}

/// Marks the pod Running and Ready, as its kubelet would.
pub async fn mark_ready(pods: &Api<Pod>, pod: &Pod) {
    let name = pod
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    for _ in 0..10 {
        let Ok(mut p) = pods.get(&name).await else {
            return;
        };
        p.status = Some(PodStatus {
            phase: "Running".into(),
            conditions: vec![PodCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time::now()),
                ..Default::default()
            }],
            ..Default::default()
        });
        match pods.update_status(&p).await {
            Ok(_) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) if e.is_not_found() => return,
            Err(e) => panic!("marking {name} ready: {e}"),
        }
    }
    panic!("marking {name} ready: too many conflicts");
}

/// Whether the pod is Ready.
pub fn ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

/// The pod's name.
pub fn name(pod: &Pod) -> String {
    pod.metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

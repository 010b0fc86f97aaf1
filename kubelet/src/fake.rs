//! An in-memory [`Runtime`] for tests: sandboxes get 10.88.0.N, containers
//! "run" until a test ends them with [`FakeRuntime::exit`], and every
//! call is recorded in order ([`FakeRuntime::calls`]) so tests can check
//! what the kubelet did and in which order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::runtime::{
    ContainerConfig, ContainerFilter, ContainerId, ContainerState, ContainerStatus, ExecResult,
    Image, Runtime, RuntimeCondition, RuntimeError, RuntimeVersion, SandboxConfig, SandboxId,
    SandboxState, SandboxStatus,
};

#[derive(Default)]
struct State {
    next: u32,
    sandboxes: BTreeMap<SandboxId, SandboxStatus>,
    containers: BTreeMap<ContainerId, ContainerStatus>,
    calls: Vec<String>,
}

/// The in-memory runtime.
pub struct FakeRuntime {
    state: Mutex<State>,
    images: BTreeSet<String>,
    limits_enforced: bool,
}

impl FakeRuntime {
    /// A runtime whose catalogue holds `images` (`name` or `name:tag`).
    pub fn new(images: &[&str]) -> Self {
        Self {
            state: Mutex::new(State::default()),
            images: images.iter().map(|s| s.to_string()).collect(),
            limits_enforced: true,
        }
    }

    /// Reports limits as not enforced (as a host without cgroups).
    pub fn without_limits(mut self) -> Self {
        self.limits_enforced = false;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far, e.g. `start_container web` or `stop_pod_sandbox p`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Ends the running container `name` of pod `pod` with `code`.
    pub fn exit(&self, pod: &str, name: &str, code: i32) -> bool {
        let mut s = self.lock();
        let Some(c) = s.containers.values_mut().find(|c| {
            c.metadata.name == name
                && c.labels.get(crate::labels::POD_NAME).map(String::as_str) == Some(pod)
                && c.state == ContainerState::Running
        }) else {
            return false;
        };
        finish(c, code);
        true
    }

    /// The log file of the newest attempt of container `name` of pod `pod`
    /// (the fake writes nothing there; tests do).
    pub fn log_path(&self, pod: &str, name: &str) -> Option<std::path::PathBuf> {
        self.lock()
            .containers
            .values()
            .filter(|c| {
                c.metadata.name == name
                    && c.labels.get(crate::labels::POD_NAME).map(String::as_str) == Some(pod)
            })
            .max_by_key(|c| c.metadata.attempt)
            .map(|c| c.log_path.clone())
    }

    /// How many containers are running now.
    pub fn running(&self) -> usize {
        self.lock()
            .containers
            .values()
            .filter(|c| c.state == ContainerState::Running)
            .count()
    }

    fn name_of(s: &State, id: &str) -> String {
        s.containers
            .get(id)
            .map(|c| c.metadata.name.clone())
            .or_else(|| s.sandboxes.get(id).map(|x| x.metadata.name.clone()))
            .unwrap_or_else(|| id.to_owned())
    }
}

fn finish(c: &mut ContainerStatus, code: i32) {
    c.state = ContainerState::Exited;
    c.exit_code = Some(code);
    c.finished_at = Some(SystemTime::now());
    c.reason = if code == 0 { "Completed" } else { "Error" }.into();
}

fn not_found(what: &str, id: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("{what} {id}"))
}

impl Runtime for FakeRuntime {
    fn version(&self) -> RuntimeVersion {
        RuntimeVersion {
            name: "fake".into(),
            version: "0".into(),
        }
    }

    fn status(&self) -> Vec<RuntimeCondition> {
        vec![
            RuntimeCondition {
                kind: "RuntimeReady".into(),
                status: true,
                reason: String::new(),
                message: String::new(),
            },
            RuntimeCondition {
                kind: "CgroupLimits".into(),
                status: self.limits_enforced,
                reason: if self.limits_enforced {
                    ""
                } else {
                    "CgroupsUnavailable"
                }
                .into(),
                message: if self.limits_enforced {
                    ""
                } else {
                    "no cgroups in the fake"
                }
                .into(),
            },
        ]
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<SandboxId, RuntimeError> {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("sb{}", s.next);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 88, 0, s.next as u8));
        s.calls
            .push(format!("run_pod_sandbox {}", config.metadata.name));
        s.sandboxes.insert(
            id.clone(),
            SandboxStatus {
                id: id.clone(),
                metadata: config.metadata.clone(),
                state: SandboxState::Ready,
                ip: Some(ip),
                created_at: SystemTime::now(),
                labels: config.labels.clone(),
                annotations: config.annotations.clone(),
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        let name = Self::name_of(&s, id);
        s.calls.push(format!("stop_pod_sandbox {name}"));
        for c in s.containers.values_mut() {
            if c.sandbox_id == id && c.state == ContainerState::Running {
                finish(c, 137);
            }
        }
        if let Some(sb) = s.sandboxes.get_mut(id) {
            sb.state = SandboxState::NotReady;
            sb.ip = None;
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        let name = Self::name_of(&s, id);
        s.calls.push(format!("remove_pod_sandbox {name}"));
        s.sandboxes.remove(id);
        s.containers.retain(|_, c| c.sandbox_id != id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus, RuntimeError> {
        self.lock()
            .sandboxes
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("sandbox", id))
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>, RuntimeError> {
        Ok(self.lock().sandboxes.values().cloned().collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &SandboxConfig,
    ) -> Result<ContainerId, RuntimeError> {
        let mut s = self.lock();
        if !s.sandboxes.contains_key(sandbox_id) {
            return Err(not_found("sandbox", sandbox_id));
        }
        s.next += 1;
        let id = format!("c{}", s.next);
        s.calls
            .push(format!("create_container {}", config.metadata.name));
        s.containers.insert(
            id.clone(),
            ContainerStatus {
                id: id.clone(),
                sandbox_id: sandbox_id.into(),
                metadata: config.metadata.clone(),
                state: ContainerState::Created,
                image: config.image.clone(),
                created_at: SystemTime::now(),
                started_at: None,
                finished_at: None,
                exit_code: None,
                reason: String::new(),
                message: if self.limits_enforced {
                    ""
                } else {
                    "no cgroups in the fake"
                }
                .into(),
                log_path: sandbox_config.log_directory.join(&config.log_path),
                limits_enforced: self.limits_enforced,
                labels: config.labels.clone(),
                annotations: config.annotations.clone(),
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        let name = Self::name_of(&s, id);
        s.calls.push(format!("start_container {name}"));
        let c = s
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        c.state = ContainerState::Running;
        c.started_at = Some(SystemTime::now());
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        let name = Self::name_of(&s, id);
        s.calls
            .push(format!("stop_container {name} {}s", timeout.as_secs()));
        if let Some(c) = s.containers.get_mut(id)
            && c.state == ContainerState::Running
        {
            finish(c, 143);
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        s.containers.remove(id);
        Ok(())
    }

    async fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        Ok(self
            .lock()
            .containers
            .values()
            .filter(|c| {
                filter
                    .sandbox_id
                    .as_ref()
                    .is_none_or(|s| *s == c.sandbox_id)
            })
            .cloned()
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        self.lock()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("container", id))
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        let _ = self.container_status(id).await?;
        let exit_code = if cmd.first().map(String::as_str) == Some("false") {
            1
        } else {
            0
        };
        Ok(ExecResult {
            exit_code,
            stdout: Vec::new(),
            stderr: Vec::new(),
        })
    }

    async fn pull_image(&self, image: &str) -> Result<String, RuntimeError> {
        if self.images.contains(image) {
            Ok(image.to_owned())
        } else {
            Err(RuntimeError::ImageNotFound {
                image: image.to_owned(),
                message: format!("{image:?} is not in the fake catalogue"),
            })
        }
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>, RuntimeError> {
        Ok(self.images.get(image).map(|i| Image {
            id: i.clone(),
            repo_tags: vec![i.clone()],
            size: 0,
        }))
    }

    async fn list_images(&self) -> Result<Vec<Image>, RuntimeError> {
        Ok(self
            .images
            .iter()
            .map(|i| Image {
                id: i.clone(),
                repo_tags: vec![i.clone()],
                size: 0,
            })
            .collect())
    }
}

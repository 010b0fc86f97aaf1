//! One pod's worker (Kubernetes's pod worker): reconciles what the runtime
//! runs with the pod's spec each time the pod changes, a container's
//! back-off ends, or the poll interval passes; writes the pod's status
//! when it changed; terminates the pod gracefully when it is deleted.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use capstan_client::{Api, Client, DeleteParams};
use capstan_proto::api::core::v1::{Container, Pod};
use capstan_proto::timestamp::Time;
use tokio::sync::watch;

use crate::backoff::{BackoffPolicy, CrashBackoff};
use crate::env::{PodFields, container_env, dns_env, expand_command};
use crate::labels;
use crate::probe::Prober;
use crate::runtime::{
    ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState, ContainerStatus,
    Resources, Runtime, RuntimeError, SandboxConfig, SandboxMetadata, SandboxState,
};
use crate::status::{self, Observed, Waiting};

/// How often a pod with live containers is re-checked (Kubernetes's PLEG
/// relist period).
pub const POLL: Duration = Duration::from_secs(1);

/// What every pod worker shares.
pub struct Context<R> {
    /// The runtime.
    pub runtime: Arc<R>,
    /// The apiserver connection.
    pub client: Client,
    /// This node.
    pub node_name: String,
    /// The node's IP (status.hostIP).
    pub node_ip: String,
    /// Pod logs go under `<log_root>/<ns>_<name>_<uid>/`.
    pub log_root: PathBuf,
    /// Crash-loop back-off.
    pub backoff: BackoffPolicy,
    /// Cluster DNS servers for ClusterFirst pods.
    pub cluster_dns: Vec<std::net::SocketAddr>,
    /// The cluster's DNS domain.
    pub cluster_domain: String,
}

/// The pod as the worker last heard of it; `None`: gone from the API.
pub type PodUpdate = Option<Arc<Pod>>;

/// One pod's worker state.
pub struct PodWorker<R> {
    ctx: Arc<Context<R>>,
    uid: String,
    sandbox: Option<(String, SandboxConfig)>,
    backoff: CrashBackoff,
    /// Failed pulls/starts by container: (failures, retry not before).
    retry: HashMap<String, (u32, Instant)>,
    waiting: HashMap<String, Waiting>,
    start_time: Option<Time>,
    /// The last status written and the resourceVersion it replaced: while
    /// the watch still shows that version, the write is not repeated.
    last_written: Option<(String, capstan_proto::api::core::v1::PodStatus)>,
    prober: Prober,
    probes: HashMap<String, (bool, bool)>,
}

enum Next {
    Done,
    After(Duration),
}

fn meta(pod: &Pod) -> capstan_proto::api::meta::v1::ObjectMeta {
    pod.metadata.clone().unwrap_or_default()
}

/// The pod's grace period for a deletion.
pub fn grace_period(pod: &Pod) -> Duration {
    let m = meta(pod);
    let secs = m
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64)
}

fn resources(c: &Container) -> Resources {
    let limits = c.resources.clone().unwrap_or_default().limits;
    Resources {
        cpu_millis: limits.get("cpu").map(|q| q.milli_value().max(0) as u64),
        memory_bytes: limits.get("memory").map(|q| q.value().max(0) as u64),
    }
}

fn has_limits(c: &Container) -> bool {
    let r = resources(c);
    r.cpu_millis.is_some() || r.memory_bytes.is_some()
}

impl<R: Runtime> PodWorker<R> {
    /// A worker for the pod with `uid`.
    pub fn new(ctx: Arc<Context<R>>, uid: String) -> Self {
        let backoff = CrashBackoff::new(ctx.backoff);
        Self {
            ctx,
            uid,
            sandbox: None,
            backoff,
            retry: HashMap::new(),
            waiting: HashMap::new(),
            start_time: None,
            last_written: None,
            prober: Prober::default(),
            probes: HashMap::new(),
        }
    }

    /// Runs until the pod is terminated and cleaned up, or the sender is
    /// dropped (kubelet shutdown: containers keep running for the next
    /// kubelet to adopt).
    pub async fn run(mut self, mut updates: watch::Receiver<PodUpdate>) {
        loop {
            let update = updates.borrow_and_update().clone();
            let next = match update {
                None => {
                    self.kill(None).await;
                    Next::Done
                }
                Some(pod) => match self.sync(&pod).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(pod = %meta(&pod).name, uid = %self.uid, "sync failed: {e:#}");
                        Next::After(POLL)
                    }
                },
            };
            let Next::After(wait) = next else { return };
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn sandbox_config(&self, pod: &Pod, attempt: u32) -> SandboxConfig {
        let m = meta(pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let labels = BTreeMap::from([
            (labels::POD_UID.to_owned(), m.uid.clone()),
            (labels::POD_NAME.to_owned(), m.name.clone()),
            (labels::POD_NAMESPACE.to_owned(), m.namespace.clone()),
        ]);
        let mut total = Resources::default();
        for c in &spec.containers {
            let r = resources(c);
            total.cpu_millis = r.cpu_millis.map(|v| v + total.cpu_millis.unwrap_or(0));
            total.memory_bytes = r.memory_bytes.map(|v| v + total.memory_bytes.unwrap_or(0));
        }
        SandboxConfig {
            metadata: SandboxMetadata {
                name: m.name.clone(),
                namespace: m.namespace.clone(),
                uid: m.uid.clone(),
                attempt,
            },
            hostname: if spec.hostname.is_empty() {
                m.name.clone()
            } else {
                spec.hostname
            },
            log_directory: self
                .ctx
                .log_root
                .join(format!("{}_{}_{}", m.namespace, m.name, m.uid)),
            labels,
            annotations: BTreeMap::new(),
            resources: total,
        }
    }

    /// Finds this pod's newest sandbox in the runtime (adoption after a
    /// kubelet restart), if any.
    async fn find_sandbox(&mut self, pod: &Pod) -> Result<(), RuntimeError> {
        if self.sandbox.is_some() {
            return Ok(());
        }
        let mut mine: Vec<_> = self
            .ctx
            .runtime
            .list_pod_sandboxes()
            .await?
            .into_iter()
            .filter(|s| s.labels.get(labels::POD_UID) == Some(&self.uid))
            .collect();
        mine.sort_by_key(|s| s.metadata.attempt);
        if let Some(s) = mine.pop() {
            self.sandbox = Some((s.id.clone(), self.sandbox_config(pod, s.metadata.attempt)));
        }
        Ok(())
    }

    async fn containers(&self) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let Some((id, _)) = &self.sandbox else {
            return Ok(Vec::new());
        };
        self.ctx
            .runtime
            .list_containers(&ContainerFilter {
                sandbox_id: Some(id.clone()),
            })
            .await
    }

    async fn sync(&mut self, pod: &Arc<Pod>) -> anyhow::Result<Next> {
        let m = meta(pod);
        self.find_sandbox(pod).await?;
        if m.deletion_timestamp.is_some() {
            self.kill(Some(pod)).await;
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &m.namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                precondition_uid: m.uid.clone(),
                ..Default::default()
            };
            match api.delete(&m.name, &params).await {
                Ok(_) => return Ok(Next::Done),
                Err(e) if e.is_not_found() => return Ok(Next::Done),
                Err(e) => anyhow::bail!("final delete of pod {}/{}: {e}", m.namespace, m.name),
            }
        }
        let old_phase = pod
            .status
            .as_ref()
            .map(|s| s.phase.as_str())
            .unwrap_or_default();
        let terminal = matches!(old_phase, "Succeeded" | "Failed");
        if terminal {
            // Containers stay stopped; the sandbox is released.
            if let Some((id, _)) = &self.sandbox {
                self.ctx.runtime.stop_pod_sandbox(id).await?;
            }
            return Ok(Next::After(Duration::from_secs(60)));
        }
        let ready = match &self.sandbox {
            Some((id, _)) => {
                self.ctx.runtime.pod_sandbox_status(id).await?.state == SandboxState::Ready
            }
            None => false,
        };
        if !ready {
            let attempt = self
                .sandbox
                .as_ref()
                .map_or(0, |(_, c)| c.metadata.attempt + 1);
            let config = self.sandbox_config(pod, attempt);
            let id = self.ctx.runtime.run_pod_sandbox(&config).await?;
            self.sandbox = Some((id, config));
            self.start_time.get_or_insert_with(Time::now);
        }
        self.start_time.get_or_insert_with(Time::now);
        let mut wake = self.start_containers(pod).await?;
        let mut containers = self.containers().await?;
        if let Some(next) = self.run_probes(pod, &containers).await? {
            wake = wake.min(next);
            containers = self.containers().await?;
        }
        let status = self.write_status(pod, &containers).await?;
        let live = containers
            .iter()
            .any(|c| matches!(c.state, ContainerState::Running | ContainerState::Created));
        if matches!(status.as_str(), "Succeeded" | "Failed") {
            if let Some((id, _)) = &self.sandbox {
                self.ctx.runtime.stop_pod_sandbox(id).await?;
            }
            return Ok(Next::After(Duration::from_secs(60)));
        }
        if live {
            wake = wake.min(POLL);
        }
        Ok(Next::After(wake))
    }

    /// Runs the due probes of running app containers; stops those whose
    /// liveness or startup probe failed. Returns when a probe is next due.
    async fn run_probes(
        &mut self,
        pod: &Pod,
        containers: &[ContainerStatus],
    ) -> anyhow::Result<Option<Duration>> {
        let spec = pod.spec.clone().unwrap_or_default();
        let live: Vec<String> = containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| c.id.clone())
            .collect();
        self.prober.retain(&live);
        self.probes.clear();
        let pod_ip = match &self.sandbox {
            Some((id, _)) => self
                .ctx
                .runtime
                .pod_sandbox_status(id)
                .await?
                .ip
                .map(|ip| ip.to_string()),
            None => None,
        }
        .unwrap_or_default();
        let mut next: Option<Duration> = None;
        for c in &spec.containers {
            if c.liveness_probe.is_none()
                && c.readiness_probe.is_none()
                && c.startup_probe.is_none()
            {
                continue;
            }
            let Some(latest) = status::attempts(containers, &c.name).last().copied() else {
                continue;
            };
            if latest.state != ContainerState::Running {
                continue;
            }
            let ran = latest
                .started_at
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            let started_at = Instant::now().checked_sub(ran).unwrap_or_else(Instant::now);
            let verdict = self
                .prober
                .probe(&*self.ctx.runtime, c, &latest.id, &pod_ip, started_at)
                .await;
            self.probes.insert(
                c.name.clone(),
                (verdict.ready && verdict.started, verdict.started),
            );
            if let Some(why) = verdict.kill {
                tracing::info!(pod = %meta(pod).name, container = %c.name, "{why}; restarting");
                self.ctx
                    .runtime
                    .stop_container(&latest.id, grace_period(pod))
                    .await?;
                next = Some(Duration::ZERO);
            }
            if let Some(at) = verdict.next {
                let d = at.saturating_duration_since(Instant::now());
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        Ok(next)
    }

    /// Starts what should run now; returns when to look again at the latest.
    async fn start_containers(&mut self, pod: &Pod) -> anyhow::Result<Duration> {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = if spec.restart_policy.is_empty() {
            "Always".to_owned()
        } else {
            spec.restart_policy.clone()
        };
        let containers = self.containers().await?;
        let mut wake = Duration::from_secs(60);
        for c in &spec.init_containers {
            let latest = status::attempts(&containers, &c.name)
                .last()
                .copied()
                .cloned();
            match latest {
                None => {
                    self.start(pod, c, 0, &mut wake).await;
                    return Ok(wake);
                }
                Some(s) if s.state == ContainerState::Exited && s.exit_code == Some(0) => continue,
                Some(s) if s.state == ContainerState::Exited => {
                    if policy != "Never" {
                        self.restart(pod, c, &s, &mut wake).await;
                    }
                    return Ok(wake);
                }
                Some(_) => return Ok(POLL),
            }
        }
        for c in &spec.containers {
            let latest = status::attempts(&containers, &c.name)
                .last()
                .copied()
                .cloned();
            match latest {
                None => self.start(pod, c, 0, &mut wake).await,
                Some(s) if s.state == ContainerState::Exited => {
                    let restart = match policy.as_str() {
                        "Never" => false,
                        "OnFailure" => s.exit_code != Some(0),
                        _ => true,
                    };
                    if restart {
                        self.restart(pod, c, &s, &mut wake).await;
                    }
                }
                Some(_) => {}
            }
        }
        Ok(wake)
    }

    /// Restarts an exited container once its back-off has passed.
    async fn restart(
        &mut self,
        pod: &Pod,
        c: &Container,
        last: &ContainerStatus,
        wake: &mut Duration,
    ) {
        let ran_for = match (last.started_at, last.finished_at) {
            (Some(s), Some(f)) => f.duration_since(s).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let delay = self.backoff.delay(&c.name, last.metadata.attempt, ran_for);
        let finished = last.finished_at.unwrap_or_else(SystemTime::now);
        let elapsed = SystemTime::now()
            .duration_since(finished)
            .unwrap_or_default();
        if elapsed < delay {
            let m = meta(pod);
            self.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        delay.as_secs(),
                        c.name,
                        m.name,
                        m.namespace,
                        m.uid
                    ),
                },
            );
            *wake = (*wake).min(delay - elapsed);
            return;
        }
        self.start(pod, c, last.metadata.attempt + 1, wake).await;
    }

    /// Pulls, creates and starts attempt `attempt` of `c`; a failure becomes
    /// the container's waiting reason and is retried with back-off.
    async fn start(&mut self, pod: &Pod, c: &Container, attempt: u32, wake: &mut Duration) {
        if let Some((failures, not_before)) = self.retry.get(&c.name).copied() {
            let now = Instant::now();
            if now < not_before {
                if let Some(w) = self.waiting.get_mut(&c.name)
                    && w.reason == "ErrImagePull"
                {
                    w.reason = "ImagePullBackOff".into();
                    w.message = format!("Back-off pulling image {:?}: {}", c.image, w.message);
                }
                *wake = (*wake).min(not_before - now);
                return;
            }
            let _ = failures;
        }
        match self.try_start(pod, c, attempt).await {
            Ok(()) => {
                self.waiting.remove(&c.name);
                self.retry.remove(&c.name);
            }
            Err(w) => {
                let failures = self.retry.get(&c.name).map_or(0, |r| r.0) + 1;
                let policy = self.ctx.backoff;
                let delay = policy
                    .initial
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(policy.max);
                tracing::info!(container = %c.name, "{}: {}", w.reason, w.message);
                self.retry
                    .insert(c.name.clone(), (failures, Instant::now() + delay));
                self.waiting.insert(c.name.clone(), w);
                *wake = (*wake).min(delay);
            }
        }
    }

    async fn try_start(&mut self, pod: &Pod, c: &Container, attempt: u32) -> Result<(), Waiting> {
        let fail = |reason: &str, message: String| Waiting {
            reason: reason.into(),
            message,
        };
        let Some((sandbox_id, sandbox_config)) = self.sandbox.clone() else {
            return Err(fail("ContainerCreating", "no sandbox".into()));
        };
        let runtime = &self.ctx.runtime;
        let image = match runtime.pull_image(&c.image).await {
            Ok(image) => image,
            // An explicit command runs on the host without a catalogue image.
            Err(RuntimeError::ImageNotFound { .. }) if !c.command.is_empty() => c.image.clone(),
            Err(e) => return Err(fail("ErrImagePull", e.to_string())),
        };
        let pod_ip = runtime
            .pod_sandbox_status(&sandbox_id)
            .await
            .ok()
            .and_then(|s| s.ip)
            .map(|ip| ip.to_string());
        let fields = PodFields {
            pod,
            pod_ip,
            host_ip: self.ctx.node_ip.clone(),
        };
        let mut envs = dns_env(pod, &self.ctx.cluster_dns, &self.ctx.cluster_domain);
        envs.extend(container_env(c, &fields).map_err(|e| fail("CreateContainerConfigError", e))?);
        let (command, args) = expand_command(c, &envs);
        let m = meta(pod);
        let config = ContainerConfig {
            metadata: ContainerMetadata {
                name: c.name.clone(),
                attempt,
            },
            image,
            command,
            args,
            working_dir: (!c.working_dir.is_empty()).then(|| c.working_dir.clone()),
            envs,
            log_path: PathBuf::from(&c.name).join(format!("{attempt}.log")),
            resources: resources(c),
            labels: BTreeMap::from([
                (labels::POD_UID.to_owned(), m.uid.clone()),
                (labels::POD_NAME.to_owned(), m.name.clone()),
                (labels::POD_NAMESPACE.to_owned(), m.namespace.clone()),
                (labels::CONTAINER_NAME.to_owned(), c.name.clone()),
            ]),
            annotations: BTreeMap::new(),
        };
        let id = runtime
            .create_container(&sandbox_id, &config, &sandbox_config)
            .await
            .map_err(|e| fail("CreateContainerError", e.to_string()))?;
        runtime
            .start_container(&id)
            .await
            .map_err(|e| fail("RunContainerError", e.to_string()))
    }

    /// Computes the status and writes it when it changed; returns the phase.
    async fn write_status(
        &mut self,
        pod: &Pod,
        containers: &[ContainerStatus],
    ) -> anyhow::Result<String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let pod_ip = match &self.sandbox {
            Some((id, _)) => self
                .ctx
                .runtime
                .pod_sandbox_status(id)
                .await
                .ok()
                .and_then(|s| s.ip)
                .map(|ip| ip.to_string()),
            None => None,
        };
        let unenforced = spec
            .containers
            .iter()
            .filter(|c| has_limits(c))
            .find_map(|c| {
                let latest = status::attempts(containers, &c.name).last().copied()?;
                (!latest.limits_enforced).then(|| latest.message.clone())
            });
        let limits_not_enforced = unenforced.map(|message| {
            let reason = self
                .ctx
                .runtime
                .status()
                .into_iter()
                .find(|c| c.kind == "CgroupLimits" && !c.status)
                .map(|c| c.reason)
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "LimitsNotEnforced".into());
            (
                reason,
                format!("resource limits are not enforced: {message}"),
            )
        });
        let new = status::pod_status(&Observed {
            pod,
            containers,
            waiting: &self.waiting,
            pod_ip,
            host_ip: self.ctx.node_ip.clone(),
            limits_not_enforced,
            start_time: self.start_time,
            probes: &self.probes,
        });
        let phase = new.phase.clone();
        let m = meta(pod);
        let lagging = self
            .last_written
            .as_ref()
            .is_some_and(|(rv, s)| *rv == m.resource_version && *s == new);
        if pod.status.as_ref() == Some(&new) || lagging {
            return Ok(phase);
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &m.namespace);
        let mut updated = pod.clone();
        updated.status = Some(new.clone());
        let result = match api.update_status(&updated).await {
            Err(e) if e.is_conflict() => {
                let mut fresh = api.get(&m.name).await?;
                fresh.status = Some(new.clone());
                api.update_status(&fresh).await
            }
            other => other,
        };
        result.map_err(|e| anyhow::anyhow!("status of pod {}/{}: {e}", m.namespace, m.name))?;
        self.last_written = Some((m.resource_version.clone(), new));
        Ok(phase)
    }

    /// Stops the containers (SIGTERM, the pod's grace period, SIGKILL — all
    /// at once), then stops and removes the sandbox. `None`: the pod is
    /// gone from the API.
    async fn kill(&mut self, pod: Option<&Pod>) {
        let grace = pod.map_or(Duration::from_secs(2), grace_period);
        let sandbox_id = match self.sandbox.take() {
            Some((id, _)) => id,
            None => {
                let found = self
                    .ctx
                    .runtime
                    .list_pod_sandboxes()
                    .await
                    .unwrap_or_default();
                match found
                    .into_iter()
                    .find(|s| s.labels.get(labels::POD_UID) == Some(&self.uid))
                {
                    Some(s) => s.id,
                    None => return,
                }
            }
        };
        let runtime = self.ctx.runtime.clone();
        let running: Vec<_> = runtime
            .list_containers(&ContainerFilter {
                sandbox_id: Some(sandbox_id.clone()),
            })
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .collect();
        let stops = running.iter().map(|c| runtime.stop_container(&c.id, grace));
        for r in futures::future::join_all(stops).await {
            if let Err(e) = r {
                tracing::warn!(uid = %self.uid, "stopping a container: {e}");
            }
        }
        if let Err(e) = runtime.stop_pod_sandbox(&sandbox_id).await {
            tracing::warn!(uid = %self.uid, "stopping sandbox {sandbox_id}: {e}");
        }
        if let Err(e) = runtime.remove_pod_sandbox(&sandbox_id).await {
            tracing::warn!(uid = %self.uid, "removing sandbox {sandbox_id}: {e}");
        }
    }
}

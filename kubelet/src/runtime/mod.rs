//! The container runtime interface, shaped like Kubernetes's CRI
//! (`RuntimeService` + `ImageService`): the kubelet drives pods only
//! through [`Runtime`], so the embedded process runtime, a future
//! containerd (`cri`) runtime and the fakes used in tests are
//! interchangeable.
//!
//! The split of work is CRI's:
//! - the **kubelet** decides what should run (restart policy, back-off,
//!   probes, ordering), expands `$(VAR)` references and `fieldRef` env
//!   values, and turns the pod spec into [`SandboxConfig`] and
//!   [`ContainerConfig`];
//! - the **runtime** makes it so: it gives each sandbox (pod) its IP,
//!   resolves images, combines an image's entrypoint/args/env with the
//!   container's, starts and stops processes, keeps their logs, applies
//!   resource limits, and remembers all of it across kubelet restarts, so
//!   that a restarted kubelet finds ([`Runtime::list_pod_sandboxes`],
//!   [`Runtime::list_containers`]) and adopts what is running instead of
//!   starting it twice.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub mod process;

/// A runtime-chosen sandbox (pod) id.
pub type SandboxId = String;
/// A runtime-chosen container id.
pub type ContainerId = String;

/// What a runtime call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No sandbox, container or image with this id.
    #[error("not found: {0}")]
    NotFound(String),
    /// The image is not in the local catalogue (the kubelet reports
    /// `ErrImagePull` / `ImagePullBackOff`).
    #[error("image {image:?} not found: {message}")]
    ImageNotFound {
        /// The image as written in the pod.
        image: String,
        /// Why, for the container's waiting message.
        message: String,
    },
    /// The request itself is wrong (e.g. a container with neither a
    /// command nor an image entrypoint).
    #[error("invalid: {0}")]
    InvalidArgument(String),
    /// The call was legal but failed (e.g. the executable does not exist:
    /// the kubelet reports `CreateContainerError`/`RunContainerError`).
    #[error("{0}")]
    Failed(String),
    /// Host I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Identity of a sandbox, as CRI's `PodSandboxMetadata`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxMetadata {
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's uid.
    pub uid: String,
    /// How many sandboxes were created for this pod before this one.
    pub attempt: u32,
}

/// Pod-level resource limits (the sum of the containers' limits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU limit in millicores.
    pub cpu_millis: Option<u64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
}

/// What [`Runtime::run_pod_sandbox`] needs.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Which pod.
    pub metadata: SandboxMetadata,
    /// The pod's hostname.
    pub hostname: String,
    /// Where this pod's container logs go (one file per container attempt).
    pub log_directory: PathBuf,
    /// Labels the kubelet uses to find its sandboxes again.
    pub labels: BTreeMap<String, String>,
    /// Annotations kept with the sandbox.
    pub annotations: BTreeMap<String, String>,
    /// Pod-level limits.
    pub resources: Resources,
}

/// `Ready` while the sandbox exists and has its IP; `NotReady` once stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxState {
    /// Running.
    Ready,
    /// Stopped (its containers are stopped and its IP released).
    NotReady,
}

/// What the runtime knows of a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxStatus {
    /// The sandbox id.
    pub id: SandboxId,
    /// Which pod.
    pub metadata: SandboxMetadata,
    /// Ready or not.
    pub state: SandboxState,
    /// The pod's IP, while ready.
    pub ip: Option<IpAddr>,
    /// When it was created.
    pub created_at: SystemTime,
    /// As given at creation.
    pub labels: BTreeMap<String, String>,
    /// As given at creation.
    pub annotations: BTreeMap<String, String>,
}

/// Identity of a container inside its sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerMetadata {
    /// The container's name in the pod spec.
    pub name: String,
    /// How many times this container was created before (= restartCount).
    pub attempt: u32,
}

/// What [`Runtime::create_container`] needs. `command`/`args` are as the
/// pod spec gives them, after `$(VAR)` expansion; the runtime combines them
/// with the image as Kubernetes does (no command: the image's entrypoint;
/// no command and no args: the image's default args too). A container
/// with an explicit `command` runs that command on the host even when its
/// image is not in the catalogue: the kubelet then passes the image name
/// as written and the runtime adds no image env.
#[derive(Clone, Debug)]
pub struct ContainerConfig {
    /// Which container.
    pub metadata: ContainerMetadata,
    /// The image reference returned by [`Runtime::pull_image`].
    pub image: String,
    /// The container's `command`, expanded.
    pub command: Vec<String>,
    /// The container's `args`, expanded.
    pub args: Vec<String>,
    /// Working directory, if set in the spec.
    pub working_dir: Option<String>,
    /// Environment from the spec (image env is added underneath by the
    /// runtime; these win).
    pub envs: Vec<(String, String)>,
    /// Log file, relative to the sandbox's `log_directory`.
    pub log_path: PathBuf,
    /// Container limits.
    pub resources: Resources,
    /// Labels the kubelet uses to find its containers again.
    pub labels: BTreeMap<String, String>,
    /// Annotations kept with the container.
    pub annotations: BTreeMap<String, String>,
}

/// A container's lifecycle state, as CRI's `ContainerState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Its process runs.
    Running,
    /// Its process ended (see exit code and reason).
    Exited,
    /// The runtime lost track of it.
    Unknown,
}

/// What the runtime knows of a container.
#[derive(Clone, Debug)]
pub struct ContainerStatus {
    /// The container id.
    pub id: ContainerId,
    /// The sandbox it belongs to.
    pub sandbox_id: SandboxId,
    /// Which container.
    pub metadata: ContainerMetadata,
    /// Its state.
    pub state: ContainerState,
    /// The image reference.
    pub image: String,
    /// Created.
    pub created_at: SystemTime,
    /// Started, if it was.
    pub started_at: Option<SystemTime>,
    /// Finished, if it did.
    pub finished_at: Option<SystemTime>,
    /// Exit code, once exited (128 + signal when killed by a signal).
    pub exit_code: Option<i32>,
    /// Why it is in this state (`Completed`, `Error`, `OOMKilled`, ...).
    pub reason: String,
    /// Details for humans.
    pub message: String,
    /// Absolute path of its log file.
    pub log_path: PathBuf,
    /// Whether its CPU/memory limits are enforced (false: the host did
    /// not allow cgroups; `message` says why).
    pub limits_enforced: bool,
    /// As given at creation.
    pub labels: BTreeMap<String, String>,
    /// As given at creation.
    pub annotations: BTreeMap<String, String>,
}

/// Which containers [`Runtime::list_containers`] returns.
#[derive(Clone, Debug, Default)]
pub struct ContainerFilter {
    /// Only this sandbox's containers.
    pub sandbox_id: Option<SandboxId>,
}

/// The result of [`Runtime::exec_sync`] (exec probes).
#[derive(Clone, Debug)]
pub struct ExecResult {
    /// The command's exit code.
    pub exit_code: i32,
    /// Its standard output (bounded).
    pub stdout: Vec<u8>,
    /// Its standard error (bounded).
    pub stderr: Vec<u8>,
}

/// Resource usage of a container, as CRI's `ContainerStats` (for
/// per-pod usage and autoscaling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStats {
    /// CPU time used so far, in nanoseconds (cumulative: the rate between
    /// two samples is the usage).
    pub cpu_usage_nanos: u64,
    /// Memory in use (resident), in bytes.
    pub memory_bytes: u64,
    /// When it was measured.
    pub timestamp: SystemTime,
}

/// An image the runtime has.
#[derive(Clone, Debug)]
pub struct Image {
    /// Its id (stable for one definition).
    pub id: String,
    /// `name:tag` references.
    pub repo_tags: Vec<String>,
    /// Size in bytes (0 when unknown).
    pub size: u64,
}

/// One runtime condition, as CRI's `RuntimeCondition`
/// (`RuntimeReady`, `NetworkReady`, `CgroupLimits`, ...).
#[derive(Clone, Debug)]
pub struct RuntimeCondition {
    /// Condition type.
    pub kind: String,
    /// Whether it holds.
    pub status: bool,
    /// Why not, in CamelCase.
    pub reason: String,
    /// Details for humans.
    pub message: String,
}

/// Name and version of a runtime.
#[derive(Clone, Debug)]
pub struct RuntimeVersion {
    /// e.g. `capstan-process`.
    pub name: String,
    /// The runtime's version.
    pub version: String,
}

/// The runtime the kubelet drives. Every call is idempotent where CRI's is
/// (stopping a stopped sandbox, removing a removed container succeed).
pub trait Runtime: Send + Sync + 'static {
    /// Name and version.
    fn version(&self) -> RuntimeVersion;

    /// Conditions of the runtime itself (`RuntimeReady`, `NetworkReady`,
    /// `CgroupLimits`).
    fn status(&self) -> Vec<RuntimeCondition>;

    /// Creates a pod sandbox and gives it an IP.
    fn run_pod_sandbox(
        &self,
        config: &SandboxConfig,
    ) -> impl Future<Output = Result<SandboxId, RuntimeError>> + Send;

    /// Stops every container of the sandbox (SIGKILL) and releases its IP.
    fn stop_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Forgets a stopped sandbox and its containers.
    fn remove_pod_sandbox(&self, id: &str)
    -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// One sandbox.
    fn pod_sandbox_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<SandboxStatus, RuntimeError>> + Send;

    /// Every sandbox, ready or not.
    fn list_pod_sandboxes(
        &self,
    ) -> impl Future<Output = Result<Vec<SandboxStatus>, RuntimeError>> + Send;

    /// Creates (does not start) a container in a sandbox.
    fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &SandboxConfig,
    ) -> impl Future<Output = Result<ContainerId, RuntimeError>> + Send;

    /// Starts a created container.
    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// SIGTERM, then SIGKILL after `timeout` if it still runs; returns once
    /// it has exited.
    fn stop_container(
        &self,
        id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Forgets an exited container (its log file stays until the sandbox
    /// is removed).
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Containers, optionally of one sandbox.
    fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> impl Future<Output = Result<Vec<ContainerStatus>, RuntimeError>> + Send;

    /// One container.
    fn container_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerStatus, RuntimeError>> + Send;

    /// Runs `cmd` in the container's context (its env, working directory
    /// and pod IP) and waits up to `timeout`.
    fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecResult, RuntimeError>> + Send;

    /// Resource usage of a running container (CRI's `ContainerStats`).
    /// Runtimes that cannot measure keep this default, which fails.
    fn container_stats(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerStats, RuntimeError>> + Send {
        let id = id.to_string();
        async move {
            Err(RuntimeError::Failed(format!(
                "this runtime cannot measure container {id}"
            )))
        }
    }

    /// Resolves an image reference (`name`, `name:tag`) against what the
    /// runtime can run; returns the image reference to create containers
    /// with, or [`RuntimeError::ImageNotFound`].
    fn pull_image(&self, image: &str) -> impl Future<Output = Result<String, RuntimeError>> + Send;

    /// The image, if present.
    fn image_status(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<Image>, RuntimeError>> + Send;

    /// Every image present.
    fn list_images(&self) -> impl Future<Output = Result<Vec<Image>, RuntimeError>> + Send;
}

//! The embedded **process runtime**: pods as records on disk with a
//! loopback IP each, containers as supervised host processes.
//!
//! - **Sandboxes** ([`sandboxes`]): a record under `root_dir` plus an IPv4
//!   address from the node's pod CIDR ([`ipam`]). With a loopback CIDR
//!   (`127.10.1.0/24`) every address routes to `lo`, so a pod's processes
//!   bind their IP without privileges. There is no network isolation:
//!   pods share the host's network namespace.
//! - **Images** ([`image`]): a local catalogue folder of YAML definitions
//!   (`name`, `tag`, `entrypoint`, `args`, `env`, `workingDir`, `rootfs`);
//!   see the module for the format. A container with an explicit command
//!   runs it on the host even when its image is not in the catalogue.
//! - **Containers** ([`containers`]): each runs under its own shim process
//!   ([`shim`], `capstan container-shim`), which outlives the kubelet,
//!   appends the process's stdout and stderr (raw bytes) to its log file
//!   and records its exit status. Its environment is the image's, then
//!   the container's, plus `CAPSTAN_POD_IP` (the pod's address),
//!   `HOSTNAME` (the pod's hostname) and a default `PATH` unless set; the
//!   kubelet's own environment is not inherited. A new [`ProcessRuntime`] on the same
//!   `root_dir` finds every sandbox and container again, with their
//!   states, and still learns exit codes of containers that end later.
//! - **Limits** ([`cgroup`]): CPU and memory through cgroup v2, or v1 on
//!   hybrid hosts, when the host allows; otherwise containers run without
//!   them, their status says `limits_enforced: false` and why, and
//!   [`Runtime::status`] reports `CgroupLimits` False.
//! - **Usage** ([`Runtime::container_stats`]): CPU time and resident memory
//!   summed over the container's process group from `/proc` (the same
//!   with or without cgroups).
//! - Every record is written crash-safely (temporary file, fsync, rename)
//!   and a record that does not parse is an error naming the file
//!   ([`records`]).
//!
//! Configuration (embedded in the kubelet's, camelCase like it):
//!
//! ```yaml
//! rootDir: /var/lib/capstan/kubelet/process   # records and state
//! podCIDR: 127.10.1.0/24                      # IPv4 only
//! imageDir: /etc/capstan/images               # the image catalogue
//! shim: /usr/local/bin/capstan                # runs `capstan container-shim`
//! cgroups: auto                               # or: disabled
//! ```

pub mod cgroup;
mod containers;
mod exec;
pub mod image;
pub mod ipam;
mod procfs;
pub mod records;
mod sandboxes;
pub mod shim;
mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ContainerConfig, ContainerFilter, ContainerId, ContainerStats, ContainerStatus, ExecResult,
    Image, Runtime, RuntimeCondition, RuntimeError, RuntimeVersion, SandboxConfig, SandboxId,
    SandboxStatus,
};
use cgroup::Cgroups;
use image::Catalogue;
use ipam::{Allocations, Ipv4Cidr};

pub use containers::POD_IP_ENV;
pub use shim::{SHIM_SUBCOMMAND, shim_main};

/// Whether to try cgroup limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupMode {
    /// Use cgroups when the host allows (v2, else v1), otherwise report
    /// limits as not enforced.
    #[default]
    Auto,
    /// Never use cgroups (limits are reported as not enforced).
    Disabled,
}

/// The process runtime's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessRuntimeConfig {
    /// Where sandbox and container records live (created if missing). It
    /// must survive kubelet restarts: a new runtime on the same folder
    /// adopts everything recorded there. One kubelet per folder.
    pub root_dir: PathBuf,
    /// The node's pod CIDR (IPv4, e.g. `127.10.1.0/24`); each sandbox gets
    /// one host address from it, skipping the network and first address.
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    /// The image catalogue folder: one YAML file per image (see
    /// [`image`]); re-read on every lookup.
    pub image_dir: PathBuf,
    /// The executable started as `SHIM container-shim start|run DIR` for
    /// every container: the `capstan` binary.
    pub shim: PathBuf,
    /// Whether to use cgroups for limits.
    #[serde(default)]
    pub cgroups: CgroupMode,
}

/// Stops every container recorded under `root_dir` (a process runtime's
/// folder) — SIGTERM, `grace`, then SIGKILL, all containers at once —
/// without opening the runtime; returns how many were running. For
/// tearing a node down when its kubelet is gone (e.g. `capstan up` on
/// exit). Records stay: a kubelet started later sees the containers
/// exited and applies the pods' restart policy.
pub fn stop_all(root_dir: &std::path::Path, grace: Duration) -> Result<usize, RuntimeError> {
    let containers = root_dir.join("containers");
    if !containers.exists() {
        return Ok(0);
    }
    let ids = records::list_dirs(&containers)?;
    let running: Vec<&String> = ids
        .iter()
        .filter(|id| {
            state::Observed::read(&containers.join(id))
                .is_ok_and(|o| o.state() == super::ContainerState::Running)
        })
        .collect();
    std::thread::scope(|scope| {
        let stops: Vec<_> = running
            .iter()
            .map(|id| {
                let dir = containers.join(id);
                scope.spawn(move || containers::stop_dir(&dir, id, grace))
            })
            .collect();
        stops.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(RuntimeError::Failed("a container stop panicked".into())))
        })
    })?;
    Ok(running.len())
}

/// The process runtime. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct ProcessRuntime {
    inner: Arc<Inner>,
}

/// The runtime's state: everything lives on disk; the lock serialises
/// read-modify-write of the IP allocations and sandbox records.
struct Inner {
    root: PathBuf,
    sandboxes_dir: PathBuf,
    containers_dir: PathBuf,
    cidr: Ipv4Cidr,
    image_dir: PathBuf,
    shim: PathBuf,
    cgroups: Cgroups,
    ipam: Mutex<Allocations>,
}

impl ProcessRuntime {
    /// Opens (or creates) the runtime's folder, checks the configuration,
    /// probes cgroups once, and reconciles the IP allocations with the
    /// sandbox records (dropping addresses leaked by a crash).
    pub fn new(config: ProcessRuntimeConfig) -> Result<Self, RuntimeError> {
        let cidr = Ipv4Cidr::parse(&config.pod_cidr)?;
        if !config.shim.is_file() {
            return Err(RuntimeError::InvalidArgument(format!(
                "shim executable {} does not exist",
                config.shim.display()
            )));
        }
        let cgroups = Cgroups::detect(config.cgroups == CgroupMode::Auto);
        if let Cgroups::Unavailable { message, .. } = &cgroups {
            tracing::warn!("{message}");
        }
        let inner = Inner::open(
            config.root_dir,
            cidr,
            config.image_dir,
            config.shim,
            cgroups,
        )?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Stops every sandbox and its containers (SIGTERM, `grace`, SIGKILL)
    /// and releases their addresses, keeping the records. Not part of a
    /// kubelet restart (running pods are adopted then); for tearing a
    /// node down, e.g. at the end of `capstan up` or of a test.
    pub async fn stop_everything(&self, grace: Duration) -> Result<(), RuntimeError> {
        self.blocking(move |i| {
            let containers = i.container_records(&ContainerFilter::default())?;
            // All at once, so the grace periods run side by side.
            std::thread::scope(|scope| {
                let stops: Vec<_> = containers
                    .iter()
                    .map(|c| scope.spawn(move || i.stop_container(&c.id, grace)))
                    .collect();
                stops.into_iter().try_for_each(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(RuntimeError::Failed("a container stop panicked".into()))
                    })
                })
            })?;
            for s in i.list_pod_sandboxes()? {
                i.stop_pod_sandbox(&s.id)?;
            }
            Ok(())
        })
        .await
    }

    /// Runs `f` on the blocking pool: every operation does file I/O and
    /// some wait for processes.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, RuntimeError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| RuntimeError::Failed(format!("runtime task failed: {e}")))?
    }
}

impl Runtime for ProcessRuntime {
    fn version(&self) -> RuntimeVersion {
        RuntimeVersion {
            name: "capstan-process".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn status(&self) -> Vec<RuntimeCondition> {
        let cond = |kind: &str, status: bool, reason: &str, message: String| RuntimeCondition {
            kind: kind.into(),
            status,
            reason: reason.into(),
            message,
        };
        let limits = match &self.inner.cgroups {
            Cgroups::Unavailable { reason, message } => {
                cond("CgroupLimits", false, reason, message.clone())
            }
            Cgroups::V2 { base } => cond(
                "CgroupLimits",
                true,
                "CgroupV2",
                format!("limits enforced under {}", base.display()),
            ),
            Cgroups::V1 { cpu, memory } => cond(
                "CgroupLimits",
                true,
                "CgroupV1",
                format!(
                    "limits enforced under {} and {}",
                    cpu.display(),
                    memory.display()
                ),
            ),
        };
        vec![
            cond("RuntimeReady", true, "", String::new()),
            cond(
                "NetworkReady",
                true,
                "",
                format!("pod addresses from {}", self.inner.cidr),
            ),
            limits,
        ]
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<SandboxId, RuntimeError> {
        let config = config.clone();
        self.blocking(move |i| i.run_pod_sandbox(&config)).await
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.stop_pod_sandbox(&id)).await
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.remove_pod_sandbox(&id)).await
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus, RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.pod_sandbox_status(&id)).await
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>, RuntimeError> {
        self.blocking(|i| i.list_pod_sandboxes()).await
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &SandboxConfig,
    ) -> Result<ContainerId, RuntimeError> {
        let (sandbox_id, config) = (sandbox_id.to_string(), config.clone());
        let _ = sandbox_config; // the sandbox's record holds what is needed
        self.blocking(move |i| i.create_container(&sandbox_id, &config))
            .await
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.start_container(&id)).await
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.stop_container(&id, timeout)).await
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.remove_container(&id)).await
    }

    async fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let filter = filter.clone();
        self.blocking(move |i| i.list_containers(&filter)).await
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.container_status(&id)).await
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        let (id, cmd) = (id.to_string(), cmd.to_vec());
        self.blocking(move |i| i.exec_sync(&id, &cmd, timeout))
            .await
    }

    async fn container_stats(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        let id = id.to_string();
        self.blocking(move |i| i.container_stats(&id)).await
    }

    async fn pull_image(&self, image: &str) -> Result<String, RuntimeError> {
        let image = image.to_string();
        self.blocking(move |i| {
            let cat = Catalogue::load(&i.image_dir);
            cat.resolve(&i.image_dir, &image)
                .map(|img| img.reference.clone())
        })
        .await
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>, RuntimeError> {
        let image = image.to_string();
        self.blocking(move |i| {
            let cat = Catalogue::load(&i.image_dir);
            match cat.resolve(&i.image_dir, &image) {
                Ok(img) => Ok(Some(to_image(img))),
                Err(RuntimeError::ImageNotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn list_images(&self) -> Result<Vec<Image>, RuntimeError> {
        self.blocking(|i| {
            let cat = Catalogue::load(&i.image_dir);
            for e in &cat.errors {
                tracing::warn!(catalogue = %i.image_dir.display(), "broken image definition: {e}");
            }
            Ok(cat.images.values().map(to_image).collect())
        })
        .await
    }
}

fn to_image(img: &image::Image) -> Image {
    Image {
        id: img.id.clone(),
        repo_tags: vec![img.reference.clone()],
        size: img.size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_as_documented() {
        let c: ProcessRuntimeConfig = serde_yaml_ng::from_str(
            "rootDir: /var/lib/capstan/kubelet/process\npodCIDR: 127.10.1.0/24\n\
             imageDir: /etc/capstan/images\nshim: /usr/local/bin/capstan\ncgroups: disabled\n",
        )
        .unwrap();
        assert_eq!(c.pod_cidr, "127.10.1.0/24");
        assert_eq!(c.cgroups, CgroupMode::Disabled);
        let c: ProcessRuntimeConfig =
            serde_yaml_ng::from_str("rootDir: r\npodCIDR: 127.10.1.0/24\nimageDir: i\nshim: s\n")
                .unwrap();
        assert_eq!(c.cgroups, CgroupMode::Auto);
        let e = serde_yaml_ng::from_str::<ProcessRuntimeConfig>("rootDir: r\npodCidr: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("podCidr"), "{e}");
    }
}

//! Container operations: resolving a container's process (image +
//! command/args/env as Kubernetes combines them), placing it in cgroups,
//! starting it under a shim, stopping it (SIGTERM, grace, SIGKILL to its
//! process group), removing it, and reporting its status.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rustix::process::Signal;

use super::cgroup::remove_dirs;
use super::image::{Catalogue, combine};
use super::procfs;
use super::records::{
    CONTAINER_FILE, ContainerRecord, ProcessSpec, START_FILE, check_id, create_dir_atomic, io_err,
    list_dirs, new_id, read_opt, remove_dir_atomic,
};
use super::shim::SHIM_SUBCOMMAND;
use super::state::{self, Observed};
use super::{ContainerFilter, Inner};
use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStats, ContainerStatus, RuntimeError,
};

/// `PATH` when neither the image nor the container sets one (Docker's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The variable holding the pod's IP in every container's environment
/// (unless the container sets it), so that images can bind their address.
pub const POD_IP_ENV: &str = "CAPSTAN_POD_IP";
/// How long a stop waits for the shim's exit record after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long to wait for a start in progress before stopping.
const START_WAIT: Duration = Duration::from_secs(10);
/// Poll interval while waiting for a process to end.
const POLL: Duration = Duration::from_millis(5);

impl Inner {
    fn container_dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        check_id(id)?;
        Ok(self.containers_dir.join(id))
    }

    /// The record of container `id`.
    pub(super) fn container_record(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        read_opt(&self.container_dir(id)?.join(CONTAINER_FILE))?
            .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))
    }

    /// Every container record that `filter` selects.
    pub(super) fn container_records(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<ContainerRecord>, RuntimeError> {
        let mut out = Vec::new();
        for id in list_dirs(&self.containers_dir)? {
            let path = self.containers_dir.join(&id).join(CONTAINER_FILE);
            let record: ContainerRecord = read_opt(&path)?.ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "corrupt container {id}: {} is missing",
                    path.display()
                ))
            })?;
            if filter
                .sandbox_id
                .as_ref()
                .is_none_or(|s| *s == record.sandbox_id)
            {
                out.push(record);
            }
        }
        Ok(out)
    }

    pub(super) fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let sandbox = self
            .sandbox_record(sandbox_id)?
            .ok_or_else(|| RuntimeError::NotFound(format!("pod sandbox {sandbox_id}")))?;
        if !sandbox.ready {
            return Err(RuntimeError::Failed(format!(
                "pod sandbox {sandbox_id} is stopped; cannot create container {:?} in it",
                config.metadata.name
            )));
        }
        let catalogue = Catalogue::load(&self.image_dir);
        let image = match catalogue.resolve(&self.image_dir, &config.image) {
            Ok(img) => Some(img),
            // An explicit command runs on the host whatever its image.
            Err(RuntimeError::ImageNotFound { .. }) if !config.command.is_empty() => None,
            Err(e) => return Err(e),
        };
        let argv = combine(
            image.map(|i| (i.def.entrypoint.as_slice(), i.def.args.as_slice())),
            &config.command,
            &config.args,
        );
        if argv.is_empty() {
            return Err(RuntimeError::InvalidArgument(format!(
                "container {:?} has no command and image {} has no entrypoint",
                config.metadata.name, config.image
            )));
        }
        let rootfs = image.and_then(|i| i.def.rootfs.clone());
        // Image env first, the container's on top (same name: the
        // container's value, in the image's position).
        let mut env: Vec<(String, String)> = image
            .map(|i| {
                i.def
                    .env
                    .iter()
                    .map(|e| (e.name.clone(), e.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (k, v) in &config.envs {
            match env.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            let path = match &rootfs {
                Some(r) => {
                    let r = r.display();
                    format!("{r}/usr/local/bin:{r}/usr/bin:{r}/bin:{DEFAULT_PATH}")
                }
                None => DEFAULT_PATH.to_string(),
            };
            env.push(("PATH".into(), path));
        }
        if let Some(ip) = sandbox.ip
            && !env.iter().any(|(k, _)| k == POD_IP_ENV)
        {
            env.push((POD_IP_ENV.into(), ip.to_string()));
        }
        if !env.iter().any(|(k, _)| k == "HOSTNAME") {
            env.push(("HOSTNAME".into(), sandbox.hostname.clone()));
        }
        let wd = config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| image.and_then(|i| i.def.working_dir.clone()));
        let working_dir = match (&rootfs, wd) {
            (Some(r), Some(w)) => r.join(w.trim_start_matches('/')),
            (Some(r), None) => r.clone(),
            (None, Some(w)) => PathBuf::from(w),
            (None, None) => PathBuf::from("/"),
        };
        let id = new_id();
        let (limits_enforced, limits_message, placement) =
            match self
                .cgroups
                .place(sandbox_id, &id, &sandbox.resources(), &config.resources)
            {
                Ok(p) => (true, String::new(), p),
                Err(why) => (false, why, Default::default()),
            };
        let record = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox_id.to_string(),
            name: config.metadata.name.clone(),
            attempt: config.metadata.attempt,
            image: image
                .map(|i| i.reference.clone())
                .unwrap_or_else(|| config.image.clone()),
            created_at: SystemTime::now(),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            limits_enforced,
            limits_message,
            cgroup_dirs: placement.dirs.clone(),
            process: ProcessSpec {
                argv,
                env,
                working_dir,
                log_path: sandbox.log_directory.join(&config.log_path),
                cgroup_procs: placement.procs,
                memory_cgroup: placement.memory,
            },
        };
        if let Err(e) = create_dir_atomic(&self.containers_dir, &id, CONTAINER_FILE, &record) {
            remove_dirs(&placement.dirs);
            return Err(e);
        }
        Ok(id)
    }

    pub(super) fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let record = self.container_record(id)?;
        let sandbox_ready = self
            .sandbox_record(&record.sandbox_id)?
            .is_some_and(|s| s.ready);
        if !sandbox_ready {
            return Err(RuntimeError::Failed(format!(
                "pod sandbox {} of container {id} is not ready",
                record.sandbox_id
            )));
        }
        let dir = self.container_dir(id)?;
        // The start claim: exclusive creation, so a container starts once.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(START_FILE))
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::Failed(format!(
                    "container {id} was already started"
                )));
            }
            Err(e) => return Err(io_err(format!("claiming the start of container {id}"))(e)),
        }
        let out = Command::new(&self.shim)
            .arg(SHIM_SUBCOMMAND)
            .arg("start")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err(format!("running the shim {}", self.shim.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Failed(format!(
                "container {id} ({:?}) did not start: {}",
                record.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    pub(super) fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let _ = self.container_record(id)?;
        stop_dir(&self.container_dir(id)?, id, timeout)
    }

    pub(super) fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let record = match self.container_record(id) {
            Ok(r) => r,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stop_container(id, Duration::ZERO)?;
        self.remember_removed_log(&record.sandbox_id, &record.process.log_path)?;
        remove_dirs(&record.cgroup_dirs);
        remove_dir_atomic(&self.container_dir(id)?)
    }

    pub(super) fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        let record = self.container_record(id)?;
        state::status(&record, &self.container_dir(id)?)
    }

    pub(super) fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        self.container_records(filter)?
            .iter()
            .map(|r| state::status(r, &self.container_dir(&r.id)?))
            .collect()
    }

    /// CPU and memory use of a running container, from its process group.
    pub(super) fn container_stats(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        let record = self.container_record(id)?;
        let seen = Observed::read(&self.container_dir(id)?)?;
        match (seen.state(), seen.started) {
            (ContainerState::Running, Some(started)) => {
                let (cpu_usage_nanos, memory_bytes) = procfs::group_usage(started.pid);
                Ok(ContainerStats {
                    cpu_usage_nanos,
                    memory_bytes,
                    timestamp: SystemTime::now(),
                })
            }
            _ => Err(RuntimeError::Failed(format!(
                "container {id} ({:?}) is not running",
                record.name
            ))),
        }
    }

    /// The container's process spec, if it runs (for exec).
    pub(super) fn running_process(&self, id: &str) -> Result<ProcessSpec, RuntimeError> {
        let record = self.container_record(id)?;
        let seen = Observed::read(&self.container_dir(id)?)?;
        if seen.state() != ContainerState::Running {
            return Err(RuntimeError::Failed(format!(
                "container {id} ({:?}) is not running",
                record.name
            )));
        }
        Ok(record.process)
    }
}

/// Stops the container recorded in `dir`: SIGTERM to its process group,
/// `timeout`, then SIGKILL; returns once its shim recorded the exit (or
/// nothing of it is left).
pub(super) fn stop_dir(dir: &Path, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
    let mut seen = Observed::read(dir)?;
    if seen.start_claimed && seen.started.is_none() && seen.exit.is_none() {
        // A start is in flight: let it finish so there is a pid to stop.
        seen = wait_for(dir, START_WAIT, |o| o.started.is_some() || o.exit.is_some())?;
    }
    if seen.state() != ContainerState::Running {
        return Ok(());
    }
    let Some(started) = seen.started else {
        return Ok(());
    };
    let pgid = started.pid;
    let gone = |o: &Observed| o.exit.is_some() || o.state() != ContainerState::Running;
    procfs::signal_group(pgid, Signal::TERM).map_err(io_err(format!(
        "sending SIGTERM to container {id} (process group {pgid})"
    )))?;
    if gone(&wait_for(dir, timeout, gone)?) {
        return Ok(());
    }
    procfs::signal_group(pgid, Signal::KILL).map_err(io_err(format!(
        "sending SIGKILL to container {id} (process group {pgid})"
    )))?;
    if gone(&wait_for(dir, KILL_WAIT, gone)?) {
        Ok(())
    } else {
        Err(RuntimeError::Failed(format!(
            "container {id} (process group {pgid}) still runs {KILL_WAIT:?} after SIGKILL"
        )))
    }
}

/// Re-reads `dir` until `done` holds or `limit` passes; returns the last
/// observation.
fn wait_for(
    dir: &Path,
    limit: Duration,
    done: impl Fn(&Observed) -> bool,
) -> Result<Observed, RuntimeError> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = Observed::read(dir)?;
        if done(&seen) || Instant::now() >= deadline {
            return Ok(seen);
        }
        std::thread::sleep(POLL);
    }
}

//! The process runtime's records on disk and how they are written.
//!
//! Layout under `root_dir`:
//! - `ipam.json` — the pod CIDR and which sandbox holds which address;
//! - `sandboxes/<id>/sandbox.json` — a [`SandboxRecord`];
//! - `containers/<id>/container.json` — a [`ContainerRecord`], written
//!   by the runtime at creation and read by the shim;
//! - `containers/<id>/start` — created (exclusively) by the first
//!   `start_container`, so a container is started at most once;
//! - `containers/<id>/started.json` — a [`StartedRecord`], written by the
//!   shim once the container process runs;
//! - `containers/<id>/exit.json` — an [`ExitRecord`], written by the shim
//!   once the container process ended (or could not be started);
//! - `containers/<id>/shim.log` — the shim's own diagnostics.
//!
//! Every record is written to a temporary file, synced, then renamed over
//! the final name, so a crash leaves the old record or the new one, never
//! half of one. A record that does not parse is an error naming the file,
//! never skipped silently.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::runtime::{Resources, RuntimeError};

/// Sandbox record file name.
pub const SANDBOX_FILE: &str = "sandbox.json";
/// Container record file name.
pub const CONTAINER_FILE: &str = "container.json";
/// Start claim file name.
pub const START_FILE: &str = "start";
/// Started record file name.
pub const STARTED_FILE: &str = "started.json";
/// Exit record file name.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's own log.
pub const SHIM_LOG_FILE: &str = "shim.log";

/// A pod sandbox as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxRecord {
    /// The sandbox id.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Sandbox attempt.
    pub attempt: u32,
    /// Pod hostname.
    pub hostname: String,
    /// Where the pod's container logs go.
    pub log_directory: PathBuf,
    /// The pod's IP while ready; `None` once stopped.
    pub ip: Option<std::net::Ipv4Addr>,
    /// False once stopped.
    pub ready: bool,
    /// Creation time.
    pub created_at: SystemTime,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pod-level CPU limit in millicores.
    pub cpu_millis: Option<u64>,
    /// Pod-level memory limit in bytes.
    pub memory_bytes: Option<u64>,
}

impl SandboxRecord {
    /// The pod-level limits.
    pub fn resources(&self) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis,
            memory_bytes: self.memory_bytes,
        }
    }
}

/// What the shim runs: the fully resolved process.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessSpec {
    /// Executable and arguments (never empty).
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from the kubelet).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub working_dir: PathBuf,
    /// Log file (stdout and stderr appended, raw bytes).
    pub log_path: PathBuf,
    /// `cgroup.procs` files the shim joins before starting the process.
    pub cgroup_procs: Vec<PathBuf>,
    /// The memory cgroup directory, to tell an OOM kill from other kills.
    pub memory_cgroup: Option<MemoryCgroup>,
}

/// Where to read OOM kills from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryCgroup {
    /// The file with an `oom_kill N` line (`memory.events` on cgroup v2,
    /// `memory.oom_control` on v1).
    pub events_file: PathBuf,
}

/// A container as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerRecord {
    /// The container id.
    pub id: String,
    /// Its sandbox.
    pub sandbox_id: String,
    /// Container name in the pod.
    pub name: String,
    /// Attempt (restart count).
    pub attempt: u32,
    /// Image reference.
    pub image: String,
    /// Creation time.
    pub created_at: SystemTime,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Whether CPU/memory limits are enforced.
    pub limits_enforced: bool,
    /// Why not, when they are not (empty otherwise).
    pub limits_message: String,
    /// cgroup directories made for this container (removed with it).
    pub cgroup_dirs: Vec<PathBuf>,
    /// What the shim runs.
    pub process: ProcessSpec,
}

/// Written by the shim once the container process runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartedRecord {
    /// The supervising shim's pid.
    pub shim_pid: u32,
    /// The shim's start time in clock ticks since boot (pid reuse guard).
    pub shim_start_ticks: u64,
    /// The container process's pid (also its process group id).
    pub pid: u32,
    /// Its start time in clock ticks since boot (pid reuse guard).
    pub start_ticks: u64,
    /// When it started.
    pub started_at: SystemTime,
}

/// Written by the shim once the container process ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExitRecord {
    /// Exit code, 128 + signal when killed by a signal.
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// When it ended.
    pub finished_at: SystemTime,
    /// `Completed`, `Error`, `OOMKilled` or `StartError`.
    pub reason: String,
    /// Details.
    pub message: String,
}

/// An I/O error naming what was being done.
pub fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let context = context.into();
    move |source| RuntimeError::Io { context, source }
}

/// Writes `value` as JSON to `path` atomically (temp file, fsync, rename).
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| RuntimeError::Failed(format!("cannot encode {}: {e}", path.display())))?;
    write_bytes_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("record");
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        RuntimeError::Io {
            context: format!("writing {}", path.display()),
            source: e,
        }
    })
}

/// Reads a JSON record; `Ok(None)` when the file does not exist, an error
/// naming the file when it does not parse.
pub fn read_opt<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, RuntimeError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RuntimeError::Failed(format!("corrupt record {}: {e}", path.display())))
}

/// Removes a directory tree crash-safely: renamed to a `.removing-*` name
/// first (one atomic step that makes the record disappear), then deleted.
/// Leftovers of an interrupted removal are swept by [`sweep_removing`].
pub fn remove_dir_atomic(dir: &Path) -> Result<(), RuntimeError> {
    let Some(parent) = dir.parent() else {
        return Err(RuntimeError::InvalidArgument(format!(
            "refusing to remove {}",
            dir.display()
        )));
    };
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    let doomed = parent.join(format!(".removing-{name}"));
    match std::fs::rename(dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("removing {}", dir.display()))(e)),
    }
    std::fs::remove_dir_all(&doomed).map_err(io_err(format!("removing {}", doomed.display())))
}

/// Deletes what interrupted [`remove_dir_atomic`] calls and interrupted
/// creations (`.creating-*`, see [`create_dir_atomic`]) left in `parent`.
pub fn sweep_removing(parent: &Path) -> Result<(), RuntimeError> {
    for entry in
        std::fs::read_dir(parent).map_err(io_err(format!("listing {}", parent.display())))?
    {
        let entry = entry.map_err(io_err(format!("listing {}", parent.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".removing-") || name.starts_with(".creating-") {
            std::fs::remove_dir_all(entry.path())
                .map_err(io_err(format!("removing {}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// Creates `parent/id` holding `file` = `value` in one atomic step: the
/// directory is filled under a hidden `.creating-` name, then renamed, so
/// a listing never sees a record directory without its record.
pub fn create_dir_atomic<T: Serialize>(
    parent: &Path,
    id: &str,
    file: &str,
    value: &T,
) -> Result<PathBuf, RuntimeError> {
    let tmp = parent.join(format!(".creating-{id}"));
    let dir = parent.join(id);
    std::fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    let done = write_atomic(&tmp.join(file), value).and_then(|()| {
        std::fs::rename(&tmp, &dir).map_err(io_err(format!(
            "renaming {} to {}",
            tmp.display(),
            dir.display()
        )))
    });
    if done.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    done.map(|()| dir)
}

/// The directories (by name) inside `parent`, skipping hidden ones.
pub fn list_dirs(parent: &Path) -> Result<Vec<String>, RuntimeError> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(parent).map_err(io_err(format!("listing {}", parent.display())))?
    {
        let entry = entry.map_err(io_err(format!("listing {}", parent.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// A record id is a runtime-made hex string; anything else (a path, `..`)
/// is refused before it is joined to a directory.
pub fn check_id(id: &str) -> Result<(), RuntimeError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(RuntimeError::NotFound(format!("no such id {id:?}")))
    }
}

/// A new random id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

//! Sandbox operations: opening the runtime's folder (and reconciling IP
//! allocations with the records), creating, stopping, removing and
//! listing pod sandboxes.
//!
//! Ordering keeps an address from ever being held by two live sandboxes
//! across crashes: on creation the allocation is persisted before the
//! sandbox record exists; on stop the record is marked not ready before
//! the allocation is released. Either crash window leaves at worst an
//! allocation without a ready owner, which [`Inner::open`] drops.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::cgroup::{Cgroups, remove_dirs};
use super::ipam::{Allocations, Ipv4Cidr};
use super::records::{
    SANDBOX_FILE, SandboxRecord, check_id, create_dir_atomic, io_err, list_dirs, new_id, read_opt,
    remove_dir_atomic, sweep_removing, write_atomic,
};
use super::{ContainerFilter, Inner};
use crate::runtime::{RuntimeError, SandboxConfig, SandboxMetadata, SandboxState, SandboxStatus};

/// The IP allocations file, directly under the root.
const IPAM_FILE: &str = "ipam.json";
/// The file listing log files of removed containers, in a sandbox's folder.
pub(super) const REMOVED_LOGS_FILE: &str = "removed-logs.json";

impl Inner {
    /// Opens `root`, sweeps interrupted creations and removals, and
    /// reconciles `ipam.json` with the sandbox records.
    pub(super) fn open(
        root: PathBuf,
        cidr: Ipv4Cidr,
        image_dir: PathBuf,
        shim: PathBuf,
        cgroups: Cgroups,
    ) -> Result<Self, RuntimeError> {
        for sub in ["sandboxes", "containers"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
            sweep_removing(&dir)?;
        }
        let ipam_path = root.join(IPAM_FILE);
        // The sandbox records are the source of truth; the allocations file
        // is rebuilt from them when it is missing or unreadable.
        let mut alloc = match read_opt::<Allocations>(&ipam_path) {
            Ok(Some(a)) => a,
            Ok(None) => Allocations::new(&cidr),
            Err(e) => {
                tracing::error!("{e}; rebuilding the pod IP allocations from the sandbox records");
                Allocations::new(&cidr)
            }
        };
        if alloc.cidr != cidr.to_string() {
            tracing::warn!(from = %alloc.cidr, to = %cidr, "pod CIDR changed; keeping only addresses inside the new one");
            alloc.cidr = cidr.to_string();
        }
        let inner = Self {
            sandboxes_dir: root.join("sandboxes"),
            containers_dir: root.join("containers"),
            root,
            cidr,
            image_dir,
            shim,
            cgroups,
            ipam: std::sync::Mutex::new(Allocations::default()),
        };
        let ready: Vec<SandboxRecord> = inner
            .sandbox_records()?
            .into_iter()
            .filter(|s| s.ready)
            .collect();
        let mut changed = alloc.retain_holders(|ip, holder| {
            cidr.contains(*ip) && ready.iter().any(|s| s.id == holder && s.ip == Some(*ip))
        });
        for s in &ready {
            // A ready sandbox whose address is not recorded (the file was
            // lost) gets it back, unless someone else holds it.
            if let Some(ip) = s.ip
                && cidr.contains(ip)
                && !alloc.by_ip.contains_key(&ip)
            {
                alloc.by_ip.insert(ip, s.id.clone());
                changed = true;
            }
        }
        if changed || !ipam_path.exists() {
            write_atomic(&ipam_path, &alloc)?;
        }
        *inner.ipam.lock().unwrap_or_else(|e| e.into_inner()) = alloc;
        Ok(inner)
    }

    fn sandbox_dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        check_id(id)?;
        Ok(self.sandboxes_dir.join(id))
    }

    /// The record of sandbox `id`, or `None`.
    pub(super) fn sandbox_record(&self, id: &str) -> Result<Option<SandboxRecord>, RuntimeError> {
        read_opt(&self.sandbox_dir(id)?.join(SANDBOX_FILE))
    }

    fn sandbox_records(&self) -> Result<Vec<SandboxRecord>, RuntimeError> {
        let mut out = Vec::new();
        for id in list_dirs(&self.sandboxes_dir)? {
            let path = self.sandboxes_dir.join(&id).join(SANDBOX_FILE);
            match read_opt::<SandboxRecord>(&path)? {
                Some(r) => out.push(r),
                None => {
                    return Err(RuntimeError::Failed(format!(
                        "corrupt sandbox {id}: {} is missing",
                        path.display()
                    )));
                }
            }
        }
        Ok(out)
    }

    fn save_ipam(&self, alloc: &Allocations) -> Result<(), RuntimeError> {
        write_atomic(&self.root.join(IPAM_FILE), alloc)
    }

    pub(super) fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String, RuntimeError> {
        let m = &config.metadata;
        if m.name.is_empty() || m.namespace.is_empty() || m.uid.is_empty() {
            return Err(RuntimeError::InvalidArgument(
                "sandbox metadata needs a name, namespace and uid".into(),
            ));
        }
        std::fs::create_dir_all(&config.log_directory).map_err(io_err(format!(
            "creating log directory {}",
            config.log_directory.display()
        )))?;
        let id = new_id();
        let mut alloc = self.ipam.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = alloc.clone();
        let ip = next.allocate(&self.cidr, &id)?;
        self.save_ipam(&next)?;
        *alloc = next;
        let record = SandboxRecord {
            id: id.clone(),
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            attempt: m.attempt,
            hostname: config.hostname.clone(),
            log_directory: config.log_directory.clone(),
            ip: Some(ip),
            ready: true,
            created_at: SystemTime::now(),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            cpu_millis: config.resources.cpu_millis,
            memory_bytes: config.resources.memory_bytes,
        };
        if let Err(e) = create_dir_atomic(&self.sandboxes_dir, &id, SANDBOX_FILE, &record) {
            let mut next = alloc.clone();
            next.release(&id);
            if self.save_ipam(&next).is_ok() {
                *alloc = next;
            }
            return Err(e);
        }
        Ok(id)
    }

    pub(super) fn stop_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(mut record) = self.sandbox_record(id)? else {
            return Ok(());
        };
        let filter = ContainerFilter {
            sandbox_id: Some(id.to_string()),
        };
        for c in self.container_records(&filter)? {
            self.stop_container(&c.id, Duration::ZERO)?;
        }
        let mut alloc = self.ipam.lock().unwrap_or_else(|e| e.into_inner());
        if record.ready {
            record.ready = false;
            record.ip = None;
            write_atomic(&self.sandbox_dir(id)?.join(SANDBOX_FILE), &record)?;
        }
        let mut next = alloc.clone();
        if next.release(id) {
            self.save_ipam(&next)?;
            *alloc = next;
        }
        Ok(())
    }

    pub(super) fn remove_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(record) = self.sandbox_record(id)? else {
            return Ok(());
        };
        self.stop_pod_sandbox(id)?;
        let filter = ContainerFilter {
            sandbox_id: Some(id.to_string()),
        };
        for c in self.container_records(&filter)? {
            self.remove_container(&c.id)?;
        }
        let dir = self.sandbox_dir(id)?;
        let logs: Vec<PathBuf> = read_opt(&dir.join(REMOVED_LOGS_FILE))?.unwrap_or_default();
        for log in &logs {
            remove_file_if_present(log)?;
        }
        // The kubelet's per-pod log folder goes once nothing is left in it
        // (a newer sandbox of the same pod may still be writing there).
        let _ = std::fs::remove_dir(&record.log_directory);
        remove_dirs(&self.cgroups.sandbox_dirs(id));
        remove_dir_atomic(&dir)
    }

    pub(super) fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus, RuntimeError> {
        self.sandbox_record(id)?
            .map(|r| to_status(&r))
            .ok_or_else(|| RuntimeError::NotFound(format!("pod sandbox {id}")))
    }

    pub(super) fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>, RuntimeError> {
        Ok(self.sandbox_records()?.iter().map(to_status).collect())
    }

    /// Adds a removed container's log file to its sandbox's list, so that
    /// removing the sandbox removes it.
    pub(super) fn remember_removed_log(
        &self,
        sandbox_id: &str,
        log: &Path,
    ) -> Result<(), RuntimeError> {
        let dir = self.sandbox_dir(sandbox_id)?;
        if !dir.exists() {
            return remove_file_if_present(log);
        }
        let _guard = self.ipam.lock().unwrap_or_else(|e| e.into_inner());
        let path = dir.join(REMOVED_LOGS_FILE);
        let mut logs: Vec<PathBuf> = read_opt(&path)?.unwrap_or_default();
        if !logs.iter().any(|l| l == log) {
            logs.push(log.to_path_buf());
            write_atomic(&path, &logs)?;
        }
        Ok(())
    }
}

fn remove_file_if_present(path: &Path) -> Result<(), RuntimeError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
    }
}

fn to_status(r: &SandboxRecord) -> SandboxStatus {
    SandboxStatus {
        id: r.id.clone(),
        metadata: SandboxMetadata {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            uid: r.uid.clone(),
            attempt: r.attempt,
        },
        state: if r.ready {
            SandboxState::Ready
        } else {
            SandboxState::NotReady
        },
        ip: r.ip.map(IpAddr::V4),
        created_at: r.created_at,
        labels: r.labels.clone(),
        annotations: r.annotations.clone(),
    }
}

//! CPU and memory limits through cgroups, where the host allows them.
//!
//! Detected once, when the runtime is built ([`Cgroups::detect`]):
//! - **cgroup v2** (a `cgroup2` mount whose root offers the `cpu` and
//!   `memory` controllers and is writable, e.g. running as root): the
//!   controllers are enabled in the root's and `capstan/`'s
//!   `cgroup.subtree_control`, and each container gets
//!   `<mount>/capstan/<sandbox>/<container>` with `cpu.max` and
//!   `memory.max`;
//! - **cgroup v1** (hybrid hosts: writable `cpu` and `memory`
//!   hierarchies): the same layout in each hierarchy, with
//!   `cpu.cfs_quota_us`/`cpu.cfs_period_us` and `memory.limit_in_bytes`;
//! - otherwise, or when disabled in the configuration, limits are **not
//!   enforced** and [`Cgroups::Unavailable`] carries the reason, which the
//!   runtime reports in its `CgroupLimits` condition and in every
//!   container's status.
//!
//! Pod limits are set on the sandbox's cgroup, container limits on the
//! container's. The shim joins the container's cgroups before it starts
//! the container process, so every process of the container is inside.

use std::path::{Path, PathBuf};

use crate::runtime::Resources;

use super::records::MemoryCgroup;

/// The CFS period used for CPU limits (100 ms, as Kubernetes).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts.
const MIN_QUOTA_US: u64 = 1_000;

/// What this host allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cgroups {
    /// Unified hierarchy; `base` is `<mount>/capstan`.
    V2 {
        /// `<mount>/capstan`.
        base: PathBuf,
    },
    /// Legacy hierarchies; each `base` is `<hierarchy>/capstan`.
    V1 {
        /// `<cpu hierarchy>/capstan`.
        cpu: PathBuf,
        /// `<memory hierarchy>/capstan`.
        memory: PathBuf,
    },
    /// Limits cannot be enforced.
    Unavailable {
        /// CamelCase reason.
        reason: String,
        /// Why, for humans.
        message: String,
    },
}

/// The cgroups made for one container.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// Directories created (innermost last), removed with the container.
    pub dirs: Vec<PathBuf>,
    /// `cgroup.procs` files to join.
    pub procs: Vec<PathBuf>,
    /// Where OOM kills are counted.
    pub memory: Option<MemoryCgroup>,
}

impl Cgroups {
    /// Probes the host. `enabled: false` skips the probe.
    pub fn detect(enabled: bool) -> Self {
        if !enabled {
            return Self::Unavailable {
                reason: "Disabled".into(),
                message: "cgroup limits are disabled in the runtime configuration".into(),
            };
        }
        let mounts = match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(m) => m,
            Err(e) => {
                return Self::Unavailable {
                    reason: "NoCgroupFs".into(),
                    message: format!("cannot read /proc/self/mountinfo: {e}"),
                };
            }
        };
        let mut why = Vec::new();
        for (mount, fstype, _) in parse_mountinfo(&mounts) {
            if fstype == "cgroup2" {
                match try_v2(&mount) {
                    Ok(base) => return Self::V2 { base },
                    Err(e) => why.push(format!("cgroup v2 at {}: {e}", mount.display())),
                }
            }
        }
        let v1 = |ctl: &str| {
            parse_mountinfo(&mounts)
                .into_iter()
                .find(|(_, fstype, opts)| fstype == "cgroup" && opts.split(',').any(|o| o == ctl))
                .map(|(m, _, _)| m)
        };
        match (v1("cpu"), v1("memory")) {
            (Some(cpu), Some(memory)) => match (
                try_v1(&cpu, "cpu.cfs_quota_us"),
                try_v1(&memory, "memory.limit_in_bytes"),
            ) {
                (Ok(cpu), Ok(memory)) => return Self::V1 { cpu, memory },
                (Err(e), _) | (_, Err(e)) => why.push(format!("cgroup v1: {e}")),
            },
            _ => why.push("no cgroup v1 cpu and memory hierarchies".into()),
        }
        Self::Unavailable {
            reason: "CgroupsNotWritable".into(),
            message: format!("CPU and memory limits are not enforced: {}", why.join("; ")),
        }
    }

    /// Whether limits are enforced.
    pub fn enforced(&self) -> bool {
        !matches!(self, Self::Unavailable { .. })
    }

    /// Creates the sandbox's and the container's cgroups and writes their
    /// limits. An error means limits are not enforced for this container
    /// (it still runs), with the message saying why.
    pub fn place(
        &self,
        sandbox_id: &str,
        container_id: &str,
        pod: &Resources,
        container: &Resources,
    ) -> Result<Placement, String> {
        let mut placement = Placement::default();
        let result: Result<(), String> = match self {
            Self::Unavailable { message, .. } => return Err(message.clone()),
            Self::V2 { base } => {
                let pod_dir = base.join(sandbox_id);
                let dir = pod_dir.join(container_id);
                (|| {
                    make(&pod_dir, &mut placement)?;
                    write(&pod_dir.join("cgroup.subtree_control"), "+cpu +memory")?;
                    v2_limits(&pod_dir, pod)?;
                    make(&dir, &mut placement)?;
                    v2_limits(&dir, container)?;
                    placement.procs.push(dir.join("cgroup.procs"));
                    placement.memory = Some(MemoryCgroup {
                        events_file: dir.join("memory.events"),
                    });
                    Ok(())
                })()
            }
            Self::V1 { cpu, memory } => (|| {
                for (base, is_cpu) in [(cpu, true), (memory, false)] {
                    let pod_dir = base.join(sandbox_id);
                    let dir = pod_dir.join(container_id);
                    make(&pod_dir, &mut placement)?;
                    make(&dir, &mut placement)?;
                    if is_cpu {
                        v1_cpu(&pod_dir, pod.cpu_millis)?;
                        v1_cpu(&dir, container.cpu_millis)?;
                    } else {
                        v1_memory(&pod_dir, pod.memory_bytes)?;
                        v1_memory(&dir, container.memory_bytes)?;
                        placement.memory = Some(MemoryCgroup {
                            events_file: dir.join("memory.oom_control"),
                        });
                    }
                    placement.procs.push(dir.join("cgroup.procs"));
                }
                Ok(())
            })(),
        };
        match result {
            Ok(()) => Ok(placement),
            Err(e) => {
                remove_dirs(&placement.dirs);
                Err(format!("CPU and memory limits are not enforced: {e}"))
            }
        }
    }

    /// The sandbox's cgroup directories (removed with the sandbox).
    pub fn sandbox_dirs(&self, sandbox_id: &str) -> Vec<PathBuf> {
        match self {
            Self::V2 { base } => vec![base.join(sandbox_id)],
            Self::V1 { cpu, memory } => vec![cpu.join(sandbox_id), memory.join(sandbox_id)],
            Self::Unavailable { .. } => Vec::new(),
        }
    }
}

/// Removes cgroup directories, innermost first; a cgroup that still has
/// processes stays (rmdir fails) and is logged.
pub fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        match std::fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(cgroup = %d.display(), error = %e, "cannot remove cgroup"),
        }
    }
}

/// Whether `events_file` (`memory.events` or `memory.oom_control`)
/// counts at least one OOM kill.
pub fn oom_killed(events_file: &Path) -> bool {
    std::fs::read_to_string(events_file)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .is_some_and(|n| n > 0)
}

fn make(dir: &Path, placement: &mut Placement) -> Result<(), String> {
    match std::fs::create_dir(dir) {
        Ok(()) => {
            placement.dirs.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create cgroup {}: {e}", dir.display())),
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value)
        .map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

fn quota_us(millis: u64) -> u64 {
    (millis * CPU_PERIOD_US / 1000).max(MIN_QUOTA_US)
}

fn v2_limits(dir: &Path, r: &Resources) -> Result<(), String> {
    if let Some(m) = r.cpu_millis {
        write(
            &dir.join("cpu.max"),
            &format!("{} {CPU_PERIOD_US}", quota_us(m)),
        )?;
    }
    if let Some(b) = r.memory_bytes {
        write(&dir.join("memory.max"), &b.to_string())?;
    }
    Ok(())
}

fn v1_cpu(dir: &Path, millis: Option<u64>) -> Result<(), String> {
    if let Some(m) = millis {
        write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
        write(&dir.join("cpu.cfs_quota_us"), &quota_us(m).to_string())?;
    }
    Ok(())
}

fn v1_memory(dir: &Path, bytes: Option<u64>) -> Result<(), String> {
    if let Some(b) = bytes {
        write(&dir.join("memory.limit_in_bytes"), &b.to_string())?;
    }
    Ok(())
}

/// Makes `<mount>/capstan` with the cpu and memory controllers delegated.
fn try_v2(mount: &Path) -> Result<PathBuf, String> {
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers"))
        .map_err(|e| format!("cannot read cgroup.controllers: {e}"))?;
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    if !has("cpu") || !has("memory") {
        return Err(format!(
            "the cpu and memory controllers are not available (controllers: {:?})",
            controllers.trim()
        ));
    }
    write(&mount.join("cgroup.subtree_control"), "+cpu +memory")?;
    let base = mount.join("capstan");
    make(&base, &mut Placement::default())?;
    write(&base.join("cgroup.subtree_control"), "+cpu +memory")?;
    Ok(base)
}

/// Makes `<hierarchy>/capstan` and checks it has the `probe` file.
fn try_v1(mount: &Path, probe: &str) -> Result<PathBuf, String> {
    let base = mount.join("capstan");
    make(&base, &mut Placement::default())?;
    if !base.join(probe).exists() {
        return Err(format!("{} has no {probe}", base.display()));
    }
    Ok(base)
}

/// `(mount point, fs type, super options)` of each line of mountinfo.
fn parse_mountinfo(text: &str) -> Vec<(PathBuf, String, String)> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mount = pre.split_whitespace().nth(4)?;
            let mut post = post.split_whitespace();
            let fstype = post.next()?.to_string();
            let _source = post.next();
            let opts = post.next().unwrap_or("").to_string();
            Some((PathBuf::from(mount.replace("\\040", " ")), fstype, opts))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let m = parse_mountinfo(
            "35 24 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             36 24 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(
            m[0],
            (
                "/sys/fs/cgroup/memory".into(),
                "cgroup".into(),
                "rw,memory".into()
            )
        );
        assert_eq!(m[1].1, "cgroup2");
    }

    #[test]
    fn quota_follows_millicores() {
        assert_eq!(quota_us(500), 50_000);
        assert_eq!(quota_us(2000), 200_000);
        assert_eq!(quota_us(1), MIN_QUOTA_US);
    }

    #[test]
    fn disabled_is_reported() {
        let c = Cgroups::detect(false);
        assert!(!c.enforced());
        let e = c
            .place("a", "b", &Resources::default(), &Resources::default())
            .unwrap_err();
        assert!(e.contains("disabled"), "{e}");
    }

    #[test]
    fn reads_oom_kill_counters() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("memory.events");
        std::fs::write(&f, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        assert!(oom_killed(&f));
        std::fs::write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
        assert!(!oom_killed(&f));
        assert!(!oom_killed(&d.path().join("absent")));
    }
}

//! The container shim: `capstan container-shim start|run CONTAINER_DIR`,
//! Capstan's counterpart of containerd-shim. It is what keeps a container
//! running, and its exit status known, across kubelet restarts.
//!
//! - `start` (run by the runtime's `start_container`): launches `run` as a
//!   detached process, waits until it reports the container started
//!   (`started.json`) or failed to start (`exit.json`), and exits 0 or 1
//!   (with the reason on stderr). The runtime waits only for this short
//!   launcher, so it never has long-lived children to reap.
//! - `run` (the supervisor): starts a new session (away from the kubelet's
//!   terminal and process group, so it outlives the kubelet), joins the
//!   container's cgroups, starts the container process in its own process
//!   group with stdout and stderr appended to the log file, records
//!   `started.json`, waits, kills what is left of the container's process
//!   group, records `exit.json` (exit code, or 128 + signal; `Completed`,
//!   `Error` or `OOMKilled`) and exits.
//!
//! The container's log file holds the raw bytes of both streams as the
//! process wrote them, interleaved, with no CRI framing (no timestamps or
//! stream tags).

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rustix::process::Signal;

use super::cgroup::oom_killed;
use super::procfs;
use super::records::{
    CONTAINER_FILE, ContainerRecord, EXIT_FILE, ExitRecord, SHIM_LOG_FILE, STARTED_FILE,
    StartedRecord, read_opt, write_atomic,
};

/// The subcommand of the shim executable that runs [`shim_main`].
pub const SHIM_SUBCOMMAND: &str = "container-shim";

/// How long `start` waits for the supervisor to report.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Exit code recorded when the process could not be started at all.
const START_ERROR_CODE: i32 = 128;

/// Entry point of `capstan container-shim ARGS...` (ARGS: `start DIR` or
/// `run DIR`).
pub fn shim_main(args: Vec<OsString>) -> ExitCode {
    let mut it = args.into_iter();
    let (Some(mode), Some(dir), None) = (it.next(), it.next(), it.next()) else {
        eprintln!("usage: capstan {SHIM_SUBCOMMAND} start|run CONTAINER_DIR");
        return ExitCode::from(64);
    };
    let dir = PathBuf::from(dir);
    let result = match mode.to_str() {
        Some("start") => launch(&dir),
        Some("run") => supervise(&dir),
        _ => {
            eprintln!("capstan {SHIM_SUBCOMMAND}: unknown mode {mode:?} (start or run)");
            return ExitCode::from(64);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `start`: launch the supervisor and wait for its report.
fn launch(dir: &Path) -> Result<(), String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the shim executable: {e}"))?;
    let shim_log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(SHIM_LOG_FILE))
        .map_err(|e| format!("cannot open {}: {e}", dir.join(SHIM_LOG_FILE).display()))?;
    let mut child = Command::new(&exe)
        .arg(SHIM_SUBCOMMAND)
        .arg("run")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(shim_log)
        .spawn()
        .map_err(|e| format!("cannot start the shim {}: {e}", exe.display()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if dir.join(STARTED_FILE).exists() {
            return Ok(());
        }
        if let Some(exit) =
            read_opt::<ExitRecord>(&dir.join(EXIT_FILE)).map_err(|e| e.to_string())?
        {
            return Err(exit.message);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It may have written its record just before exiting.
            if dir.join(STARTED_FILE).exists() {
                return Ok(());
            }
            if let Some(exit) =
                read_opt::<ExitRecord>(&dir.join(EXIT_FILE)).map_err(|e| e.to_string())?
            {
                return Err(exit.message);
            }
            return Err(format!(
                "the shim exited ({status}) without starting the container; see {}",
                dir.join(SHIM_LOG_FILE).display()
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the shim did not report within {START_TIMEOUT:?}; see {}",
                dir.join(SHIM_LOG_FILE).display()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `run`: the supervisor.
fn supervise(dir: &Path) -> Result<(), String> {
    // A new session: no controlling terminal, not in the kubelet's process
    // group, so nothing aimed at the kubelet reaches the container.
    rustix::process::setsid().map_err(|e| format!("setsid: {e}"))?;
    let record: ContainerRecord = read_opt(&dir.join(CONTAINER_FILE))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is missing", dir.join(CONTAINER_FILE).display()))?;
    let p = &record.process;
    let me = std::process::id().to_string();
    for procs in &p.cgroup_procs {
        // Joined before the container starts, so all its processes are in.
        if let Err(e) = std::fs::write(procs, &me) {
            eprintln!(
                "cannot join cgroup {}: {e}; limits are not enforced",
                procs.display()
            );
        }
    }
    let spawned = open_log(&p.log_path).and_then(|log| {
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot duplicate the log file handle: {e}"))?;
        let (exe, args) = p
            .argv
            .split_first()
            .ok_or("the container has an empty command")?;
        Command::new(exe)
            .args(args)
            .env_clear()
            .envs(p.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&p.working_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {exe:?} (working directory {}): {e}",
                    p.working_dir.display()
                )
            })
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(message) => {
            let exit = ExitRecord {
                exit_code: START_ERROR_CODE,
                signal: None,
                finished_at: SystemTime::now(),
                reason: "StartError".into(),
                message: message.clone(),
            };
            write_atomic(&dir.join(EXIT_FILE), &exit).map_err(|e| e.to_string())?;
            return Err(message);
        }
    };
    let pid = child.id();
    let started = StartedRecord {
        shim_pid: std::process::id(),
        shim_start_ticks: procfs::start_ticks(std::process::id()).unwrap_or(0),
        pid,
        start_ticks: procfs::start_ticks(pid).unwrap_or(0),
        started_at: SystemTime::now(),
    };
    if let Err(e) = write_atomic(&dir.join(STARTED_FILE), &started) {
        let _ = procfs::signal_group(pid, Signal::KILL);
        let _ = child.wait();
        return Err(e.to_string());
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for pid {pid}: {e}"))?;
    // As when a container's init process dies: the rest of it goes too.
    let _ = procfs::signal_group(pid, Signal::KILL);
    let (exit_code, signal) = match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(sig)) => (128 + sig, Some(sig)),
        (None, None) => (START_ERROR_CODE, None),
    };
    let oom = signal == Some(9)
        && p.memory_cgroup
            .as_ref()
            .is_some_and(|m| oom_killed(&m.events_file));
    let (reason, message) = match (exit_code, oom, signal) {
        (_, true, _) => (
            "OOMKilled",
            "killed by the kernel: memory limit reached".to_string(),
        ),
        (0, _, _) => ("Completed", String::new()),
        (_, _, Some(sig)) => ("Error", format!("killed by signal {sig}")),
        (code, _, None) => ("Error", format!("exited with code {code}")),
    };
    let exit = ExitRecord {
        exit_code,
        signal,
        finished_at: SystemTime::now(),
        reason: reason.into(),
        message,
    };
    write_atomic(&dir.join(EXIT_FILE), &exit).map_err(|e| e.to_string())
}

fn open_log(path: &Path) -> Result<std::fs::File, String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create log directory {}: {e}", parent.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}

//! The processes `capstan up` runs: each daemon is `capstan <subcommand>
//! --config FILE` in the data directory, with its stderr in `logs/` and its
//! pid in `run/`, stopped with SIGTERM and, after a timeout, SIGKILL.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long a daemon may take to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One daemon process of the local cluster.
pub struct Daemon {
    /// `apiserver-1`, `scheduler`, `kubelet-node-1`, ...
    pub name: String,
    /// The `capstan` subcommand.
    pub subcommand: &'static str,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
    reported: bool,
}

impl Daemon {
    /// A daemon named `name` running `capstan SUBCOMMAND --config DIR/NAME.yaml`.
    pub fn new(dir: &Path, name: &str, subcommand: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            subcommand,
            config: dir.join(format!("{name}.yaml")),
            log: dir.join(format!("logs/{name}.log")),
            pid_file: dir.join(format!("run/{name}.pid")),
            child: None,
            reported: false,
        }
    }

    /// Starts it (its working directory is `dir`).
    pub fn start(&mut self, dir: &Path) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("locating the capstan binary")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        // Its own process group: a Ctrl-C in the terminal reaches only
        // `capstan up`, which then stops the daemons in order (clients
        // before the apiservers they release their Leases through).
        let child = Command::new(exe)
            .process_group(0)
            .arg(self.subcommand)
            .arg("--config")
            .arg(&self.config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        std::fs::write(&self.pid_file, child.id().to_string())?;
        self.child = Some(child);
        self.reported = false;
        Ok(())
    }

    /// Its exit status, once, if it exited since the last call.
    pub fn newly_exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.reported {
            return None;
        }
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.reported = true;
        Some(status)
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// SIGTERM to every daemon, then wait for all (SIGKILL after the timeout).
pub fn stop_all<'a>(daemons: impl IntoIterator<Item = &'a mut Daemon>) {
    let mut daemons: Vec<&mut Daemon> = daemons.into_iter().collect();
    for d in &daemons {
        if let Some(child) = &d.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for d in &mut daemons {
        if let Some(mut child) = d.child.take() {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&d.pid_file);
    }
}

//! A container's state, read from its records and the host's process
//! table: the shim's `exit.json` (Exited), else `started.json` with a
//! live process of the same start time (Running), else Created — or
//! Unknown when the process is gone and no shim is left to say how it
//! ended.

use std::path::Path;

use super::procfs;
use super::records::{
    ContainerRecord, EXIT_FILE, ExitRecord, SHIM_LOG_FILE, START_FILE, STARTED_FILE, StartedRecord,
    read_opt,
};
use crate::runtime::{ContainerMetadata, ContainerState, ContainerStatus, RuntimeError};

/// What the files of one container say.
pub(super) struct Observed {
    /// The shim's start report.
    pub started: Option<StartedRecord>,
    /// The shim's exit report.
    pub exit: Option<ExitRecord>,
    /// Whether a start was requested.
    pub start_claimed: bool,
}

impl Observed {
    /// Reads the files in `dir`.
    pub fn read(dir: &Path) -> Result<Self, RuntimeError> {
        Ok(Self {
            started: read_opt(&dir.join(STARTED_FILE))?,
            exit: read_opt(&dir.join(EXIT_FILE))?,
            start_claimed: dir.join(START_FILE).exists(),
        })
    }

    /// The state these files and the process table imply.
    pub fn state(&self) -> ContainerState {
        match (&self.exit, &self.started) {
            (Some(_), _) => ContainerState::Exited,
            (None, Some(s)) if self.running(s) => ContainerState::Running,
            (None, Some(_)) => ContainerState::Unknown,
            (None, None) => ContainerState::Created,
        }
    }

    /// The process lives, or it just ended and its shim, still alive, is
    /// about to record how.
    fn running(&self, s: &StartedRecord) -> bool {
        procfs::is_alive(s.pid, s.start_ticks) || procfs::is_alive(s.shim_pid, s.shim_start_ticks)
    }
}

/// The CRI status of a container.
pub(super) fn status(
    record: &ContainerRecord,
    dir: &Path,
) -> Result<ContainerStatus, RuntimeError> {
    let seen = Observed::read(dir)?;
    let state = seen.state();
    let mut messages = Vec::new();
    let (exit_code, finished_at, reason) = match &seen.exit {
        Some(e) => {
            if !e.message.is_empty() {
                messages.push(e.message.clone());
            }
            (Some(e.exit_code), Some(e.finished_at), e.reason.clone())
        }
        None => (None, None, String::new()),
    };
    let reason = match state {
        ContainerState::Unknown => {
            let s = seen.started.as_ref();
            messages.push(format!(
                "container process {} is gone and its shim recorded no exit status; see {}",
                s.map(|s| s.pid).unwrap_or(0),
                dir.join(SHIM_LOG_FILE).display()
            ));
            "Unknown".to_string()
        }
        ContainerState::Created if seen.start_claimed => {
            messages.push(format!(
                "a start was requested but the shim reported nothing; see {}",
                dir.join(SHIM_LOG_FILE).display()
            ));
            reason
        }
        _ => reason,
    };
    if !record.limits_enforced {
        messages.push(record.limits_message.clone());
    }
    Ok(ContainerStatus {
        id: record.id.clone(),
        sandbox_id: record.sandbox_id.clone(),
        metadata: ContainerMetadata {
            name: record.name.clone(),
            attempt: record.attempt,
        },
        state,
        image: record.image.clone(),
        created_at: record.created_at,
        started_at: seen.started.as_ref().map(|s| s.started_at),
        finished_at,
        exit_code,
        reason,
        message: messages.join("; "),
        log_path: record.process.log_path.clone(),
        limits_enforced: record.limits_enforced,
        labels: record.labels.clone(),
        annotations: record.annotations.clone(),
    })
}

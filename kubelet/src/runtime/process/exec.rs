//! `exec_sync` (exec probes): runs a command with the container's
//! environment and working directory, in its own process group, captures
//! at most [`MAX_OUTPUT`] bytes of each stream, and kills the group when
//! the timeout passes. The command runs outside the container's cgroups
//! (joining them needs a `pre_exec` hook, which is unsafe code).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::Inner;
use super::procfs;
use crate::runtime::{ExecResult, RuntimeError};

/// Bytes kept of stdout and of stderr (Kubernetes keeps 10 KiB of an exec
/// probe's output).
pub const MAX_OUTPUT: usize = 16 * 1024;

impl Inner {
    pub(super) fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        let process = self.running_process(id)?;
        let (exe, args) = cmd
            .split_first()
            .ok_or_else(|| RuntimeError::InvalidArgument("exec: empty command".into()))?;
        let mut child = Command::new(exe)
            .args(args)
            .env_clear()
            .envs(process.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&process.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| RuntimeError::Failed(format!("exec {exe:?} in container {id}: {e}")))?;
        let pgid = child.id();
        let out = child.stdout.take().map(bounded_reader);
        let err = child.stderr.take().map(bounded_reader);
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(RuntimeError::Failed(format!("exec {exe:?}: waiting: {e}"))),
            }
        };
        // Whatever the command left behind in its group goes too (this
        // also closes the pipes the readers wait on).
        let _ = procfs::signal_group(pgid, Signal::KILL);
        let status = match status {
            Some(s) => s,
            None => {
                let _ = child.wait();
                return Err(RuntimeError::Failed(format!(
                    "exec {cmd:?} in container {id} timed out after {timeout:?}"
                )));
            }
        };
        let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        use std::os::unix::process::ExitStatusExt;
        Ok(ExecResult {
            exit_code: status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(-1),
            stdout: join(out),
            stderr: join(err),
        })
    }
}

/// Reads a pipe to its end on a thread, keeping the first [`MAX_OUTPUT`]
/// bytes (the rest is drained so the writer never blocks).
fn bounded_reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

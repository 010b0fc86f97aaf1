//! Host process facts and signals: whether a pid is still the process we
//! started (its start time in `/proc/<pid>/stat` guards against pid
//! reuse, and a zombie counts as gone), and signals to process groups
//! through rustix's safe wrappers.

use rustix::process::{Pid, Signal};

/// A process's start time in clock ticks since boot and whether it is a
/// zombie, from `/proc/<pid>/stat`; `None` when there is no such process.
pub fn stat(pid: u32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so
    // split after the last ')'. starttime is field 22; state is field 3.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = *fields.first()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

/// The start time of a live process, if it lives.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|(t, _)| t)
}

/// True while `pid` is the (non-zombie) process that started at `ticks`.
pub fn is_alive(pid: u32, ticks: u64) -> bool {
    matches!(stat(pid), Some((t, false)) if t == ticks)
}

/// Signals the process group `pgid`; a group that is already gone is not
/// an error. Refuses pgid 0 and 1 (which would mean "our own group" and
/// "every process").
pub fn signal_group(pgid: u32, signal: Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pgid)
        .ok()
        .filter(|p| *p > 1)
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("refusing to signal process group {pgid}")))?;
    match rustix::process::kill_process_group(pid, signal) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_start_time_and_sees_dead_children() {
        let me = std::process::id();
        let t = start_ticks(me).expect("own /proc stat");
        assert!(is_alive(me, t));
        assert!(!is_alive(me, t + 1));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(start_ticks(pid).is_none() || !is_alive(pid, 0));
        assert!(signal_group(1, Signal::TERM).is_err());
        assert!(signal_group(0, Signal::TERM).is_err());
    }
}

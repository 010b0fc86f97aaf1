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

/// CPU time (own and reaped children's, in nanoseconds) and resident
/// memory (bytes) summed over the live processes of group `pgid`, read
/// from `/proc/*/stat`.
pub fn group_usage(pgid: u32) -> (u64, u64) {
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let page = rustix::param::page_size() as u64;
    let (mut cpu_ticks, mut rss_pages) = (0u64, 0u64);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = text.rfind(')').map(|i| &text[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the comm: state(3) ppid(4) pgrp(5) ... utime(14) stime(15)
        // cutime(16) cstime(17) ... rss(24); index = field - 3.
        let num = |field: usize| {
            f.get(field - 3)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        if num(5) != i64::from(pgid) || f.first() == Some(&"Z") {
            continue;
        }
        cpu_ticks += [14, 15, 16, 17]
            .iter()
            .map(|&i| num(i).max(0) as u64)
            .sum::<u64>();
        rss_pages += num(24).max(0) as u64;
    }
    (cpu_ticks * 1_000_000_000 / ticks, rss_pages * page)
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

//! The pod cells of `get pods`, computed as kubectl's printer does
//! (`printPod`): READY counts containers that are ready and running;
//! STATUS is the first failing init container (`Init:…`), else the last
//! container's waiting or terminated reason (`ContainerCreating`,
//! `CrashLoopBackOff`, `ErrImagePull`, `Completed`, `Error`,
//! `ExitCode:N`, `Signal:N`), else the phase or the pod's reason, and
//! `Terminating` once deletion has started; RESTARTS sums the counts,
//! with how long ago the latest restart was.

use serde_json::Value;
use time::OffsetDateTime;

use crate::table::{at, items};

/// The cells of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodCells {
    /// `ready/total`.
    pub ready: String,
    /// kubectl's STATUS.
    pub status: String,
    /// `N` or `N (AGE ago)`.
    pub restarts: String,
}

fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn int_at(v: &Value, path: &str) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

/// A terminated state's reason, else `Signal:N` / `ExitCode:N`.
fn terminated_reason(t: &Value, prefix: &str) -> String {
    match str_at(t, "reason") {
        Some(r) => format!("{prefix}{r}"),
        None if int_at(t, "signal") != 0 => format!("{prefix}Signal:{}", int_at(t, "signal")),
        None => format!("{prefix}ExitCode:{}", int_at(t, "exitCode")),
    }
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    items(pod, "status.conditions")
        .iter()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// kubectl's READY, STATUS and RESTARTS for `pod` at `now`.
pub fn pod_cells(pod: &Value, now: OffsetDateTime) -> PodCells {
    let total = items(pod, "spec.containers").len();
    let init_total = items(pod, "spec.initContainers").len();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<OffsetDateTime> = None;
    let mut note_restart = |c: &Value, restarts: &mut i64| {
        *restarts += int_at(c, "restartCount");
        if let Some(t) = str_at(c, "lastState.terminated.finishedAt").and_then(parse_time)
            && last_restart.is_none_or(|l| t > l)
        {
            last_restart = Some(t);
        }
    };
    let mut reason = str_at(pod, "status.reason")
        .or_else(|| str_at(pod, "status.phase"))
        .unwrap_or("Pending")
        .to_owned();
    if items(pod, "status.conditions")
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let mut initializing = false;
    for (i, c) in items(pod, "status.initContainerStatuses")
        .iter()
        .enumerate()
    {
        note_restart(c, &mut restarts);
        let terminated = at(c, "state.terminated");
        let waiting = str_at(c, "state.waiting.reason");
        match (terminated, waiting) {
            (Some(t), _) if int_at(t, "exitCode") == 0 => continue,
            (Some(t), _) => reason = terminated_reason(t, "Init:"),
            (None, Some(w)) if w != "PodInitializing" => reason = format!("Init:{w}"),
            _ => reason = format!("Init:{i}/{init_total}"),
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = 0;
        let mut has_running = false;
        for c in items(pod, "status.containerStatuses").iter().rev() {
            note_restart(c, &mut restarts);
            if let Some(w) = str_at(c, "state.waiting.reason") {
                reason = w.to_owned();
            } else if let Some(t) = at(c, "state.terminated") {
                reason = terminated_reason(t, "");
            } else if c["ready"] == true && at(c, "state.running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if at(pod, "metadata.deletionTimestamp").is_some_and(|d| !d.is_null()) {
        let phase = str_at(pod, "status.phase").unwrap_or("");
        if str_at(pod, "status.reason") == Some("NodeLost") {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }

    let restarts = match last_restart {
        Some(t) if restarts > 0 => format!(
            "{restarts} ({} ago)",
            crate::table::age(
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
                    .as_deref(),
                now
            )
        ),
        _ => restarts.to_string(),
    };
    PodCells {
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts,
    }
}

/// READINESS GATES: `true/total` of `spec.readinessGates`, `<none>` when none.
pub fn readiness_gates(pod: &Value) -> String {
    let gates = items(pod, "spec.readinessGates");
    if gates.is_empty() {
        return "<none>".into();
    }
    let met = gates
        .iter()
        .filter(|g| {
            g.get("conditionType")
                .and_then(Value::as_str)
                .is_some_and(|t| condition_true(pod, t))
        })
        .count();
    format!("{met}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        parse_time("2026-01-10T00:10:00Z").unwrap()
    }

    fn cells(pod: Value) -> (String, String, String) {
        let c = pod_cells(&pod, now());
        (c.ready, c.status, c.restarts)
    }

    fn one(state: Value, ready: bool, restarts: i64) -> Value {
        json!({
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": ready, "restartCount": restarts, "state": state}]}
        })
    }

    #[test]
    fn statuses_like_kubectl() {
        assert_eq!(
            cells(json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}})),
            ("0/1".into(), "Pending".into(), "0".into())
        );
        assert_eq!(
            cells(one(json!({"running": {}}), true, 0)),
            ("1/1".into(), "Running".into(), "0".into())
        );
        assert_eq!(
            cells(one(
                json!({"waiting": {"reason": "ContainerCreating"}}),
                false,
                0
            ))
            .1,
            "ContainerCreating"
        );
        assert_eq!(
            cells(one(
                json!({"waiting": {"reason": "CrashLoopBackOff"}}),
                false,
                4
            )),
            ("0/1".into(), "CrashLoopBackOff".into(), "4".into())
        );
        assert_eq!(
            cells(one(
                json!({"waiting": {"reason": "ErrImagePull"}}),
                false,
                0
            ))
            .1,
            "ErrImagePull"
        );
        let mut done = one(
            json!({"terminated": {"reason": "Completed", "exitCode": 0}}),
            false,
            0,
        );
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!(cells(done).1, "Completed");
        assert_eq!(
            cells(one(json!({"terminated": {"exitCode": 3}}), false, 0)).1,
            "ExitCode:3"
        );
        let mut terminating = one(json!({"running": {}}), true, 0);
        terminating["metadata"] = json!({"deletionTimestamp": "2026-01-10T00:09:00Z"});
        assert_eq!(cells(terminating).1, "Terminating");
    }

    #[test]
    fn init_containers_and_restarts() {
        let pod = json!({
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending",
                "initContainerStatuses": [
                    {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                    {"name": "i2", "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}
        });
        assert_eq!(cells(pod).1, "Init:1/2");
        let mut restarted = one(json!({"running": {}}), true, 2);
        restarted["status"]["containerStatuses"][0]["lastState"] =
            json!({"terminated": {"exitCode": 1, "finishedAt": "2026-01-10T00:05:00Z"}});
        assert_eq!(cells(restarted).2, "2 (5m0s ago)");
    }

    #[test]
    fn gates() {
        assert_eq!(readiness_gates(&json!({})), "<none>");
        let pod = json!({
            "spec": {"readinessGates": [{"conditionType": "x"}, {"conditionType": "y"}]},
            "status": {"conditions": [{"type": "x", "status": "True"}]}
        });
        assert_eq!(readiness_gates(&pod), "1/2");
    }
}

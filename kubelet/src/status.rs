//! The pod's status as the kubelet reports it, computed from the spec and
//! what the runtime says of the pod's containers: container states,
//! phase (Kubernetes's `getPhase`), conditions and QoS class.

use std::collections::HashMap;
use std::time::SystemTime;

use capstan_proto::api::core::v1::{
    self as core, Container, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, Pod, PodCondition, PodIp, PodStatus,
};
use capstan_proto::timestamp::Time;

use crate::runtime::{ContainerState, ContainerStatus};

/// Why a container is waiting, when the kubelet knows better than the
/// runtime (`ErrImagePull`, `CrashLoopBackOff`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// CamelCase reason.
    pub reason: String,
    /// Details.
    pub message: String,
}

/// Everything [`pod_status`] needs.
pub struct Observed<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Every runtime container of the pod (all attempts).
    pub containers: &'a [ContainerStatus],
    /// Kubelet-side waiting reasons by container name.
    pub waiting: &'a HashMap<String, Waiting>,
    /// The sandbox's IP.
    pub pod_ip: Option<String>,
    /// The node's IP.
    pub host_ip: String,
    /// `Some((reason, message))` when a container with limits runs without
    /// them being enforced.
    pub limits_not_enforced: Option<(String, String)>,
    /// When the kubelet first handled the pod.
    pub start_time: Option<Time>,
    /// Probe results of running containers by name: (ready, started).
    /// Absent: ready and started while running.
    pub probes: &'a HashMap<String, (bool, bool)>,
}

/// The condition type reporting unenforced resource limits.
pub const LIMITS_CONDITION: &str = "ResourceLimitsEnforced";

/// The attempts of container `name`, newest last.
pub fn attempts<'a>(containers: &'a [ContainerStatus], name: &str) -> Vec<&'a ContainerStatus> {
    let mut v: Vec<_> = containers
        .iter()
        .filter(|c| c.metadata.name == name)
        .collect();
    v.sort_by_key(|c| c.metadata.attempt);
    v
}

fn time(t: Option<SystemTime>) -> Option<Time> {
    let secs = t?.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    Some(Time::from_unix_seconds(secs as i64))
}

fn terminated(c: &ContainerStatus) -> core::ContainerState {
    core::ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: Some(c.exit_code.unwrap_or(-1)),
            reason: c.reason.clone(),
            message: c.message.clone(),
            started_at: time(c.started_at),
            finished_at: time(c.finished_at),
            container_id: format!("capstan://{}", c.id),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: &str) -> core::ContainerState {
    core::ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: reason.into(),
            message: message.into(),
        }),
        ..Default::default()
    }
}

/// One container's status; `default_reason` is the waiting reason before
/// its first attempt (`ContainerCreating`, `PodInitializing`).
fn container_status(
    spec: &Container,
    all: &[ContainerStatus],
    kubelet_waiting: Option<&Waiting>,
    default_reason: &str,
    probe: Option<(bool, bool)>,
) -> core::ContainerStatus {
    let attempts = attempts(all, &spec.name);
    let latest = attempts.last().copied();
    let previous = attempts.len().checked_sub(2).map(|i| attempts[i]);
    let running = latest.is_some_and(|c| c.state == ContainerState::Running);
    let (state, last_state) = match (latest, kubelet_waiting) {
        (Some(c), _) if c.state == ContainerState::Running => (
            core::ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time(c.started_at),
                }),
                ..Default::default()
            },
            previous.map(terminated),
        ),
        (Some(c), Some(w)) if c.state == ContainerState::Exited => {
            (waiting(&w.reason, &w.message), Some(terminated(c)))
        }
        (Some(c), None) if c.state == ContainerState::Exited => {
            (terminated(c), previous.map(terminated))
        }
        (_, Some(w)) => (waiting(&w.reason, &w.message), previous.map(terminated)),
        (_, None) => (waiting(default_reason, ""), previous.map(terminated)),
    };
    core::ContainerStatus {
        name: spec.name.clone(),
        state: Some(state),
        last_state,
        ready: Some(running && probe.is_none_or(|p| p.0)),
        restart_count: Some(latest.map_or(0, |c| c.metadata.attempt as i32)),
        image: spec.image.clone(),
        image_id: latest.map(|c| c.image.clone()).unwrap_or_default(),
        container_id: latest
            .map(|c| format!("capstan://{}", c.id))
            .unwrap_or_default(),
        started: Some(running && probe.is_none_or(|p| p.1)),
    }
}

fn exit_code(s: &core::ContainerStatus) -> Option<i32> {
    s.state.as_ref()?.terminated.as_ref()?.exit_code
}

/// Whether every init container completed successfully.
pub fn initialized(statuses: &[core::ContainerStatus]) -> bool {
    statuses.iter().all(|s| exit_code(s) == Some(0))
}

/// Kubernetes's pod phase from the container statuses.
pub fn phase(
    restart_policy: &str,
    init: &[core::ContainerStatus],
    app: &[core::ContainerStatus],
) -> &'static str {
    if !initialized(init) {
        let failed = init.iter().any(|s| exit_code(s).is_some_and(|c| c != 0));
        return if failed && restart_policy == "Never" {
            "Failed"
        } else {
            "Pending"
        };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in app {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = state.terminated {
            stopped += 1;
            if t.exit_code == Some(0) {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match restart_policy {
            "Never" | "OnFailure" if succeeded == stopped => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        }
    } else {
        "Pending"
    }
}

/// Kubernetes's QoS class.
pub fn qos_class(pod: &Pod) -> &'static str {
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<_> = spec
        .init_containers
        .iter()
        .chain(&spec.containers)
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let r = c.resources.clone().unwrap_or_default();
        any |= !r.limits.is_empty() || !r.requests.is_empty();
        for res in ["cpu", "memory"] {
            let limit = r.limits.get(res);
            let request = r.requests.get(res).or(limit);
            match (limit, request) {
                (Some(l), Some(q)) if l.cmp_value(q).is_eq() => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn condition(old: &PodStatus, kind: &str, ok: bool, reason: &str, message: &str) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let previous = old.conditions.iter().find(|c| c.r#type == kind);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time,
        _ => Some(Time::now()),
    };
    PodCondition {
        r#type: kind.into(),
        status: status.into(),
        last_transition_time,
        reason: if ok { String::new() } else { reason.into() },
        message: if ok { String::new() } else { message.into() },
        ..Default::default()
    }
}

/// The pod's status now.
pub fn pod_status(o: &Observed) -> PodStatus {
    let spec = o.pod.spec.clone().unwrap_or_default();
    let old = o.pod.status.clone().unwrap_or_default();
    let init: Vec<_> = spec
        .init_containers
        .iter()
        .map(|c| {
            container_status(
                c,
                o.containers,
                o.waiting.get(&c.name),
                "PodInitializing",
                None,
            )
        })
        .collect();
    let is_init = initialized(&init);
    let default_reason = if is_init {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let app: Vec<_> = spec
        .containers
        .iter()
        .map(|c| {
            container_status(
                c,
                o.containers,
                o.waiting.get(&c.name),
                default_reason,
                o.probes.get(&c.name).copied(),
            )
        })
        .collect();
    let policy = if spec.restart_policy.is_empty() {
        "Always"
    } else {
        &spec.restart_policy
    };
    let phase = phase(policy, &init, &app);
    let not_ready: Vec<_> = app
        .iter()
        .filter(|s| s.ready != Some(true))
        .map(|s| s.name.as_str())
        .collect();
    let ready = not_ready.is_empty();
    let not_ready_msg = format!("containers with unready status: [{}]", not_ready.join(" "));
    let not_init: Vec<_> = init
        .iter()
        .filter(|s| exit_code(s) != Some(0))
        .map(|s| s.name.as_str())
        .collect();
    let mut conditions = vec![
        condition(&old, "PodScheduled", true, "", ""),
        condition(
            &old,
            "Initialized",
            is_init,
            "ContainersNotInitialized",
            &format!(
                "containers with incomplete status: [{}]",
                not_init.join(" ")
            ),
        ),
        condition(
            &old,
            "ContainersReady",
            ready,
            "ContainersNotReady",
            &not_ready_msg,
        ),
        condition(&old, "Ready", ready, "ContainersNotReady", &not_ready_msg),
    ];
    if let Some((reason, message)) = &o.limits_not_enforced {
        conditions.push(condition(&old, LIMITS_CONDITION, false, reason, message));
    }
    let pod_ip = o.pod_ip.clone().unwrap_or_else(|| old.pod_ip.clone());
    PodStatus {
        phase: phase.into(),
        conditions,
        host_ip: o.host_ip.clone(),
        host_ips: vec![core::HostIp {
            ip: o.host_ip.clone(),
        }],
        pod_ips: if pod_ip.is_empty() {
            vec![]
        } else {
            vec![PodIp { ip: pod_ip.clone() }]
        },
        pod_ip,
        start_time: old.start_time.or(o.start_time),
        init_container_statuses: init,
        container_statuses: app,
        qos_class: qos_class(o.pod).into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{PodSpec, ResourceRequirements};

    fn running() -> core::ContainerStatus {
        core::ContainerStatus {
            state: Some(core::ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn exited(code: i32) -> core::ContainerStatus {
        core::ContainerStatus {
            state: Some(core::ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: Some(code),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn backing_off() -> core::ContainerStatus {
        core::ContainerStatus {
            state: Some(waiting("CrashLoopBackOff", "")),
            last_state: exited(1).state,
            ..Default::default()
        }
    }

    fn creating() -> core::ContainerStatus {
        core::ContainerStatus {
            state: Some(waiting("ContainerCreating", "")),
            ..Default::default()
        }
    }

    #[test]
    fn phase_follows_kubernetes() {
        assert_eq!(phase("Always", &[], &[creating()]), "Pending");
        assert_eq!(phase("Always", &[], &[running(), creating()]), "Pending");
        assert_eq!(phase("Always", &[], &[running(), exited(0)]), "Running");
        assert_eq!(phase("Always", &[], &[backing_off()]), "Running");
        assert_eq!(phase("Always", &[], &[exited(0)]), "Running");
        assert_eq!(
            phase("OnFailure", &[], &[exited(0), exited(0)]),
            "Succeeded"
        );
        assert_eq!(phase("OnFailure", &[], &[exited(1)]), "Running");
        assert_eq!(phase("Never", &[], &[exited(0)]), "Succeeded");
        assert_eq!(phase("Never", &[], &[exited(0), exited(2)]), "Failed");
        assert_eq!(phase("Never", &[exited(1)], &[creating()]), "Failed");
        assert_eq!(phase("Always", &[exited(1)], &[creating()]), "Pending");
        assert_eq!(phase("Always", &[running()], &[creating()]), "Pending");
        assert_eq!(phase("Always", &[exited(0)], &[running()]), "Running");
    }

    #[test]
    fn qos_classes() {
        let pod = |limits: &[(&str, &str)], requests: &[(&str, &str)]| Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    resources: Some(ResourceRequirements {
                        limits: limits
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                            .collect(),
                        requests: requests
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                            .collect(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(qos_class(&pod(&[], &[])), "BestEffort");
        assert_eq!(
            qos_class(&pod(&[("cpu", "1"), ("memory", "1Gi")], &[])),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(
                &[("cpu", "1"), ("memory", "1Gi")],
                &[("cpu", "1000m")]
            )),
            "Guaranteed"
        );
        assert_eq!(qos_class(&pod(&[("cpu", "1")], &[])), "Burstable");
        assert_eq!(qos_class(&pod(&[], &[("memory", "1Gi")])), "Burstable");
    }
}

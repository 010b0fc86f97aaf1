//! Container probes (liveness, readiness, startup) as Kubernetes runs
//! them: exec through the runtime, httpGet (a small HTTP/1.1 GET to the
//! pod IP, 200–399 succeeds), tcpSocket; thresholds and periods per probe,
//! state per container attempt.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use capstan_proto::api::core::v1::{Container, Probe};
use capstan_proto::intstr::IntOrString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::runtime::Runtime;

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Restarts the container on failure.
    Liveness,
    /// Drives the container's ready flag.
    Readiness,
    /// Holds the others back until it succeeds; restarts on failure.
    Startup,
}

/// What the pod worker must do after probing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the container counts as ready (never before it started).
    pub ready: bool,
    /// Whether its startup probe (if any) has succeeded.
    pub started: bool,
    /// Restart it: a liveness or startup probe failed `failureThreshold` times.
    pub kill: Option<String>,
    /// When a probe is next due.
    pub next: Option<Instant>,
}

#[derive(Debug)]
struct State {
    successes: i32,
    failures: i32,
    last_run: Option<Instant>,
    passing: bool,
}

/// Probe state of one container attempt (keyed by the runtime's container id).
#[derive(Debug, Default)]
pub struct Prober {
    states: HashMap<(String, Kind), State>,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

fn port(container: &Container, port: Option<&IntOrString>) -> Result<u16, String> {
    match port {
        Some(IntOrString::Int(p)) => {
            u16::try_from(*p).map_err(|_| format!("port {p} out of range"))
        }
        Some(IntOrString::String(name)) => {
            if let Ok(p) = name.parse::<u16>() {
                return Ok(p);
            }
            container
                .ports
                .iter()
                .find(|p| p.name == *name)
                .and_then(|p| p.container_port)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| {
                    format!(
                        "named port {name:?} is not a port of container {:?}",
                        container.name
                    )
                })
        }
        None => Err("probe has no port".into()),
    }
}

/// Runs `probe` once; `Err` says why it failed.
pub async fn run_once<R: Runtime>(
    runtime: &R,
    container: &Container,
    container_id: &str,
    pod_ip: &str,
    probe: &Probe,
) -> Result<(), String> {
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    if let Some(exec) = &probe.exec {
        let r = runtime
            .exec_sync(container_id, &exec.command, timeout)
            .await
            .map_err(|e| e.to_string())?;
        return if r.exit_code == 0 {
            Ok(())
        } else {
            Err(format!(
                "command {:?} exited with {}",
                exec.command, r.exit_code
            ))
        };
    }
    if let Some(http) = &probe.http_get {
        let port = port(container, http.port.as_ref())?;
        let host = if http.host.is_empty() {
            pod_ip
        } else {
            &http.host
        };
        let path = if http.path.is_empty() {
            "/"
        } else {
            &http.path
        };
        let get = async {
            let mut s = TcpStream::connect((host, port))
                .await
                .map_err(|e| e.to_string())?;
            let mut req = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/capstan\r\nConnection: close\r\n"
            );
            for h in &http.http_headers {
                req.push_str(&format!("{}: {}\r\n", h.name, h.value));
            }
            req.push_str("\r\n");
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut head = [0u8; 64];
            let mut n = 0;
            while n < 12 {
                let m = s.read(&mut head[n..]).await.map_err(|e| e.to_string())?;
                if m == 0 {
                    break;
                }
                n += m;
            }
            let line = String::from_utf8_lossy(&head[..n]).to_string();
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not an HTTP response: {line:?}"))?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        };
        return tokio::time::timeout(timeout, get)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "GET http://{host}:{port}{path} timed out after {timeout:?}"
                ))
            });
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = port(container, tcp.port.as_ref())?;
        let host = if tcp.host.is_empty() {
            pod_ip
        } else {
            &tcp.host
        };
        return match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Err(format!(
                "dial tcp {host}:{port}: timed out after {timeout:?}"
            )),
        };
    }
    Err("probe has no handler (exec, httpGet or tcpSocket)".into())
}

impl Prober {
    /// Forgets attempts other than `live` container ids.
    pub fn retain(&mut self, live: &[String]) {
        self.states.retain(|(id, _), _| live.contains(id));
    }

    /// Runs the probes of the running attempt `id` of `container` that are
    /// due; `started_at` is when it started.
    pub async fn probe<R: Runtime>(
        &mut self,
        runtime: &R,
        container: &Container,
        id: &str,
        pod_ip: &str,
        started_at: Instant,
    ) -> Verdict {
        let now = Instant::now();
        let mut verdict = Verdict {
            ready: container.readiness_probe.is_none(),
            started: container.startup_probe.is_none(),
            ..Default::default()
        };
        let probes = [
            (Kind::Startup, container.startup_probe.as_ref()),
            (Kind::Liveness, container.liveness_probe.as_ref()),
            (Kind::Readiness, container.readiness_probe.as_ref()),
        ];
        for (kind, probe) in probes {
            let Some(probe) = probe else { continue };
            if kind != Kind::Startup && !verdict.started {
                continue;
            }
            let key = (id.to_owned(), kind);
            let state = self.states.entry(key).or_insert(State {
                successes: 0,
                failures: 0,
                last_run: None,
                passing: kind == Kind::Liveness,
            });
            if kind == Kind::Startup && state.passing {
                verdict.started = true;
                continue;
            }
            let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
            let due = match state.last_run {
                None => started_at + secs(probe.initial_delay_seconds, 0),
                Some(last) => last + period,
            };
            if now >= due {
                let result = run_once(runtime, container, id, pod_ip, probe).await;
                state.last_run = Some(Instant::now());
                match result {
                    Ok(()) => {
                        state.failures = 0;
                        state.successes += 1;
                        if state.successes >= probe.success_threshold.unwrap_or(1).max(1) {
                            state.passing = true;
                        }
                    }
                    Err(why) => {
                        state.successes = 0;
                        state.failures += 1;
                        if state.failures >= probe.failure_threshold.unwrap_or(3).max(1) {
                            state.passing = false;
                            if kind != Kind::Readiness && verdict.kill.is_none() {
                                let name = if kind == Kind::Startup {
                                    "Startup"
                                } else {
                                    "Liveness"
                                };
                                verdict.kill = Some(format!("{name} probe failed: {why}"));
                            }
                        }
                    }
                }
            }
            let next = state.last_run.map_or(due, |l| l + period);
            verdict.next = Some(verdict.next.map_or(next, |n: Instant| n.min(next)));
            match kind {
                Kind::Startup => verdict.started = state.passing,
                Kind::Readiness => verdict.ready = state.passing,
                Kind::Liveness => {}
            }
        }
        // Not ready before the startup probe has succeeded.
        verdict.ready &= verdict.started;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeRuntime;
    use capstan_proto::api::core::v1::{ContainerPort, ExecAction, HttpGetAction, TcpSocketAction};

    /// An HTTP server on loopback answering every request with `status`.
    async fn http(status: &'static str) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        port
    }

    fn get(port: IntOrString) -> Probe {
        Probe {
            http_get: Some(HttpGetAction {
                path: "/healthz".into(),
                port: Some(port),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn handlers_succeed_and_fail_as_kubernetes_says() {
        let rt = FakeRuntime::new(&[]);
        let ok = http("204 No Content").await;
        let bad = http("500 Internal Server Error").await;
        let c = Container {
            name: "c".into(),
            ports: vec![ContainerPort {
                name: "web".into(),
                container_port: Some(ok as i32),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ip = "127.0.0.1";
        assert_eq!(
            run_once(&rt, &c, "x", ip, &get(IntOrString::Int(ok as i32))).await,
            Ok(())
        );
        assert_eq!(
            run_once(&rt, &c, "x", ip, &get(IntOrString::String("web".into()))).await,
            Ok(())
        );
        let e = run_once(&rt, &c, "x", ip, &get(IntOrString::Int(bad as i32)))
            .await
            .unwrap_err();
        assert!(e.contains("500"), "{e}");
        let e = run_once(
            &rt,
            &c,
            "x",
            ip,
            &get(IntOrString::String("metrics".into())),
        )
        .await
        .unwrap_err();
        assert!(e.contains("metrics"), "{e}");
        let tcp = |port: u16| Probe {
            tcp_socket: Some(TcpSocketAction {
                port: Some(IntOrString::Int(port as i32)),
                host: String::new(),
            }),
            ..Default::default()
        };
        assert_eq!(run_once(&rt, &c, "x", ip, &tcp(ok)).await, Ok(()));
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(run_once(&rt, &c, "x", ip, &tcp(closed)).await.is_err());
        let exec = Probe {
            exec: Some(ExecAction {
                command: vec!["true".into()],
            }),
            ..Default::default()
        };
        let e = run_once(&rt, &c, "missing", ip, &exec).await.unwrap_err();
        assert!(e.contains("missing"), "{e}");
        assert!(
            run_once(&rt, &c, "x", ip, &Probe::default())
                .await
                .unwrap_err()
                .contains("no handler")
        );
    }

    #[tokio::test]
    async fn thresholds_drive_ready_started_and_kill() {
        let rt = FakeRuntime::new(&[]);
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let failing = Probe {
            tcp_socket: Some(TcpSocketAction {
                port: Some(IntOrString::Int(closed as i32)),
                host: String::new(),
            }),
            period_seconds: Some(1),
            failure_threshold: Some(2),
            ..Default::default()
        };
        let c = Container {
            name: "c".into(),
            readiness_probe: Some(failing.clone()),
            liveness_probe: Some(failing),
            ..Default::default()
        };
        let mut p = Prober::default();
        let long_ago = Instant::now() - Duration::from_secs(100);
        let v = p.probe(&rt, &c, "id1", "127.0.0.1", long_ago).await;
        assert!(!v.ready && v.started && v.kill.is_none(), "{v:?}");
        assert!(v.next.is_some());
        let v = p.probe(&rt, &c, "id1", "127.0.0.1", long_ago).await;
        assert!(v.kill.is_none(), "not due yet: {v:?}");
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let v = p.probe(&rt, &c, "id1", "127.0.0.1", long_ago).await;
        assert!(
            v.kill
                .as_deref()
                .is_some_and(|k| k.starts_with("Liveness probe failed")),
            "{v:?}"
        );
        let ok = http("200 OK").await;
        let startup = Container {
            name: "s".into(),
            startup_probe: Some(Probe {
                initial_delay_seconds: Some(3600),
                ..get(IntOrString::Int(ok as i32))
            }),
            ..Default::default()
        };
        let v = p
            .probe(&rt, &startup, "id2", "127.0.0.1", Instant::now())
            .await;
        assert!(
            !v.started && !v.ready,
            "initial delay holds the startup probe: {v:?}"
        );
        let v = p
            .probe(
                &rt,
                &startup,
                "id3",
                "127.0.0.1",
                long_ago - Duration::from_secs(3600),
            )
            .await;
        assert!(v.started && v.ready, "{v:?}");
    }
}

//! Running the `capctl` binary against a [`TestServer`] as the admin:
//! one-shot runs (bounded, on a blocking thread so the in-process
//! apiserver keeps its runtime) and long-running ones whose stdout lines
//! arrive on a channel.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capstan_apiserver::testing::TestServer;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(20);

/// What a finished `capctl` printed.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A test apiserver and the admin's kubeconfig.
pub struct Ctl {
    /// The server (stopped on drop).
    pub server: TestServer,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
}

/// A `capctl` still running; killed on drop.
pub struct Running {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Running {
    /// The next stdout line within [`WAIT`]; `None` once stdout closed.
    pub async fn next_line(&mut self) -> Option<String> {
        tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no output line within {WAIT:?}"))
    }

    /// Waits (bounded) for the exit status.
    pub async fn exit_code(mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "capctl did not exit in {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &std::path::Path, kubeconfig: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capctl"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG");
    cmd
}

impl Ctl {
    /// Starts a server.
    pub async fn start() -> Ctl {
        let server = TestServer::start().await;
        let kubeconfig = server.admin_kubeconfig();
        Ctl { server, kubeconfig }
    }

    /// A typed client as the admin.
    pub fn client(&self) -> capstan_client::Client {
        capstan_client::Client::from_kubeconfig(Some(&self.kubeconfig), None).unwrap()
    }

    /// Runs `capctl ARGS` with `stdin`, bounded by [`WAIT`].
    pub async fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = command(self.server.dir(), &self.kubeconfig, args);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            cmd.stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            if let Some(text) = stdin {
                use std::io::Write as _;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
            }
            let mut out_pipe = child.stdout.take().unwrap();
            let mut err_pipe = child.stderr.take().unwrap();
            let out = std::thread::spawn(move || {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut out_pipe, &mut s).unwrap();
                s
            });
            let err = std::thread::spawn(move || {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut err_pipe, &mut s).unwrap();
                s
            });
            let deadline = Instant::now() + WAIT;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("capctl {args:?} did not finish in {WAIT:?}");
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            Output {
                code: status.code().unwrap_or(-1),
                stdout: out.join().unwrap(),
                stderr: err.join().unwrap(),
            }
        })
        .await
        .unwrap()
    }

    /// Runs `capctl ARGS`.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None).await
    }

    /// Runs and expects success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(
            out.code, 0,
            "capctl {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs and expects exit status `code`; returns stderr.
    pub async fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args).await;
        assert_eq!(
            out.code, code,
            "capctl {args:?}:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stderr
    }

    /// `capctl apply -f -` of `yaml`, expecting success.
    pub async fn apply(&self, yaml: &str) {
        let out = self.run_with(&["apply", "-f", "-"], Some(yaml)).await;
        assert_eq!(out.code, 0, "apply failed: {}\n{yaml}", out.stderr);
    }

    /// Starts a long-running `capctl ARGS`.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = command(self.server.dir(), &self.kubeconfig, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }
}

/// Parses JSON output.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

//! Benchmark (not a test): bulk throughput and small-request rate through
//! (a) a direct connection, (b) Capstan's proxy data path with splice,
//! (c) with plain copy, (d) HAProxy in tcp mode with and without
//! `option splice-auto` — same client and server code, all on loopback.
//!
//! ```text
//! cargo run --release -p capstan-proxy --example proxy-bench --offline
//! BENCH_GB=1 BENCH_SECS=1 BENCH_ROUNDS=1 cargo run ...   # smaller run
//! ```
//!
//! Capstan's proxy runs in a child process (this binary with `--serve`),
//! with the daemon's own accept → balancer → connect → forward path
//! ([`capstan_proxy::tcp::serve`]) and a 2-thread runtime; HAProxy runs
//! with its default thread count (one per core). HAProxy is skipped if
//! `haproxy` is not installed (`apt-get install haproxy`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_proxy::ForwardMode;
use capstan_proxy::balancer::Balancer;
use capstan_proxy::stats::Stats;
use capstan_proxy::tcp::{TcpContext, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const SERVER: &str = "127.78.0.1:9000";
const CHUNK: usize = 256 * 1024;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server: first byte `B` = sink everything then answer the count,
/// `P` = echo one byte at a time (ping-pong).
async fn server() {
    let l = TcpListener::bind(SERVER)
        .await
        .expect("bind the bench server");
    loop {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut mode = [0u8];
            if s.read_exact(&mut mode).await.is_err() {
                return;
            }
            match mode[0] {
                b'B' => {
                    let mut buf = vec![0u8; CHUNK];
                    let mut total = 0u64;
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => total += n as u64,
                        }
                    }
                    let _ = s.write_all(&total.to_be_bytes()).await;
                }
                _ => {
                    let mut b = [0u8; 1];
                    while s.read_exact(&mut b).await.is_ok() {
                        if s.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}

/// Sends `bytes` over one connection; returns when the server has them all.
async fn bulk_one(addr: SocketAddr, bytes: u64) -> u64 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"B").await.unwrap();
    let buf = vec![0x5au8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        s.write_all(&buf[..n]).await.unwrap();
        left -= n as u64;
    }
    s.shutdown().await.unwrap();
    let mut count = [0u8; 8];
    s.read_exact(&mut count).await.unwrap();
    let got = u64::from_be_bytes(count);
    assert_eq!(got, bytes, "the server got every byte");
    got
}

/// Gbit/s moving `total` bytes over `conns` parallel connections.
async fn bulk(addr: SocketAddr, total: u64, conns: u64) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(bulk_one(addr, total / conns)))
        .collect();
    let mut moved = 0;
    for t in tasks {
        moved += t.await.unwrap();
    }
    moved as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9
}

/// Requests/s of 1-byte ping-pong over `conns` connections for `secs`.
async fn ping_pong(addr: SocketAddr, secs: f64, conns: usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                s.write_all(b"P").await.unwrap();
                let mut n = 0u64;
                let mut b = [0u8; 1];
                while Instant::now() < deadline {
                    s.write_all(b"x").await.unwrap();
                    s.read_exact(&mut b).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn wait_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{addr} never listened");
}

/// A forwarder under test, stopped on drop.
struct Forwarder {
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn capstan(listen: &str, mode: &str) -> Forwarder {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve", mode, listen, SERVER])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the proxy child");
    Forwarder {
        child: Some(child),
        _dir: None,
    }
}

fn haproxy(listen: &str, splice: bool) -> Option<Forwarder> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n\
             listen fwd\n  bind {listen}\n{}  server s1 {SERVER}\n",
            if splice { "  option splice-auto\n" } else { "" }
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-q", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .spawn()
        .ok()?;
    Some(Forwarder {
        child: Some(child),
        _dir: Some(dir),
    })
}

/// The child: Capstan's TCP listener path to one endpoint.
fn serve_child(mode: &str, listen: &str, backend: &str) {
    let mode = match mode {
        "splice" => ForwardMode::Splice,
        _ => ForwardMode::Copy,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind(listen).await.unwrap();
        let ctx = TcpContext {
            balancer: Arc::new(Balancer::new(vec![backend.parse().unwrap()], None)),
            mode,
            connect_timeout: Duration::from_secs(2),
            stats: Arc::new(Stats::default()),
        };
        serve(listener, ctx).await;
    });
}

struct Row {
    name: &'static str,
    bulk1: f64,
    bulk4: f64,
    rr1: f64,
    rr8: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--serve" {
        serve_child(&args[2], &args[3], &args[4]);
        return;
    }
    let gb = env_f64("BENCH_GB", 2.0);
    let secs = env_f64("BENCH_SECS", 2.0);
    let rounds = env_f64("BENCH_ROUNDS", 3.0).max(1.0) as usize;
    let total = (gb * 1e9) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        tokio::spawn(server());
        wait_listening(SERVER.parse().unwrap()).await;
        let variants: Vec<(&'static str, &'static str)> = vec![
            ("direct", SERVER),
            ("capstan splice", "127.78.0.2:9000"),
            ("capstan copy", "127.78.0.3:9000"),
            ("haproxy", "127.78.0.4:9000"),
            ("haproxy splice-auto", "127.78.0.5:9000"),
        ];
        let mut rows: Vec<Row> = Vec::new();
        for round in 1..=rounds {
            eprintln!("round {round}/{rounds}");
            for &(name, addr) in &variants {
                let _fwd = match name {
                    "capstan splice" => Some(capstan(addr, "splice")),
                    "capstan copy" => Some(capstan(addr, "copy")),
                    "haproxy" | "haproxy splice-auto" => {
                        match haproxy(addr, name.ends_with("auto")) {
                            Some(f) => Some(f),
                            None => {
                                eprintln!("{name}: haproxy not found, skipped");
                                continue;
                            }
                        }
                    }
                    _ => None,
                };
                let a: SocketAddr = addr.parse().unwrap();
                wait_listening(a).await;
                // Warm-up.
                bulk(a, 64 << 20, 1).await;
                let bulk1 = bulk(a, total, 1).await;
                let bulk4 = bulk(a, total, 4).await;
                let rr1 = ping_pong(a, secs, 1).await;
                let rr8 = ping_pong(a, secs, 8).await;
                eprintln!(
                    "{name}: {bulk1:.2} Gb/s, {bulk4:.2} Gb/s x4, {rr1:.0} req/s, {rr8:.0} req/s x8"
                );
                // Best of the rounds: the machine is shared, so lower figures
                // are interference.
                match rows.iter_mut().find(|r| r.name == name) {
                    Some(r) => {
                        r.bulk1 = r.bulk1.max(bulk1);
                        r.bulk4 = r.bulk4.max(bulk4);
                        r.rr1 = r.rr1.max(rr1);
                        r.rr8 = r.rr8.max(rr8);
                    }
                    None => rows.push(Row {
                        name,
                        bulk1,
                        bulk4,
                        rr1,
                        rr8,
                    }),
                }
            }
        }
        print_table(&rows, gb, secs, rounds);
    });
}

fn print_table(rows: &[Row], gb: f64, secs: f64, rounds: usize) {
    let find = |n: &str| rows.iter().find(|r| r.name == n);
    let direct = find("direct").expect("direct row");
    let ha = find("haproxy");
    let ha_splice = find("haproxy splice-auto");
    println!(
        "\n{gb} GB per bulk run (1 connection, then 4 in parallel); ping-pong 1-byte requests for {secs} s (1 and 8 connections); best of {rounds} rounds\n"
    );
    println!(
        "{:<20} {:>10} {:>10} {:>12} {:>12} | {:>8} {:>8} {:>8} {:>8} | {:>10} {:>10} {:>8} {:>8}",
        "path",
        "Gb/s x1",
        "Gb/s x4",
        "req/s x1",
        "req/s x8",
        "x1/dir",
        "x4/dir",
        "rr1/dir",
        "rr8/dir",
        "x1/haS",
        "x4/haS",
        "rr1/ha",
        "rr8/ha"
    );
    let ratio = |a: f64, b: Option<f64>| b.map(|b| format!("{:.2}", a / b)).unwrap_or("-".into());
    for r in rows {
        println!(
            "{:<20} {:>10.2} {:>10.2} {:>12.0} {:>12.0} | {:>8.2} {:>8.2} {:>8.2} {:>8.2} | {:>10} {:>10} {:>8} {:>8}",
            r.name,
            r.bulk1,
            r.bulk4,
            r.rr1,
            r.rr8,
            r.bulk1 / direct.bulk1,
            r.bulk4 / direct.bulk4,
            r.rr1 / direct.rr1,
            r.rr8 / direct.rr8,
            ratio(r.bulk1, ha_splice.map(|h| h.bulk1)),
            ratio(r.bulk4, ha_splice.map(|h| h.bulk4)),
            ratio(r.rr1, ha.map(|h| h.rr1)),
            ratio(r.rr8, ha.map(|h| h.rr8)),
        );
    }
    println!(
        "\n/dir: against direct; /haS: against HAProxy with splice-auto; /ha: against HAProxy without"
    );
}

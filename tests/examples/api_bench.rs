//! Capstan's API against etcd 3.4, side by side, in the same run: writes and
//! linearizable reads of 256-byte values at the same client concurrencies,
//! each side a 3-replica cluster on loopback with mutual TLS and fsync.
//!
//! ```text
//! cargo run --release -p capstan-tests --features etcd-bench --example api_bench -- \
//!     [--duration 10s] [--warmup 1s] [--clients 1,100] [--keys 1000] [--only etcd|capstan]
//! ```
//!
//! The Capstan half runs the `capstan` binary of the same profile: build it
//! first with `cargo build --release -p capstan` (or set `$CAPSTAN_BIN`).
//!
//! - Capstan: 3 `capstan apiserver` processes; every request goes the full
//!   API path (mTLS, authentication, RBAC, validation, Raft, fsync). Each
//!   worker creates its ConfigMaps (`bench-c<clients>-<worker>-<i>` in
//!   `default`, data `{"v": <256 bytes>}`), then updates them unconditionally
//!   (empty resourceVersion) and reads them with `Get` (`allow_stale: false`).
//! - etcd: Debian's `etcd-server` 3.4, 3 members with client and peer TLS,
//!   certificates required on both; each worker puts its keys
//!   (`/bench/c<clients>/<worker>/<i>`, 256-byte values), then puts them
//!   again and reads them with linearizable gets (etcd's default).
//!
//! Both sides: one client (one HTTP/2 connection) per worker, workers spread
//! round-robin over the replicas, a closed loop (`capstan_tests::loadgen`),
//! the same key count split over the workers (`--keys`, default 1000), and a
//! value that changes on every write so that no write is a no-op. The
//! clusters run one after the other, never together, on this machine.
//!
//! Prints, per operation and concurrency, ops/s, p50 and p99 of each side,
//! the ratio Capstan/etcd, errors, and whether the targets are met: Capstan
//! ≥ 1.5× etcd's writes/s at 100 clients, and Capstan's p99 at 1 client no
//! worse than etcd's. Everything is on 127.0.0.1 and bounded in time; the
//! clusters are stopped and their temporary directory removed at exit.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use capstan_proto::api::core::v1::ConfigMap;
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{CreateRequest, GetRequest, ResourceRef, UpdateRequest};
use capstan_tests::apiserver::ApiCluster;
use capstan_tests::etcd::{EtcdCluster, EtcdNotInstalled, etcd_version};
use capstan_tests::loadgen::{self, LoadConfig, LoadReport, fmt_latency};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, KvClient, TlsOptions};
use prost::Message as _;

/// Bytes of data per object or value.
const VALUE_BYTES: usize = 256;
/// Replicas (Capstan) and members (etcd).
const REPLICAS: usize = 3;
/// Per-operation timeout: an operation slower than this is an error.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on the create phase.
const CREATE_CAP: Duration = Duration::from_secs(120);

/// Command-line options.
#[derive(Clone, Debug)]
struct Args {
    duration: Duration,
    warmup: Duration,
    clients: Vec<usize>,
    keys: usize,
    etcd: bool,
    capstan: bool,
}

const USAGE: &str = "usage: api_bench [--duration 10s] [--warmup 1s] [--clients 1,100] \
                     [--keys 1000] [--only etcd|capstan]";

/// `10s`, `500ms`, `2m`, or a plain number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {s:?} (want e.g. 10s, 500ms, 2m)");
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 || v * scale > 3600.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(v * scale))
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        clients: vec![1, 100],
        keys: 1000,
        etcd: true,
        capstan: true,
    };
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--duration" => args.duration = parse_duration(&value()?)?,
            "--warmup" => args.warmup = parse_duration(&value()?)?,
            "--clients" => {
                args.clients = value()?
                    .split(',')
                    .map(|c| match c.trim().parse::<usize>() {
                        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                        _ => Err(format!("bad client count {c:?} (1..=10000)")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--keys" => {
                args.keys = value()?
                    .parse()
                    .ok()
                    .filter(|&k| k > 0)
                    .ok_or("bad --keys (a positive number)")?;
            }
            "--only" => match value()?.as_str() {
                "etcd" => args.capstan = false,
                "capstan" => args.etcd = false,
                other => return Err(format!("bad --only {other:?} (etcd or capstan)")),
            },
            "-h" | "--help" => return Err(USAGE.to_owned()),
            // `cargo bench`-style harness flags are ignored.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// The operations compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// Capstan Create / etcd first put of each key: fixed work, no warm-up.
    Create,
    /// Capstan Update / etcd put of existing keys.
    Write,
    /// Capstan linearizable Get / etcd linearizable range.
    Read,
}

impl Op {
    const ALL: [Op; 3] = [Op::Create, Op::Write, Op::Read];

    fn label(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Write => "write",
            Op::Read => "read",
        }
    }
}

/// One side's reports, by operation and client count.
type Reports = BTreeMap<(Op, usize), LoadReport>;

/// A value of exactly [`VALUE_BYTES`] bytes that names its writer and write.
fn value(worker: usize, i: u64) -> String {
    let mut v = format!("{worker:05}-{i:012}-");
    v.extend(std::iter::repeat_n('x', VALUE_BYTES - v.len()));
    v
}

fn keys_per_worker(args: &Args, clients: usize) -> u64 {
    (args.keys / clients).max(1) as u64
}

fn phase_config(args: &Args, op: Op, clients: usize) -> LoadConfig {
    match op {
        Op::Create => LoadConfig {
            clients,
            warmup: Duration::ZERO,
            duration: CREATE_CAP,
            ops_per_worker: Some(keys_per_worker(args, clients)),
            op_timeout: OP_TIMEOUT,
        },
        Op::Write | Op::Read => LoadConfig {
            clients,
            warmup: args.warmup,
            duration: args.duration,
            ops_per_worker: None,
            op_timeout: OP_TIMEOUT,
        },
    }
}

// ---------------------------------------------------------------- etcd side

/// One etcd client per worker, workers round-robin over the members.
async fn etcd_clients(cluster: &EtcdCluster, n: usize) -> anyhow::Result<Vec<KvClient>> {
    let tls = cluster.tls();
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let options = ConnectOptions::new()
        .with_tls(
            TlsOptions::new()
                .ca_certificate(Certificate::from_pem(read(&tls.ca)?))
                .identity(Identity::from_pem(
                    read(&tls.client_cert)?,
                    read(&tls.client_key)?,
                )),
        )
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
    let endpoints = cluster.client_endpoints();
    let mut clients = Vec::with_capacity(n);
    for w in 0..n {
        let endpoint = &endpoints[w % endpoints.len()];
        let client = Client::connect([endpoint], Some(options.clone()))
            .await
            .with_context(|| format!("connecting to etcd at {endpoint}"))?;
        let mut kv = client.kv_client();
        // Open the connection now, not in the first measured operation.
        kv.get("/bench/prime", None)
            .await
            .with_context(|| format!("first get from etcd at {endpoint}"))?;
        clients.push(kv);
    }
    Ok(clients)
}

async fn run_etcd(args: &Args, dir: &Path, reports: &mut Reports) -> anyhow::Result<()> {
    let version = etcd_version()?;
    let dir = dir.to_owned();
    let cluster = tokio::task::block_in_place(|| EtcdCluster::start(&dir.join("etcd"), REPLICAS))?;
    println!("etcd: {version}, {REPLICAS} members, client+peer mTLS, default fsync");
    for &clients in &args.clients {
        let kvs = Arc::new(etcd_clients(&cluster, clients).await?);
        let kpw = keys_per_worker(args, clients);
        for op in Op::ALL {
            let config = phase_config(args, op, clients);
            let report = loadgen::run(&config, |w| {
                let kv = kvs[w].clone();
                move |i: u64| {
                    let key = format!("/bench/c{clients}/{w}/{}", i % kpw);
                    let mut kv = kv.clone();
                    async move {
                        match op {
                            Op::Create | Op::Write => {
                                kv.put(key, value(w, i), None).await?;
                            }
                            Op::Read => {
                                let got = kv.get(key, None).await?;
                                anyhow::ensure!(got.kvs().len() == 1, "key missing");
                            }
                        }
                        anyhow::Ok(())
                    }
                }
            })
            .await;
            println!("  etcd    {:<6} {report}", op.label());
            print_error_samples(&report);
            reports.insert((op, clients), report);
        }
    }
    drop(cluster);
    Ok(())
}

// ------------------------------------------------------------- Capstan side

/// The core/v1 configmaps resource.
fn configmaps() -> ResourceRef {
    ResourceRef {
        group: String::new(),
        version: "v1".into(),
        resource: "configmaps".into(),
    }
}

fn configmap(name: String, v: String) -> Vec<u8> {
    ConfigMap {
        metadata: Some(ObjectMeta {
            name,
            namespace: "default".into(),
            ..Default::default()
        }),
        data: [("v".to_owned(), v)].into_iter().collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// What the Capstan half needs from the cluster: each replica's client
/// address and the administrator's TLS client configuration.
struct CapstanTarget {
    addrs: Vec<String>,
    tls: Arc<rustls::ClientConfig>,
    /// Keeps the replicas running; dropping it kills and reaps them.
    _cluster: ApiCluster,
}

/// Starts 3 `capstan apiserver` processes with real mTLS under `dir`, from
/// the `capstan` binary beside `target/<profile>/examples/` (build it with
/// `cargo build --release -p capstan`) or `$CAPSTAN_BIN`.
async fn start_capstan(dir: &Path) -> anyhow::Result<CapstanTarget> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cluster = ApiCluster::start(dir, REPLICAS).await?;
    Ok(CapstanTarget {
        addrs: cluster.client_addrs(),
        tls: cluster.admin_tls(),
        _cluster: cluster,
    })
}

/// One Capstan client per worker, workers round-robin over the replicas.
async fn capstan_clients(
    target: &CapstanTarget,
    n: usize,
) -> anyhow::Result<Vec<ResourcesClient<tonic::transport::Channel>>> {
    let mut clients = Vec::with_capacity(n);
    for w in 0..n {
        let addr = &target.addrs[w % target.addrs.len()];
        let channel = capstan_pki::net::channel(addr, target.tls.clone())
            .with_context(|| format!("channel to {addr}"))?;
        let mut client = ResourcesClient::new(channel);
        // Open the connection now, not in the first measured operation; a
        // NotFound answer is fine, a transport error is not.
        let prime = client
            .get(GetRequest {
                resource: Some(configmaps()),
                namespace: "default".into(),
                name: "bench-prime".into(),
                allow_stale: true,
            })
            .await;
        if let Err(status) = prime
            && status.code() != tonic::Code::NotFound
        {
            anyhow::bail!("first get from capstan at {addr}: {status}");
        }
        clients.push(client);
    }
    Ok(clients)
}

async fn run_capstan(args: &Args, dir: &Path, reports: &mut Reports) -> anyhow::Result<()> {
    let target = start_capstan(&dir.join("capstan")).await?;
    println!(
        "capstan: {} replicas, mTLS + RBAC + validation, fsync",
        target.addrs.len()
    );
    for &clients in &args.clients {
        let rpcs = Arc::new(capstan_clients(&target, clients).await?);
        let kpw = keys_per_worker(args, clients);
        for op in Op::ALL {
            let config = phase_config(args, op, clients);
            let report = loadgen::run(&config, |w| {
                let rpc = rpcs[w].clone();
                move |i: u64| {
                    let name = format!("bench-c{clients}-{w}-{}", i % kpw);
                    let mut rpc = rpc.clone();
                    async move {
                        match op {
                            Op::Create => {
                                rpc.create(CreateRequest {
                                    resource: Some(configmaps()),
                                    namespace: "default".into(),
                                    object: configmap(name, value(w, i)),
                                    dry_run: false,
                                })
                                .await?;
                            }
                            Op::Write => {
                                rpc.update(UpdateRequest {
                                    resource: Some(configmaps()),
                                    namespace: "default".into(),
                                    object: configmap(name, value(w, i)),
                                    dry_run: false,
                                })
                                .await?;
                            }
                            Op::Read => {
                                let got = rpc
                                    .get(GetRequest {
                                        resource: Some(configmaps()),
                                        namespace: "default".into(),
                                        name,
                                        allow_stale: false,
                                    })
                                    .await?;
                                anyhow::ensure!(!got.get_ref().object.is_empty(), "empty object");
                            }
                        }
                        anyhow::Ok(())
                    }
                }
            })
            .await;
            println!("  capstan {:<6} {report}", op.label());
            print_error_samples(&report);
            reports.insert((op, clients), report);
        }
    }
    drop(target);
    Ok(())
}

// ------------------------------------------------------------------ report

fn print_error_samples(report: &LoadReport) {
    for (msg, n) in &report.error_samples {
        println!("      {n} x {msg}");
    }
}

fn cell(r: Option<&LoadReport>) -> String {
    match r {
        Some(r) => format!(
            "{:>9.0} {:>9} {:>9}",
            r.ops_per_sec,
            fmt_latency(r.p50),
            fmt_latency(r.p99)
        ),
        None => format!("{:>9} {:>9} {:>9}", "-", "-", "-"),
    }
}

fn print_table(args: &Args, capstan: &Reports, etcd: &Reports) {
    println!();
    println!(
        "{:<7} {:>7} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>7} | {:>13}",
        "op", "clients", "capstan/s", "p50", "p99", "etcd/s", "p50", "p99", "ratio", "errors c/e"
    );
    for op in Op::ALL {
        for &clients in &args.clients {
            let c = capstan.get(&(op, clients));
            let e = etcd.get(&(op, clients));
            let ratio = match (c, e) {
                (Some(c), Some(e)) if e.ops_per_sec > 0.0 => {
                    format!("{:.2}x", c.ops_per_sec / e.ops_per_sec)
                }
                _ => "-".into(),
            };
            let errors = |r: Option<&LoadReport>| {
                r.map_or("-".into(), |r| (r.errors + r.warmup_errors).to_string())
            };
            println!(
                "{:<7} {:>7} | {} | {} | {:>7} | {:>13}",
                op.label(),
                clients,
                cell(c),
                cell(e),
                ratio,
                format!("{}/{}", errors(c), errors(e)),
            );
        }
    }
    println!();
    let at = |reports: &Reports, op, clients| reports.get(&(op, clients)).cloned();
    match (at(capstan, Op::Write, 100), at(etcd, Op::Write, 100)) {
        (Some(c), Some(e)) if e.ops_per_sec > 0.0 => {
            let ratio = c.ops_per_sec / e.ops_per_sec;
            println!(
                "target writes/s at 100 clients >= 1.5x etcd: {:.2}x {}",
                ratio,
                if ratio >= 1.5 { "MET" } else { "NOT MET" }
            );
        }
        _ => println!("target writes/s at 100 clients >= 1.5x etcd: not measured"),
    }
    match (at(capstan, Op::Write, 1), at(etcd, Op::Write, 1)) {
        (Some(c), Some(e)) => println!(
            "target write p99 at 1 client <= etcd's: {} vs {} {}",
            fmt_latency(c.p99),
            fmt_latency(e.p99),
            if c.p99 <= e.p99 { "MET" } else { "NOT MET" }
        ),
        _ => println!("target write p99 at 1 client <= etcd's: not measured"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(64);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let dir = match tempfile::Builder::new().prefix("api-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("creating a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "api_bench: {VALUE_BYTES}-byte values, {} keys, clients {:?}, warm-up {:?}, duration {:?}, \
         {} cores",
        args.keys,
        args.clients,
        args.warmup,
        args.duration,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut failed = false;
    let mut etcd = Reports::new();
    if args.etcd
        && let Err(e) = run_etcd(&args, dir.path(), &mut etcd).await
    {
        if e.downcast_ref::<EtcdNotInstalled>().is_some() {
            println!("etcd skipped: {e}");
        } else {
            eprintln!("etcd side failed: {e:#}");
            failed = true;
        }
    }
    let mut capstan = Reports::new();
    if args.capstan
        && let Err(e) = run_capstan(&args, dir.path(), &mut capstan).await
    {
        eprintln!("capstan side failed: {e:#}");
        failed = true;
    }
    print_table(&args, &capstan, &etcd);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_exactly_256_bytes_and_differ_per_write() {
        assert_eq!(value(3, 7).len(), VALUE_BYTES);
        assert_ne!(value(3, 7), value(3, 8));
    }

    #[test]
    fn durations_and_client_lists_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("x").is_err());
        let args = parse_args(["--clients", "1,100"].map(String::from).into_iter()).unwrap();
        assert_eq!(args.clients, vec![1, 100]);
        assert!(parse_args(["--clients", "0"].map(String::from).into_iter()).is_err());
    }
}

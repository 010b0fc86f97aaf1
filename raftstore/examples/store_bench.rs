//! Store write benchmark (not a test): 3 replicas in one process over the
//! real peer transport (gRPC, mutual TLS on loopback), RocksDB with fsync on
//! every log append, writers putting 256-byte values.
//!
//! For each concurrency level it prints writes/s and p50/p99 latency, and,
//! measured in the same run on the same disk, the rate of serial 256-byte
//! write+fdatasync calls: the ceiling of a store that fsyncs each write on
//! its own, against which group commit is judged.
//!
//! Run: `cargo run --release -p capstan-raftstore --example store_bench -- [SECONDS] [CONCURRENCY...]`
//! (defaults: 10 seconds, concurrency 1 and 64).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use capstan_raftstore::command::{Command, Op, Txn};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Serial write + fdatasync of 256 bytes for `secs`: fsyncs per second.
fn serial_fsync_rate(dir: &std::path::Path, secs: f64) -> f64 {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).unwrap();
    let buf = [7u8; 256];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let levels: Vec<usize> = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|s| s.parse().expect("concurrency"))
            .collect()
    } else {
        vec![1, 64]
    };
    let cluster = common::GrpcCluster::start(3, |c| c.history_revisions = 0).await;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await;
    let fsync = serial_fsync_rate(cluster.dir.path(), 2.0);
    println!(
        "store_bench: 3 replicas, gRPC+mTLS on loopback, RocksDB fsync per append, 256-byte values, {secs}s per level"
    );
    println!("disk baseline: {fsync:.0} serial 256-byte write+fdatasync per second");
    let value = Bytes::from(vec![b'v'; 256]);
    for &writers in &levels {
        let replica = Arc::new(cluster.get(leader).clone());
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for w in 0..writers {
            let replica = replica.clone();
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let key = Bytes::from(format!("/bench/{writers}/{w}/{i}"));
                    let cmd = Command::Txn(Txn {
                        success: vec![Op::Put {
                            key,
                            value: value.clone(),
                        }],
                        ..Txn::default()
                    });
                    let t = Instant::now();
                    replica.write(cmd).await.expect("write");
                    lat.push(t.elapsed());
                    i += 1;
                }
                lat
            }));
        }
        let start = Instant::now();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = start.elapsed().as_secs_f64();
        all.sort();
        let rate = all.len() as f64 / elapsed;
        println!(
            "writers={writers:>3}  writes/s={rate:>8.0}  p50={:>7.2}ms  p99={:>7.2}ms  ratio to serial fsync={:.2}",
            percentile(&all, 0.50).as_secs_f64() * 1e3,
            percentile(&all, 0.99).as_secs_f64() * 1e3,
            rate / fsync,
        );
    }
    cluster.shutdown().await;
}

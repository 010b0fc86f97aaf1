//! What the `capstan` package's multi-process tests share: free loopback
//! ports, the `capctl` binary, and the shared fixtures.

#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};

/// A port whose next `n - 1` neighbours are free too (checked, then
/// released).
pub fn free_port_base(n: u16) -> u16 {
    for _ in 0..50 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 65_000 {
            continue;
        }
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range");
}

/// The `capctl` binary: `$CAPCTL_BIN`, else next to this test's binary
/// (cargo builds it for the `capstan-ctl` package in a workspace run).
pub fn capctl() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("CAPCTL_BIN") {
        return Some(bin.into());
    }
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("capctl");
    bin.exists().then_some(bin)
}

/// A valid manifest of `../shared/fixtures` (or `$CAPSTAN_FIXTURES`).
pub fn fixture(name: &str) -> PathBuf {
    let base = std::env::var_os("CAPSTAN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    let nested = base.join("manifests");
    let base = if nested.is_dir() { nested } else { base };
    base.join("valid").join(name)
}

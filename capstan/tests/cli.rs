//! The `capstan` binary's command line: usage and configuration errors exit
//! with status 64 (EX_USAGE) and say what is wrong.
//!
//! (Building this test also makes cargo build the `capstan` binary that the
//! multi-process tests in `tests/` run.)

use std::process::Command;

fn capstan(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .output()
        .expect("capstan runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let (code, stderr) = capstan(&["fly"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("unrecognized subcommand 'fly'"), "{stderr}");
}

#[test]
fn missing_config_file_exits_64() {
    let (code, stderr) = capstan(&["apiserver", "--config", "/nonexistent/apiserver.yaml"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("/nonexistent/apiserver.yaml"), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn invalid_config_names_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apiserver.yaml");
    std::fs::write(
        &path,
        "id: 0\ndataDir: d\nclientAddress: 127.0.0.1:6443\npeerAddress: 127.0.0.1:6443\n\
         tls: { caFile: ca.crt, certFile: a.crt, keyFile: a.key, peerCertFile: p.crt, peerKeyFile: p.key }\n",
    )
    .unwrap();
    let (code, stderr) = capstan(&["apiserver", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("id: must be ≥ 1"), "{stderr}");
    assert!(
        stderr.contains("peerAddress: must differ from clientAddress"),
        "{stderr}"
    );

    std::fs::write(&path, "id: 1\nbogus: true\n").unwrap();
    let (code, stderr) = capstan(&["apiserver", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("unknown field `bogus`"), "{stderr}");
}

#[test]
fn missing_certificates_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apiserver.yaml");
    std::fs::write(
        &path,
        "id: 1\ndataDir: d\nclientAddress: 127.0.0.1:6443\npeerAddress: 127.0.0.1:2380\n\
         tls: { caFile: ca.crt, certFile: a.crt, keyFile: a.key, peerCertFile: p.crt, peerKeyFile: p.key }\n",
    )
    .unwrap();
    let (code, stderr) = capstan(&["apiserver", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("tls.caFile: cannot read"), "{stderr}");
}

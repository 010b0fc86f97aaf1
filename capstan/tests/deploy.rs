//! The systemd units in `deploy/` are valid: `systemd-analyze verify`
//! accepts them (with the binary path pointed at this build).

use std::path::Path;
use std::process::Command;

#[test]
fn systemd_units_verify() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is missing: apt-get install -y systemd");
    };
    assert!(version.status.success());
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "service") {
            continue;
        }
        // verify checks that ExecStart's binary exists: point it at ours.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/capstan", env!("CARGO_BIN_EXE_capstan"));
        let copy = dir.path().join(path.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Complaints about the host (no systemd running, missing users) are
        // not about the unit; anything naming the unit file is.
        let about_unit: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(copy.file_name().unwrap().to_str().unwrap()))
            .collect();
        assert!(
            out.status.success() || about_unit.is_empty(),
            "{}: {stderr}",
            path.display()
        );
        assert!(about_unit.is_empty(), "{}: {stderr}", path.display());
        checked += 1;
    }
    assert!(checked >= 1, "no unit found in {}", units.display());
}

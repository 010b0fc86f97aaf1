//! The audit log: one JSON line per mutating request (create, update,
//! patch, delete, deletecollection — allowed or not), appended to a file by
//! a dedicated thread so a slow disk never holds a request.
//!
//! ```json
//! {"time":"2026-11-27T10:00:00.123Z","user":"capstan-admin","groups":["system:masters"],
//!  "verb":"create","group":"","resource":"pods","subresource":"","namespace":"default",
//!  "name":"web","code":201,"reason":""}
//! ```
//!
//! Records are flushed after every burst; a crash may lose the last burst's
//! records, never half a line before them.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use serde::Serialize;

/// One audited request.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Record {
    /// When the request finished (RFC 3339, UTC).
    pub time: String,
    /// The caller.
    pub user: String,
    /// The caller's groups.
    pub groups: Vec<String>,
    /// The verb.
    pub verb: String,
    /// API group of the resource.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource (`status`) or empty.
    pub subresource: String,
    /// Namespace or empty.
    pub namespace: String,
    /// Object name or empty.
    pub name: String,
    /// HTTP-equivalent result code (200, 201, 403, 409, 422, ...).
    pub code: u16,
    /// Failure reason (`Forbidden`, `Conflict`, ...) or empty.
    pub reason: String,
}

/// Where audit records go. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: Option<mpsc::Sender<Record>>,
}

impl AuditLog {
    /// An audit log that discards records (no file configured).
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// Appends to `path` (created if missing, mode 0600).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let (tx, rx) = mpsc::channel::<Record>();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_loop(file, rx))?;
        Ok(Self { tx: Some(tx) })
    }

    /// Records one request.
    pub fn record(&self, record: Record) {
        if let Some(tx) = &self.tx {
            // The writer only stops when every sender is gone.
            let _ = tx.send(record);
        }
    }
}

fn write_loop(file: std::fs::File, rx: mpsc::Receiver<Record>) {
    let mut out = std::io::BufWriter::new(file);
    while let Ok(first) = rx.recv() {
        let mut burst = vec![first];
        burst.extend(rx.try_iter());
        for record in burst {
            let Ok(mut line) = serde_json::to_vec(&record) else {
                continue;
            };
            line.push(b'\n');
            if let Err(e) = out.write_all(&line) {
                tracing::error!(error = %e, "audit log write failed");
            }
        }
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "audit log flush failed");
        }
    }
}

/// Now, as RFC 3339 with milliseconds.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for code in [201, 403] {
            log.record(Record {
                time: now(),
                user: "alice".into(),
                groups: vec!["devs".into()],
                verb: "create".into(),
                group: String::new(),
                resource: "pods".into(),
                subresource: String::new(),
                namespace: "default".into(),
                name: "web".into(),
                code,
                reason: if code == 403 {
                    "Forbidden".into()
                } else {
                    String::new()
                },
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let lines = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() == 2 || std::time::Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["user"], "alice");
        assert_eq!(lines[0]["code"], 201);
        assert_eq!(lines[1]["reason"], "Forbidden");
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    }
}

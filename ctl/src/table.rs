//! Tables for `get`: NAME (NAMESPACE first with `-A`), a few of kubectl's
//! columns for common kinds, AGE, wide-only columns with `-o wide`, and
//! LABELS with `--show-labels`. Every kind gets NAME and AGE; the
//! per-kind columns are the one table [`extra_columns`], each a function
//! of the object's Kubernetes JSON.

use serde_json::Value;
use time::OffsetDateTime;

/// One per-kind column.
pub struct Column {
    /// The header.
    pub name: &'static str,
    /// Shown only with `-o wide`.
    pub wide: bool,
    /// The cell, from the object's JSON.
    pub cell: fn(&Value) -> String,
}

const fn col(name: &'static str, cell: fn(&Value) -> String) -> Column {
    Column {
        name,
        wide: false,
        cell,
    }
}

const fn wide(name: &'static str, cell: fn(&Value) -> String) -> Column {
    Column {
        name,
        wide: true,
        cell,
    }
}

/// The value at a dotted path (`status.phase`).
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn text(v: &Value, path: &str) -> String {
    match at(v, path) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<none>".to_owned(),
    }
}

fn int(v: &Value, path: &str) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn items<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn pod_ready(v: &Value) -> String {
    let total = items(v, "spec.containers").len();
    let ready = items(v, "status.containerStatuses")
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    format!("{ready}/{total}")
}

fn pod_status(v: &Value) -> String {
    if at(v, "metadata.deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    for c in items(v, "status.containerStatuses") {
        if let Some(reason) = at(c, "state.waiting.reason").and_then(Value::as_str) {
            return reason.to_owned();
        }
    }
    match at(v, "status.phase").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => "Pending".into(),
    }
}

fn pod_restarts(v: &Value) -> String {
    items(v, "status.containerStatuses")
        .iter()
        .map(|c| int(c, "restartCount"))
        .sum::<i64>()
        .to_string()
}

fn replicas_ready(v: &Value) -> String {
    format!(
        "{}/{}",
        int(v, "status.readyReplicas"),
        at(v, "spec.replicas").and_then(Value::as_i64).unwrap_or(1)
    )
}

fn service_ports(v: &Value) -> String {
    let ports: Vec<String> = items(v, "spec.ports")
        .iter()
        .map(|p| {
            let port = int(p, "port");
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match int(p, "nodePort") {
                0 => format!("{port}/{proto}"),
                n => format!("{port}:{n}/{proto}"),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn node_status(v: &Value) -> String {
    let ready = items(v, "status.conditions")
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .and_then(|c| c.get("status").and_then(Value::as_str));
    match ready {
        Some("True") => "Ready".into(),
        _ => "NotReady".into(),
    }
}

fn data_count(v: &Value) -> String {
    let n = |k: &str| at(v, k).and_then(Value::as_object).map_or(0, |m| m.len());
    (n("data") + n("binaryData")).to_string()
}

static POD: &[Column] = &[
    col("READY", pod_ready),
    col("STATUS", pod_status),
    col("RESTARTS", pod_restarts),
    wide("IP", |v| text(v, "status.podIP")),
    wide("NODE", |v| text(v, "spec.nodeName")),
];
static DEPLOYMENT: &[Column] = &[
    col("READY", replicas_ready),
    col("UP-TO-DATE", |v| {
        int(v, "status.updatedReplicas").to_string()
    }),
    col("AVAILABLE", |v| {
        int(v, "status.availableReplicas").to_string()
    }),
];
static REPLICAS: &[Column] = &[
    col("DESIRED", |v| {
        at(v, "spec.replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .to_string()
    }),
    col("CURRENT", |v| int(v, "status.replicas").to_string()),
    col("READY", |v| int(v, "status.readyReplicas").to_string()),
];
static STATEFULSET: &[Column] = &[col("READY", replicas_ready)];
static SERVICE: &[Column] = &[
    col("TYPE", |v| text(v, "spec.type")),
    col("CLUSTER-IP", |v| text(v, "spec.clusterIP")),
    col("PORT(S)", service_ports),
];
static NAMESPACE: &[Column] = &[col("STATUS", |v| text(v, "status.phase"))];
static NODE: &[Column] = &[col("STATUS", node_status)];
static DATA: &[Column] = &[col("DATA", data_count)];
static HPA: &[Column] = &[
    col("REFERENCE", |v| {
        format!(
            "{}/{}",
            text(v, "spec.scaleTargetRef.kind"),
            text(v, "spec.scaleTargetRef.name")
        )
    }),
    col("MINPODS", |v| text(v, "spec.minReplicas")),
    col("MAXPODS", |v| text(v, "spec.maxReplicas")),
    col("REPLICAS", |v| int(v, "status.currentReplicas").to_string()),
];

/// The columns between NAME and AGE (and wide ones after AGE) for `kind`.
pub fn extra_columns(kind: &str) -> &'static [Column] {
    match kind {
        "Pod" => POD,
        "Deployment" => DEPLOYMENT,
        "ReplicaSet" | "ReplicationController" => REPLICAS,
        "StatefulSet" => STATEFULSET,
        "Service" => SERVICE,
        "Namespace" => NAMESPACE,
        "Node" => NODE,
        "ConfigMap" | "Secret" => DATA,
        "HorizontalPodAutoscaler" => HPA,
        _ => &[],
    }
}

/// kubectl's short age: `45s`, `3m12s`, `17m`, `5h3m`, `20h`, `3d4h`, `120d`, `3y`.
pub fn age(created: Option<&str>, now: OffsetDateTime) -> String {
    let Some(t) = created.and_then(|s| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return "<unknown>".into();
    };
    let s = (now - t).whole_seconds().max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if d < 8 => format!("{d}d{}h", h % 24),
        _ if d < 730 => format!("{d}d"),
        _ => format!("{}y", d / 365),
    }
}

/// Lays out rows in columns separated by three spaces, as kubectl does.
pub fn render(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ages_like_kubectl() {
        let now = OffsetDateTime::parse(
            "2026-01-10T00:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(age(Some("2026-01-09T23:59:15Z"), now), "45s");
        assert_eq!(age(Some("2026-01-09T23:56:48Z"), now), "3m12s");
        assert_eq!(age(Some("2026-01-09T19:00:00Z"), now), "5h0m");
        assert_eq!(age(Some("2026-01-07T00:00:00Z"), now), "3d0h");
        assert_eq!(age(None, now), "<unknown>");
    }

    #[test]
    fn pod_columns() {
        let pod = json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]}
        });
        let cells: Vec<String> = POD.iter().map(|c| (c.cell)(&pod)).collect();
        assert_eq!(cells, ["1/2", "Running", "3", "<none>", "<none>"]);
    }

    #[test]
    fn render_aligns() {
        let out = render(
            &["NAME".into(), "AGE".into()],
            &[vec!["a-long-name".into(), "5s".into()]],
        );
        assert_eq!(out, "NAME          AGE\na-long-name   5s\n");
    }
}

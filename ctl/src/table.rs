//! Tables for `get`: NAME (NAMESPACE first with `-A`), kubectl's
//! columns for common kinds (pods: [`crate::pod_status`]), AGE (a node's
//! VERSION after it), wide-only columns with `-o wide`, and
//! LABELS with `--show-labels`. Every kind gets NAME and AGE; the
//! per-kind columns are the one table [`extra_columns`], each a function
//! of the object's Kubernetes JSON.

use serde_json::Value;
use time::OffsetDateTime;

/// Where a column sits in the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Between NAME and AGE.
    BeforeAge,
    /// Right after AGE (a node's VERSION).
    AfterAge,
    /// After those, only with `-o wide`.
    Wide,
}

/// One per-kind column.
#[derive(Clone, Copy)]
pub struct Column {
    /// The header.
    pub name: &'static str,
    /// Where it sits.
    pub place: Place,
    /// The cell, from the object's JSON.
    pub cell: fn(&Value) -> String,
}

const fn col(name: &'static str, cell: fn(&Value) -> String) -> Column {
    Column {
        name,
        place: Place::BeforeAge,
        cell,
    }
}

const fn after_age(name: &'static str, cell: fn(&Value) -> String) -> Column {
    Column {
        name,
        place: Place::AfterAge,
        cell,
    }
}

const fn wide(name: &'static str, cell: fn(&Value) -> String) -> Column {
    Column {
        name,
        place: Place::Wide,
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

/// The array at a dotted path, empty when missing.
pub fn items<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn pod_cells(v: &Value) -> crate::pod_status::PodCells {
    crate::pod_status::pod_cells(v, OffsetDateTime::now_utc())
}

/// A label selector as text: a `LabelSelector` (`matchLabels`,
/// `matchExpressions`) or a plain map (a ReplicationController's);
/// `<none>` when empty.
pub fn selector(v: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    let labels = v
        .get("matchLabels")
        .or(if v.get("matchExpressions").is_some() {
            None
        } else {
            Some(v)
        });
    if let Some(Value::Object(m)) = labels {
        parts.extend(
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))),
        );
    }
    for e in items(v, "matchExpressions") {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = items(e, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// The template's (or pod's) containers' names or images, comma-joined.
fn containers_field(v: &Value, field: &str) -> String {
    let list = match items(v, "spec.template.spec.containers") {
        [] => items(v, "spec.containers"),
        l => l,
    };
    let cells: Vec<&str> = list.iter().filter_map(|c| c[field].as_str()).collect();
    if cells.is_empty() {
        "<none>".into()
    } else {
        cells.join(",")
    }
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

/// kubectl's EXTERNAL-IP for a service: the externalName, the load
/// balancer's ingress IPs (or hostnames) and `spec.externalIPs`,
/// `<pending>` for a LoadBalancer without ingress, else `<none>`.
fn service_external_ip(v: &Value) -> String {
    let strings = |path: &str| -> Vec<String> {
        items(v, path)
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let ingress = || -> Vec<String> {
        items(v, "status.loadBalancer.ingress")
            .iter()
            .filter_map(|i| {
                i.get("ip")
                    .or_else(|| i.get("hostname"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .collect()
    };
    let external = strings("spec.externalIPs");
    let joined = |mut list: Vec<String>| {
        list.extend(external.iter().cloned());
        if list.is_empty() {
            "<none>".to_owned()
        } else {
            list.join(",")
        }
    };
    match at(v, "spec.type").and_then(Value::as_str) {
        Some("ExternalName") => text(v, "spec.externalName"),
        Some("LoadBalancer") => {
            let lb = ingress();
            if lb.is_empty() && external.is_empty() {
                "<pending>".to_owned()
            } else {
                joined(lb)
            }
        }
        _ => joined(Vec::new()),
    }
}

/// kubectl's ENDPOINTS: the ready `ip:port` pairs of every subset, the
/// first three then `+ N more...`; `<none>` when there are none.
fn endpoints(v: &Value) -> String {
    let mut pairs: Vec<String> = Vec::new();
    for subset in items(v, "subsets") {
        let ports = items(subset, "ports");
        for address in items(subset, "addresses") {
            let ip = address["ip"].as_str().unwrap_or("");
            if ports.is_empty() {
                pairs.push(ip.to_owned());
            }
            for p in ports {
                pairs.push(format!("{ip}:{}", int(p, "port")));
            }
        }
    }
    endpoint_list(&pairs)
}

/// `ip:port` pairs as kubectl shows them: the first three then `+ N
/// more...`; `<none>` when there are none.
pub fn endpoint_list(pairs: &[String]) -> String {
    match pairs.len() {
        0 => "<none>".into(),
        n if n > 3 => format!("{} + {} more...", pairs[..3].join(","), n - 3),
        _ => pairs.join(","),
    }
}

fn node_status(v: &Value) -> String {
    let ready = items(v, "status.conditions")
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .and_then(|c| c.get("status").and_then(Value::as_str));
    let mut status = match ready {
        Some("True") => "Ready".to_owned(),
        Some("Unknown") | None => "Unknown".to_owned(),
        _ => "NotReady".to_owned(),
    };
    if at(v, "spec.unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// kubectl's ROLES: `node-role.kubernetes.io/ROLE` label keys and the
/// `kubernetes.io/role` label value.
fn node_roles(v: &Value) -> String {
    let mut roles: Vec<String> = Vec::new();
    if let Some(Value::Object(labels)) = at(v, "metadata.labels") {
        for (k, val) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_owned());
                }
            } else if k == "kubernetes.io/role"
                && let Some(r) = val.as_str().filter(|r| !r.is_empty())
            {
                roles.push(r.to_owned());
            }
        }
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn node_address(v: &Value, kind: &str) -> String {
    items(v, "status.addresses")
        .iter()
        .find(|a| a["type"] == kind)
        .and_then(|a| a["address"].as_str())
        .unwrap_or("<none>")
        .to_owned()
}

fn data_count(v: &Value) -> String {
    let n = |k: &str| at(v, k).and_then(Value::as_object).map_or(0, |m| m.len());
    (n("data") + n("binaryData")).to_string()
}

static POD: &[Column] = &[
    col("READY", |v| pod_cells(v).ready),
    col("STATUS", |v| pod_cells(v).status),
    col("RESTARTS", |v| pod_cells(v).restarts),
    wide("IP", |v| text(v, "status.podIP")),
    wide("NODE", |v| text(v, "spec.nodeName")),
    wide("NOMINATED NODE", |v| text(v, "status.nominatedNodeName")),
    wide("READINESS GATES", crate::pod_status::readiness_gates),
];
const TEMPLATE_WIDE: [Column; 3] = [
    wide("CONTAINERS", |v| containers_field(v, "name")),
    wide("IMAGES", |v| containers_field(v, "image")),
    wide("SELECTOR", |v| {
        at(v, "spec.selector").map_or_else(|| "<none>".into(), selector)
    }),
];
static DEPLOYMENT: &[Column] = &[
    col("READY", replicas_ready),
    col("UP-TO-DATE", |v| {
        int(v, "status.updatedReplicas").to_string()
    }),
    col("AVAILABLE", |v| {
        int(v, "status.availableReplicas").to_string()
    }),
    TEMPLATE_WIDE[0],
    TEMPLATE_WIDE[1],
    TEMPLATE_WIDE[2],
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
    TEMPLATE_WIDE[0],
    TEMPLATE_WIDE[1],
    TEMPLATE_WIDE[2],
];
static STATEFULSET: &[Column] = &[col("READY", replicas_ready)];
static SERVICE: &[Column] = &[
    col("TYPE", |v| text(v, "spec.type")),
    col("CLUSTER-IP", |v| text(v, "spec.clusterIP")),
    col("EXTERNAL-IP", service_external_ip),
    col("PORT(S)", service_ports),
    wide("SELECTOR", |v| {
        at(v, "spec.selector").map_or_else(|| "<none>".into(), selector)
    }),
];
static ENDPOINTS: &[Column] = &[col("ENDPOINTS", endpoints)];
static NAMESPACE: &[Column] = &[col("STATUS", |v| text(v, "status.phase"))];
static NODE: &[Column] = &[
    col("STATUS", node_status),
    col("ROLES", node_roles),
    after_age("VERSION", |v| text(v, "status.nodeInfo.kubeletVersion")),
    wide("INTERNAL-IP", |v| node_address(v, "InternalIP")),
    wide("EXTERNAL-IP", |v| node_address(v, "ExternalIP")),
    wide("OS-IMAGE", |v| text(v, "status.nodeInfo.osImage")),
    wide("KERNEL-VERSION", |v| {
        text(v, "status.nodeInfo.kernelVersion")
    }),
    wide("CONTAINER-RUNTIME", |v| {
        text(v, "status.nodeInfo.containerRuntimeVersion")
    }),
];
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
        "Endpoints" => ENDPOINTS,
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
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "127.1.0.2", "containerStatuses": [
                {"ready": true, "restartCount": 2, "state": {"running": {}}},
                {"ready": false, "restartCount": 1, "state": {"running": {}}}]}
        });
        let cells: Vec<String> = POD.iter().map(|c| (c.cell)(&pod)).collect();
        assert_eq!(
            cells,
            ["1/2", "Running", "3", "127.1.0.2", "n1", "<none>", "<none>"]
        );
    }

    #[test]
    fn workload_and_node_columns() {
        let deploy = json!({
            "spec": {"replicas": 3,
                "selector": {"matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1"}, {"name": "side", "image": "envoy"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let cells: Vec<String> = DEPLOYMENT.iter().map(|c| (c.cell)(&deploy)).collect();
        assert_eq!(
            cells,
            [
                "2/3",
                "3",
                "2",
                "web,side",
                "nginx:1,envoy",
                "app=web,tier in (a,b)"
            ]
        );
        assert_eq!(selector(&json!({"app": "db"})), "app=db");
        let node = json!({
            "metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "nodeInfo": {"kubeletVersion": "v0.1.0"}}
        });
        let cells: Vec<String> = NODE.iter().map(|c| (c.cell)(&node)).collect();
        assert_eq!(
            cells[..4],
            [
                "Ready,SchedulingDisabled",
                "control-plane,worker",
                "v0.1.0",
                "127.0.0.1"
            ]
        );
    }

    #[test]
    fn service_and_endpoints_columns() {
        let cells = |v: &Value| -> Vec<String> { SERVICE.iter().map(|c| (c.cell)(v)).collect() };
        let np = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.5",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "nodePort": 30390, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}});
        assert_eq!(
            cells(&np),
            [
                "NodePort",
                "10.96.0.5",
                "<none>",
                "80:30390/TCP,443/TCP",
                "app=web"
            ]
        );
        let lb =
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP"}]}});
        assert_eq!(cells(&lb)[2], "<pending>");
        let lb = json!({"spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.9.1"}, {"hostname": "lb.local"}]}}});
        assert_eq!(cells(&lb)[2], "127.0.9.1,lb.local");
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(cells(&ext)[2], "db.example.com");
        assert_eq!(cells(&ext)[4], "<none>");

        let ep = json!({"subsets": [
            {"addresses": [{"ip": "127.0.1.2"}, {"ip": "127.0.1.3"}],
             "notReadyAddresses": [{"ip": "127.0.1.9"}],
             "ports": [{"port": 8080}]},
            {"addresses": [{"ip": "127.0.1.4"}, {"ip": "127.0.1.5"}], "ports": [{"port": 8080}]}]});
        assert_eq!(
            endpoints(&ep),
            "127.0.1.2:8080,127.0.1.3:8080,127.0.1.4:8080 + 1 more..."
        );
        let ep = json!({"subsets": [{"addresses": [{"ip": "127.0.1.2"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(endpoints(&ep), "127.0.1.2:80,127.0.1.2:443");
        assert_eq!(
            endpoints(&json!({"subsets": [{"notReadyAddresses": [{"ip": "127.0.1.9"}]}]})),
            "<none>"
        );
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

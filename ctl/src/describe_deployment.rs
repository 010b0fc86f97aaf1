//! `describe deployment` in kubectl's layout: replicas (`desired |
//! updated | total | available | unavailable`), strategy, the pod
//! template, conditions, the old and new ReplicaSets (those the
//! Deployment controls; the new one is the one whose template matches,
//! ignoring `pod-template-hash`), then the events. Pure text from the
//! objects' JSON; the caller reads them.

use serde_json::Value;

use crate::rollout_history::POD_TEMPLATE_HASH;
use crate::table::{at, items, selector};

/// Column where top-level values start (kubectl's tab writer, aligned
/// on `RollingUpdateStrategy:`).
const WIDTH: usize = 24;

/// `key:` padded to `width`, then the value.
pub(crate) fn line_at(out: &mut String, width: usize, key: &str, value: impl std::fmt::Display) {
    out.push_str(&format!("{:<width$}{value}\n", format!("{key}:")));
}

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    line_at(out, WIDTH, key, value);
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, path: &str) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(text: String) -> String {
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

/// `key=value` lines (labels) or `key: value` lines (annotations), the
/// first after `key:`, the rest aligned under it.
pub(crate) fn map_block(out: &mut String, key: &str, map: Option<&Value>, sep: &str, width: usize) {
    let entries: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}{sep}{}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let head = format!("{key}:");
    if entries.is_empty() {
        out.push_str(&format!("{head:<width$}<none>\n"));
        return;
    }
    for (i, e) in entries.iter().enumerate() {
        let lead = if i == 0 { head.as_str() } else { "" };
        out.push_str(&format!("{lead:<width$}{e}\n"));
    }
}

/// kubectl's timestamp: `Mon, 02 Jan 2006 15:04:05 +0000`.
fn timestamp(rfc3339: &str) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| rfc3339.to_owned())
}

fn int_or_string(v: Option<&Value>, default: &str) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => default.to_owned(),
    }
}

/// The `Pod Template:` block.
fn pod_template(out: &mut String, template: &Value) {
    out.push_str("Pod Template:\n");
    map_block(out, "  Labels", at(template, "metadata.labels"), "=", 11);
    if at(template, "metadata.annotations").is_some() {
        map_block(
            out,
            "  Annotations",
            at(template, "metadata.annotations"),
            ": ",
            16,
        );
    }
    for (title, field) in [
        ("Init Containers", "spec.initContainers"),
        ("Containers", "spec.containers"),
    ] {
        let list = items(template, field);
        if list.is_empty() && field == "spec.initContainers" {
            continue;
        }
        out.push_str(&format!("  {title}:\n"));
        for c in list {
            out.push_str(&format!("   {}:\n", s(c, "name")));
            let kv = |out: &mut String, k: &str, v: String| {
                out.push_str(&format!("    {:<14}{v}\n", format!("{k}:")));
            };
            kv(out, "Image", or_none(s(c, "image").to_owned()));
            let ports: Vec<String> = items(c, "ports")
                .iter()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    format!("{}/{proto}", int(p, "containerPort"))
                })
                .collect();
            kv(out, "Port", or_none(ports.join(", ")));
            for (k, f) in [("Command", "command"), ("Args", "args")] {
                let words: Vec<&str> = items(c, f).iter().filter_map(Value::as_str).collect();
                if !words.is_empty() {
                    kv(out, k, words.join(" "));
                }
            }
            for (k, f) in [
                ("Limits", "resources.limits"),
                ("Requests", "resources.requests"),
            ] {
                if let Some(Value::Object(m)) = at(c, f) {
                    let text: Vec<String> = m
                        .iter()
                        .map(|(r, q)| format!("{r}: {}", int_or_string(Some(q), "")))
                        .collect();
                    kv(out, k, text.join(", "));
                }
            }
            let env: Vec<String> = items(c, "env")
                .iter()
                .map(|e| match e.get("value").and_then(Value::as_str) {
                    Some(v) => format!("{}: {v}", s(e, "name")),
                    None => format!("{}: (from a reference)", s(e, "name")),
                })
                .collect();
            kv(out, "Environment", or_none(env.join(", ")));
            let mounts: Vec<String> = items(c, "volumeMounts")
                .iter()
                .map(|m| format!("{} from {}", s(m, "mountPath"), s(m, "name")))
                .collect();
            kv(out, "Mounts", or_none(mounts.join(", ")));
        }
    }
    let volumes: Vec<&str> = items(template, "spec.volumes")
        .iter()
        .map(|v| s(v, "name"))
        .collect();
    out.push_str(&format!(
        "  {:<16}{}\n",
        "Volumes:",
        or_none(volumes.join(", "))
    ));
}

/// The template without the controller's hash label, for comparison.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(Value::Object(labels)) = t.pointer_mut("/metadata/labels") {
        labels.remove(POD_TEMPLATE_HASH);
    }
    t
}

fn rs_line(rs: &Value) -> String {
    format!(
        "{} ({}/{} replicas created)",
        s(rs, "metadata.name"),
        int(rs, "status.replicas"),
        int(rs, "spec.replicas")
    )
}

/// Everything above `Events:` for `deployment`, given the ReplicaSets of
/// its namespace (those it does not control are ignored).
pub fn describe(deployment: &Value, replica_sets: &[Value]) -> String {
    let d = deployment;
    let mut out = String::new();
    line(&mut out, "Name", s(d, "metadata.name"));
    line(&mut out, "Namespace", s(d, "metadata.namespace"));
    line(
        &mut out,
        "CreationTimestamp",
        timestamp(s(d, "metadata.creationTimestamp")),
    );
    map_block(&mut out, "Labels", at(d, "metadata.labels"), "=", WIDTH);
    map_block(
        &mut out,
        "Annotations",
        at(d, "metadata.annotations"),
        ": ",
        WIDTH,
    );
    line(
        &mut out,
        "Selector",
        at(d, "spec.selector").map_or_else(|| "<none>".into(), selector),
    );
    let desired = at(d, "spec.replicas").and_then(Value::as_i64).unwrap_or(1);
    line(
        &mut out,
        "Replicas",
        format!(
            "{desired} desired | {} updated | {} total | {} available | {} unavailable",
            int(d, "status.updatedReplicas"),
            int(d, "status.replicas"),
            int(d, "status.availableReplicas"),
            int(d, "status.unavailableReplicas")
        ),
    );
    let strategy = match s(d, "spec.strategy.type") {
        "" => "RollingUpdate",
        t => t,
    };
    line(&mut out, "StrategyType", strategy);
    line(&mut out, "MinReadySeconds", int(d, "spec.minReadySeconds"));
    if strategy == "RollingUpdate" {
        line(
            &mut out,
            "RollingUpdateStrategy",
            format!(
                "{} max unavailable, {} max surge",
                int_or_string(at(d, "spec.strategy.rollingUpdate.maxUnavailable"), "25%"),
                int_or_string(at(d, "spec.strategy.rollingUpdate.maxSurge"), "25%")
            ),
        );
    }
    if at(d, "spec.paused").and_then(Value::as_bool) == Some(true) {
        line(&mut out, "Paused", "true");
    }
    pod_template(&mut out, at(d, "spec.template").unwrap_or(&Value::Null));

    let conditions = items(d, "status.conditions");
    if !conditions.is_empty() {
        out.push_str("Conditions:\n");
        let rows: Vec<Vec<String>> = std::iter::once(["----", "------", "------"])
            .map(|r| r.map(String::from).to_vec())
            .chain(conditions.iter().map(|c| {
                vec![
                    s(c, "type").to_owned(),
                    s(c, "status").to_owned(),
                    s(c, "reason").to_owned(),
                ]
            }))
            .collect();
        let header = ["Type", "Status", "Reason"].map(String::from).to_vec();
        for l in crate::table::render(&header, &rows).lines() {
            out.push_str(&format!("  {l}\n"));
        }
    }

    let uid = s(d, "metadata.uid");
    let template = without_hash(at(d, "spec.template").unwrap_or(&Value::Null));
    let owned: Vec<&Value> = replica_sets
        .iter()
        .filter(|rs| {
            items(rs, "metadata.ownerReferences")
                .iter()
                .any(|o| o["uid"] == uid && o["controller"] == true)
        })
        .collect();
    let new = owned
        .iter()
        .find(|rs| without_hash(at(rs, "spec.template").unwrap_or(&Value::Null)) == template);
    let old: Vec<String> = owned
        .iter()
        .filter(|rs| Some(*rs) != new && int(rs, "spec.replicas") > 0)
        .map(|rs| rs_line(rs))
        .collect();
    out.push_str(&format!(
        "{:<17}{}\n",
        "OldReplicaSets:",
        or_none(old.join(", "))
    ));
    out.push_str(&format!(
        "{:<17}{}\n",
        "NewReplicaSet:",
        new.map_or_else(|| "<none>".into(), |rs| rs_line(rs))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectls_layout() {
        let template = json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:2",
                "ports": [{"containerPort": 80}]}]}});
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                "creationTimestamp": "2026-01-05T10:00:00Z", "labels": {"app": "web"}},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": template},
            "status": {"replicas": 5, "updatedReplicas": 2, "availableReplicas": 4, "unavailableReplicas": 1,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}
        });
        let mut new_template = template.clone();
        new_template["metadata"]["labels"]["pod-template-hash"] = json!("abc");
        let owner = json!([{"uid": "u1", "controller": true}]);
        let rs = [
            json!({"metadata": {"name": "web-abc", "ownerReferences": owner},
                "spec": {"replicas": 2, "template": new_template}, "status": {"replicas": 2}}),
            json!({"metadata": {"name": "web-old", "ownerReferences": owner},
                "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "old"}}}},
                "status": {"replicas": 3}}),
            json!({"metadata": {"name": "web-older", "ownerReferences": owner},
                "spec": {"replicas": 0}, "status": {"replicas": 0}}),
        ];
        let text = describe(&d, &rs);
        for want in [
            "Name:                   web\n",
            "CreationTimestamp:      Mon, 05 Jan 2026 10:00:00 +0000\n",
            "Selector:               app=web\n",
            "Replicas:               4 desired | 2 updated | 5 total | 4 available | 1 unavailable\n",
            "RollingUpdateStrategy:  0 max unavailable, 1 max surge\n",
            "    Image:        nginx:2\n",
            "    Port:         80/TCP\n",
            "  Available   True     MinimumReplicasAvailable\n",
            "OldReplicaSets:  web-old (3/3 replicas created)\n",
            "NewReplicaSet:   web-abc (2/2 replicas created)\n",
        ] {
            assert!(text.contains(want), "{want:?} missing in:\n{text}");
        }
    }
}

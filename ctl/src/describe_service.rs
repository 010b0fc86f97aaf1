//! `describe service` in kubectl's layout: name, namespace, labels,
//! annotations, selector, type, IP families, cluster IPs, then per port
//! its Port, TargetPort, NodePort and the Endpoints serving it (from the
//! Endpoints object of the same name: ready addresses only), session
//! affinity and traffic policies. Pure text from the objects' JSON; the
//! caller reads them and appends the events.

use serde_json::Value;

use crate::describe_deployment::{line_at, map_block};
use crate::table::{at, endpoint_list, items, selector};

/// Column where values start (kubectl's tab writer, aligned on
/// `External Traffic Policy:`).
const WIDTH: usize = 26;

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    line_at(out, WIDTH, key, value);
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, path: &str) -> Vec<String> {
    items(v, path)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The ready `ip:port` pairs of `endpoints` for the service port named
/// `name` (an unnamed port matches the subsets' unnamed ports).
fn port_endpoints(endpoints: Option<&Value>, name: &str) -> String {
    let mut pairs = Vec::new();
    for subset in endpoints.map_or(&[][..], |e| items(e, "subsets")) {
        for port in items(subset, "ports") {
            if port.get("name").and_then(Value::as_str).unwrap_or("") != name {
                continue;
            }
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            for address in items(subset, "addresses") {
                pairs.push(format!("{}:{number}", address["ip"].as_str().unwrap_or("")));
            }
        }
    }
    endpoint_list(&pairs)
}

/// The service (and its Endpoints, if any) as kubectl describes it,
/// without the events.
pub fn describe(service: &Value, endpoints: Option<&Value>) -> String {
    let v = service;
    let mut out = String::new();
    line(&mut out, "Name", s(v, "metadata.name"));
    line(&mut out, "Namespace", s(v, "metadata.namespace"));
    map_block(&mut out, "Labels", at(v, "metadata.labels"), "=", WIDTH);
    map_block(
        &mut out,
        "Annotations",
        at(v, "metadata.annotations"),
        ": ",
        WIDTH,
    );
    line(
        &mut out,
        "Selector",
        at(v, "spec.selector").map_or_else(|| "<none>".into(), selector),
    );
    let kind = match s(v, "spec.type") {
        "" => "ClusterIP",
        t => t,
    };
    line(&mut out, "Type", kind);
    if let Some(policy) = at(v, "spec.ipFamilyPolicy").and_then(Value::as_str) {
        line(&mut out, "IP Family Policy", policy);
    }
    let families = strings(v, "spec.ipFamilies");
    if !families.is_empty() {
        line(&mut out, "IP Families", families.join(","));
    }
    let ip = s(v, "spec.clusterIP");
    line(&mut out, "IP", if ip.is_empty() { "<none>" } else { ip });
    let ips = strings(v, "spec.clusterIPs");
    if !ips.is_empty() {
        line(&mut out, "IPs", ips.join(","));
    } else if !ip.is_empty() {
        line(&mut out, "IPs", ip);
    }
    let external = strings(v, "spec.externalIPs");
    if !external.is_empty() {
        line(&mut out, "External IPs", external.join(","));
    }
    if kind == "ExternalName" {
        line(&mut out, "External Name", s(v, "spec.externalName"));
    }
    let ingress: Vec<&str> = items(v, "status.loadBalancer.ingress")
        .iter()
        .filter_map(|i| i.get("ip").or_else(|| i.get("hostname")))
        .filter_map(Value::as_str)
        .collect();
    if !ingress.is_empty() {
        line(&mut out, "LoadBalancer Ingress", ingress.join(", "));
    }
    for port in items(v, "spec.ports") {
        let name = port.get("name").and_then(Value::as_str).unwrap_or("");
        let shown = if name.is_empty() { "<unset>" } else { name };
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP");
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        line(&mut out, "Port", format!("{shown}  {number}/{protocol}"));
        let target = match port.get("targetPort") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => number.to_string(),
        };
        line(&mut out, "TargetPort", format!("{target}/{protocol}"));
        if let Some(node_port) = port.get("nodePort").and_then(Value::as_i64)
            && node_port != 0
        {
            line(
                &mut out,
                "NodePort",
                format!("{shown}  {node_port}/{protocol}"),
            );
        }
        line(&mut out, "Endpoints", port_endpoints(endpoints, name));
    }
    let affinity = match s(v, "spec.sessionAffinity") {
        "" => "None",
        a => a,
    };
    line(&mut out, "Session Affinity", affinity);
    if matches!(kind, "NodePort" | "LoadBalancer") {
        let policy = match s(v, "spec.externalTrafficPolicy") {
            "" => "Cluster",
            p => p,
        };
        line(&mut out, "External Traffic Policy", policy);
    }
    if let Some(policy) = at(v, "spec.internalTrafficPolicy").and_then(Value::as_str) {
        line(&mut out, "Internal Traffic Policy", policy);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectls_layout() {
        let svc = json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.5",
                "clusterIPs": ["10.96.0.5"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30390, "protocol": "TCP"}]}
        });
        let ep = json!({"subsets": [{"addresses": [{"ip": "127.0.1.2"}, {"ip": "127.0.1.3"}],
            "notReadyAddresses": [{"ip": "127.0.1.9"}], "ports": [{"port": 8080}]}]});
        let expected = "\
Name:                     web
Namespace:                default
Labels:                   app=web
Annotations:              <none>
Selector:                 app=web
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.96.0.5
IPs:                      10.96.0.5
Port:                     <unset>  80/TCP
TargetPort:               8080/TCP
NodePort:                 <unset>  30390/TCP
Endpoints:                127.0.1.2:8080,127.0.1.3:8080
Session Affinity:         None
External Traffic Policy:  Cluster
";
        assert_eq!(describe(&svc, Some(&ep)), expected);
        assert!(describe(&svc, None).contains("Endpoints:                <none>\n"));
    }
}

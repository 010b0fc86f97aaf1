//! Services: defaults (`type: ClusterIP`, `sessionAffinity: None`, port
//! protocol TCP, targetPort = port) and validation (`ValidateService`:
//! ports, types, clusterIP, externalName, node ports, session affinity),
//! plus the rule that an allocated clusterIP never changes.

use std::collections::BTreeSet;

use capstan_proto::FieldError;
use capstan_proto::api::core::v1::{ClientIpConfig, Service, ServiceSpec, SessionAffinityConfig};
use capstan_proto::intstr::IntOrString;
use capstan_proto::labels::dns1123_subdomain_errors;

use super::field::{
    dns1123_label_errors, duplicate, forbidden, immutable, invalid, invalid_each, ip_errors,
    not_supported, port_name_errors, port_num_errors, required, validate_labels,
};
use super::pod::validate_protocol;

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const SESSION_AFFINITIES: &[&str] = &["ClientIP", "None"];
/// Default ClientIP affinity timeout: three hours.
const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS: i32 = 10800;
/// Most seconds a ClientIP affinity may last: one day.
const MAX_CLIENT_IP_TIMEOUT_SECONDS: i32 = 86400;

/// `SetDefaults_Service`.
pub(crate) fn default_service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(ServiceSpec::default);
    if spec.session_affinity.is_empty() {
        spec.session_affinity = "None".to_owned();
    }
    match spec.session_affinity.as_str() {
        "None" => spec.session_affinity_config = None,
        "ClientIP" => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIpConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT_SECONDS),
                    }),
                });
            }
        }
        _ => {}
    }
    if spec.r#type.is_empty() {
        spec.r#type = "ClusterIP".to_owned();
    }
    for port in &mut spec.ports {
        if port.protocol.is_empty() {
            port.protocol = "TCP".to_owned();
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port.unwrap_or(0)));
        }
    }
    let external = matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer");
    if external && spec.external_traffic_policy.is_empty() {
        spec.external_traffic_policy = "Cluster".to_owned();
    }
    if spec.internal_traffic_policy.is_none() && (external || spec.r#type == "ClusterIP") {
        spec.internal_traffic_policy = Some("Cluster".to_owned());
    }
    if spec.r#type == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }
}

/// `ValidateService` (spec only; metadata is validated by the caller).
pub(crate) fn validate_service(svc: &Service) -> Vec<FieldError> {
    let default = ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&default);
    let mut errors = Vec::new();
    let headless = spec.cluster_ip == "None";
    let kind = spec.r#type.as_str();

    if spec.ports.is_empty() && !headless && kind != "ExternalName" {
        errors.push(required("spec.ports", ""));
    }
    match kind {
        "" => errors.push(required("spec.type", "")),
        "NodePort" | "LoadBalancer" if headless => errors.push(invalid(
            "spec.clusterIP",
            &spec.cluster_ip,
            &format!("may not be set to 'None' for {kind} services"),
        )),
        "ExternalName" => {
            if !spec.cluster_ip.is_empty() {
                errors.push(forbidden(
                    "spec.clusterIP",
                    "must be empty for ExternalName services",
                ));
            }
            // The name (a CNAME) may end in a dot, to say it is fully qualified.
            let name = spec
                .external_name
                .strip_suffix('.')
                .unwrap_or(&spec.external_name);
            if spec.external_name.is_empty() {
                errors.push(required("spec.externalName", ""));
            } else {
                errors.extend(invalid_each(
                    "spec.externalName",
                    &spec.external_name,
                    dns1123_subdomain_errors(name),
                ));
            }
        }
        k if !SERVICE_TYPES.contains(&k) => {
            errors.push(not_supported("spec.type", k, SERVICE_TYPES));
        }
        _ => {}
    }
    if !spec.cluster_ip.is_empty() && !headless && !ip_errors(&spec.cluster_ip).is_empty() {
        errors.push(invalid(
            "spec.clusterIP",
            &spec.cluster_ip,
            "must be empty, 'None', or a valid IP address",
        ));
    }

    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    let mut node_ports = BTreeSet::new();
    for (i, p) in spec.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        if p.name.is_empty() {
            if spec.ports.len() > 1 {
                errors.push(required(format!("{path}.name"), ""));
            }
        } else {
            errors.extend(invalid_each(
                &format!("{path}.name"),
                &p.name,
                dns1123_label_errors(&p.name),
            ));
            if !names.insert(p.name.as_str()) {
                errors.push(duplicate(format!("{path}.name"), &p.name));
            }
        }
        let port = p.port.unwrap_or(0);
        for m in port_num_errors(i64::from(port)) {
            errors.push(invalid(format!("{path}.port"), port, &m));
        }
        validate_protocol(&p.protocol, &format!("{path}.protocol"), &mut errors);
        match &p.target_port {
            // Unset only without defaults; the default is the port.
            None => {}
            Some(IntOrString::Int(t)) => {
                for m in port_num_errors(i64::from(*t)) {
                    errors.push(invalid(format!("{path}.targetPort"), *t, &m));
                }
            }
            Some(IntOrString::String(s)) => errors.extend(invalid_each(
                &format!("{path}.targetPort"),
                s,
                port_name_errors(s),
            )),
        }
        if !ports.insert((port, p.protocol.as_str())) {
            errors.push(duplicate(&path, format!("{port}/{}", p.protocol)));
        }
        let node_port = p.node_port.unwrap_or(0);
        if node_port != 0 {
            let npath = format!("{path}.nodePort");
            match kind {
                "NodePort" | "LoadBalancer" => {
                    // The configured range is the allocator's business
                    // (registry::allocation); here only a port number.
                    if !(1..=65535).contains(&node_port) {
                        errors.push(invalid(
                            &npath,
                            node_port,
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                    if !node_ports.insert((node_port, p.protocol.as_str())) {
                        errors.push(duplicate(&npath, node_port));
                    }
                }
                _ => errors.push(forbidden(
                    &npath,
                    &format!("may not be used when `type` is '{kind}'"),
                )),
            }
        }
    }

    errors.extend(validate_labels(&spec.selector, "spec.selector"));
    match spec.session_affinity.as_str() {
        "" => errors.push(required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            match timeout {
                None => errors.push(required(
                    "spec.sessionAffinityConfig",
                    "when session affinity type is ClientIP",
                )),
                Some(t) if !(1..=MAX_CLIENT_IP_TIMEOUT_SECONDS).contains(&t) => {
                    errors.push(invalid(
                        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                        t,
                        &format!(
                            "must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT_SECONDS}"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        "None" => {
            if spec.session_affinity_config.is_some() {
                errors.push(forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errors.push(not_supported(
            "spec.sessionAffinity",
            other,
            SESSION_AFFINITIES,
        )),
    }
    for (i, ip) in spec.external_ips.iter().enumerate() {
        errors.extend(invalid_each(
            &format!("spec.externalIPs[{i}]"),
            ip,
            ip_errors(ip),
        ));
    }
    if !spec.external_traffic_policy.is_empty() {
        let externally_accessible = matches!(kind, "NodePort" | "LoadBalancer")
            || (kind == "ClusterIP" && !spec.external_ips.is_empty());
        if !externally_accessible {
            errors.push(invalid(
                "spec.externalTrafficPolicy",
                &spec.external_traffic_policy,
                "may only be set for externally-accessible services",
            ));
        } else if !["Cluster", "Local"].contains(&spec.external_traffic_policy.as_str()) {
            errors.push(not_supported(
                "spec.externalTrafficPolicy",
                &spec.external_traffic_policy,
                &["Cluster", "Local"],
            ));
        }
    }
    errors
}

/// Once allocated, the clusterIP of a Service other than ExternalName
/// never changes (changing to or from ExternalName may change it).
pub(crate) fn validate_service_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let default = ServiceSpec::default();
    let new_spec = new.spec.as_ref().unwrap_or(&default);
    let old_spec = old.spec.as_ref().unwrap_or(&default);
    if new_spec.r#type != "ExternalName"
        && old_spec.r#type != "ExternalName"
        && !old_spec.cluster_ip.is_empty()
    {
        return immutable("spec.clusterIP", &new_spec.cluster_ip, &old_spec.cluster_ip)
            .into_iter()
            .collect();
    }
    Vec::new()
}

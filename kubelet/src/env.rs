//! A container's environment as Kubernetes builds it: `value` with `$(VAR)`
//! expansion against the variables defined before it, `valueFrom.fieldRef`
//! for the pod's downward-API fields; and the expansion of `command`/`args`
//! against the complete environment.

use std::collections::HashMap;

use capstan_proto::api::core::v1::{Container, Pod};

/// The pod fields `fieldRef` may name.
pub struct PodFields<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Its IP, once the sandbox has one.
    pub pod_ip: Option<String>,
    /// The node's IP.
    pub host_ip: String,
}

impl PodFields<'_> {
    /// The value of `field_path`, or an error naming it.
    pub fn get(&self, field_path: &str) -> Result<String, String> {
        let meta = self.pod.metadata.clone().unwrap_or_default();
        let spec = self.pod.spec.clone().unwrap_or_default();
        Ok(match field_path {
            "metadata.name" => meta.name,
            "metadata.namespace" => meta.namespace,
            "metadata.uid" => meta.uid,
            "spec.nodeName" => spec.node_name,
            "spec.serviceAccountName" => spec.service_account_name,
            "status.podIP" => self.pod_ip.clone().unwrap_or_default(),
            "status.hostIP" => self.host_ip.clone(),
            other => {
                if let Some(key) = other
                    .strip_prefix("metadata.labels['")
                    .and_then(|k| k.strip_suffix("']"))
                {
                    return Ok(meta.labels.get(key).cloned().unwrap_or_default());
                }
                if let Some(key) = other
                    .strip_prefix("metadata.annotations['")
                    .and_then(|k| k.strip_suffix("']"))
                {
                    return Ok(meta.annotations.get(key).cloned().unwrap_or_default());
                }
                return Err(format!("fieldRef {other:?} is not supported"));
            }
        })
    }
}

/// Expands `$(VAR)` in `input` as Kubernetes does: `$$` is a literal `$`,
/// a reference to an unknown variable (or an unclosed one) is left as
/// written, any other `$` is kept.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            let ch = input[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        match bytes[i + 1] {
            b'$' => {
                out.push('$');
                i += 2;
            }
            b'(' => match input[i + 2..].find(')') {
                Some(end) => {
                    let name = &input[i + 2..i + 2 + end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&input[i..i + 3 + end]),
                    }
                    i += 3 + end;
                }
                None => {
                    out.push_str(&input[i..]);
                    i = bytes.len();
                }
            },
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

/// The resolver settings of a pod with dnsPolicy `ClusterFirst` (the
/// default) or `ClusterFirstWithHostNet`, as environment — the process
/// runtime's pods share the host's `/etc/resolv.conf`, so Kubernetes's
/// per-pod resolv.conf becomes: `CAPSTAN_DNS_SERVERS` (the cluster DNS
/// servers, `IP:PORT,...`), and glibc's own `LOCALDOMAIN` (the search
/// list `NS.svc.DOMAIN svc.DOMAIN DOMAIN`) and `RES_OPTIONS` (`ndots:5`).
/// Nothing for other policies or without cluster DNS servers.
pub fn dns_env(
    pod: &capstan_proto::api::core::v1::Pod,
    servers: &[std::net::SocketAddr],
    domain: &str,
) -> Vec<(String, String)> {
    let policy = pod.spec.as_ref().map_or("", |s| s.dns_policy.as_str());
    if servers.is_empty() || !matches!(policy, "" | "ClusterFirst" | "ClusterFirstWithHostNet") {
        return Vec::new();
    }
    let namespace = pod.metadata.as_ref().map_or("", |m| m.namespace.as_str());
    let servers: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
    vec![
        ("CAPSTAN_DNS_SERVERS".to_owned(), servers.join(",")),
        (
            "LOCALDOMAIN".to_owned(),
            format!("{namespace}.svc.{domain} svc.{domain} {domain}"),
        ),
        ("RES_OPTIONS".to_owned(), "ndots:5".to_owned()),
    ]
}

/// The container's environment, in spec order (a later duplicate wins
/// when the runtime applies them). `envFrom` is refused (it needs
/// ConfigMaps and Secrets, which the node authorizer does not grant yet).
pub fn container_env(
    container: &Container,
    fields: &PodFields,
) -> Result<Vec<(String, String)>, String> {
    if !container.env_from.is_empty() {
        return Err(
            "envFrom is not supported yet (it reads ConfigMaps and Secrets, which nodes may not read)"
                .to_owned(),
        );
    }
    let mut defined: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(container.env.len());
    for var in &container.env {
        let value = match var.value_from.as_ref() {
            Some(source) => match source.field_ref.as_ref() {
                Some(field) => fields
                    .get(&field.field_path)
                    .map_err(|e| format!("env {:?}: {e}", var.name))?,
                None => {
                    return Err(format!(
                        "env {:?}: only valueFrom.fieldRef is supported (configMapKeyRef, secretKeyRef and resourceFieldRef are not)",
                        var.name
                    ));
                }
            },
            None => expand(&var.value, |n| defined.get(n).cloned()),
        };
        defined.insert(var.name.clone(), value.clone());
        out.push((var.name.clone(), value));
    }
    Ok(out)
}

/// `command` and `args` expanded against `env`.
pub fn expand_command(
    container: &Container,
    env: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |n: &str| map.get(n).map(|v| v.to_string());
    (
        container
            .command
            .iter()
            .map(|c| expand(c, lookup))
            .collect(),
        container.args.iter().map(|c| expand(c, lookup)).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec};
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kubernetes() {
        assert_eq!(expand("$(A)-$(A)", vars), "x-x");
        assert_eq!(expand("$$(A)", vars), "$(A)");
        assert_eq!(expand("$$$(A)", vars), "$x");
        assert_eq!(expand("$(B)", vars), "$(B)");
        assert_eq!(expand("$(A", vars), "$(A");
        assert_eq!(expand("a$b$", vars), "a$b$");
        assert_eq!(expand("[$(EMPTY)]", vars), "[]");
        assert_eq!(expand("é$(A)ü", vars), "éxü");
    }

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.into(),
            value_from: None,
        }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: String::new(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: "v1".into(),
                    field_path: path.into(),
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn env_uses_earlier_vars_and_field_refs() {
        let pod = Pod {
            metadata: Some(ObjectMeta {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u1".into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_name: "n1".into(),
                ..Default::default()
            }),
            status: None,
        };
        let fields = PodFields {
            pod: &pod,
            pod_ip: Some("10.0.0.5".into()),
            host_ip: "127.0.0.1".into(),
        };
        let c = Container {
            name: "c".into(),
            env: vec![
                env("LATER", "$(IP)"),
                field("IP", "status.podIP"),
                field("HOST", "status.hostIP"),
                field("NAME", "metadata.name"),
                field("NS", "metadata.namespace"),
                field("UID", "metadata.uid"),
                field("NODE", "spec.nodeName"),
                env("URL", "http://$(IP):80/$(NS)/$$(NAME)"),
            ],
            command: vec!["echo".into(), "$(NAME)".into()],
            args: vec!["$(URL)".into(), "$(MISSING)".into()],
            ..Default::default()
        };
        let e = container_env(&c, &fields).unwrap();
        let get = |k: &str| e.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("LATER"), "$(IP)", "only earlier variables expand");
        assert_eq!(get("IP"), "10.0.0.5");
        assert_eq!(get("HOST"), "127.0.0.1");
        assert_eq!(get("NAME"), "p");
        assert_eq!(get("NS"), "ns");
        assert_eq!(get("UID"), "u1");
        assert_eq!(get("NODE"), "n1");
        assert_eq!(get("URL"), "http://10.0.0.5:80/ns/$(NAME)");
        let (cmd, args) = expand_command(&c, &e);
        assert_eq!(cmd, vec!["echo", "p"]);
        assert_eq!(args, vec!["http://10.0.0.5:80/ns/$(NAME)", "$(MISSING)"]);
        let bad = Container {
            env: vec![field("X", "status.nothing")],
            ..Default::default()
        };
        assert!(
            container_env(&bad, &fields)
                .unwrap_err()
                .contains("status.nothing")
        );
    }
}

#[cfg(test)]
mod dns_tests {
    use capstan_proto::api::core::v1::{EnvFromSource, PodSpec};
    use capstan_proto::api::meta::v1::ObjectMeta;

    use super::*;

    fn pod(policy: &str) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                namespace: "shop".into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                dns_policy: policy.into(),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn cluster_first_pods_get_the_cluster_resolver() {
        let servers = ["127.64.0.1:53".parse().unwrap()];
        let env = dns_env(&pod(""), &servers, "cluster.local");
        assert_eq!(
            env,
            vec![
                ("CAPSTAN_DNS_SERVERS".to_owned(), "127.64.0.1:53".to_owned()),
                (
                    "LOCALDOMAIN".to_owned(),
                    "shop.svc.cluster.local svc.cluster.local cluster.local".to_owned()
                ),
                ("RES_OPTIONS".to_owned(), "ndots:5".to_owned()),
            ]
        );
        assert!(dns_env(&pod("Default"), &servers, "cluster.local").is_empty());
        assert!(dns_env(&pod("ClusterFirst"), &[], "cluster.local").is_empty());
    }

    #[test]
    fn env_from_is_refused_not_ignored() {
        let c = Container {
            env_from: vec![EnvFromSource::default()],
            ..Default::default()
        };
        let p = pod("");
        let fields = PodFields {
            pod: &p,
            pod_ip: None,
            host_ip: String::new(),
        };
        let err = container_env(&c, &fields).unwrap_err();
        assert!(err.contains("envFrom"), "{err}");
    }
}

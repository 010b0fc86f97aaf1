//! Pods and pod templates: `PodSpec` defaults (`SetDefaults_PodSpec`,
//! `SetDefaults_Container`, probes, ports, volumes) and validation
//! (`ValidatePodSpec`: containers, ports, env, resources, volumes and
//! mounts, probes, scheduling constraints), plus the Pod update rule.

use std::collections::{BTreeMap, BTreeSet};

use capstan_proto::FieldError;
use capstan_proto::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, LifecycleHandler, NodeSelectorRequirement,
    NodeSelectorTerm, Pod, PodAffinityTerm, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Toleration, Volume,
};
use capstan_proto::intstr::IntOrString;
use capstan_proto::quantity::Quantity;

use super::field::{
    NameRule, config_key_errors, dns1123_label_errors, duplicate, env_var_name_errors, forbidden,
    invalid, invalid_each, ip_errors, non_negative, not_found, not_supported, port_name_errors,
    port_num_errors, range_error, required, validate_label_name, validate_labels,
};
use super::meta::{validate_annotations, validate_label_selector, validate_subdomain_ref};

/// Default `terminationGracePeriodSeconds`.
pub(crate) const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Default `schedulerName`.
pub(crate) const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// Default `terminationMessagePath`.
pub(crate) const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// Default file mode of secret, configMap, downwardAPI and projected volumes (0644).
const DEFAULT_VOLUME_MODE: i32 = 0o644;

const RESTART_POLICIES: &[&str] = &["Always", "Never", "OnFailure"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
pub(crate) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["FallbackToLogsOnError", "File"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Defaults of a Pod: its spec's, and requests copied from limits where
/// unset (Kubernetes does the latter for pods only, not templates).
pub(crate) fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    default_pod_spec(spec);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut())
    {
        if let Some(resources) = c.resources.as_mut() {
            for (name, limit) in &resources.limits {
                resources
                    .requests
                    .entry(name.clone())
                    .or_insert_with(|| limit.clone());
            }
        }
    }
}

/// Defaults of a pod template's spec.
pub(crate) fn default_template(template: &mut PodTemplateSpec) {
    default_pod_spec(template.spec.get_or_insert_with(PodSpec::default));
}

/// `SetDefaults_PodSpec` and everything under it.
pub(crate) fn default_pod_spec(spec: &mut PodSpec) {
    if spec.dns_policy.is_empty() {
        spec.dns_policy = "ClusterFirst".to_owned();
    }
    if spec.restart_policy.is_empty() {
        spec.restart_policy = "Always".to_owned();
    }
    spec.security_context.get_or_insert_with(Default::default);
    spec.termination_grace_period_seconds
        .get_or_insert(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    if spec.scheduler_name.is_empty() {
        spec.scheduler_name = DEFAULT_SCHEDULER_NAME.to_owned();
    }
    spec.enable_service_links.get_or_insert(true);
    // serviceAccount is the deprecated alias of serviceAccountName.
    if spec.service_account_name.is_empty() && !spec.service_account.is_empty() {
        spec.service_account_name = spec.service_account.clone();
    }
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut())
    {
        default_container(c);
    }
    for v in &mut spec.volumes {
        default_volume(v);
    }
}

fn default_container(c: &mut Container) {
    if c.image_pull_policy.is_empty() {
        c.image_pull_policy = if image_tag(&c.image) == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        }
        .to_owned();
    }
    if c.termination_message_path.is_empty() {
        c.termination_message_path = DEFAULT_TERMINATION_MESSAGE_PATH.to_owned();
    }
    if c.termination_message_policy.is_empty() {
        c.termination_message_policy = "File".to_owned();
    }
    for p in &mut c.ports {
        if p.protocol.is_empty() {
            p.protocol = "TCP".to_owned();
        }
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        for h in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
            .into_iter()
            .flatten()
        {
            if let Some(get) = h.http_get.as_mut() {
                default_http_get(get);
            }
        }
    }
    for e in &mut c.env {
        if let Some(field_ref) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut())
            && field_ref.api_version.is_empty()
        {
            field_ref.api_version = "v1".to_owned();
        }
    }
}

/// The tag an image reference pulls, as `parsers.ParseImageName` finds it:
/// `latest` when neither a tag nor a digest is given, `None` for a digest
/// without a tag.
fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    match last_segment.split_once(':') {
        Some((_, tag)) => Some(tag),
        None if digest.is_some() => None,
        None => Some("latest"),
    }
}

fn default_probe(p: &mut Probe) {
    let zero_or_none = |v: &mut Option<i32>, d: i32| {
        if v.unwrap_or(0) == 0 {
            *v = Some(d);
        }
    };
    zero_or_none(&mut p.timeout_seconds, 1);
    zero_or_none(&mut p.period_seconds, 10);
    zero_or_none(&mut p.success_threshold, 1);
    zero_or_none(&mut p.failure_threshold, 3);
    if let Some(get) = p.http_get.as_mut() {
        default_http_get(get);
    }
}

fn default_http_get(get: &mut capstan_proto::api::core::v1::HttpGetAction) {
    if get.path.is_empty() {
        get.path = "/".to_owned();
    }
    if get.scheme.is_empty() {
        get.scheme = "HTTP".to_owned();
    }
}

fn default_volume(v: &mut Volume) {
    if volume_sources(v).is_empty() {
        v.empty_dir = Some(Default::default());
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(s) = v.config_map.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(s) = v.downward_api.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(s) = v.projected.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(s) = v.host_path.as_mut() {
        s.r#type.get_or_insert_with(String::new);
    }
}

/// The JSON names of the sources a volume sets.
fn volume_sources(v: &Volume) -> Vec<&'static str> {
    [
        ("hostPath", v.host_path.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("secret", v.secret.is_some()),
        ("configMap", v.config_map.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("projected", v.projected.is_some()),
        ("nfs", v.nfs.is_some()),
        ("csi", v.csi.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// Validates a Pod's spec (under `spec`); metadata is validated by the caller.
pub(crate) fn validate_pod(pod: &Pod) -> Vec<FieldError> {
    let default = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default);
    let mut errors = validate_pod_spec(spec, "spec");
    // Leading or trailing whitespace in an image is refused for pods only.
    for (i, c) in spec.containers.iter().enumerate() {
        if c.image.trim() != c.image {
            errors.push(invalid(
                format!("spec.containers[{i}].image"),
                &c.image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    errors
}

/// Validates a pod template under `path` (`spec.template`): its labels and
/// annotations, and its spec.
pub(crate) fn validate_template(template: Option<&PodTemplateSpec>, path: &str) -> Vec<FieldError> {
    let Some(template) = template else {
        return vec![required(path, "")];
    };
    let mut errors = Vec::new();
    if let Some(meta) = template.metadata.as_ref() {
        errors.extend(validate_labels(
            &meta.labels,
            &format!("{path}.metadata.labels"),
        ));
        errors.extend(validate_annotations(
            &meta.annotations,
            &format!("{path}.metadata.annotations"),
        ));
    }
    let default = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&default);
    errors.extend(validate_pod_spec(spec, &format!("{path}.spec")));
    errors
}

/// `ValidatePodSpec`, with field paths under `path`.
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let volumes = validate_volumes(&spec.volumes, &format!("{path}.volumes"), &mut errors);

    if spec.containers.is_empty() {
        errors.push(required(format!("{path}.containers"), ""));
    }
    let mut names = BTreeSet::new();
    let mut host_ports = BTreeSet::new();
    for (kind, list) in [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
    ] {
        for (i, c) in list.iter().enumerate() {
            let cpath = format!("{path}.{kind}[{i}]");
            if c.name.is_empty() {
                errors.push(required(format!("{cpath}.name"), ""));
            } else {
                let name_errors = dns1123_label_errors(&c.name);
                if !name_errors.is_empty() {
                    errors.extend(invalid_each(&format!("{cpath}.name"), &c.name, name_errors));
                } else if !names.insert(c.name.as_str()) {
                    errors.push(duplicate(format!("{cpath}.name"), &c.name));
                }
            }
            validate_container(c, &cpath, &volumes, kind == "initContainers", &mut errors);
            for (j, p) in c.ports.iter().enumerate() {
                let Some(host_port) = p.host_port.filter(|&h| h != 0) else {
                    continue;
                };
                let key = format!("{host_port}/{}", p.protocol);
                if !host_ports.insert((host_port, p.protocol.clone(), p.host_ip.clone())) {
                    errors.push(duplicate(format!("{cpath}.ports[{j}].hostPort"), key));
                }
            }
        }
    }

    match spec.restart_policy.as_str() {
        "" => errors.push(required(format!("{path}.restartPolicy"), "")),
        p if !RESTART_POLICIES.contains(&p) => errors.push(not_supported(
            format!("{path}.restartPolicy"),
            p,
            RESTART_POLICIES,
        )),
        _ => {}
    }
    validate_dns(spec, path, &mut errors);
    if let Some(grace) = spec.termination_grace_period_seconds {
        errors.extend(non_negative(
            &format!("{path}.terminationGracePeriodSeconds"),
            grace,
        ));
    }
    if let Some(deadline) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&deadline)
    {
        errors.push(invalid(
            format!("{path}.activeDeadlineSeconds"),
            deadline,
            &range_error(1, i64::from(i32::MAX)),
        ));
    }
    errors.extend(validate_labels(
        &spec.node_selector,
        &format!("{path}.nodeSelector"),
    ));
    if !spec.service_account_name.is_empty() {
        errors.extend(validate_subdomain_ref(
            &spec.service_account_name,
            &format!("{path}.serviceAccountName"),
        ));
    }
    if !spec.node_name.is_empty() {
        errors.extend(validate_subdomain_ref(
            &spec.node_name,
            &format!("{path}.nodeName"),
        ));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if !value.is_empty() {
            errors.extend(invalid_each(
                &format!("{path}.{field}"),
                value,
                dns1123_label_errors(value),
            ));
        }
    }
    if !spec.scheduler_name.is_empty() {
        errors.extend(validate_subdomain_ref(
            &spec.scheduler_name,
            &format!("{path}.schedulerName"),
        ));
    }
    for (i, t) in spec.tolerations.iter().enumerate() {
        validate_toleration(t, &format!("{path}.tolerations[{i}]"), &mut errors);
    }
    if let Some(affinity) = spec.affinity.as_ref() {
        validate_affinity(affinity, &format!("{path}.affinity"), &mut errors);
    }
    for (i, alias) in spec.host_aliases.iter().enumerate() {
        errors.extend(invalid_each(
            &format!("{path}.hostAliases[{i}].ip"),
            &alias.ip,
            ip_errors(&alias.ip),
        ));
    }
    errors
}

/// Validates volumes; returns the name → volume map of the valid names.
fn validate_volumes<'a>(
    volumes: &'a [Volume],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<&'a str, &'a Volume> {
    let mut seen = BTreeMap::new();
    for (i, v) in volumes.iter().enumerate() {
        let vpath = format!("{path}[{i}]");
        let mut ok = true;
        if v.name.is_empty() {
            errors.push(required(format!("{vpath}.name"), ""));
            ok = false;
        } else {
            let name_errors = dns1123_label_errors(&v.name);
            if !name_errors.is_empty() {
                errors.extend(invalid_each(&format!("{vpath}.name"), &v.name, name_errors));
                ok = false;
            } else if seen.contains_key(v.name.as_str()) {
                errors.push(duplicate(format!("{vpath}.name"), &v.name));
                ok = false;
            }
        }
        let sources = volume_sources(v);
        match sources.as_slice() {
            [] => errors.push(required(&vpath, "must specify a volume type")),
            [_] => {}
            [_, extra @ ..] => {
                for source in extra {
                    errors.push(forbidden(
                        format!("{vpath}.{source}"),
                        "may not specify more than 1 volume type",
                    ));
                }
            }
        }
        validate_volume_source(v, &vpath, errors);
        if ok {
            seen.insert(v.name.as_str(), v);
        }
    }
    seen
}

fn validate_volume_source(v: &Volume, path: &str, errors: &mut Vec<FieldError>) {
    let mode = |mode: Option<i32>, field: &str, errors: &mut Vec<FieldError>| {
        if let Some(m) = mode
            && !(0..=0o777).contains(&m)
        {
            errors.push(invalid(
                format!("{path}.{field}"),
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            ));
        }
    };
    if let Some(s) = v.host_path.as_ref()
        && s.path.is_empty()
    {
        errors.push(required(format!("{path}.hostPath.path"), ""));
    }
    if let Some(s) = v.secret.as_ref() {
        if s.secret_name.is_empty() {
            errors.push(required(format!("{path}.secret.secretName"), ""));
        }
        mode(s.default_mode, "secret.defaultMode", errors);
    }
    if let Some(s) = v.config_map.as_ref() {
        if s.name.is_empty() {
            errors.push(required(format!("{path}.configMap.name"), ""));
        }
        mode(s.default_mode, "configMap.defaultMode", errors);
    }
    if let Some(s) = v.persistent_volume_claim.as_ref()
        && s.claim_name.is_empty()
    {
        errors.push(required(
            format!("{path}.persistentVolumeClaim.claimName"),
            "",
        ));
    }
    if let Some(s) = v.downward_api.as_ref() {
        mode(s.default_mode, "downwardAPI.defaultMode", errors);
    }
    if let Some(s) = v.projected.as_ref() {
        mode(s.default_mode, "projected.defaultMode", errors);
    }
    if let Some(s) = v.nfs.as_ref() {
        if s.server.is_empty() {
            errors.push(required(format!("{path}.nfs.server"), ""));
        }
        if s.path.is_empty() {
            errors.push(required(format!("{path}.nfs.path"), ""));
        }
    }
    if let Some(s) = v.csi.as_ref()
        && s.driver.is_empty()
    {
        errors.push(required(format!("{path}.csi.driver"), ""));
    }
}

fn validate_container(
    c: &Container,
    path: &str,
    volumes: &BTreeMap<&str, &Volume>,
    init: bool,
    errors: &mut Vec<FieldError>,
) {
    if c.image.is_empty() {
        errors.push(required(format!("{path}.image"), ""));
    }
    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        if !p.name.is_empty() {
            let name_errors = port_name_errors(&p.name);
            if !name_errors.is_empty() {
                errors.extend(invalid_each(&format!("{ppath}.name"), &p.name, name_errors));
            } else if !port_names.insert(p.name.as_str()) {
                errors.push(duplicate(format!("{ppath}.name"), &p.name));
            }
        }
        match p.container_port.unwrap_or(0) {
            0 => errors.push(required(format!("{ppath}.containerPort"), "")),
            port => {
                for m in port_num_errors(i64::from(port)) {
                    errors.push(invalid(format!("{ppath}.containerPort"), port, &m));
                }
            }
        }
        if let Some(host_port) = p.host_port.filter(|&h| h != 0) {
            for m in port_num_errors(i64::from(host_port)) {
                errors.push(invalid(format!("{ppath}.hostPort"), host_port, &m));
            }
        }
        validate_protocol(&p.protocol, &format!("{ppath}.protocol"), errors);
    }
    validate_env(&c.env, &format!("{path}.env"), errors);
    validate_env_from(&c.env_from, &format!("{path}.envFrom"), errors);
    if let Some(resources) = c.resources.as_ref() {
        validate_resources(resources, &format!("{path}.resources"), errors);
    }
    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mpath = format!("{path}.volumeMounts[{i}]");
        if m.name.is_empty() {
            errors.push(required(format!("{mpath}.name"), ""));
        } else if !volumes.contains_key(m.name.as_str()) {
            errors.push(not_found(format!("{mpath}.name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errors.push(required(format!("{mpath}.mountPath"), ""));
        } else if !mount_paths.insert(m.mount_path.as_str()) {
            errors.push(invalid(
                format!("{mpath}.mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        if !m.sub_path.is_empty() && !m.sub_path_expr.is_empty() {
            errors.push(invalid(
                format!("{mpath}.subPathExpr"),
                &m.sub_path_expr,
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
    }
    // Init containers (other than sidecars) may not have probes.
    let sidecar = c.restart_policy.as_deref() == Some("Always");
    for (field, probe) in [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ] {
        let Some(probe) = probe else { continue };
        let ppath = format!("{path}.{field}");
        if init && !sidecar {
            errors.push(forbidden(
                &ppath,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        validate_probe(probe, &ppath, field, errors);
    }
    if let Some(lifecycle) = c.lifecycle.as_ref() {
        for (field, handler) in [
            ("postStart", &lifecycle.post_start),
            ("preStop", &lifecycle.pre_stop),
        ] {
            if let Some(h) = handler {
                validate_handler(h, &format!("{path}.lifecycle.{field}"), errors);
            }
        }
    }
    if !c.image_pull_policy.is_empty() && !PULL_POLICIES.contains(&c.image_pull_policy.as_str()) {
        errors.push(not_supported(
            format!("{path}.imagePullPolicy"),
            &c.image_pull_policy,
            PULL_POLICIES,
        ));
    } else if c.image_pull_policy.is_empty() {
        errors.push(required(format!("{path}.imagePullPolicy"), ""));
    }
    if c.termination_message_policy.is_empty() {
        errors.push(required(format!("{path}.terminationMessagePolicy"), ""));
    } else if !TERMINATION_MESSAGE_POLICIES.contains(&c.termination_message_policy.as_str()) {
        errors.push(not_supported(
            format!("{path}.terminationMessagePolicy"),
            &c.termination_message_policy,
            TERMINATION_MESSAGE_POLICIES,
        ));
    }
    if let Some(policy) = c.restart_policy.as_deref() {
        if !init {
            errors.push(forbidden(
                format!("{path}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        } else if policy != "Always" {
            errors.push(not_supported(
                format!("{path}.restartPolicy"),
                policy,
                &["Always"],
            ));
        }
    }
}

/// `Required` when empty, `NotSupported` outside TCP/UDP/SCTP.
pub(crate) fn validate_protocol(protocol: &str, path: &str, errors: &mut Vec<FieldError>) {
    if protocol.is_empty() {
        errors.push(required(path, ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errors.push(not_supported(path, protocol, PROTOCOLS));
    }
}

fn validate_env(env: &[EnvVar], path: &str, errors: &mut Vec<FieldError>) {
    for (i, e) in env.iter().enumerate() {
        let epath = format!("{path}[{i}]");
        if e.name.is_empty() {
            errors.push(required(format!("{epath}.name"), ""));
        } else {
            errors.extend(invalid_each(
                &format!("{epath}.name"),
                &e.name,
                env_var_name_errors(&e.name),
            ));
        }
        let Some(from) = e.value_from.as_ref() else {
            continue;
        };
        let fpath = format!("{epath}.valueFrom");
        let sources = [
            from.field_ref.is_some(),
            from.resource_field_ref.is_some(),
            from.config_map_key_ref.is_some(),
            from.secret_key_ref.is_some(),
        ]
        .into_iter()
        .filter(|s| *s)
        .count();
        if sources == 0 {
            errors.push(invalid(
                &fpath,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !e.value.is_empty() {
            errors.push(invalid(
                &fpath,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errors.push(invalid(
                &fpath,
                "",
                "may not have more than one field specified at a time",
            ));
        }
        if let Some(f) = from.field_ref.as_ref() {
            if f.api_version.is_empty() {
                errors.push(required(format!("{fpath}.fieldRef.apiVersion"), ""));
            } else if f.field_path.is_empty() {
                errors.push(required(format!("{fpath}.fieldRef.fieldPath"), ""));
            }
        }
        if let Some(r) = from.resource_field_ref.as_ref()
            && r.resource.is_empty()
        {
            errors.push(required(format!("{fpath}.resourceFieldRef.resource"), ""));
        }
        let key_refs = [
            (
                "configMapKeyRef",
                from.config_map_key_ref.as_ref().map(|r| (&r.name, &r.key)),
            ),
            (
                "secretKeyRef",
                from.secret_key_ref.as_ref().map(|r| (&r.name, &r.key)),
            ),
        ];
        for (field, key_ref) in key_refs {
            let Some((name, key)) = key_ref else { continue };
            let kpath = format!("{fpath}.{field}");
            errors.extend(invalid_each(
                &format!("{kpath}.name"),
                name,
                NameRule::Subdomain.errors(name, false),
            ));
            if key.is_empty() {
                errors.push(required(format!("{kpath}.key"), ""));
            } else {
                errors.extend(invalid_each(
                    &format!("{kpath}.key"),
                    key,
                    config_key_errors(key),
                ));
            }
        }
    }
}

fn validate_env_from(env_from: &[EnvFromSource], path: &str, errors: &mut Vec<FieldError>) {
    for (i, e) in env_from.iter().enumerate() {
        let epath = format!("{path}[{i}]");
        if !e.prefix.is_empty() {
            errors.extend(invalid_each(
                &format!("{epath}.prefix"),
                &e.prefix,
                env_var_name_errors(&e.prefix),
            ));
        }
        let refs = [
            ("configMapRef", e.config_map_ref.as_ref().map(|r| &r.name)),
            ("secretRef", e.secret_ref.as_ref().map(|r| &r.name)),
        ];
        let count = refs.iter().filter(|(_, r)| r.is_some()).count();
        if count == 0 {
            errors.push(invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errors.push(invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
        for (field, name) in refs {
            let Some(name) = name else { continue };
            let npath = format!("{epath}.{field}.name");
            if name.is_empty() {
                errors.push(required(npath, ""));
            } else {
                errors.extend(invalid_each(
                    &npath,
                    name,
                    NameRule::Subdomain.errors(name, true),
                ));
            }
        }
    }
}

/// Resource names a container may request without a domain prefix.
fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn validate_resources(r: &ResourceRequirements, path: &str, errors: &mut Vec<FieldError>) {
    for (kind, map) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (name, q) in map {
            let qpath = format!("{path}.{kind}[{name}]");
            if name.contains('/') {
                errors.extend(invalid_each(
                    &qpath,
                    name,
                    capstan_proto::labels::qualified_name_errors(name),
                ));
            } else if !is_standard_container_resource(name) {
                errors.push(invalid(
                    &qpath,
                    name,
                    "must be a standard resource for containers",
                ));
            }
            validate_quantity(q, &qpath, errors);
        }
    }
    for (name, request) in &r.requests {
        let Some(limit) = r.limits.get(name) else {
            continue;
        };
        if request.validate().is_err() || limit.validate().is_err() {
            continue;
        }
        if request.cmp_value(limit).is_gt() {
            errors.push(invalid(
                format!("{path}.requests[{name}]"),
                request.as_str(),
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    limit.as_str()
                ),
            ));
        }
    }
}

/// A quantity that parses and is not negative (`ValidateResourceQuantityValue`).
pub(crate) fn validate_quantity(q: &Quantity, path: &str, errors: &mut Vec<FieldError>) {
    match q.amount() {
        Err(e) => errors.push(invalid(path, q.as_str(), &e.to_string())),
        Ok(_) if q.cmp_value(&Quantity::zero()).is_lt() => {
            errors.push(invalid(
                path,
                q.as_str(),
                "must be greater than or equal to 0",
            ));
        }
        Ok(_) => {}
    }
}

/// The handlers set on a probe or lifecycle hook, with their JSON names.
fn handlers(
    exec: bool,
    http_get: bool,
    tcp_socket: bool,
    grpc: bool,
    sleep: bool,
) -> Vec<&'static str> {
    [
        ("exec", exec),
        ("httpGet", http_get),
        ("tcpSocket", tcp_socket),
        ("grpc", grpc),
        ("sleep", sleep),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect()
}

fn validate_handler_count(set: &[&str], path: &str, errors: &mut Vec<FieldError>) {
    match set {
        [] => errors.push(required(path, "must specify a handler type")),
        [_] => {}
        [_, extra @ ..] => {
            for h in extra {
                errors.push(forbidden(
                    format!("{path}.{h}"),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
}

fn validate_port_num_or_name(port: Option<&IntOrString>, path: &str, errors: &mut Vec<FieldError>) {
    match port {
        None => errors.push(required(path, "")),
        Some(IntOrString::Int(p)) => {
            for m in port_num_errors(i64::from(*p)) {
                errors.push(invalid(path, *p, &m));
            }
        }
        Some(IntOrString::String(s)) => errors.extend(invalid_each(path, s, port_name_errors(s))),
    }
}

fn validate_probe(p: &Probe, path: &str, field: &str, errors: &mut Vec<FieldError>) {
    let set = handlers(
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
        false,
    );
    validate_handler_count(&set, path, errors);
    if let Some(exec) = p.exec.as_ref()
        && exec.command.is_empty()
    {
        errors.push(required(format!("{path}.exec.command"), ""));
    }
    if let Some(get) = p.http_get.as_ref() {
        validate_port_num_or_name(get.port.as_ref(), &format!("{path}.httpGet.port"), errors);
        if !["HTTP", "HTTPS"].contains(&get.scheme.as_str()) {
            errors.push(not_supported(
                format!("{path}.httpGet.scheme"),
                &get.scheme,
                &["HTTP", "HTTPS"],
            ));
        }
    }
    if let Some(tcp) = p.tcp_socket.as_ref() {
        validate_port_num_or_name(tcp.port.as_ref(), &format!("{path}.tcpSocket.port"), errors);
    }
    if let Some(grpc) = p.grpc.as_ref() {
        let port = grpc.port.unwrap_or(0);
        for m in port_num_errors(i64::from(port)) {
            errors.push(invalid(format!("{path}.grpc.port"), port, &m));
        }
    }
    for (name, value) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        if let Some(v) = value {
            errors.extend(non_negative(&format!("{path}.{name}"), i64::from(v)));
        }
    }
    if matches!(field, "livenessProbe" | "startupProbe")
        && let Some(s) = p.success_threshold.filter(|&s| s != 1)
    {
        errors.push(invalid(format!("{path}.successThreshold"), s, "must be 1"));
    }
    if let Some(grace) = p.termination_grace_period_seconds {
        if field == "readinessProbe" {
            errors.push(invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                grace,
                "must not be set for readinessProbes",
            ));
        } else if grace <= 0 {
            errors.push(invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                grace,
                "must be greater than 0",
            ));
        }
    }
}

fn validate_handler(h: &LifecycleHandler, path: &str, errors: &mut Vec<FieldError>) {
    let set = handlers(
        h.exec.is_some(),
        h.http_get.is_some(),
        h.tcp_socket.is_some(),
        false,
        h.sleep.is_some(),
    );
    validate_handler_count(&set, path, errors);
    if let Some(exec) = h.exec.as_ref()
        && exec.command.is_empty()
    {
        errors.push(required(format!("{path}.exec.command"), ""));
    }
    if let Some(get) = h.http_get.as_ref() {
        validate_port_num_or_name(get.port.as_ref(), &format!("{path}.httpGet.port"), errors);
    }
    if let Some(tcp) = h.tcp_socket.as_ref() {
        validate_port_num_or_name(tcp.port.as_ref(), &format!("{path}.tcpSocket.port"), errors);
    }
    if let Some(sleep) = h.sleep.as_ref() {
        let seconds = sleep.seconds.unwrap_or(0);
        if seconds <= 0 {
            errors.push(invalid(
                format!("{path}.sleep.seconds"),
                seconds,
                "must be greater than 0",
            ));
        }
    }
}

fn validate_dns(spec: &PodSpec, path: &str, errors: &mut Vec<FieldError>) {
    match spec.dns_policy.as_str() {
        "" => errors.push(required(format!("{path}.dnsPolicy"), "")),
        p if !DNS_POLICIES.contains(&p) => {
            errors.push(not_supported(format!("{path}.dnsPolicy"), p, DNS_POLICIES));
        }
        "None"
            if spec
                .dns_config
                .as_ref()
                .is_none_or(|c| c.nameservers.is_empty()) =>
        {
            errors.push(required(
                format!("{path}.dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
        }
        _ => {}
    }
    if let Some(config) = spec.dns_config.as_ref() {
        if config.nameservers.len() > 3 {
            errors.push(invalid(
                format!("{path}.dnsConfig.nameservers"),
                &config.nameservers,
                "must not have more than 3 nameservers",
            ));
        }
        for (i, ns) in config.nameservers.iter().enumerate() {
            if !ip_errors(ns).is_empty() {
                errors.push(invalid(
                    format!("{path}.dnsConfig.nameservers[{i}]"),
                    ns,
                    "must be valid IP address",
                ));
            }
        }
        for (i, o) in config.options.iter().enumerate() {
            if o.name.is_empty() {
                errors.push(required(
                    format!("{path}.dnsConfig.options[{i}]"),
                    "Option.Name must not be empty",
                ));
            }
        }
    }
}

fn validate_toleration(t: &Toleration, path: &str, errors: &mut Vec<FieldError>) {
    if !t.key.is_empty() {
        errors.extend(validate_label_name(&t.key, &format!("{path}.key")));
    }
    if t.key.is_empty() && t.operator != "Exists" {
        errors.push(invalid(
            format!("{path}.operator"),
            &t.operator,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        ));
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        errors.push(invalid(
            format!("{path}.effect"),
            &t.effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
    match t.operator.as_str() {
        "" | "Equal" => errors.extend(invalid_each(
            &format!("{path}.operator"),
            &t.value,
            capstan_proto::labels::label_value_errors(&t.value),
        )),
        "Exists" => {
            if !t.value.is_empty() {
                errors.push(invalid(
                    format!("{path}.operator"),
                    &t.value,
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
        }
        other => errors.push(not_supported(
            format!("{path}.operator"),
            other,
            &["Equal", "Exists"],
        )),
    }
    if !t.effect.is_empty() {
        validate_taint_effect(&t.effect, &format!("{path}.effect"), errors);
    }
}

/// `NotSupported` outside NoSchedule/PreferNoSchedule/NoExecute.
pub(crate) fn validate_taint_effect(effect: &str, path: &str, errors: &mut Vec<FieldError>) {
    if !TAINT_EFFECTS.contains(&effect) {
        errors.push(not_supported(path, effect, TAINT_EFFECTS));
    }
}

fn validate_affinity(a: &Affinity, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(node) = a.node_affinity.as_ref() {
        let npath = format!("{path}.nodeAffinity");
        if let Some(required_selector) = node
            .required_during_scheduling_ignored_during_execution
            .as_ref()
        {
            let rpath = format!("{npath}.requiredDuringSchedulingIgnoredDuringExecution");
            validate_node_selector_terms(&required_selector.node_selector_terms, &rpath, errors);
        }
        for (i, p) in node
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            let ppath = format!("{npath}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            validate_weight(p.weight, &format!("{ppath}.weight"), errors);
            match p.preference.as_ref() {
                Some(term) => {
                    validate_node_selector_term(term, &format!("{ppath}.preference"), errors)
                }
                None => errors.push(required(format!("{ppath}.preference"), "")),
            }
        }
    }
    for (field, required_terms, preferred) in [
        (
            "podAffinity",
            a.pod_affinity
                .as_ref()
                .map(|p| &p.required_during_scheduling_ignored_during_execution),
            a.pod_affinity
                .as_ref()
                .map(|p| &p.preferred_during_scheduling_ignored_during_execution),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity
                .as_ref()
                .map(|p| &p.required_during_scheduling_ignored_during_execution),
            a.pod_anti_affinity
                .as_ref()
                .map(|p| &p.preferred_during_scheduling_ignored_during_execution),
        ),
    ] {
        let apath = format!("{path}.{field}");
        for (i, term) in required_terms.into_iter().flatten().enumerate() {
            validate_pod_affinity_term(
                term,
                &format!("{apath}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                errors,
            );
        }
        for (i, w) in preferred.into_iter().flatten().enumerate() {
            let wpath = format!("{apath}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            validate_weight(w.weight, &format!("{wpath}.weight"), errors);
            match w.pod_affinity_term.as_ref() {
                Some(term) => {
                    validate_pod_affinity_term(term, &format!("{wpath}.podAffinityTerm"), errors)
                }
                None => errors.push(required(format!("{wpath}.podAffinityTerm"), "")),
            }
        }
    }
}

fn validate_weight(weight: Option<i32>, path: &str, errors: &mut Vec<FieldError>) {
    let w = weight.unwrap_or(0);
    if !(1..=100).contains(&w) {
        errors.push(invalid(path, w, "must be in the range 1-100"));
    }
}

fn validate_pod_affinity_term(term: &PodAffinityTerm, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(selector) = term.label_selector.as_ref() {
        errors.extend(validate_label_selector(
            selector,
            &format!("{path}.labelSelector"),
        ));
    }
    if let Some(selector) = term.namespace_selector.as_ref() {
        errors.extend(validate_label_selector(
            selector,
            &format!("{path}.namespaceSelector"),
        ));
    }
    for (i, ns) in term.namespaces.iter().enumerate() {
        errors.extend(invalid_each(
            &format!("{path}.namespaces[{i}]"),
            ns,
            dns1123_label_errors(ns),
        ));
    }
    if term.topology_key.is_empty() {
        errors.push(required(format!("{path}.topologyKey"), "can not be empty"));
    } else {
        errors.extend(validate_label_name(
            &term.topology_key,
            &format!("{path}.topologyKey"),
        ));
    }
}

fn validate_node_selector_terms(
    terms: &[NodeSelectorTerm],
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let tpath = format!("{path}.nodeSelectorTerms");
    if terms.is_empty() {
        errors.push(required(
            &tpath,
            "must have at least one node selector term",
        ));
    }
    for (i, term) in terms.iter().enumerate() {
        validate_node_selector_term(term, &format!("{tpath}[{i}]"), errors);
    }
}

fn validate_node_selector_term(term: &NodeSelectorTerm, path: &str, errors: &mut Vec<FieldError>) {
    for (i, r) in term.match_expressions.iter().enumerate() {
        validate_node_selector_requirement(r, &format!("{path}.matchExpressions[{i}]"), errors);
    }
    for (i, r) in term.match_fields.iter().enumerate() {
        let rpath = format!("{path}.matchFields[{i}]");
        if r.key != "metadata.name" {
            errors.push(not_supported(
                format!("{rpath}.key"),
                &r.key,
                &["metadata.name"],
            ));
        }
        match r.operator.as_str() {
            "In" | "NotIn" if r.values.len() != 1 => errors.push(required(
                format!("{rpath}.values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            )),
            "In" | "NotIn" => {}
            other => errors.push(invalid(
                format!("{rpath}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
    }
}

fn validate_node_selector_requirement(
    r: &NodeSelectorRequirement,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let vpath = format!("{path}.values");
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if r.values.is_empty() {
                errors.push(required(
                    vpath,
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !r.values.is_empty() {
                errors.push(forbidden(
                    vpath,
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if r.values.len() != 1 {
                errors.push(required(
                    vpath,
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        other => errors.push(invalid(
            format!("{path}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errors.extend(validate_label_name(&r.key, &format!("{path}.key")));
}

/// Pod updates may change only container images, activeDeadlineSeconds,
/// tolerations (additions only) and set nodeName once (Kubernetes sets it
/// through the binding subresource; Capstan allows it on update too).
pub(crate) fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let default = PodSpec::default();
    let new_spec = new.spec.as_ref().unwrap_or(&default);
    let old_spec = old.spec.as_ref().unwrap_or(&default);
    let mut errors = Vec::new();

    let mut mutated = old_spec.clone();
    for (list, new_list) in [
        (&mut mutated.containers, &new_spec.containers),
        (&mut mutated.init_containers, &new_spec.init_containers),
    ] {
        if list.len() == new_list.len() {
            for (c, n) in list.iter_mut().zip(new_list) {
                c.image.clone_from(&n.image);
            }
        }
    }
    mutated.active_deadline_seconds = new_spec.active_deadline_seconds;
    if old_spec.node_name.is_empty() {
        mutated.node_name.clone_from(&new_spec.node_name);
    }
    if old_spec
        .tolerations
        .iter()
        .all(|t| new_spec.tolerations.contains(t))
    {
        mutated.tolerations.clone_from(&new_spec.tolerations);
    }
    if &mutated != new_spec {
        errors.push(forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`, \
             `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` \
             (only additions to existing tolerations), `spec.nodeName` (only to set it)",
        ));
    }
    if let (Some(old_deadline), new_deadline) = (
        old_spec.active_deadline_seconds,
        new_spec.active_deadline_seconds,
    ) {
        match new_deadline {
            None => errors.push(invalid(
                "spec.activeDeadlineSeconds",
                "nil",
                "must not update from a positive integer to nil value",
            )),
            Some(d) if d > old_deadline => errors.push(invalid(
                "spec.activeDeadlineSeconds",
                d,
                "must be less than or equal to previous value",
            )),
            _ => {}
        }
    }
    errors
}

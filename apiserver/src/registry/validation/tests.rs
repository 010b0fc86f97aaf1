//! Tests of defaults and validation: the shared fixtures are accepted, and
//! each rule refuses what it should, at the path and with the reason and
//! message Kubernetes gives.

use capstan_proto::{FieldError, Object, Reason};

use super::{defaults, field, validate, validate_update};

/// Decodes one YAML document.
fn decode(yaml: &str) -> Object {
    capstan_proto::decode_one(yaml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// What the server stores: the namespace filled in, then defaults.
fn prepared(yaml: &str) -> Object {
    let mut obj = decode(yaml);
    if obj.info().namespaced && obj.namespace().is_empty() {
        obj.metadata_mut().namespace = "default".to_owned();
    }
    defaults(&mut obj);
    obj
}

fn errors_of(yaml: &str) -> Vec<FieldError> {
    validate(&prepared(yaml))
}

#[track_caller]
fn assert_valid(yaml: &str) {
    let errors = errors_of(yaml);
    assert!(errors.is_empty(), "unexpected errors: {errors:#?}\n{yaml}");
}

/// Asserts an error at `path` with `reason`; returns its message.
#[track_caller]
fn assert_error(errors: &[FieldError], path: &str, reason: Reason) -> String {
    match errors.iter().find(|e| e.path == path && e.reason == reason) {
        Some(e) => e.message.clone(),
        None => panic!("no {reason:?} error at {path}; got {errors:#?}"),
    }
}

#[track_caller]
fn assert_only(errors: &[FieldError], path: &str, reason: Reason) -> String {
    assert_eq!(errors.len(), 1, "expected exactly one error: {errors:#?}");
    assert_error(errors, path, reason)
}

fn pod_yaml(spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{spec}")
}

fn pod_errors(spec: &str) -> Vec<FieldError> {
    errors_of(&pod_yaml(spec))
}

const CONTAINER: &str = "  containers:\n  - name: web\n    image: nginx\n";

// ---- fixtures ----

#[test]
fn every_valid_fixture_is_accepted_after_defaults() {
    // As proto/tests/fixtures.rs: $CAPSTAN_FIXTURES, else ../shared/fixtures.
    let dir = match std::env::var_os("CAPSTAN_FIXTURES") {
        Some(d) => {
            let d = std::path::PathBuf::from(d);
            let nested = d.join("manifests");
            if nested.is_dir() { nested } else { d }
        }
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/manifests"),
    }
    .join("valid");
    let mut count = 0;
    for entry in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let objects =
            capstan_proto::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for mut obj in objects {
            if obj.info().namespaced && obj.namespace().is_empty() {
                obj.metadata_mut().namespace = "default".to_owned();
            }
            defaults(&mut obj);
            let errors = validate(&obj);
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            // Defaults are idempotent.
            let mut again = obj.clone();
            defaults(&mut again);
            assert_eq!(again, obj, "{}", path.display());
            count += 1;
        }
    }
    assert!(
        count >= 8,
        "only {count} fixtures found in {}",
        dir.display()
    );
}

// ---- field helpers ----

#[test]
fn string_rules_match_kubernetes() {
    assert!(field::port_name_errors("http").is_empty());
    assert_eq!(
        field::port_name_errors("a-very-long-port-name"),
        ["must be no more than 15 characters"]
    );
    assert_eq!(
        field::port_name_errors("8080"),
        ["must contain at least one letter (a-z)"]
    );
    assert_eq!(
        field::port_name_errors("a--b"),
        ["must not contain consecutive hyphens"]
    );
    assert!(field::env_var_name_errors("MY_VAR.x-1").is_empty());
    assert_eq!(field::env_var_name_errors("1BAD").len(), 1);
    assert_eq!(
        field::env_var_name_errors("..x"),
        ["must not start with '..'"]
    );
    assert!(field::config_key_errors("app.properties").is_empty());
    assert_eq!(field::config_key_errors("a/b").len(), 1);
    assert_eq!(field::config_key_errors(".."), ["must not be '..'"]);
    assert_eq!(field::path_segment_errors("..", false), ["may not be '..'"]);
    assert_eq!(
        field::path_segment_errors("a/b%", false),
        ["may not contain '/'", "may not contain '%'"]
    );
    assert!(field::path_segment_errors("system:node", false).is_empty());
    assert!(field::dns1035_label_errors("1abc").len() == 1);
    assert!(field::dns1123_label_errors("1abc").is_empty());
    assert_eq!(
        field::dns1123_label_errors(&"a".repeat(64))[0],
        "must be no more than 63 characters"
    );
    assert!(field::ip_errors("10.0.0.1").is_empty());
    assert!(field::ip_errors("::1").is_empty());
    assert_eq!(field::ip_errors("10.0.0.300").len(), 1);
    assert!(
        field::special_ip_errors("127.0.0.1").is_empty(),
        "loopback pod IPs"
    );
    assert_eq!(field::special_ip_errors("169.254.1.1").len(), 1);
    assert!(field::special_ip_errors("10.1.2.3").is_empty());
    // generateName prefixes may end in '-'.
    assert!(field::NameRule::Subdomain.errors("web-", true).is_empty());
    assert!(!field::NameRule::Subdomain.errors("web-", false).is_empty());
    assert!(field::NameRule::Dns1035Label.errors("a-", true).is_empty());
}

#[test]
fn messages_are_written_as_kubernetes_writes_them() {
    assert_eq!(field::required("a", "").to_string(), "a: Required value");
    assert_eq!(
        field::invalid("a", 70000, "bad").to_string(),
        "a: Invalid value: 70000: bad"
    );
    assert_eq!(
        field::invalid("a", "Foo_bar", "bad").to_string(),
        "a: Invalid value: \"Foo_bar\": bad"
    );
    assert_eq!(
        field::not_supported("a", "x", &["A", "B"]).to_string(),
        "a: Unsupported value: \"x\": supported values: \"A\", \"B\""
    );
    assert_eq!(
        field::duplicate("a", "web").to_string(),
        "a: Duplicate value: \"web\""
    );
}

// ---- metadata ----

#[test]
fn name_or_generate_name_is_required() {
    // The decoder refuses a document without a name; an API client may not.
    let nameless = Object::ConfigMap(capstan_proto::api::core::v1::ConfigMap {
        metadata: Some(capstan_proto::api::meta::v1::ObjectMeta {
            namespace: "default".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let errors = validate(&nameless);
    let message = assert_only(&errors, "metadata.name", Reason::Required);
    assert_eq!(message, "Required value: name or generateName is required");
    assert_valid("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cm-\n");
    let errors = errors_of("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: Cm_\n");
    assert_error(&errors, "metadata.generateName", Reason::InvalidValue);
}

#[test]
fn names_follow_the_rule_of_their_kind() {
    let errors = errors_of("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Foo_bar\n");
    let message = assert_only(&errors, "metadata.name", Reason::InvalidValue);
    assert!(
        message.starts_with("Invalid value: \"Foo_bar\": a lowercase RFC 1123 subdomain"),
        "{message}"
    );
    // Namespaces are DNS-1123 labels: no dots.
    let errors = errors_of("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a.b\n");
    let message = assert_only(&errors, "metadata.name", Reason::InvalidValue);
    assert!(message.contains("RFC 1123 label"), "{message}");
    // Services are DNS-1035 labels: a letter first.
    let svc =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: 1web\nspec:\n  ports:\n  - port: 80\n";
    let message = assert_only(&errors_of(svc), "metadata.name", Reason::InvalidValue);
    assert!(message.contains("DNS-1035 label"), "{message}");
    // RBAC names only need to be path segments.
    assert_valid(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: system:kube-scheduler\n",
    );
    let errors = errors_of(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: a/b\n",
    );
    let message = assert_only(&errors, "metadata.name", Reason::InvalidValue);
    assert_eq!(message, "Invalid value: \"a/b\": may not contain '/'");
}

#[test]
fn namespace_is_required_for_namespaced_kinds_and_forbidden_otherwise() {
    let mut cm = decode("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
    defaults(&mut cm);
    assert_only(&validate(&cm), "metadata.namespace", Reason::Required);
    let errors =
        errors_of("apiVersion: v1\nkind: Node\nmetadata:\n  name: n\n  namespace: default\n");
    let message = assert_only(&errors, "metadata.namespace", Reason::Forbidden);
    assert_eq!(message, "Forbidden: not allowed on this type");
    let errors =
        errors_of("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: Bad_NS\n");
    assert_only(&errors, "metadata.namespace", Reason::InvalidValue);
}

#[test]
fn labels_and_annotations_are_checked() {
    let errors = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    bad key: v\n    ok: bad value\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors
            .iter()
            .all(|e| e.path == "metadata.labels" && e.reason == Reason::InvalidValue)
    );
    let errors = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    /nope: v\n",
    );
    assert_only(&errors, "metadata.annotations", Reason::InvalidValue);
    // Upper-case annotation keys are fine (checked lowercased).
    assert_valid(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    Example.COM/Key: v\n",
    );

    let mut cm = prepared("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
    let big = "x".repeat(super::meta::TOTAL_ANNOTATION_SIZE_LIMIT);
    cm.metadata_mut().annotations.insert("a".to_owned(), big);
    let errors = validate(&cm);
    let message = assert_only(&errors, "metadata.annotations", Reason::TooLong);
    assert_eq!(message, "Too long: may not be more than 262144 bytes");
}

#[test]
fn owner_references_need_api_version_kind_name_and_uid() {
    let errors = errors_of(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  ownerReferences:\n  - apiVersion: apps/\n    kind: ''\n    name: ''\n    uid: ''\nspec:\n  containers:\n  - name: a\n    image: b\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for field in ["apiVersion", "kind", "name", "uid"] {
        assert_error(
            &errors,
            &format!("metadata.ownerReferences[0].{field}"),
            Reason::InvalidValue,
        );
    }
    let two_controllers = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: a, uid: '1', controller: true}\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: b, uid: '2', controller: true}\n";
    let message = assert_only(
        &errors_of(two_controllers),
        "metadata.ownerReferences",
        Reason::InvalidValue,
    );
    assert!(
        message.contains("Only one reference can have Controller set to true"),
        "{message}"
    );
}

#[test]
fn finalizers_are_qualified_names_and_orphan_excludes_foreground() {
    let errors = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  finalizers: [example.com/ok, 'bad/one/two']\n",
    );
    assert_only(&errors, "metadata.finalizers", Reason::InvalidValue);
    let errors = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  finalizers: [orphan, foregroundDeletion]\n",
    );
    let message = assert_only(&errors, "metadata.finalizers", Reason::InvalidValue);
    assert!(message.ends_with("finalizer orphan and foregroundDeletion cannot be both set"));
}

#[test]
fn metadata_identity_never_changes_on_update() {
    let old = prepared(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  uid: u1\n  creationTimestamp: 2026-01-01T00:00:00Z\n",
    );
    assert!(validate_update(&old, &old).is_empty());
    for (path, change) in [
        (
            "metadata.name",
            (|o: &mut Object| o.metadata_mut().name = "d".into()) as fn(&mut Object),
        ),
        ("metadata.namespace", |o| {
            o.metadata_mut().namespace = "other".into()
        }),
        ("metadata.uid", |o| o.metadata_mut().uid = "u2".into()),
        ("metadata.creationTimestamp", |o| {
            o.metadata_mut().creation_timestamp = None
        }),
    ] {
        let mut new = old.clone();
        change(&mut new);
        let errors = validate_update(&new, &old);
        let message = assert_only(&errors, path, Reason::InvalidValue);
        assert!(message.ends_with("field is immutable"), "{message}");
    }
    // No new finalizers once deletion started.
    let mut deleting = old.clone();
    deleting.metadata_mut().deletion_timestamp = old.metadata().unwrap().creation_timestamp;
    let mut new = deleting.clone();
    new.metadata_mut().finalizers.push("example.com/f".into());
    assert_only(
        &validate_update(&new, &deleting),
        "metadata.finalizers",
        Reason::Forbidden,
    );
    // A kind change is refused.
    let pod = prepared(&pod_yaml(CONTAINER));
    assert_only(&validate_update(&pod, &old), "kind", Reason::InvalidValue);
}

// ---- pods ----

#[test]
fn pod_defaults_are_kubernetes_defaults() {
    let pod = prepared(&pod_yaml(
        "  containers:\n  - name: a\n    image: nginx\n    ports:\n    - containerPort: 80\n    readinessProbe:\n      httpGet: {port: 80}\n    resources:\n      limits: {cpu: 500m}\n  - name: b\n    image: nginx:1.14.2\n  - name: c\n    image: registry:5000/nginx\n  - name: d\n    image: nginx@sha256:abc\n  - name: e\n    image: nginx:latest\n  volumes:\n  - name: scratch\n",
    ));
    let Object::Pod(pod) = pod else {
        unreachable!()
    };
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy, "Always");
    assert_eq!(spec.dns_policy, "ClusterFirst");
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.scheduler_name, "default-scheduler");
    assert_eq!(spec.enable_service_links, Some(true));
    let policies: Vec<&str> = spec
        .containers
        .iter()
        .map(|c| c.image_pull_policy.as_str())
        .collect();
    assert_eq!(
        policies,
        ["Always", "IfNotPresent", "Always", "IfNotPresent", "Always"]
    );
    let a = &spec.containers[0];
    assert_eq!(a.termination_message_path, "/dev/termination-log");
    assert_eq!(a.termination_message_policy, "File");
    assert_eq!(a.ports[0].protocol, "TCP");
    let probe = a.readiness_probe.as_ref().unwrap();
    assert_eq!(
        (
            probe.period_seconds,
            probe.timeout_seconds,
            probe.success_threshold,
            probe.failure_threshold
        ),
        (Some(10), Some(1), Some(1), Some(3))
    );
    assert_eq!(probe.http_get.as_ref().unwrap().path, "/");
    assert_eq!(probe.http_get.as_ref().unwrap().scheme, "HTTP");
    // Requests default to limits, for pods.
    assert_eq!(
        a.resources.as_ref().unwrap().requests["cpu"].as_str(),
        "500m"
    );
    assert!(spec.volumes[0].empty_dir.is_some());
}

#[test]
fn pod_needs_named_unique_containers_with_images() {
    let errors = pod_errors("  containers: []\n");
    assert_only(&errors, "spec.containers", Reason::Required);
    let errors =
        pod_errors("  containers:\n  - name: web\n    image: a\n  - name: web\n    image: b\n");
    let message = assert_only(&errors, "spec.containers[1].name", Reason::Duplicate);
    assert_eq!(message, "Duplicate value: \"web\"");
    let errors = pod_errors("  containers:\n  - name: Web_1\n    image: a\n");
    let message = assert_only(&errors, "spec.containers[0].name", Reason::InvalidValue);
    assert!(
        message.starts_with("Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of")
    );
    let errors = pod_errors("  containers:\n  - name: web\n");
    assert_only(&errors, "spec.containers[0].image", Reason::Required);
    let errors = pod_errors("  containers:\n  - name: web\n    image: ' nginx'\n");
    assert_only(&errors, "spec.containers[0].image", Reason::InvalidValue);
    // Init and app containers share one name space.
    let errors = pod_errors(
        "  initContainers:\n  - name: web\n    image: a\n  containers:\n  - name: web\n    image: b\n",
    );
    assert_only(&errors, "spec.containers[0].name", Reason::Duplicate);
}

#[test]
fn container_ports_are_checked() {
    let errors = pod_errors(
        "  containers:\n  - name: web\n    image: a\n    ports:\n    - containerPort: 80\n      name: http\n    - containerPort: 70000\n      name: http\n      protocol: HTTP\n    - name: this-name-is-too-long\n      containerPort: 81\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_error(
        &errors,
        "spec.containers[0].ports[1].name",
        Reason::Duplicate,
    );
    let message = assert_error(
        &errors,
        "spec.containers[0].ports[1].containerPort",
        Reason::InvalidValue,
    );
    assert_eq!(
        message,
        "Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
    let message = assert_error(
        &errors,
        "spec.containers[0].ports[1].protocol",
        Reason::NotSupported,
    );
    assert_eq!(
        message,
        "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
    );
    assert_error(
        &errors,
        "spec.containers[0].ports[2].name",
        Reason::InvalidValue,
    );
    let errors =
        pod_errors("  containers:\n  - name: web\n    image: a\n    ports:\n    - name: http\n");
    assert_only(
        &errors,
        "spec.containers[0].ports[0].containerPort",
        Reason::Required,
    );
    let errors = pod_errors(
        "  containers:\n  - name: a\n    image: a\n    ports: [{containerPort: 80, hostPort: 8080}]\n  - name: b\n    image: b\n    ports: [{containerPort: 81, hostPort: 8080}]\n",
    );
    assert_only(
        &errors,
        "spec.containers[1].ports[0].hostPort",
        Reason::Duplicate,
    );
}

#[test]
fn env_and_env_from_are_checked() {
    let errors = pod_errors(
        "  containers:\n  - name: web\n    image: a\n    env:\n    - name: 1BAD\n    - name: ''\n    - name: X\n      value: v\n      valueFrom:\n        configMapKeyRef: {name: cm, key: k}\n    - name: Y\n      valueFrom:\n        secretKeyRef: {name: s, key: 'a/b'}\n    envFrom:\n    - prefix: 2X\n",
    );
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert_error(
        &errors,
        "spec.containers[0].env[0].name",
        Reason::InvalidValue,
    );
    assert_error(&errors, "spec.containers[0].env[1].name", Reason::Required);
    let message = assert_error(
        &errors,
        "spec.containers[0].env[2].valueFrom",
        Reason::InvalidValue,
    );
    assert!(message.ends_with("may not be specified when `value` is not empty"));
    assert_error(
        &errors,
        "spec.containers[0].env[3].valueFrom.secretKeyRef.key",
        Reason::InvalidValue,
    );
    assert_error(
        &errors,
        "spec.containers[0].envFrom[0].prefix",
        Reason::InvalidValue,
    );
    assert_error(&errors, "spec.containers[0].envFrom", Reason::InvalidValue);
}

#[test]
fn resources_are_valid_quantities_with_requests_within_limits() {
    let errors = pod_errors(
        "  containers:\n  - name: web\n    image: a\n    resources:\n      requests: {cpu: '2', memory: 64Mi}\n      limits: {cpu: 500m, memory: 1Gi, gpu: '1'}\n",
    );
    // gpu is reported twice: requests default to limits.
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_error(
        &errors,
        "spec.containers[0].resources.requests[gpu]",
        Reason::InvalidValue,
    );
    let message = assert_error(
        &errors,
        "spec.containers[0].resources.requests[cpu]",
        Reason::InvalidValue,
    );
    assert_eq!(
        message,
        "Invalid value: \"2\": must be less than or equal to cpu limit of 500m"
    );
    let message = assert_error(
        &errors,
        "spec.containers[0].resources.limits[gpu]",
        Reason::InvalidValue,
    );
    assert!(message.ends_with("must be a standard resource for containers"));
    assert!(pod_errors(
        "  containers:\n  - name: web\n    image: a\n    resources:\n      limits: {example.com/gpu: '1', memory: 1Gi}\n      requests: {memory: 1024Mi}\n"
    )
    .is_empty());
    // Quantities decoded from protobuf are not checked by the decoder.
    let mut pod = prepared(&pod_yaml(CONTAINER));
    if let Object::Pod(p) = &mut pod {
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.resources
            .get_or_insert_with(Default::default)
            .requests
            .insert(
                "memory".into(),
                capstan_proto::quantity::Quantity {
                    string: "12Q".into(),
                },
            );
    }
    assert_only(
        &validate(&pod),
        "spec.containers[0].resources.requests[memory]",
        Reason::InvalidValue,
    );
}

#[test]
fn restart_and_dns_policies_are_from_the_supported_sets() {
    let errors = pod_errors(&format!("{CONTAINER}  restartPolicy: Sometimes\n"));
    let message = assert_only(&errors, "spec.restartPolicy", Reason::NotSupported);
    assert_eq!(
        message,
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\""
    );
    let errors = pod_errors(&format!("{CONTAINER}  dnsPolicy: Cluster\n"));
    assert_only(&errors, "spec.dnsPolicy", Reason::NotSupported);
    let errors = pod_errors(&format!("{CONTAINER}  dnsPolicy: None\n"));
    assert_only(&errors, "spec.dnsConfig", Reason::Required);
    assert!(
        pod_errors(&format!(
            "{CONTAINER}  dnsPolicy: None\n  dnsConfig:\n    nameservers: [10.0.0.10]\n"
        ))
        .is_empty()
    );
    let errors = pod_errors(&format!("{CONTAINER}  terminationGracePeriodSeconds: -1\n"));
    assert_only(
        &errors,
        "spec.terminationGracePeriodSeconds",
        Reason::InvalidValue,
    );
    let errors = pod_errors(&format!("{CONTAINER}  activeDeadlineSeconds: 0\n"));
    assert_only(&errors, "spec.activeDeadlineSeconds", Reason::InvalidValue);
}

#[test]
fn volumes_are_unique_and_mounts_reference_them() {
    let errors = pod_errors(
        "  volumes:\n  - name: data\n    emptyDir: {}\n  - name: data\n    emptyDir: {}\n  - name: two\n    emptyDir: {}\n    hostPath: {path: /x}\n  containers:\n  - name: web\n    image: a\n    volumeMounts:\n    - name: data\n      mountPath: /data\n    - name: missing\n      mountPath: /data\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_error(&errors, "spec.volumes[1].name", Reason::Duplicate);
    assert_error(&errors, "spec.volumes[2].emptyDir", Reason::Forbidden);
    let message = assert_error(
        &errors,
        "spec.containers[0].volumeMounts[1].name",
        Reason::InvalidValue,
    );
    assert_eq!(message, "Not found: \"missing\"");
    assert_error(
        &errors,
        "spec.containers[0].volumeMounts[1].mountPath",
        Reason::InvalidValue,
    );
    let errors = pod_errors(
        "  volumes:\n  - name: s\n    secret: {}\n  containers:\n  - name: web\n    image: a\n",
    );
    assert_only(
        &errors,
        "spec.volumes[0].secret.secretName",
        Reason::Required,
    );
}

#[test]
fn probes_are_checked() {
    let errors = pod_errors(
        "  containers:\n  - name: web\n    image: a\n    livenessProbe:\n      successThreshold: 2\n      exec: {command: ['true']}\n    readinessProbe:\n      periodSeconds: 5\n    startupProbe:\n      tcpSocket: {port: 0}\n      httpGet: {port: http}\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let message = assert_error(
        &errors,
        "spec.containers[0].livenessProbe.successThreshold",
        Reason::InvalidValue,
    );
    assert_eq!(message, "Invalid value: 2: must be 1");
    let message = assert_error(
        &errors,
        "spec.containers[0].readinessProbe",
        Reason::Required,
    );
    assert_eq!(message, "Required value: must specify a handler type");
    assert_error(
        &errors,
        "spec.containers[0].startupProbe.tcpSocket",
        Reason::Forbidden,
    );
    assert_error(
        &errors,
        "spec.containers[0].startupProbe.tcpSocket.port",
        Reason::InvalidValue,
    );
}

#[test]
fn scheduling_constraints_are_checked() {
    let errors = pod_errors(&format!(
        "{CONTAINER}  nodeSelector:\n    'bad key': x\n  tolerations:\n  - operator: Equal\n    value: v\n  - key: k\n    operator: Sometimes\n  - key: k\n    effect: NoRun\n  - key: k\n    tolerationSeconds: 5\n    effect: NoSchedule\n"
    ));
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_error(&errors, "spec.nodeSelector", Reason::InvalidValue);
    assert_error(
        &errors,
        "spec.tolerations[0].operator",
        Reason::InvalidValue,
    );
    assert_error(
        &errors,
        "spec.tolerations[1].operator",
        Reason::NotSupported,
    );
    assert_error(&errors, "spec.tolerations[2].effect", Reason::NotSupported);
    assert_error(&errors, "spec.tolerations[3].effect", Reason::InvalidValue);

    let errors = pod_errors(&format!(
        "{CONTAINER}  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms: []\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 0\n        preference:\n          matchExpressions:\n          - {{key: zone, operator: In}}\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {{matchLabels: {{app: web}}}}\n"
    ));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let a = "spec.affinity.nodeAffinity";
    assert_error(
        &errors,
        &format!("{a}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"),
        Reason::Required,
    );
    assert_error(
        &errors,
        &format!("{a}.preferredDuringSchedulingIgnoredDuringExecution[0].weight"),
        Reason::InvalidValue,
    );
    assert_error(
        &errors,
        &format!(
            "{a}.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values"
        ),
        Reason::Required,
    );
    assert_error(
        &errors,
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
        Reason::Required,
    );
}

#[test]
fn pod_spec_is_mostly_immutable() {
    let old = prepared(&pod_yaml(
        "  containers:\n  - name: web\n    image: nginx:1\n",
    ));
    let mut new = old.clone();
    if let Object::Pod(p) = &mut new {
        let spec = p.spec.as_mut().unwrap();
        spec.containers[0].image = "nginx:2".into();
        spec.node_name = "node-1".into();
    }
    assert!(validate_update(&new, &old).is_empty());
    let mut changed = new.clone();
    if let Object::Pod(p) = &mut changed {
        p.spec.as_mut().unwrap().restart_policy = "Never".into();
    }
    assert_only(&validate_update(&changed, &old), "spec", Reason::Forbidden);
    // nodeName is set once.
    let mut moved = new.clone();
    if let Object::Pod(p) = &mut moved {
        p.spec.as_mut().unwrap().node_name = "node-2".into();
    }
    assert_only(&validate_update(&moved, &new), "spec", Reason::Forbidden);
}

// ---- workloads ----

fn deployment(spec_extra: &str, selector: &str, labels: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n{spec_extra}  selector:\n{selector}  template:\n    metadata:\n      labels:\n{labels}    spec:\n      containers:\n      - name: web\n        image: nginx\n"
    )
}

const MATCH_APP_WEB: &str = "    matchLabels: {app: web}\n";
const LABELS_APP_WEB: &str = "        app: web\n";

#[test]
fn deployment_defaults() {
    let Object::Deployment(d) = prepared(&deployment("", MATCH_APP_WEB, LABELS_APP_WEB)) else {
        unreachable!()
    };
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.r#type, "RollingUpdate");
    let rolling = strategy.rolling_update.unwrap();
    assert_eq!(rolling.max_surge, Some("25%".into()));
    assert_eq!(rolling.max_unavailable, Some("25%".into()));
    let template = spec.template.unwrap().spec.unwrap();
    assert_eq!(template.restart_policy, "Always");
}

#[test]
fn workload_selector_must_match_template_labels() {
    let errors = errors_of(&deployment(
        "",
        "    matchLabels: {app: db}\n",
        LABELS_APP_WEB,
    ));
    let message = assert_only(
        &errors,
        "spec.template.metadata.labels",
        Reason::InvalidValue,
    );
    assert!(
        message.ends_with("`selector` does not match template `labels`"),
        "{message}"
    );
    let errors = errors_of(&deployment(
        "",
        "    matchExpressions:\n    - {key: app, operator: NotIn, values: [web]}\n",
        LABELS_APP_WEB,
    ));
    assert_only(
        &errors,
        "spec.template.metadata.labels",
        Reason::InvalidValue,
    );
    let errors = errors_of(&deployment("", "    {}\n", LABELS_APP_WEB));
    let message = assert_only(&errors, "spec.selector", Reason::InvalidValue);
    assert!(message.ends_with("empty selector is invalid for deployment"));
    let errors = errors_of(&deployment(
        "",
        "    matchExpressions:\n    - {key: app, operator: Near, values: [web]}\n",
        LABELS_APP_WEB,
    ));
    assert_only(
        &errors,
        "spec.selector.matchExpressions[0].operator",
        Reason::InvalidValue,
    );
    let no_selector = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: r\nspec:\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";
    assert_only(&errors_of(no_selector), "spec.selector", Reason::Required);
}

#[test]
fn workload_template_is_validated_as_a_pod_spec_that_always_restarts() {
    let yaml = deployment("", MATCH_APP_WEB, LABELS_APP_WEB).replace("        image: nginx\n", "")
        + "      restartPolicy: Never\n";
    let errors = errors_of(&yaml);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_error(
        &errors,
        "spec.template.spec.containers[0].image",
        Reason::Required,
    );
    let message = assert_error(
        &errors,
        "spec.template.spec.restartPolicy",
        Reason::NotSupported,
    );
    assert_eq!(
        message,
        "Unsupported value: \"Never\": supported values: \"Always\""
    );
}

#[test]
fn deployment_counts_and_strategy_are_checked() {
    let errors = errors_of(&deployment(
        "  replicas: -1\n  revisionHistoryLimit: -2\n",
        MATCH_APP_WEB,
        LABELS_APP_WEB,
    ));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let message = assert_error(&errors, "spec.replicas", Reason::InvalidValue);
    assert_eq!(
        message,
        "Invalid value: -1: must be greater than or equal to 0"
    );
    assert_error(&errors, "spec.revisionHistoryLimit", Reason::InvalidValue);

    let strategy = |s: &str| {
        errors_of(&deployment(
            &format!("  strategy:\n{s}"),
            MATCH_APP_WEB,
            LABELS_APP_WEB,
        ))
    };
    let errors = strategy("    rollingUpdate: {maxSurge: 0, maxUnavailable: '0%'}\n");
    let message = assert_only(
        &errors,
        "spec.strategy.rollingUpdate.maxUnavailable",
        Reason::InvalidValue,
    );
    assert!(message.ends_with("may not be 0 when `maxSurge` is 0"));
    let errors = strategy("    rollingUpdate: {maxSurge: lots, maxUnavailable: '150%'}\n");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_error(
        &errors,
        "spec.strategy.rollingUpdate.maxSurge",
        Reason::InvalidValue,
    );
    let message = assert_error(
        &errors,
        "spec.strategy.rollingUpdate.maxUnavailable",
        Reason::InvalidValue,
    );
    assert!(message.ends_with("must not be greater than 100%"));
    let errors = strategy("    type: Recreate\n    rollingUpdate: {maxSurge: 1}\n");
    assert_only(&errors, "spec.strategy.rollingUpdate", Reason::Forbidden);
    let errors = strategy("    type: BlueGreen\n");
    assert_only(&errors, "spec.strategy.type", Reason::NotSupported);
    assert!(strategy("    type: Recreate\n").is_empty());
    let errors = errors_of(&deployment(
        "  minReadySeconds: 700\n",
        MATCH_APP_WEB,
        LABELS_APP_WEB,
    ));
    assert_only(
        &errors,
        "spec.progressDeadlineSeconds",
        Reason::InvalidValue,
    );
}

#[test]
fn replication_controller_selector_defaults_to_template_labels() {
    let Object::ReplicationController(rc) = prepared(
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc\nspec:\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
    ) else {
        unreachable!()
    };
    let spec = rc.spec.as_ref().unwrap();
    assert_eq!(spec.selector.get("app").map(String::as_str), Some("web"));
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        rc.metadata
            .as_ref()
            .unwrap()
            .labels
            .get("app")
            .map(String::as_str),
        Some("web")
    );
    let errors = errors_of(
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc\nspec:\n  selector: {app: db}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
    );
    assert_only(
        &errors,
        "spec.template.metadata.labels",
        Reason::InvalidValue,
    );
    let errors = errors_of(
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc\nspec:\n  selector: {app: db}\n",
    );
    assert_only(&errors, "spec.template", Reason::Required);
}

#[test]
fn apps_selectors_are_immutable() {
    let old = prepared(&deployment("", MATCH_APP_WEB, LABELS_APP_WEB));
    let new = prepared(&deployment(
        "",
        "    matchLabels: {app: web, tier: x}\n",
        "        app: web\n        tier: x\n",
    ));
    let message = assert_only(
        &validate_update(&new, &old),
        "spec.selector",
        Reason::InvalidValue,
    );
    assert!(message.ends_with("field is immutable"));
    let mut scaled = old.clone();
    if let Object::Deployment(d) = &mut scaled {
        d.spec.as_mut().unwrap().replicas = Some(5);
    }
    assert!(validate_update(&scaled, &old).is_empty());
}

#[test]
fn stateful_sets_are_defaulted_validated_and_mostly_immutable() {
    let yaml = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  serviceName: db\n  selector:\n    matchLabels: {app: db}\n  template:\n    metadata:\n      labels: {app: db}\n    spec:\n      containers:\n      - name: db\n        image: mysql\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests: {storage: 1Gi}\n";
    let old = prepared(yaml);
    assert!(validate(&old).is_empty(), "{:#?}", validate(&old));
    let Object::StatefulSet(s) = &old else {
        unreachable!()
    };
    let spec = s.spec.as_ref().unwrap();
    assert_eq!(spec.pod_management_policy, "OrderedReady");
    assert_eq!(
        spec.update_strategy.as_ref().unwrap().r#type,
        "RollingUpdate"
    );
    assert_eq!(spec.replicas, Some(1));
    let mut new = old.clone();
    if let Object::StatefulSet(s) = &mut new {
        s.spec.as_mut().unwrap().service_name = "other".into();
    }
    assert_only(&validate_update(&new, &old), "spec", Reason::Forbidden);
    let mut bad = old.clone();
    if let Object::StatefulSet(s) = &mut bad {
        let spec = s.spec.as_mut().unwrap();
        spec.pod_management_policy = "Random".into();
        spec.volume_claim_templates[0]
            .spec
            .as_mut()
            .unwrap()
            .access_modes
            .clear();
    }
    let errors = validate(&bad);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_error(&errors, "spec.podManagementPolicy", Reason::InvalidValue);
    assert_error(
        &errors,
        "spec.volumeClaimTemplates[0].spec.accessModes",
        Reason::Required,
    );
}

// ---- services ----

fn service(spec: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n{spec}")
}

#[test]
fn service_defaults() {
    let Object::Service(svc) = prepared(&service(
        "  ports:\n  - port: 80\n  - port: 443\n    targetPort: https\n",
    )) else {
        unreachable!()
    };
    let spec = svc.spec.unwrap();
    assert_eq!(spec.r#type, "ClusterIP");
    assert_eq!(spec.session_affinity, "None");
    assert_eq!(spec.ports[0].protocol, "TCP");
    assert_eq!(spec.ports[0].target_port, Some(80.into()));
    assert_eq!(spec.ports[1].target_port, Some("https".into()));
    let Object::Service(svc) = prepared(&service(
        "  sessionAffinity: ClientIP\n  ports:\n  - port: 80\n",
    )) else {
        unreachable!()
    };
    let timeout = svc
        .spec
        .unwrap()
        .session_affinity_config
        .unwrap()
        .client_ip
        .unwrap()
        .timeout_seconds;
    assert_eq!(timeout, Some(10800));
}

#[test]
fn service_ports_are_checked() {
    assert_only(
        &errors_of(&service("  selector: {app: web}\n")),
        "spec.ports",
        Reason::Required,
    );
    assert!(errors_of(&service("  clusterIP: None\n")).is_empty());
    let errors = errors_of(&service(
        "  ports:\n  - port: 0\n  - name: http\n    port: 80\n    targetPort: Not_A_Name\n  - name: http\n    port: 80\n    protocol: ICMP\n",
    ));
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert_error(&errors, "spec.ports[0].name", Reason::Required);
    assert_error(&errors, "spec.ports[0].port", Reason::InvalidValue);
    // targetPort defaults to the (invalid) port.
    assert_error(&errors, "spec.ports[0].targetPort", Reason::InvalidValue);
    assert_error(&errors, "spec.ports[1].targetPort", Reason::InvalidValue);
    assert_error(&errors, "spec.ports[2].name", Reason::Duplicate);
    assert_error(&errors, "spec.ports[2].protocol", Reason::NotSupported);
    let errors = errors_of(&service(
        "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80}\n",
    ));
    let message = assert_only(&errors, "spec.ports[1]", Reason::Duplicate);
    assert_eq!(message, "Duplicate value: \"80/TCP\"");
}

#[test]
fn service_types_and_node_ports() {
    let errors = errors_of(&service(
        "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 70000\n",
    ));
    // The configured node port range is checked by the allocator.
    let message = assert_only(&errors, "spec.ports[0].nodePort", Reason::InvalidValue);
    assert!(message.contains("between 1 and 65535"), "{message}");
    let errors = errors_of(&service("  ports:\n  - port: 80\n    nodePort: 30080\n"));
    let message = assert_only(&errors, "spec.ports[0].nodePort", Reason::Forbidden);
    assert_eq!(
        message,
        "Forbidden: may not be used when `type` is 'ClusterIP'"
    );
    let errors = errors_of(&service("  type: Internal\n  ports:\n  - port: 80\n"));
    assert_only(&errors, "spec.type", Reason::NotSupported);
    let errors = errors_of(&service("  type: ExternalName\n"));
    assert_only(&errors, "spec.externalName", Reason::Required);
    assert!(
        errors_of(&service(
            "  type: ExternalName\n  externalName: db.example.com.\n"
        ))
        .is_empty()
    );
    let errors = errors_of(&service("  type: ExternalName\n  externalName: Not_DNS\n"));
    assert_only(&errors, "spec.externalName", Reason::InvalidValue);
    let errors = errors_of(&service(
        "  clusterIP: 10.0.0.300\n  ports:\n  - port: 80\n",
    ));
    assert_only(&errors, "spec.clusterIP", Reason::InvalidValue);
    let errors = errors_of(&service(
        "  type: NodePort\n  clusterIP: None\n  ports:\n  - port: 80\n",
    ));
    assert_only(&errors, "spec.clusterIP", Reason::InvalidValue);
    let errors = errors_of(&service(
        "  sessionAffinity: Sticky\n  ports:\n  - port: 80\n",
    ));
    assert_only(&errors, "spec.sessionAffinity", Reason::NotSupported);
}

#[test]
fn service_cluster_ip_is_immutable_once_set() {
    let old = prepared(&service("  clusterIP: 10.0.0.10\n  ports:\n  - port: 80\n"));
    let new = prepared(&service("  clusterIP: 10.0.0.11\n  ports:\n  - port: 80\n"));
    assert_only(
        &validate_update(&new, &old),
        "spec.clusterIP",
        Reason::InvalidValue,
    );
    // Allocation (from empty) and changes to ExternalName are allowed.
    let unallocated = prepared(&service("  ports:\n  - port: 80\n"));
    assert!(validate_update(&old, &unallocated).is_empty());
    let external = prepared(&service(
        "  type: ExternalName\n  externalName: example.com\n",
    ));
    assert!(validate_update(&external, &old).is_empty());
}

// ---- other core kinds ----

#[test]
fn namespaces_are_labelled_and_finalizers_checked() {
    let Object::Namespace(ns) =
        prepared("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n")
    else {
        unreachable!()
    };
    assert_eq!(
        ns.metadata.unwrap().labels["kubernetes.io/metadata.name"],
        "team-a"
    );
    assert_eq!(ns.status.unwrap().phase, "Active");
    let errors = errors_of(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\nspec:\n  finalizers: [kubernetes, custom]\n",
    );
    let message = assert_only(&errors, "spec.finalizers", Reason::InvalidValue);
    assert!(
        message.ends_with("name is neither a standard finalizer name nor is it fully qualified")
    );
}

#[test]
fn node_taints_are_checked() {
    let errors = errors_of(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  taints:\n  - {key: gpu, value: 'yes', effect: NoSchedule}\n  - {key: gpu, value: 'no', effect: NoSchedule}\n  - {key: 'bad key', effect: NoRun}\n  - {key: k}\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let message = assert_error(&errors, "spec.taints[1]", Reason::Duplicate);
    assert!(message.ends_with("taints must be unique by key and effect pair"));
    assert_error(&errors, "spec.taints[2].key", Reason::InvalidValue);
    assert_error(&errors, "spec.taints[2].effect", Reason::NotSupported);
    assert_error(&errors, "spec.taints[3].effect", Reason::Required);
}

#[test]
fn endpoints_are_checked() {
    let yaml = "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\nsubsets:\n- addresses:\n  - ip: 10.1.0.5\n  - ip: 169.254.1.1\n  - ip: not-an-ip\n  ports:\n  - port: 80\n  - name: b\n    port: 70000\n- ports:\n  - port: 80\n";
    let errors = errors_of(yaml);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    // Loopback addresses are allowed (pods get them from the process
    // runtime); link-local ones are not.
    let message = assert_error(&errors, "subsets[0].addresses[1].ip", Reason::InvalidValue);
    assert!(message.contains("link-local"), "{message}");
    assert_error(&errors, "subsets[0].addresses[2].ip", Reason::InvalidValue);
    assert_error(&errors, "subsets[0].ports[0].name", Reason::Required);
    assert_error(&errors, "subsets[0].ports[1].port", Reason::InvalidValue);
    assert_error(&errors, "subsets[1]", Reason::Required);
    let Object::Endpoints(ep) = prepared(yaml) else {
        unreachable!()
    };
    assert_eq!(ep.subsets[0].ports[0].protocol, "TCP");
}

#[test]
fn events_name_their_object_in_their_namespace() {
    let errors = errors_of("apiVersion: v1\nkind: Event\nmetadata:\n  name: e\n");
    assert_only(&errors, "involvedObject", Reason::Required);
    let errors = errors_of(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: e\n  namespace: a\ninvolvedObject: {kind: Pod, name: p, namespace: b}\n",
    );
    assert_only(&errors, "involvedObject.namespace", Reason::InvalidValue);
    assert!(errors_of("apiVersion: v1\nkind: Event\nmetadata:\n  name: e\ninvolvedObject: {kind: Node, name: n}\n").is_empty());
}

#[test]
fn secrets_are_defaulted_and_checked() {
    let Object::Secret(s) = prepared(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2\n",
    ) else {
        unreachable!()
    };
    assert_eq!(s.r#type, "Opaque");
    assert_eq!(s.data["password"], b"hunter2");
    assert!(s.string_data.is_empty());
    let errors =
        errors_of("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a/b: x\n");
    assert_only(&errors, "data[a/b]", Reason::InvalidValue);
    let errors = errors_of(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: x\n",
    );
    assert_only(&errors, "data[tls.key]", Reason::Required);
    let errors = errors_of(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{'\n",
    );
    assert_only(&errors, "data[.dockerconfigjson]", Reason::InvalidValue);
    let errors = errors_of(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/service-account-token\n",
    );
    assert_only(
        &errors,
        "metadata.annotations[kubernetes.io/service-account.name]",
        Reason::Required,
    );
}

#[test]
fn immutable_secrets_and_config_maps_keep_their_data() {
    let old = prepared(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nimmutable: true\nstringData: {a: '1'}\n",
    );
    let new = prepared(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nimmutable: true\nstringData: {a: '2'}\n",
    );
    let message = assert_only(&validate_update(&new, &old), "data", Reason::Forbidden);
    assert_eq!(
        message,
        "Forbidden: field is immutable when `immutable` is set"
    );
    let unfrozen =
        prepared("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData: {a: '1'}\n");
    assert_only(
        &validate_update(&unfrozen, &old),
        "immutable",
        Reason::Forbidden,
    );
    let retyped = prepared(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: example.com/x\nimmutable: true\nstringData: {a: '1'}\n",
    );
    assert_only(
        &validate_update(&retyped, &old),
        "type",
        Reason::InvalidValue,
    );
    // A mutable secret may change.
    assert!(validate_update(&old, &unfrozen).is_empty());

    let old = prepared(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nimmutable: true\ndata: {a: '1'}\n",
    );
    let new = prepared(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nimmutable: true\ndata: {a: '2'}\n",
    );
    assert_only(&validate_update(&new, &old), "data", Reason::Forbidden);
}

#[test]
fn config_map_keys_and_size_are_checked() {
    let errors = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n  'bad key': v\nbinaryData:\n  k: AAAA\n",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_error(&errors, "data[bad key]", Reason::InvalidValue);
    let message = assert_error(&errors, "data[k]", Reason::InvalidValue);
    assert!(message.ends_with("duplicate of key present in binaryData"));
    assert_error(&errors, "binaryData[k]", Reason::InvalidValue);
    let mut cm = prepared("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
    if let Object::ConfigMap(c) = &mut cm {
        c.data
            .insert("big".into(), "x".repeat(super::core::MAX_SECRET_SIZE + 1));
    }
    assert_only(&validate(&cm), "", Reason::TooLong);
}

#[test]
fn persistent_volumes_and_claims_are_checked() {
    let pv = "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv1\nspec:\n  capacity: {storage: 10Gi}\n  accessModes: [ReadWriteOnce]\n  hostPath: {path: /data}\n";
    assert_valid(pv);
    let Object::PersistentVolume(v) = prepared(pv) else {
        unreachable!()
    };
    assert_eq!(
        v.spec.as_ref().unwrap().persistent_volume_reclaim_policy,
        "Retain"
    );
    assert_eq!(v.status.as_ref().unwrap().phase, "Pending");
    let errors = errors_of(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv1\nspec:\n  capacity: {storage: '0', cpu: '1'}\n  accessModes: [ReadWriteSometimes]\n  persistentVolumeReclaimPolicy: Keep\n",
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_error(&errors, "spec.accessModes", Reason::NotSupported);
    assert_error(&errors, "spec.capacity", Reason::NotSupported);
    assert_error(&errors, "spec.capacity[storage]", Reason::InvalidValue);
    assert_error(&errors, "spec", Reason::Required);
    assert_error(
        &errors,
        "spec.persistentVolumeReclaimPolicy",
        Reason::NotSupported,
    );
    let mut moved = prepared(pv);
    if let Object::PersistentVolume(v) = &mut moved {
        v.spec.as_mut().unwrap().host_path.as_mut().unwrap().path = "/other".into();
    }
    assert_only(
        &validate_update(&moved, &prepared(pv)),
        "spec.persistentvolumesource",
        Reason::Forbidden,
    );

    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests: {storage: 1Gi}\n";
    assert_valid(pvc);
    let errors = errors_of(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  accessModes: [ReadWriteOnce, ReadWriteOncePod]\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_error(&errors, "spec.accessModes", Reason::Forbidden);
    assert_error(&errors, "spec.resources[storage]", Reason::Required);
    // Bound claims may grow, never shrink; other changes are refused.
    let mut bound = prepared(pvc);
    if let Object::PersistentVolumeClaim(c) = &mut bound {
        c.status.as_mut().unwrap().phase = "Bound".into();
        c.spec.as_mut().unwrap().volume_name = "pv1".into();
    }
    let grown = prepared(&pvc.replace("1Gi", "2Gi"));
    let mut grown = grown;
    if let Object::PersistentVolumeClaim(c) = &mut grown {
        c.spec.as_mut().unwrap().volume_name = "pv1".into();
    }
    assert!(validate_update(&grown, &bound).is_empty());
    let mut shrunk = grown.clone();
    if let Object::PersistentVolumeClaim(c) = &mut shrunk {
        c.spec
            .as_mut()
            .unwrap()
            .resources
            .as_mut()
            .unwrap()
            .requests
            .insert(
                "storage".into(),
                capstan_proto::quantity::Quantity::parse("512Mi").unwrap(),
            );
    }
    assert_only(
        &validate_update(&shrunk, &bound),
        "spec.resources.requests.storage",
        Reason::Forbidden,
    );
    let unbound_grown = prepared(&pvc.replace("1Gi", "2Gi"));
    assert_only(
        &validate_update(&unbound_grown, &prepared(pvc)),
        "spec",
        Reason::Forbidden,
    );
}

#[test]
fn hpa_bounds_and_target_are_checked() {
    let Object::HorizontalPodAutoscaler(h) = prepared(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  scaleTargetRef: {kind: Deployment, name: web}\n",
    ) else {
        unreachable!()
    };
    assert_eq!(h.spec.unwrap().min_replicas, Some(1));
    let errors = errors_of(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  minReplicas: 5\n  maxReplicas: 3\n  targetCPUUtilizationPercentage: 0\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let message = assert_error(&errors, "spec.maxReplicas", Reason::InvalidValue);
    assert!(message.ends_with("must be greater than or equal to `minReplicas`"));
    assert_error(&errors, "spec.scaleTargetRef.kind", Reason::Required);
    assert_error(&errors, "spec.scaleTargetRef.name", Reason::Required);
    assert_error(
        &errors,
        "spec.targetCPUUtilizationPercentage",
        Reason::InvalidValue,
    );
    let errors = errors_of(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 0\n  scaleTargetRef: {kind: Deployment, name: web}\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().all(|e| e.path == "spec.maxReplicas"));
}

#[test]
fn controller_revisions_need_data_which_never_changes() {
    let errors = errors_of(
        "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata:\n  name: r\nrevision: -1\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_error(&errors, "data", Reason::Required);
    assert_error(&errors, "revision", Reason::InvalidValue);
    let old = prepared(
        "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata:\n  name: r\nrevision: 1\ndata: {a: 1}\n",
    );
    let new = prepared(
        "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata:\n  name: r\nrevision: 2\ndata: {a: 2}\n",
    );
    assert!(validate(&old).is_empty());
    assert_only(&validate_update(&new, &old), "data", Reason::InvalidValue);
}

#[test]
fn leases_are_checked() {
    assert_valid(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: node-1\nspec:\n  holderIdentity: node-1\n  leaseDurationSeconds: 40\n",
    );
    let errors = errors_of(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: l\nspec:\n  leaseDurationSeconds: 0\n  leaseTransitions: -1\n  preferredHolder: x\n",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_error(&errors, "spec.leaseDurationSeconds", Reason::InvalidValue);
    assert_error(&errors, "spec.leaseTransitions", Reason::InvalidValue);
    assert_error(&errors, "spec.preferredHolder", Reason::Forbidden);
}

// ---- RBAC ----

#[test]
fn policy_rules_are_checked() {
    let errors = errors_of(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\nrules:\n- resources: [pods]\n  apiGroups: ['']\n- verbs: [get]\n- verbs: [get]\n  nonResourceURLs: [/healthz]\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_error(&errors, "rules[0].verbs", Reason::Required);
    assert_error(&errors, "rules[1].apiGroups", Reason::Required);
    assert_error(&errors, "rules[1].resources", Reason::Required);
    let message = assert_error(&errors, "rules[2].nonResourceURLs", Reason::InvalidValue);
    assert!(message.ends_with("namespaced rules cannot apply to non-resource URLs"));
    assert_valid(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\nrules:\n- verbs: [get]\n  nonResourceURLs: [/healthz]\n",
    );
}

#[test]
fn bindings_are_defaulted_and_checked() {
    let Object::RoleBinding(rb) = prepared(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\nroleRef: {kind: Role, name: r}\nsubjects:\n- {kind: User, name: alice}\n- {kind: ServiceAccount, name: default}\n",
    ) else {
        unreachable!()
    };
    assert_eq!(
        rb.role_ref.as_ref().unwrap().api_group,
        "rbac.authorization.k8s.io"
    );
    assert_eq!(rb.subjects[0].api_group, "rbac.authorization.k8s.io");
    assert_eq!(rb.subjects[1].api_group, "");
    assert!(validate(&Object::RoleBinding(rb)).is_empty());

    let errors = errors_of(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: b\nroleRef: {kind: Role, name: r, apiGroup: example.com}\nsubjects:\n- {kind: ServiceAccount, name: default}\n- {kind: Robot, name: r2}\n- {kind: Group}\n",
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_error(&errors, "roleRef.apiGroup", Reason::NotSupported);
    let message = assert_error(&errors, "roleRef.kind", Reason::NotSupported);
    assert_eq!(
        message,
        "Unsupported value: \"Role\": supported values: \"ClusterRole\""
    );
    assert_error(&errors, "subjects[0].namespace", Reason::Required);
    assert_error(&errors, "subjects[1].kind", Reason::NotSupported);
    assert_error(&errors, "subjects[2].name", Reason::Required);
}

#[test]
fn role_ref_is_immutable() {
    let old = prepared(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\nroleRef: {kind: Role, name: r}\n",
    );
    let new = prepared(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\nroleRef: {kind: ClusterRole, name: r}\n",
    );
    let message = assert_only(
        &validate_update(&new, &old),
        "roleRef",
        Reason::InvalidValue,
    );
    assert!(message.ends_with("cannot change roleRef"));
    let mut more_subjects = old.clone();
    if let Object::RoleBinding(rb) = &mut more_subjects {
        rb.subjects.push(capstan_proto::api::rbac::v1::Subject {
            kind: "User".into(),
            name: "bob".into(),
            api_group: "rbac.authorization.k8s.io".into(),
            namespace: String::new(),
        });
    }
    assert!(validate_update(&more_subjects, &old).is_empty());
}

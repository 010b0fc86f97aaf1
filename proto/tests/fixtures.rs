//! The manifest fixtures shared by the project (`shared/fixtures/manifests`):
//! every valid manifest decodes and round-trips to the same document; every
//! invalid one is refused naming each bad field. Plus protobuf round-trips
//! for every kind and the Kubernetes JSON forms of the value types.

use std::path::PathBuf;

use capstan_proto::api::core::v1::{ConfigMap, Secret};
use capstan_proto::{KINDS, Object, Reason, Resource, codec};
use serde_json::{Value, json};

/// `$CAPSTAN_FIXTURES`, or `shared/fixtures/manifests` beside the repository.
fn manifests_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAPSTAN_FIXTURES") {
        let dir = PathBuf::from(dir);
        let nested = dir.join("manifests");
        return if nested.is_dir() { nested } else { dir };
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/manifests")
}

fn manifests(sub: &str) -> Vec<(String, Vec<u8>)> {
    let dir = manifests_dir().join(sub);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

fn yaml_value(bytes: &[u8]) -> Value {
    serde_yaml_ng::from_slice(bytes).unwrap()
}

#[test]
fn valid_manifests_round_trip() {
    for (name, bytes) in manifests("valid") {
        let objects = capstan_proto::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(objects.len(), 1, "{name}");
        let object = &objects[0];

        // YAML out, read back as a value: the same document.
        let yaml = object.to_yaml().unwrap();
        assert_eq!(
            yaml_value(yaml.as_bytes()),
            yaml_value(&bytes),
            "{name} via YAML:\n{yaml}"
        );
        assert!(yaml.starts_with("apiVersion: "), "{name}: {yaml}");

        // JSON out, decoded again: the same object.
        let json = object.to_json().unwrap();
        assert_eq!(
            &capstan_proto::decode_one(json.as_bytes()).unwrap(),
            object,
            "{name}"
        );

        // Protobuf out and back: the same object.
        let bytes = object.encode_to_vec();
        assert_eq!(
            &Object::decode(object.info(), &bytes).unwrap(),
            object,
            "{name}"
        );
    }
}

/// What each invalid fixture must report: (path, reason, message fragment).
fn expected_errors(name: &str) -> Vec<(&'static str, Reason, &'static str)> {
    match name {
        "rc-misspelled-template.yaml" => vec![(
            "spec.templete",
            Reason::UnknownField,
            "did you mean spec.template?",
        )],
        "pod-misspelled-keys.yaml" => vec![
            (
                "apiSerdion",
                Reason::UnknownField,
                "did you mean apiVersion?",
            ),
            ("matadata", Reason::UnknownField, "did you mean metadata?"),
            ("apiVersion", Reason::Required, "required"),
            ("metadata.name", Reason::Required, "required"),
        ],
        "deployment-old-group-and-typos.yaml" => vec![
            (
                "apiVersion",
                Reason::NotServed,
                "apiVersion extension/v1beta1 is not served; Deployment is served as apps/v1",
            ),
            ("matadata", Reason::UnknownField, "did you mean metadata?"),
            (
                "spec.replica",
                Reason::UnknownField,
                "did you mean spec.replicas?",
            ),
            (
                "spec.template.matadata",
                Reason::UnknownField,
                "did you mean spec.template.metadata?",
            ),
            ("metadata.name", Reason::Required, "required"),
        ],
        "hpa-misspelled-keys.yaml" => vec![
            ("matadata", Reason::UnknownField, "did you mean metadata?"),
            (
                "spec.maxReplica",
                Reason::UnknownField,
                "did you mean spec.maxReplicas?",
            ),
            (
                "spec.minReplica",
                Reason::UnknownField,
                "did you mean spec.minReplicas?",
            ),
            ("metadata.name", Reason::Required, "required"),
        ],
        other => panic!("no expectations for invalid fixture {other}; add them here"),
    }
}

#[test]
fn invalid_manifests_are_refused_naming_every_field() {
    for (name, bytes) in manifests("invalid") {
        let error = capstan_proto::decode(&bytes).expect_err(&name);
        let text = error.to_string();
        let expected = expected_errors(&name);
        for (path, reason, fragment) in &expected {
            let found = error.errors.iter().find(|e| e.path == *path);
            let found = found.unwrap_or_else(|| panic!("{name}: no error for {path} in:\n{text}"));
            assert_eq!(found.reason, *reason, "{name}: {found}");
            assert!(found.message.contains(fragment), "{name}: {found}");
            assert!(text.contains(path), "{name}: display lacks {path}:\n{text}");
        }
        assert_eq!(
            error.errors.len(),
            expected.len(),
            "{name}: unexpected extra errors:\n{text}"
        );
    }
}

#[test]
fn every_kind_round_trips_through_protobuf_and_json() {
    for info in KINDS {
        let document = json!({
            "apiVersion": info.api_version,
            "kind": info.kind,
            "metadata": {
                "name": "x",
                "namespace": if info.namespaced { "default" } else { "" },
                "labels": {"app": "demo"},
                "generation": 0,
                "creationTimestamp": "2026-11-27T14:01:47Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}],
                "finalizers": ["capstan.io/test"],
            },
        });
        let object =
            Object::from_value(document.clone()).unwrap_or_else(|e| panic!("{}: {e}", info.kind));
        assert_eq!(object.info(), info);
        let bytes = object.encode_to_vec();
        let back = Object::decode(info, &bytes).unwrap();
        assert_eq!(back, object, "{}", info.kind);
        let mut expected = document;
        if !info.namespaced {
            expected["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("namespace");
        }
        assert_eq!(back.to_value().unwrap(), expected, "{}", info.kind);
    }
}

#[test]
fn pod_fields_with_irregular_names_and_status() {
    let pod = br#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, deletionGracePeriodSeconds: 30}
spec:
  hostPID: true
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: nginx
    ports: [{containerPort: 80, name: http, hostIP: 0.0.0.0}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 5}
    resources: {limits: {cpu: 1, memory: 1Gi}}
status:
  phase: Running
  podIP: 10.0.0.5
  podIPs: [{ip: 10.0.0.5}]
  hostIP: 192.168.1.2
  startTime: "2026-11-27T14:01:47Z"
  containerStatuses:
  - {name: web, ready: true, restartCount: 0, containerID: "containerd://abc", state: {running: {startedAt: "2026-11-27T14:01:48Z"}}}
"#;
    let object = capstan_proto::decode_one(pod).unwrap();
    let Object::Pod(p) = &object else {
        panic!("{object:?}")
    };
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.host_pid, Some(true));
    assert_eq!(spec.termination_grace_period_seconds, Some(0));
    let status = p.status.as_ref().unwrap();
    assert_eq!(status.pod_ip, "10.0.0.5");
    let value = object.to_value().unwrap();
    assert_eq!(value["status"]["podIP"], "10.0.0.5");
    assert_eq!(value["spec"]["terminationGracePeriodSeconds"], 0);
    assert_eq!(
        value["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        "http"
    );
    // A bare-number quantity is accepted and written as a string, as Kubernetes does.
    assert_eq!(
        value["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "1"
    );
    assert_eq!(value["status"]["containerStatuses"][0]["restartCount"], 0);
}

#[test]
fn wrong_types_are_reported_with_paths() {
    let doc = br#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: "x"
  paused: "yes"
  template:
    spec:
      containers:
      - name: web
        imagee: nginx
        ports: [{containerPort: 99999999999}]
        resources: {limits: {memory: 12XB}}
"#;
    let error = capstan_proto::decode(doc).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(r#"spec.replicas: expected integer, got string "x""#),
        "{text}"
    );
    assert!(text.contains("spec.paused: expected boolean"), "{text}");
    assert!(
        text.contains("spec.template.spec.containers[0].imagee: unknown field (did you mean spec.template.spec.containers[0].image?)"),
        "{text}"
    );
    assert!(
        text.contains("spec.template.spec.containers[0].ports[0].containerPort"),
        "{text}"
    );
    assert!(
        text.contains("spec.template.spec.containers[0].resources.limits[memory]: "),
        "{text}"
    );
    assert_eq!(error.errors.len(), 5, "{text}");
}

#[test]
fn unknown_kind_and_missing_kind() {
    let error =
        capstan_proto::decode(b"apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: a}\n")
            .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("kind Deploymnet is not served (did you mean Deployment?)"),
        "{error}"
    );
    let error = capstan_proto::decode(b"apiVersion: v1\nmetadata: {name: a}\n").unwrap_err();
    assert!(error.has_path("kind"), "{error}");
}

#[test]
fn multi_document_yaml_and_lists() {
    let docs = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\n";
    let objects = capstan_proto::decode(docs).unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1].info().kind, "Namespace");

    let list = br#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"b-"}}]}"#;
    assert_eq!(capstan_proto::decode(list).unwrap().len(), 2);

    let bad = b"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {nam: b}\n";
    let error = capstan_proto::decode(bad).unwrap_err();
    assert_eq!(error.errors[0].document, Some(1), "{error}");
    assert!(
        error.to_string().starts_with(
            "2 errors:\n  document 2: metadata.nam: unknown field (did you mean metadata.name?)"
        ),
        "{error}"
    );
}

#[test]
fn malformed_yaml_reports_the_line() {
    let bad = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   labels: {x: y}\n";
    let error = capstan_proto::decode(bad).unwrap_err();
    assert_eq!(error.errors.len(), 1);
    assert_eq!(error.errors[0].reason, Reason::Syntax);
    assert_eq!(error.errors[0].line, Some(5), "{error}");
    assert!(error.to_string().contains("line 5"), "{error}");

    let error = capstan_proto::decode(b"{\"apiVersion\": \"v1\",\n \"kind\": }").unwrap_err();
    assert_eq!(error.errors[0].line, Some(2), "{error}");
}

#[test]
fn bytes_maps_are_base64() {
    let doc = br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"type":"Opaque","data":{"password":"aHVudGVyMg=="},"stringData":{"user":"admin"}}"#;
    let secret: Secret = codec::decode_as(doc).unwrap();
    assert_eq!(secret.data["password"], b"hunter2");
    let value = codec::to_value(&secret).unwrap();
    assert_eq!(value["data"]["password"], "aHVudGVyMg==");
    assert_eq!(value["stringData"]["user"], "admin");

    let mut cm = ConfigMap::default();
    cm.metadata_mut().name = "bin".into();
    cm.binary_data.insert("blob".into(), vec![0, 159, 146, 150]);
    let json = codec::to_json(&cm).unwrap();
    assert_eq!(
        json,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bin"},"binaryData":{"blob":"AJ+Slg=="}}"#
    );
    let back: ConfigMap = codec::decode_as(json.as_bytes()).unwrap();
    assert_eq!(back, cm);

    let bad = br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"not base64!"}}"#;
    let error = capstan_proto::decode(bad).unwrap_err();
    assert!(error.has_path("data[k]"), "{error}");
}

#[test]
fn decode_as_checks_the_kind() {
    let error =
        codec::decode_as::<Secret>(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
            .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("expected v1 Secret, got v1 ConfigMap"),
        "{error}"
    );
}

/// A realistic manifest of every served kind, with status, round-trips
/// exactly through YAML and protobuf (a `null` field reads as absent).
#[test]
fn every_kind_with_spec_and_status_round_trips_exactly() {
    let text = include_str!("data/all-kinds.yaml");
    let objects = capstan_proto::decode(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut kinds: Vec<_> = objects.iter().map(|o| o.info().kind).collect();
    kinds.sort_unstable();
    let mut served: Vec<_> = KINDS.iter().map(|k| k.kind).collect();
    served.sort_unstable();
    assert_eq!(
        kinds, served,
        "the sample should hold one object of every kind"
    );

    let originals: Vec<Value> = serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| {
            let mut v = serde::Deserialize::deserialize(d).unwrap();
            strip_nulls(&mut v);
            v
        })
        .collect();
    for (object, original) in objects.iter().zip(&originals) {
        let kind = object.info().kind;
        let yaml = object.to_yaml().unwrap();
        let written = yaml_value(yaml.as_bytes());
        let mut differences = Vec::new();
        diff(&written, original, String::new(), &mut differences);
        assert!(differences.is_empty(), "{kind}: {differences:#?}\n{yaml}");
        let back = Object::decode(object.info(), &object.encode_to_vec()).unwrap();
        assert_eq!(&back, object, "{kind}");
    }
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Paths where `a` and `b` differ.
fn diff(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (l, r) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                diff(l, r, format!("{path}.{key}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                diff(l, r, format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: wrote {a}, read {b}")),
        _ => {}
    }
}

#[test]
fn objects_deserialize_with_checks() {
    let objects: Vec<Object> =
        serde_json::from_str(r#"[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}]"#)
            .unwrap();
    assert_eq!(objects[0].name(), "a");
    let err = serde_json::from_str::<Object>(
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"nme":"a"}}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("metadata.nme: unknown field"),
        "{err}"
    );
}

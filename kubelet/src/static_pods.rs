//! Static pods: manifests (YAML or JSON Pods) in `staticPodPath`, run as
//! pods of this node under the name `<name>-<nodeName>` and mirrored into
//! the API as mirror pods (annotations `kubernetes.io/config.mirror`,
//! `kubernetes.io/config.hash`, `kubernetes.io/config.source=file`,
//! ownerReference to the Node). The folder is re-read every second: a
//! changed manifest replaces its mirror pod, a removed one deletes it, and
//! a mirror pod deleted through the API is created again.
//!
//! Unlike Kubernetes, the pod runs through its mirror pod (the pod
//! manager's watch picks it up), so static pods need the apiserver to be
//! reachable to start.

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use capstan_client::{Api, Client, DeleteParams, ListParams};
use capstan_proto::api::core::v1::{Node, Pod};
use capstan_proto::api::meta::v1::OwnerReference;

/// The annotation marking a mirror pod (its value: the manifest hash).
pub const MIRROR: &str = "kubernetes.io/config.mirror";
/// The manifest's hash.
pub const HASH: &str = "kubernetes.io/config.hash";
/// Where the pod came from.
pub const SOURCE: &str = "kubernetes.io/config.source";

/// How often the folder is read.
const PERIOD: Duration = Duration::from_secs(1);

/// A manifest turned into the pod to mirror.
#[derive(Debug)]
pub struct StaticPod {
    /// The mirror pod to create.
    pub pod: Pod,
    /// Its hash.
    pub hash: String,
}

/// Reads one manifest; the error names the file.
pub fn read_manifest(path: &Path, node_name: &str) -> Result<StaticPod, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut pod: Pod = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("{}: not a Pod: {e}", path.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    node_name.hash(&mut hasher);
    path.hash(&mut hasher);
    let hash = format!("{:016x}", hasher.finish());
    let meta = pod.metadata.get_or_insert_with(Default::default);
    if meta.name.is_empty() {
        return Err(format!("{}: metadata.name is empty", path.display()));
    }
    meta.name = format!("{}-{node_name}", meta.name);
    if meta.namespace.is_empty() {
        meta.namespace = "default".into();
    }
    meta.uid.clear();
    meta.resource_version.clear();
    meta.annotations.insert(MIRROR.into(), hash.clone());
    meta.annotations.insert(HASH.into(), hash.clone());
    meta.annotations.insert(SOURCE.into(), "file".into());
    pod.spec.get_or_insert_with(Default::default).node_name = node_name.to_owned();
    pod.status = None;
    Ok(StaticPod { pod, hash })
}

fn manifests(dir: &Path, node_name: &str) -> BTreeMap<(String, String), StaticPod> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !matches!(ext, "yaml" | "yml" | "json") {
            continue;
        }
        match read_manifest(&path, node_name) {
            Ok(s) => {
                let m = s.pod.metadata.clone().unwrap_or_default();
                out.insert((m.namespace, m.name), s);
            }
            Err(e) => tracing::warn!("static pod manifest {e}"),
        }
    }
    out
}

/// Keeps the mirror pods in line with the folder, forever.
pub async fn run(client: Client, dir: PathBuf, node_name: String) {
    let nodes: Api<Node> = Api::all(client.clone());
    let all: Api<Pod> = Api::all(client.clone());
    let mut last_error = None;
    loop {
        // Each distinct failure is logged once.
        match sync(&client, &nodes, &all, &dir, &node_name).await {
            Ok(()) => last_error = None,
            Err(e) => {
                let e = e.to_string();
                if last_error.as_ref() != Some(&e) {
                    tracing::warn!("static pods from {}: {e}", dir.display());
                    last_error = Some(e);
                }
            }
        }
        tokio::time::sleep(PERIOD).await;
    }
}

async fn sync(
    client: &Client,
    nodes: &Api<Node>,
    all: &Api<Pod>,
    dir: &Path,
    node_name: &str,
) -> anyhow::Result<()> {
    let wanted = manifests(dir, node_name);
    let existing = all
        .list_all(&ListParams::default().fields(&format!("spec.nodeName={node_name}")))
        .await?
        .items;
    let mut mirrors: BTreeMap<(String, String), Pod> = BTreeMap::new();
    for p in existing {
        let m = p.metadata.clone().unwrap_or_default();
        if m.annotations.contains_key(MIRROR) {
            mirrors.insert((m.namespace, m.name), p);
        }
    }
    // Removed or changed manifests: delete the mirror (the pod worker
    // terminates it gracefully and finishes the deletion).
    for (key, mirror) in &mirrors {
        let m = mirror.metadata.clone().unwrap_or_default();
        let current = wanted.get(key).map(|s| s.hash.as_str());
        if current != m.annotations.get(MIRROR).map(String::as_str)
            && m.deletion_timestamp.is_none()
        {
            let api: Api<Pod> = Api::namespaced(client.clone(), &key.0);
            api.delete(&key.1, &DeleteParams::default()).await?;
        }
    }
    let missing: Vec<_> = wanted
        .iter()
        .filter(|(k, _)| !mirrors.contains_key(*k))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let node = nodes.get(node_name).await?;
    let node_uid = node.metadata.map(|m| m.uid).unwrap_or_default();
    for ((namespace, _), s) in missing {
        let mut pod = s.pod.clone();
        pod.metadata
            .get_or_insert_with(Default::default)
            .owner_references = vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node_name.to_owned(),
            uid: node_uid.clone(),
            controller: Some(true),
            ..Default::default()
        }];
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        match api.create(&pod).await {
            Ok(_) => {}
            Err(e) if e.reason() == "AlreadyExists" => {}
            Err(e) => anyhow::bail!(
                "creating mirror pod {namespace}/{}: {e}",
                pod.metadata.unwrap_or_default().name
            ),
        }
    }
    Ok(())
}

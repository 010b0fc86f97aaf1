//! The API's semantics against one in-process replica with real mutual TLS:
//! create/get/list/update/update-status/patch/delete/delete-collection and
//! watch, validation errors, namespaces, selectors, pagination.
//!
//! The multi-process behaviour (three replicas, kills, RBAC across
//! identities, listener refusals) is tested in `tests/tests/apiserver.rs`.

use std::sync::Arc;
use std::time::Duration;

use capstan_apiserver::Config;
use capstan_pki::TlsPaths;
use capstan_proto::Resource;
use capstan_proto::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec, PodStatus};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{
    CreateRequest, DeleteCollectionRequest, DeleteRequest, EventType, GetRequest, ListRequest,
    PatchRequest, PatchType, Preconditions, ResourceRef, UpdateRequest, WatchEvent, WatchRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

struct Server {
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    client: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Server {
    async fn start() -> Server {
        Self::start_with("").await
    }

    /// `raft_extra`: more `raft:` settings, e.g. `historyRevisions: 5, `.
    async fn start_with(raft_extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        capstan_pki::bootstrap::init(
            &pki,
            &capstan_pki::bootstrap::InitSpec {
                replicas: vec![1],
                ..Default::default()
            },
        )
        .unwrap();
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (client_port, peer_port) = (port(), port());
        let path = dir.path().join("apiserver.yaml");
        std::fs::write(
            &path,
            format!(
                "id: 1\ndataDir: data\nclientAddress: 127.0.0.1:{client_port}\npeerAddress: 127.0.0.1:{peer_port}\n\
                 members: [{{ id: 1, clientAddress: \"127.0.0.1:{client_port}\", peerAddress: \"127.0.0.1:{peer_port}\" }}]\n\
                 auditLog: audit.jsonl\n\
                 tls: {{ caFile: pki/ca.crt, certFile: pki/apiserver.crt, keyFile: pki/apiserver.key, peerCertFile: pki/peer-1.crt, peerKeyFile: pki/peer-1.key }}\n\
                 raft: {{ {raft_extra}heartbeatMillis: 50, electionTimeoutMillis: [150, 300] }}\n"
            ),
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(capstan_apiserver::run(config, async {
            let _ = stopped.await;
        }));
        let tls = TlsPaths::in_dir(&pki, "admin")
            .load()
            .unwrap()
            .client_config()
            .unwrap();
        let client = Client::connect(&format!("127.0.0.1:{client_port}"), tls);
        let server = Server {
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
            client,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let mut c = self.client.clone();
        for _ in 0..300 {
            if c.get::<Namespace>("", "default").await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server not ready in 15 s");
    }

    fn audit_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("audit.jsonl")).unwrap_or_default()
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("server stops within 20 s")
            .unwrap()
            .unwrap();
    }
}

#[derive(Clone)]
struct Client {
    inner: ResourcesClient<Channel>,
}

fn rref<R: Resource>() -> Option<ResourceRef> {
    Some(ResourceRef {
        group: R::INFO.group.into(),
        version: R::INFO.version.into(),
        resource: R::INFO.plural.into(),
    })
}

fn decode<R: Resource>(bytes: &[u8]) -> R {
    R::decode(bytes).unwrap()
}

fn reason(status: &Status) -> String {
    capstan_proto::rpc::api_status(status)
        .map(|s| s.reason)
        .unwrap_or_default()
}

impl Client {
    fn connect(addr: &str, tls: Arc<rustls::ClientConfig>) -> Client {
        Client {
            inner: ResourcesClient::new(capstan_pki::net::channel(addr, tls).unwrap()),
        }
    }

    async fn create<R: Resource>(&mut self, ns: &str, obj: &R) -> Result<R, Status> {
        let r = self
            .inner
            .create(CreateRequest {
                resource: rref::<R>(),
                namespace: ns.into(),
                object: obj.encode_to_vec(),
                dry_run: false,
            })
            .await?;
        Ok(decode(&r.into_inner().object))
    }

    async fn get<R: Resource>(&mut self, ns: &str, name: &str) -> Result<R, Status> {
        let r = self
            .inner
            .get(GetRequest {
                resource: rref::<R>(),
                namespace: ns.into(),
                name: name.into(),
                allow_stale: false,
            })
            .await?;
        Ok(decode(&r.into_inner().object))
    }

    async fn update<R: Resource>(&mut self, obj: &R) -> Result<R, Status> {
        let r = self
            .inner
            .update(UpdateRequest {
                resource: rref::<R>(),
                namespace: obj.metadata().unwrap().namespace.clone(),
                object: obj.encode_to_vec(),
                dry_run: false,
            })
            .await?;
        Ok(decode(&r.into_inner().object))
    }

    async fn update_status<R: Resource>(&mut self, obj: &R) -> Result<R, Status> {
        let r = self
            .inner
            .update_status(UpdateRequest {
                resource: rref::<R>(),
                namespace: obj.metadata().unwrap().namespace.clone(),
                object: obj.encode_to_vec(),
                dry_run: false,
            })
            .await?;
        Ok(decode(&r.into_inner().object))
    }

    async fn list<R: Resource>(
        &mut self,
        ns: &str,
        labels: &str,
        fields: &str,
        limit: i64,
        cont: &str,
    ) -> Result<(Vec<R>, String, String), Status> {
        let r = self
            .inner
            .list(ListRequest {
                resource: rref::<R>(),
                namespace: ns.into(),
                label_selector: labels.into(),
                field_selector: fields.into(),
                limit,
                r#continue: cont.into(),
                allow_stale: false,
            })
            .await?
            .into_inner();
        Ok((
            r.items.iter().map(|b| decode(b)).collect(),
            r.resource_version,
            r.r#continue,
        ))
    }

    async fn delete<R: Resource>(
        &mut self,
        ns: &str,
        name: &str,
        grace: Option<i64>,
        pre: Option<Preconditions>,
    ) -> Result<(R, bool), Status> {
        let r = self
            .inner
            .delete(DeleteRequest {
                resource: rref::<R>(),
                namespace: ns.into(),
                name: name.into(),
                grace_period_seconds: grace,
                preconditions: pre,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok((decode(&r.object), r.removed))
    }
}

fn meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: name.into(),
        ..Default::default()
    })
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(name),
        data: [("k".to_owned(), value.to_owned())].into(),
        ..Default::default()
    }
}

fn pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            node_name: node.into(),
            containers: vec![Container {
                name: "web".into(),
                image: "nginx:1.27".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_update_conflict_and_metadata() {
    let server = Server::start().await;
    let mut c = server.client.clone();

    let created = c.create("default", &config_map("a", "1")).await.unwrap();
    let m = created.metadata.as_ref().unwrap();
    assert_eq!(m.namespace, "default");
    assert_eq!(m.uid.len(), 36, "uid is set: {:?}", m.uid);
    assert!(m.creation_timestamp.is_some());
    let rv1: u64 = m.resource_version.parse().unwrap();
    assert!(rv1 > 0);

    let again = c
        .create("default", &config_map("a", "2"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert_eq!(reason(&again), "AlreadyExists");

    // Update with the current resourceVersion succeeds and bumps it.
    let mut next = created.clone();
    next.data.insert("k".into(), "2".into());
    let updated = c.update(&next).await.unwrap();
    let rv2: u64 = updated
        .metadata
        .as_ref()
        .unwrap()
        .resource_version
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    assert_eq!(updated.metadata.as_ref().unwrap().uid, m.uid, "uid is kept");

    // A stale resourceVersion is a Conflict and changes nothing.
    let mut stale = created.clone();
    stale.data.insert("k".into(), "stale".into());
    let e = c.update(&stale).await.unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    assert_eq!(reason(&e), "Conflict");
    let now: ConfigMap = c.get("default", "a").await.unwrap();
    assert_eq!(now.data["k"], "2");
    assert_eq!(
        now.metadata.as_ref().unwrap().resource_version,
        rv2.to_string()
    );

    // generateName.
    let gen_cm = ConfigMap {
        metadata: Some(ObjectMeta {
            generate_name: "gen-".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let g = c.create("default", &gen_cm).await.unwrap();
    let name = &g.metadata.as_ref().unwrap().name;
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Unknown namespace: NotFound, nothing written.
    let e = c
        .create("nowhere", &config_map("b", "1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("namespaces \"nowhere\" not found"),
        "{}",
        e.message()
    );

    // Invalid name: Invalid with the field path.
    let e = c
        .create("default", &config_map("Bad_Name", "1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let status = capstan_proto::rpc::api_status(&e).unwrap();
    assert_eq!(status.reason, "Invalid");
    assert!(
        status.causes.iter().any(|c| c.field == "metadata.name"),
        "{status:?}"
    );

    // Oversized object: refused, nothing written.
    let big = config_map("big", &"x".repeat(2 * 1024 * 1024));
    let e = c.create("default", &big).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(
        c.get::<ConfigMap>("default", "big")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Unknown resource and version.
    let e = c
        .inner
        .get(GetRequest {
            resource: Some(ResourceRef {
                group: "apps".into(),
                version: "v1".into(),
                resource: "widgets".into(),
            }),
            namespace: "default".into(),
            name: "x".into(),
            allow_stale: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("widgets"), "{}", e.message());

    // Mutations are audited.
    let audit = server.audit_log();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"verb\":\"create\"") && l.contains("\"code\":201")),
        "{audit}"
    );
    assert!(
        audit.lines().any(|l| l.contains("\"reason\":\"Conflict\"")),
        "{audit}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_generation_and_patch() {
    let server = Server::start().await;
    let mut c = server.client.clone();
    let p = c.create("default", &pod("web", "")).await.unwrap();
    assert_eq!(p.metadata.as_ref().unwrap().generation, Some(1));
    assert_eq!(p.status.as_ref().unwrap().phase, "Pending");

    // Replacing the pod with what was sent at create (defaults omitted, as
    // a manifest omits them) is a no-op: same resourceVersion, generation 1.
    let mut same = pod("web", "");
    same.metadata.as_mut().unwrap().resource_version.clear();
    same.metadata.as_mut().unwrap().namespace = "default".into();
    let unchanged = c.update(&same).await.unwrap();
    assert_eq!(
        unchanged.metadata.as_ref().unwrap().resource_version,
        p.metadata.as_ref().unwrap().resource_version,
        "an identical replacement writes nothing"
    );
    assert_eq!(unchanged.metadata.as_ref().unwrap().generation, Some(1));

    // Status written through update is ignored.
    let mut with_status = p.clone();
    with_status.status = Some(PodStatus {
        phase: "Running".into(),
        ..Default::default()
    });
    with_status
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .insert("a".into(), "b".into());
    let u = c.update(&with_status).await.unwrap();
    assert_eq!(u.status.as_ref().unwrap().phase, "Pending");
    assert_eq!(u.metadata.as_ref().unwrap().labels["a"], "b");
    assert_eq!(
        u.metadata.as_ref().unwrap().generation,
        Some(1),
        "no spec change"
    );

    // Spec written through update-status is ignored; status is applied.
    let mut s = u.clone();
    s.status = Some(PodStatus {
        phase: "Running".into(),
        ..Default::default()
    });
    s.spec.as_mut().unwrap().containers[0].image = "nginx:2".into();
    let s = c.update_status(&s).await.unwrap();
    assert_eq!(s.status.as_ref().unwrap().phase, "Running");
    assert_eq!(s.spec.as_ref().unwrap().containers[0].image, "nginx:1.27");

    // A merge patch of the spec bumps the generation.
    let patched = c
        .inner
        .patch(PatchRequest {
            resource: rref::<Pod>(),
            namespace: "default".into(),
            name: "web".into(),
            patch_type: PatchType::Merge.into(),
            patch:
                br#"{"metadata":{"labels":{"tier":"front"}},"spec":{"activeDeadlineSeconds":60}}"#
                    .to_vec(),
            status: false,
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    let patched: Pod = decode(&patched.object);
    assert_eq!(patched.metadata.as_ref().unwrap().labels["tier"], "front");
    assert_eq!(patched.metadata.as_ref().unwrap().labels["a"], "b");
    assert_eq!(patched.metadata.as_ref().unwrap().generation, Some(2));
    assert_eq!(patched.status.as_ref().unwrap().phase, "Running");

    // A patch with an unknown field is refused with its path.
    let e = c
        .inner
        .patch(PatchRequest {
            resource: rref::<Pod>(),
            namespace: "default".into(),
            name: "web".into(),
            patch_type: PatchType::Merge.into(),
            patch: br#"{"spec":{"containers":[{"name":"web","imagee":"x"}]}}"#.to_vec(),
            status: false,
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("spec.containers[0].imagee"),
        "{}",
        e.message()
    );

    // JSON patch.
    let j = c
        .inner
        .patch(PatchRequest {
            resource: rref::<Pod>(),
            namespace: "default".into(),
            name: "web".into(),
            patch_type: PatchType::Json.into(),
            patch: br#"[{"op":"remove","path":"/metadata/labels/a"}]"#.to_vec(),
            status: false,
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    let j: Pod = decode(&j.object);
    assert!(!j.metadata.as_ref().unwrap().labels.contains_key("a"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_finalizers_grace_and_preconditions() {
    let server = Server::start().await;
    let mut c = server.client.clone();

    // Finalizers hold the object with a deletionTimestamp until removed.
    let mut cm = config_map("held", "1");
    cm.metadata.as_mut().unwrap().finalizers = vec!["example.com/hold".into()];
    let cm = c.create("default", &cm).await.unwrap();
    let wrong = Preconditions {
        uid: "not-the-uid".into(),
        resource_version: String::new(),
    };
    let e = c
        .delete::<ConfigMap>("default", "held", None, Some(wrong))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "Conflict");
    let (marked, removed) = c
        .delete::<ConfigMap>("default", "held", None, None)
        .await
        .unwrap();
    assert!(!removed);
    assert!(
        marked
            .metadata
            .as_ref()
            .unwrap()
            .deletion_timestamp
            .is_some()
    );
    let mut release: ConfigMap = c.get("default", "held").await.unwrap();
    assert_eq!(
        release.metadata.as_ref().unwrap().uid,
        cm.metadata.as_ref().unwrap().uid
    );
    release.metadata.as_mut().unwrap().finalizers.clear();
    c.update(&release).await.unwrap();
    assert_eq!(
        c.get::<ConfigMap>("default", "held")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // A pod bound to a node gets a grace period; an unbound one goes at once.
    c.create("default", &pod("bound", "w1")).await.unwrap();
    c.create("default", &pod("unbound", "")).await.unwrap();
    let (p, removed) = c
        .delete::<Pod>("default", "bound", None, None)
        .await
        .unwrap();
    assert!(!removed);
    assert_eq!(
        p.metadata.as_ref().unwrap().deletion_grace_period_seconds,
        Some(30)
    );
    let (_, removed) = c
        .delete::<Pod>("default", "bound", Some(0), None)
        .await
        .unwrap();
    assert!(removed, "grace 0 removes it");
    let (_, removed) = c
        .delete::<Pod>("default", "unbound", None, None)
        .await
        .unwrap();
    assert!(removed);
    let e = c
        .delete::<Pod>("default", "unbound", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Delete-collection by label.
    for (name, tier) in [("x1", "a"), ("x2", "a"), ("x3", "b")] {
        let mut cm = config_map(name, "v");
        cm.metadata
            .as_mut()
            .unwrap()
            .labels
            .insert("tier".into(), tier.into());
        c.create("default", &cm).await.unwrap();
    }
    let gone = c
        .inner
        .delete_collection(DeleteCollectionRequest {
            resource: rref::<ConfigMap>(),
            namespace: "default".into(),
            label_selector: "tier=a".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.items.len(), 2);
    let (left, _, _) = c
        .list::<ConfigMap>("default", "tier", "", 0, "")
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].metadata.as_ref().unwrap().name, "x3");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_selectors_pagination_and_errors() {
    let server = Server::start().await;
    let mut c = server.client.clone();
    c.create(
        "",
        &Namespace {
            metadata: meta("other"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for i in 0..25 {
        let mut cm = config_map(&format!("cm-{i:02}"), "v");
        let parity = if i % 2 == 0 { "even" } else { "odd" };
        cm.metadata
            .as_mut()
            .unwrap()
            .labels
            .insert("parity".into(), parity.into());
        c.create("default", &cm).await.unwrap();
    }
    c.create("other", &config_map("elsewhere", "v"))
        .await
        .unwrap();

    let (all, _, _) = c.list::<ConfigMap>("", "", "", 0, "").await.unwrap();
    assert_eq!(all.len(), 26, "all namespaces");
    let (even, _, _) = c
        .list::<ConfigMap>("default", "parity=even", "", 0, "")
        .await
        .unwrap();
    assert_eq!(even.len(), 13);
    let (set, _, _) = c
        .list::<ConfigMap>(
            "default",
            "parity in (odd),parity!=even",
            "metadata.name!=cm-01",
            0,
            "",
        )
        .await
        .unwrap();
    assert_eq!(set.len(), 11);

    // Pages of 10 over the 13 even ones: 10 + 3, no duplicates, no gaps.
    let (p1, rv1, cont) = c
        .list::<ConfigMap>("default", "parity=even", "", 10, "")
        .await
        .unwrap();
    assert_eq!(p1.len(), 10);
    assert!(!cont.is_empty());
    let (p2, rv2, cont2) = c
        .list::<ConfigMap>("default", "parity=even", "", 10, &cont)
        .await
        .unwrap();
    assert_eq!(p2.len(), 3);
    assert!(cont2.is_empty());
    assert_eq!(rv1, rv2, "every page is read at the first page's revision");
    let mut names: Vec<String> = p1
        .iter()
        .chain(&p2)
        .map(|c| c.metadata.as_ref().unwrap().name.clone())
        .collect();
    names.dedup();
    assert_eq!(names.len(), 13);

    let e = c
        .list::<ConfigMap>("default", "parity in (odd", "", 0, "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .list::<ConfigMap>("default", "", "data.k=v", 0, "")
        .await
        .unwrap_err();
    assert!(
        e.message().contains("field label not supported"),
        "{}",
        e.message()
    );
    let e = c
        .list::<ConfigMap>("default", "", "", 5, "garbage!")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    server.shutdown().await;
}

async fn next_event(stream: &mut tonic::Streaming<WatchEvent>) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("event within 10 s")
        .unwrap()
        .expect("stream open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_revision_with_filters_and_bookmarks() {
    let server = Server::start().await;
    let mut c = server.client.clone();
    let start = c
        .create("default", &config_map("before", "0"))
        .await
        .unwrap();
    let from = start.metadata.as_ref().unwrap().resource_version.clone();

    let mut labelled = config_map("w", "1");
    labelled
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .insert("app".into(), "web".into());
    let created = c.create("default", &labelled).await.unwrap();
    let mut changed = created.clone();
    changed.data.insert("k".into(), "2".into());
    let changed = c.update(&changed).await.unwrap();
    let mut unlabelled = changed.clone();
    unlabelled.metadata.as_mut().unwrap().labels.clear();
    c.update(&unlabelled).await.unwrap();
    c.create("default", &config_map("unrelated", "x"))
        .await
        .unwrap();

    let mut stream = c
        .inner
        .watch(WatchRequest {
            resource: rref::<ConfigMap>(),
            namespace: "default".into(),
            label_selector: "app=web".into(),
            resource_version: from,
            allow_bookmarks: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<(i32, String)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let e = next_event(&mut stream).await;
            v.push((e.r#type, e.resource_version));
        }
        v
    };
    assert_eq!(kinds[0].0, EventType::Added as i32);
    assert_eq!(kinds[1].0, EventType::Modified as i32);
    assert_eq!(
        kinds[2].0,
        EventType::Deleted as i32,
        "leaving the selector is DELETED"
    );
    assert_eq!(
        kinds[0].1,
        created.metadata.as_ref().unwrap().resource_version
    );
    // Nothing else matches; a bookmark reports progress past "unrelated".
    let e = next_event(&mut stream).await;
    assert_eq!(e.r#type, EventType::Bookmark as i32);
    let bookmark: u64 = e.resource_version.parse().unwrap();
    assert!(bookmark > kinds[2].1.parse::<u64>().unwrap());

    // From "0": the current state first, then changes.
    let mut from_now = c
        .inner
        .watch(WatchRequest {
            resource: rref::<ConfigMap>(),
            namespace: "default".into(),
            field_selector: "metadata.name=unrelated".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let e = next_event(&mut from_now).await;
    assert_eq!(e.r#type, EventType::Added as i32);
    let obj: ConfigMap = decode(&e.object);
    assert_eq!(obj.metadata.as_ref().unwrap().name, "unrelated");
    c.delete::<ConfigMap>("default", "unrelated", None, None)
        .await
        .unwrap();
    let e = next_event(&mut from_now).await;
    assert_eq!(e.r#type, EventType::Deleted as i32);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_revision_is_expired() {
    let server = Server::start_with("historyRevisions: 5, compactionIntervalMillis: 100, ").await;
    let mut c = server.client.clone();
    let first = c.create("default", &config_map("old", "0")).await.unwrap();
    let old_rv = first.metadata.as_ref().unwrap().resource_version.clone();
    for i in 0..20 {
        c.create("default", &config_map(&format!("n-{i}"), "v"))
            .await
            .unwrap();
    }
    // The leader compacts within a few intervals; then a watch from the old
    // revision must fail with Expired (the client relists).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let result = c
            .inner
            .watch(WatchRequest {
                resource: rref::<ConfigMap>(),
                namespace: "default".into(),
                resource_version: old_rv.clone(),
                ..Default::default()
            })
            .await;
        match result {
            Err(e) => {
                assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
                assert_eq!(reason(&e), "Expired");
                break;
            }
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => panic!("history was never compacted"),
        }
    }
    // A list and a watch from the list's revision still work.
    let (items, rv, _) = c.list::<ConfigMap>("default", "", "", 0, "").await.unwrap();
    assert_eq!(items.len(), 21);
    c.inner
        .watch(WatchRequest {
            resource: rref::<ConfigMap>(),
            namespace: "default".into(),
            resource_version: rv,
            ..Default::default()
        })
        .await
        .unwrap();
    server.shutdown().await;
}

//! The client against an in-process apiserver replica with real mutual TLS,
//! reached through a kubeconfig file: typed CRUD, error reasons, failover
//! past a dead replica, and the watcher (order, resume after the replica
//! restarts, relist when the resume point is compacted).

use std::path::PathBuf;
use std::time::Duration;

use capstan_apiserver::Config;
use capstan_client::watcher::{self, Event};
use capstan_client::{Api, Client, DeleteParams, ListParams, Patch};
use capstan_proto::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec, PodStatus};
use capstan_proto::api::meta::v1::ObjectMeta;
use futures::{Stream, StreamExt as _};

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

struct Server {
    dir: tempfile::TempDir,
    client_port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// `raft_extra`: more `raft:` settings, e.g. `historyRevisions: 5, `.
    async fn start(raft_extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        capstan_pki::bootstrap::init(
            &dir.path().join("pki"),
            &capstan_pki::bootstrap::InitSpec {
                replicas: vec![1],
                ..Default::default()
            },
        )
        .unwrap();
        let (client_port, peer_port) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("apiserver.yaml"),
            format!(
                "id: 1\ndataDir: data\nclientAddress: 127.0.0.1:{client_port}\npeerAddress: 127.0.0.1:{peer_port}\n\
                 members: [{{ id: 1, clientAddress: \"127.0.0.1:{client_port}\", peerAddress: \"127.0.0.1:{peer_port}\" }}]\n\
                 tls: {{ caFile: pki/ca.crt, certFile: pki/apiserver.crt, keyFile: pki/apiserver.key, peerCertFile: pki/peer-1.crt, peerKeyFile: pki/peer-1.key }}\n\
                 raft: {{ {raft_extra}heartbeatMillis: 50, electionTimeoutMillis: [150, 300] }}\n"
            ),
        )
        .unwrap();
        let mut server = Server {
            dir,
            client_port,
            stop: None,
            task: None,
        };
        server.launch().await;
        server
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Runs the replica on the existing data directory and waits until it serves.
    async fn launch(&mut self) {
        let config = Config::load(&self.dir.path().join("apiserver.yaml")).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(capstan_apiserver::run(config, async {
            let _ = stopped.await;
        })));
        let namespaces: Api<Namespace> = Api::all(self.client());
        let deadline = tokio::time::Instant::now() + WAIT;
        while namespaces.get("default").await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "server not ready in {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task.take().unwrap())
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }

    /// Writes a kubeconfig listing `servers` (in order) with the admin's
    /// certificate as files relative to the kubeconfig.
    fn kubeconfig(&self, servers: &[String]) -> PathBuf {
        let list: String = servers
            .iter()
            .map(|s| format!("    - https://{s}\n"))
            .collect();
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-{}.yaml", servers.len()));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://{first}\n    servers:\n{list}    certificate-authority: pki/ca.crt\n\
                 users:\n- name: admin\n  user:\n    client-certificate: pki/admin.crt\n    client-key: pki/admin.key\n\
                 contexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\n\
                 current-context: test\n",
                first = servers[0]
            ),
        )
        .unwrap();
        path
    }

    fn client(&self) -> Client {
        let path = self.kubeconfig(&[self.addr()]);
        Client::from_kubeconfig(Some(&path), None).unwrap()
    }
}

fn config_map(name: &str, value: &str, app: &str) -> ConfigMap {
    ConfigMap {
        metadata: Some(ObjectMeta {
            name: name.into(),
            labels: [("app".to_owned(), app.to_owned())].into(),
            ..Default::default()
        }),
        data: [("k".to_owned(), value.to_owned())].into(),
        ..Default::default()
    }
}

fn rv<K: capstan_proto::Resource>(obj: &K) -> String {
    obj.metadata().unwrap().resource_version.clone()
}

fn name<K: capstan_proto::Resource>(obj: &K) -> String {
    obj.metadata().unwrap().name.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_round_trip_and_error_reasons() {
    let mut server = Server::start("").await;
    let client = server.client();
    assert_eq!(client.default_namespace(), "default");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let created = cms.create(&config_map("a", "1", "x")).await.unwrap();
    assert!(!rv(&created).is_empty());
    assert_eq!(created.metadata.as_ref().unwrap().namespace, "default");
    assert_eq!(cms.get("a").await.unwrap(), created);

    let e = cms.create(&config_map("a", "1", "x")).await.unwrap_err();
    assert_eq!(e.reason(), "AlreadyExists", "{e}");

    let mut changed = created.clone();
    changed.data.insert("k".into(), "2".into());
    let updated = cms.update(&changed).await.unwrap();
    assert_eq!(updated.data["k"], "2");
    assert_ne!(rv(&updated), rv(&created));

    // The stale resourceVersion is refused.
    let e = cms.update(&changed).await.unwrap_err();
    assert!(e.is_conflict(), "{e}");

    let patched = cms
        .patch("a", &Patch::Merge(serde_json::json!({"data": {"k": "3"}})))
        .await
        .unwrap();
    assert_eq!(patched.data["k"], "3");
    let patched = cms
        .patch(
            "a",
            &Patch::Json(serde_json::json!([{"op": "replace", "path": "/data/k", "value": "4"}])),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["k"], "4");

    let e = cms.get("missing").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("missing"), "{e}");
    assert_eq!(cms.get_opt("missing").await.unwrap(), None);

    let e = cms
        .create(&config_map("Bad_Name", "1", "x"))
        .await
        .unwrap_err();
    match &e {
        capstan_client::Error::Invalid { causes, .. } => {
            assert!(causes.iter().any(|c| c.field == "metadata.name"), "{e:?}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }

    // Selectors and paging.
    for i in 0..4 {
        cms.create(&config_map(&format!("y-{i}"), "v", "y"))
            .await
            .unwrap();
    }
    let ys = cms
        .list(&ListParams::default().labels("app=y"))
        .await
        .unwrap();
    assert_eq!(ys.items.len(), 4);
    let page = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(!page.continue_token.is_empty());
    let all = cms.list_all(&ListParams::default().limit(2)).await.unwrap();
    let mut names: Vec<String> = all.items.iter().map(name).collect();
    names.sort();
    assert_eq!(names, ["a", "y-0", "y-1", "y-2", "y-3"]);
    assert!(all.continue_token.is_empty());
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=y-2"))
        .await
        .unwrap();
    assert_eq!(by_name.items.iter().map(name).collect::<Vec<_>>(), ["y-2"]);

    // All-namespaces scope and a cluster-wide kind.
    let everywhere: Api<ConfigMap> = Api::all(client.clone());
    assert!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
            >= 5
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert_eq!(name(&namespaces.get("default").await.unwrap()), "default");

    // Status subresource.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = pods
        .create(&Pod {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: "nginx:1.27".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        })
        .await
        .unwrap();
    let mut with_status = pod.clone();
    with_status.status = Some(PodStatus {
        phase: "Running".into(),
        ..Default::default()
    });
    let with_status = pods.update_status(&with_status).await.unwrap();
    assert_eq!(with_status.status.as_ref().unwrap().phase, "Running");
    assert_eq!(
        pods.get("web").await.unwrap().status.unwrap().phase,
        "Running"
    );

    // Deletes.
    let deleted = cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(deleted.removed);
    assert_eq!(name(&deleted.object), "a");
    assert!(cms.get("a").await.unwrap_err().is_not_found());
    let gone = cms
        .delete_collection(
            &ListParams::default().labels("app=y"),
            &DeleteParams::default(),
        )
        .await
        .unwrap();
    assert_eq!(gone.len(), 4);
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_past_a_dead_replica() {
    let mut server = Server::start("").await;
    let dead = format!("127.0.0.1:{}", free_port()); // nothing listens: refused
    let path = server.kubeconfig(&[dead.clone(), server.addr()]);
    let client = Client::from_kubeconfig(Some(&path), None).unwrap();
    assert_eq!(client.servers(), [dead.as_str(), server.addr().as_str()]);
    assert_eq!(client.preferred_server(), dead);

    // A write whose first replica refuses the connection moves on: nothing
    // was sent there.
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = cms.create(&config_map("f", "1", "x")).await.unwrap();
    assert_eq!(name(&created), "f");
    assert_eq!(client.preferred_server(), server.addr());
    assert_eq!(cms.get("f").await.unwrap(), created);

    // Only dead replicas: a bounded Unavailable naming them.
    let only_dead = server.kubeconfig(std::slice::from_ref(&dead));
    let client = Client::from_kubeconfig(Some(&only_dead), None)
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let started = std::time::Instant::now();
    let e = cms.get("f").await.unwrap_err();
    assert_eq!(e.reason(), "Unavailable", "{e}");
    assert!(e.to_string().contains(&dead), "{e}");
    assert!(started.elapsed() < Duration::from_secs(6));

    server.stop().await;
}

/// The next successful watcher event (errors while a replica is down are
/// skipped), within [`WAIT`].
async fn next_event<S>(stream: &mut S) -> Event<ConfigMap>
where
    S: Stream<Item = Result<Event<ConfigMap>, capstan_client::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(event))) => return event,
            Ok(Some(Err(e))) => tracing::debug!("watcher error: {e}"),
            Ok(None) => panic!("the watcher ended"),
            Err(_) => panic!("no watcher event within {WAIT:?}"),
        }
    }
}

fn applied(event: Event<ConfigMap>) -> ConfigMap {
    match event {
        Event::Applied(obj) => obj,
        other => panic!("expected Applied, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_changes_in_order_and_resumes_after_restart() {
    let mut server = Server::start("").await;
    let client = server.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&config_map("before", "0", "x")).await.unwrap();

    let (store, writer) = watcher::store::<ConfigMap>();
    let mut events = Box::pin(watcher::reflector(
        writer,
        watcher::watcher(cms.clone(), ListParams::default()),
    ));
    match next_event(&mut events).await {
        Event::Restarted(objs) => {
            assert_eq!(objs.iter().map(name).collect::<Vec<_>>(), ["before"])
        }
        other => panic!("expected Restarted, got {other:?}"),
    }
    assert!(store.is_ready());

    let created = cms.create(&config_map("w", "1", "x")).await.unwrap();
    let mut changed = created.clone();
    changed.data.insert("k".into(), "2".into());
    let updated = cms.update(&changed).await.unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();

    assert_eq!(applied(next_event(&mut events).await), created);
    assert_eq!(applied(next_event(&mut events).await), updated);
    match next_event(&mut events).await {
        Event::Deleted(obj) => assert_eq!(name(&obj), "w"),
        other => panic!("expected Deleted, got {other:?}"),
    }
    assert!(store.get("default", "w").is_none());
    assert!(store.get("default", "before").is_some());

    // The replica restarts: the stream ends, the watcher resumes from the
    // last resourceVersion it saw — no relist, nothing repeated.
    server.stop().await;
    server.launch().await;
    let after = cms.create(&config_map("after", "1", "x")).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(
        applied(event),
        after,
        "resumed without a relist or a repeat"
    );
    assert_eq!(
        store.get("default", "after").map(|o| rv(&*o)),
        Some(rv(&after))
    );
    assert_eq!(store.len(), 2);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_when_its_resume_point_is_compacted() {
    let mut server = Server::start("historyRevisions: 5, compactionIntervalMillis: 100, ").await;
    let client = server.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&config_map("old", "0", "x")).await.unwrap();

    let (store, writer) = watcher::store::<ConfigMap>();
    let mut events = Box::pin(watcher::reflector(
        writer,
        watcher::watcher(cms.clone(), ListParams::default()),
    ));
    let first = match next_event(&mut events).await {
        Event::Restarted(objs) => objs,
        other => panic!("expected Restarted, got {other:?}"),
    };
    assert_eq!(first.len(), 1);
    let resume_from = rv(&first[0]);

    // While the watcher is not polled, its replica restarts (ending the
    // stream) and history moves past its resume point and is compacted.
    server.stop().await;
    server.launch().await;
    cms.delete("old", &DeleteParams::default()).await.unwrap();
    for i in 0..20 {
        cms.create(&config_map(&format!("n-{i}"), "v", "x"))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match cms.watch(&ListParams::default(), &resume_from).await {
            Err(e) if e.is_expired() => break,
            _ => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "history was never compacted"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // The watcher finds its resume point gone and relists: the store is
    // replaced with the current state (the deleted object is gone).
    match next_event(&mut events).await {
        Event::Restarted(objs) => assert_eq!(objs.len(), 20),
        other => panic!("expected Restarted after Expired, got {other:?}"),
    }
    assert_eq!(store.len(), 20);
    assert!(store.get("default", "old").is_none());

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_acquire_release_and_takeover_after_expiry() {
    use capstan_client::leader::{LeaderElector, LeaseConfig};
    use capstan_proto::api::coordination::v1::Lease;

    let mut server = Server::start("").await;
    let leases: Api<Lease> = Api::namespaced(server.client(), "kube-system");
    let config = LeaseConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(100),
    };
    let candidate =
        |id: &str| LeaderElector::new(leases.clone(), "controller", id, config).unwrap();
    let holder = || async {
        leases
            .get("controller")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .unwrap_or_default()
    };

    let mut a = candidate("a").spawn();
    assert!(a.wait_for(true, WAIT).await, "a leads");
    let mut b = candidate("b").spawn();
    assert!(
        !b.wait_for(true, Duration::from_millis(1500)).await,
        "b must not lead while a renews"
    );
    assert!(a.is_leader());
    assert_eq!(holder().await, "a");

    // A release hands over without waiting for expiry.
    let released = tokio::time::Instant::now();
    a.release().await;
    assert!(b.wait_for(true, WAIT).await, "b takes over");
    assert!(released.elapsed() < Duration::from_secs(2));
    let lease = leases.get("controller").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("b"));
    assert_eq!(lease.lease_transitions, Some(1));

    // A crashed holder (no release): another candidate waits out the
    // lease duration, then takes over.
    b.abandon();
    let crashed = tokio::time::Instant::now();
    let mut c = candidate("c").spawn();
    assert!(c.wait_for(true, WAIT).await, "c takes over after expiry");
    assert!(
        crashed.elapsed() >= Duration::from_millis(1900),
        "took over after {:?}, before the lease expired",
        crashed.elapsed()
    );
    assert_eq!(holder().await, "c");
    c.release().await;
    assert_eq!(holder().await, "");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_each_changed_object() {
    use capstan_client::runtime::{Action, RateLimit, WorkQueue, enqueue, run_workers};
    use capstan_client::watcher::ObjectKey;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let mut server = Server::start("").await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    cms.create(&config_map("one", "1", "x")).await.unwrap();

    let queue = WorkQueue::<ObjectKey>::new(RateLimit::default());
    let (store, writer) = watcher::store::<ConfigMap>();
    let feed = tokio::spawn(enqueue(
        watcher::reflector(writer, watcher::watcher(cms.clone(), ListParams::default())),
        queue.clone(),
    ));
    // The reconcile reads the store and records what it saw per key.
    let seen: Arc<Mutex<HashMap<String, Option<String>>>> = Arc::default();
    let workers = tokio::spawn(run_workers(queue.clone(), 2, {
        let (store, seen) = (store.clone(), seen.clone());
        move |key: ObjectKey| {
            let (store, seen) = (store.clone(), seen.clone());
            async move {
                let value = store
                    .get(&key.namespace, &key.name)
                    .map(|cm| cm.data["k"].clone());
                seen.lock().unwrap().insert(key.name, value);
                Ok::<_, capstan_client::Error>(Action::Done)
            }
        }
    }));

    let wait_for = |name: &'static str, value: Option<&'static str>| {
        let seen = seen.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while seen.lock().unwrap().get(name).cloned() != Some(value.map(String::from)) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} never reconciled as {value:?}: {:?}",
                    seen.lock().unwrap()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for("one", Some("1")).await; // from the initial list
    cms.create(&config_map("two", "2", "x")).await.unwrap();
    wait_for("two", Some("2")).await;
    cms.patch(
        "one",
        &Patch::Merge(serde_json::json!({"data": {"k": "9"}})),
    )
    .await
    .unwrap();
    wait_for("one", Some("9")).await;
    cms.delete("two", &DeleteParams::default()).await.unwrap();
    wait_for("two", None).await;

    queue.shutdown();
    tokio::time::timeout(WAIT, workers).await.unwrap().unwrap();
    feed.abort();
    server.stop().await;
}

//! What workloads and services need from the API, against an in-process
//! replica: the `Pods` service — batched bindings (authorization per
//! binding, Conflict on a bound pod or a wrong uid, the PodScheduled
//! condition) and logs relayed from a kubelet (a fake kubelet on loopback
//! that checks the apiserver authenticates with its peer certificate) —
//! and Service ClusterIP / node port allocation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_apiserver::testing::TestServer;
use capstan_pki::bootstrap::PEER_GROUP;
use capstan_pki::{CertificateAuthority, TlsPaths, Usage};
use capstan_proto::Resource;
use capstan_proto::api::core::v1::{
    Container, DaemonEndpoint, Node, NodeAddress, NodeDaemonEndpoints, NodeStatus, Pod, PodSpec,
    Service, ServicePort, ServiceSpec,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::rpc::kubelet_server::{Kubelet, KubeletServer};
use capstan_proto::rpc::pods_client::PodsClient;
use capstan_proto::rpc::resources_client::ResourcesClient;
use capstan_proto::rpc::{
    BindRequest, Binding, CreateRequest, DeleteRequest, GetRequest, LogChunk, LogsRequest,
    ResourceRef, UpdateRequest,
};
use futures::StreamExt;
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

fn rref<R: Resource>() -> Option<ResourceRef> {
    Some(ResourceRef {
        group: R::INFO.group.into(),
        version: R::INFO.version.into(),
        resource: R::INFO.plural.into(),
    })
}

/// A channel to the server as the identity in `kubeconfig`'s certificate
/// files (`pki/<file>.crt`).
fn channel(server: &TestServer, file: &str) -> Channel {
    let tls = TlsPaths {
        ca: server.pki_dir().join("ca.crt"),
        cert: server.pki_dir().join(format!("{file}.crt")),
        key: server.pki_dir().join(format!("{file}.key")),
    }
    .load()
    .unwrap()
    .client_config()
    .unwrap();
    capstan_pki::net::channel(&server.address(), tls).unwrap()
}

async fn create<R: Resource>(c: &mut ResourcesClient<Channel>, ns: &str, obj: &R) -> R {
    let r = c
        .create(CreateRequest {
            resource: rref::<R>(),
            namespace: ns.into(),
            object: obj.encode_to_vec(),
            dry_run: false,
        })
        .await
        .unwrap();
    R::decode(r.into_inner().object.as_slice()).unwrap()
}

async fn get<R: Resource>(c: &mut ResourcesClient<Channel>, ns: &str, name: &str) -> R {
    let r = c
        .get(GetRequest {
            resource: rref::<R>(),
            namespace: ns.into(),
            name: name.into(),
            allow_stale: false,
        })
        .await
        .unwrap();
    R::decode(r.into_inner().object.as_slice()).unwrap()
}

fn pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
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

fn binding(name: &str, uid: &str, node: &str) -> Binding {
    Binding {
        namespace: "default".into(),
        name: name.into(),
        uid: uid.into(),
        node_name: node.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_batches_with_per_binding_outcomes() {
    let server = TestServer::start().await;
    server.admin_kubeconfig();
    server.kubeconfig("system:kube-scheduler", None);
    server.kubeconfig("alice", None);
    let mut admin = ResourcesClient::new(channel(&server, "user-capstan-admin"));
    let mut uids = Vec::new();
    for i in 0..5 {
        let p = create(&mut admin, "default", &pod(&format!("p{i}"), "")).await;
        uids.push(p.metadata.unwrap().uid);
    }
    create(&mut admin, "default", &pod("bound", "n0")).await;

    let mut scheduler = PodsClient::new(channel(&server, "user-system_kube-scheduler"));
    let resp = scheduler
        .bind(BindRequest {
            bindings: vec![
                binding("p0", &uids[0], "n1"),
                binding("p1", "", "n2"),
                binding("p2", "wrong-uid", "n1"),
                binding("bound", "", "n1"),
                binding("missing", "", "n1"),
                binding("p3", "", ""),
                binding("p4", &uids[4], "n2"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let reasons: Vec<String> = resp
        .results
        .iter()
        .map(|r| r.error.as_ref().map_or("ok".into(), |e| e.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            "ok", "ok", "Conflict", "Conflict", "NotFound", "Invalid", "ok"
        ]
    );
    assert!(
        resp.results[3]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("already assigned to node \"n0\""),
        "{:?}",
        resp.results[3]
    );
    let p0: Pod = get(&mut admin, "default", "p0").await;
    assert_eq!(p0.spec.as_ref().unwrap().node_name, "n1");
    assert_eq!(
        p0.metadata.as_ref().unwrap().resource_version,
        resp.results[0].resource_version
    );
    let cond = &p0.status.as_ref().unwrap().conditions;
    assert!(
        cond.iter()
            .any(|c| c.r#type == "PodScheduled" && c.status == "True"),
        "{cond:?}"
    );
    let p2: Pod = get(&mut admin, "default", "p2").await;
    assert_eq!(
        p2.spec.unwrap().node_name,
        "",
        "a failed binding writes nothing"
    );

    // Binding twice is a Conflict, not a move.
    let again = scheduler
        .bind(BindRequest {
            bindings: vec![binding("p0", "", "n2")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.results[0].error.as_ref().unwrap().reason, "Conflict");

    // Without create on pods/binding every binding is Forbidden.
    let mut alice = PodsClient::new(channel(&server, "user-alice"));
    let denied = alice
        .bind(BindRequest {
            bindings: vec![binding("p2", "", "n1")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        denied.results[0].error.as_ref().unwrap().reason,
        "Forbidden"
    );
    server.stop().await;
}

/// Who called the fake kubelet: user and groups, per call.
type Callers = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// A kubelet that serves a fixed log and records who called.
struct FakeKubelet {
    callers: Callers,
}

#[tonic::async_trait]
impl Kubelet for FakeKubelet {
    type ContainerLogsStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<LogChunk, Status>> + Send>>;

    async fn container_logs(
        &self,
        request: Request<LogsRequest>,
    ) -> Result<Response<Self::ContainerLogsStream>, Status> {
        let user = capstan_apiserver::auth::Authenticator::new()
            .authenticate(&request)
            .map_err(Status::unauthenticated)?;
        self.callers
            .lock()
            .unwrap()
            .push((user.name.clone(), user.groups.clone()));
        let r = request.into_inner();
        if r.container != "web" {
            return Err(Status::not_found(format!(
                "container {:?} not found",
                r.container
            )));
        }
        let chunks = vec![
            Ok(LogChunk {
                data: format!("hello from {}\n", r.name).into_bytes(),
            }),
            Ok(LogChunk {
                data: b"second line\n".to_vec(),
            }),
        ];
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_relayed_from_the_pods_kubelet() {
    let server = TestServer::start().await;
    server.admin_kubeconfig();
    server.kubeconfig("alice", None);
    // The fake kubelet serves with a node certificate from the cluster CA.
    let pki = server.pki_dir();
    CertificateAuthority::load(&pki)
        .unwrap()
        .issue(
            "system:node:n1",
            &["system:nodes"],
            &["127.0.0.1".to_owned()],
            Usage::ServerAndClient,
            Duration::from_secs(3600),
        )
        .unwrap()
        .save(&pki, "node-n1")
        .unwrap();
    let serving = TlsPaths::in_dir(&pki, "node-n1")
        .load()
        .unwrap()
        .server_config()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let callers: Callers = Arc::new(Mutex::new(Vec::new()));
    let kubelet = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KubeletServer::new(FakeKubelet {
                callers: Arc::clone(&callers),
            }))
            .serve_with_incoming(capstan_pki::net::tls_incoming(listener, serving)),
    );

    let mut admin = ResourcesClient::new(channel(&server, "user-capstan-admin"));
    let mut node = create(
        &mut admin,
        "",
        &Node {
            metadata: Some(ObjectMeta {
                name: "n1".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    node.status = Some(NodeStatus {
        addresses: vec![NodeAddress {
            r#type: "InternalIP".into(),
            address: "127.0.0.1".into(),
        }],
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: Some(i32::from(port)),
            }),
        }),
        ..Default::default()
    });
    admin
        .update_status(UpdateRequest {
            resource: rref::<Node>(),
            namespace: String::new(),
            object: node.encode_to_vec(),
            dry_run: false,
        })
        .await
        .unwrap();
    create(&mut admin, "default", &pod("web-1", "n1")).await;
    create(&mut admin, "default", &pod("pending", "")).await;

    let mut pods = PodsClient::new(channel(&server, "user-capstan-admin"));
    let logs = |name: &str, container: &str| LogsRequest {
        namespace: "default".into(),
        name: name.into(),
        container: container.into(),
        ..Default::default()
    };
    let mut stream = pods.logs(logs("web-1", "web")).await.unwrap().into_inner();
    let mut text = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("log chunk in time")
    {
        text.extend(chunk.unwrap().data);
    }
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "hello from web-1\nsecond line\n"
    );
    {
        let callers = callers.lock().unwrap();
        assert_eq!(callers.len(), 1);
        assert_eq!(callers[0].0, capstan_pki::bootstrap::peer_user(1));
        assert!(callers[0].1.iter().any(|g| g == PEER_GROUP), "{callers:?}");
    }

    let reason = |s: &Status| {
        capstan_proto::rpc::api_status(s)
            .map(|a| a.reason)
            .unwrap_or_default()
    };
    // The kubelet's NotFound comes back as NotFound, with its message.
    let err = pods.logs(logs("web-1", "nope")).await.unwrap_err();
    assert_eq!(reason(&err), "NotFound", "{err:?}");
    assert!(err.message().contains("\"nope\""), "{err:?}");
    // A pod not yet scheduled has no logs.
    let err = pods.logs(logs("pending", "web")).await.unwrap_err();
    assert_eq!(reason(&err), "BadRequest", "{err:?}");
    assert!(err.message().contains("not scheduled"), "{err:?}");
    let err = pods.logs(logs("absent", "web")).await.unwrap_err();
    assert_eq!(reason(&err), "NotFound", "{err:?}");
    // Without get on pods/log: Forbidden, and the kubelet is not called.
    let mut alice = PodsClient::new(channel(&server, "user-alice"));
    let err = alice.logs(logs("web-1", "web")).await.unwrap_err();
    assert_eq!(reason(&err), "Forbidden", "{err:?}");
    assert_eq!(callers.lock().unwrap().len(), 2);

    kubelet.abort();
    server.stop().await;
}

fn service(name: &str, kind: &str, cluster_ip: &str, node_port: Option<i32>) -> Service {
    Service {
        metadata: Some(ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        spec: Some(ServiceSpec {
            r#type: kind.into(),
            cluster_ip: cluster_ip.into(),
            selector: [("app".to_owned(), name.to_owned())].into(),
            ports: vec![ServicePort {
                port: Some(80),
                node_port,
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

async fn try_create(c: &mut ResourcesClient<Channel>, svc: &Service) -> Result<Service, Status> {
    let r = c
        .create(CreateRequest {
            resource: rref::<Service>(),
            namespace: "default".into(),
            object: svc.encode_to_vec(),
            dry_run: false,
        })
        .await?;
    Ok(Service::decode(r.into_inner().object.as_slice()).unwrap())
}

async fn try_update(c: &mut ResourcesClient<Channel>, svc: &Service) -> Result<Service, Status> {
    let r = c
        .update(UpdateRequest {
            resource: rref::<Service>(),
            namespace: "default".into(),
            object: svc.encode_to_vec(),
            dry_run: false,
        })
        .await?;
    Ok(Service::decode(r.into_inner().object.as_slice()).unwrap())
}

fn spec(svc: &Service) -> &ServiceSpec {
    svc.spec.as_ref().unwrap()
}

fn invalid_message(status: &Status) -> String {
    let api = capstan_proto::rpc::api_status(status).expect("an ApiStatus");
    assert_eq!(api.reason, "Invalid", "{status:?}");
    api.causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_cluster_ips_and_node_ports_held_until_deleted() {
    let server = TestServer::start().await;
    server.admin_kubeconfig();
    let mut c = ResourcesClient::new(channel(&server, "user-capstan-admin"));

    // ClusterIP: allocated from the default range, clusterIPs filled.
    let a = try_create(&mut c, &service("a", "ClusterIP", "", None))
        .await
        .unwrap();
    let ip: std::net::Ipv4Addr = spec(&a).cluster_ip.parse().unwrap();
    assert_eq!(ip.octets()[..2], [127, 96], "{ip}");
    assert_eq!(spec(&a).cluster_ips, vec![spec(&a).cluster_ip.clone()]);

    // NodePort: one allocated in 30000-32767, one given.
    let b = try_create(&mut c, &service("b", "NodePort", "", None))
        .await
        .unwrap();
    let b_port = spec(&b).ports[0].node_port.unwrap();
    assert!((30000..=32767).contains(&b_port), "{b_port}");
    let web = try_create(&mut c, &service("web", "NodePort", "", Some(30390)))
        .await
        .unwrap();
    assert_eq!(spec(&web).ports[0].node_port, Some(30390));

    // Taken values are refused, naming the field; nothing is stored.
    let err = try_create(&mut c, &service("c", "NodePort", "", Some(30390)))
        .await
        .unwrap_err();
    let message = invalid_message(&err);
    assert!(
        message.contains("spec.ports[0].nodePort")
            && message.contains("provided port is already allocated"),
        "{message}"
    );
    let err = try_create(
        &mut c,
        &service("d", "ClusterIP", &spec(&a).cluster_ip, None),
    )
    .await
    .unwrap_err();
    assert!(
        invalid_message(&err).contains("provided IP is already allocated"),
        "{err:?}"
    );
    let err = try_create(&mut c, &service("e", "ClusterIP", "10.0.0.1", None))
        .await
        .unwrap_err();
    assert!(
        invalid_message(&err).contains("not in the valid range"),
        "{err:?}"
    );
    let err = try_create(&mut c, &service("f", "NodePort", "", Some(8080)))
        .await
        .unwrap_err();
    assert!(
        invalid_message(&err).contains("not in the valid range"),
        "{err:?}"
    );
    let missing = c
        .get(GetRequest {
            resource: rref::<Service>(),
            namespace: "default".into(),
            name: "c".into(),
            allow_stale: false,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Headless and ExternalName hold nothing.
    let headless = try_create(&mut c, &service("h", "ClusterIP", "None", None))
        .await
        .unwrap();
    assert_eq!(spec(&headless).cluster_ip, "None");
    let mut external = service("x", "ExternalName", "", None);
    external.spec.as_mut().unwrap().external_name = "example.com".into();
    external.spec.as_mut().unwrap().ports.clear();
    let external = try_create(&mut c, &external).await.unwrap();
    assert_eq!(spec(&external).cluster_ip, "");

    // A replacement that leaves them out keeps the ClusterIP and node port.
    let mut replace = service("web", "NodePort", "", None);
    replace.metadata.as_mut().unwrap().resource_version =
        web.metadata.as_ref().unwrap().resource_version.clone();
    replace
        .spec
        .as_mut()
        .unwrap()
        .selector
        .insert("tier".into(), "front".into());
    let replaced = try_update(&mut c, &replace).await.unwrap();
    assert_eq!(spec(&replaced).cluster_ip, spec(&web).cluster_ip);
    assert_eq!(spec(&replaced).ports[0].node_port, Some(30390));

    // Turning it into a ClusterIP service releases the node port...
    let mut plain = replaced.clone();
    plain.spec.as_mut().unwrap().r#type = "ClusterIP".into();
    plain.spec.as_mut().unwrap().ports[0].node_port = None;
    plain.spec.as_mut().unwrap().external_traffic_policy.clear();
    try_update(&mut c, &plain).await.unwrap();
    let g = try_create(&mut c, &service("g", "NodePort", "", Some(30390)))
        .await
        .unwrap();
    assert_eq!(spec(&g).ports[0].node_port, Some(30390));

    // ...and deleting a service releases its ClusterIP.
    c.delete(DeleteRequest {
        resource: rref::<Service>(),
        namespace: "default".into(),
        name: "a".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let again = try_create(
        &mut c,
        &service("a2", "ClusterIP", &spec(&a).cluster_ip, None),
    )
    .await
    .unwrap();
    assert_eq!(spec(&again).cluster_ip, spec(&a).cluster_ip);

    // Many at once get distinct addresses.
    let mut ips = std::collections::BTreeSet::new();
    let creates = (0..20).map(|i| {
        let mut c = c.clone();
        async move {
            try_create(&mut c, &service(&format!("many-{i}"), "NodePort", "", None))
                .await
                .unwrap()
        }
    });
    let mut ports = std::collections::BTreeSet::new();
    for svc in futures::future::join_all(creates).await {
        assert!(ips.insert(spec(&svc).cluster_ip.clone()));
        assert!(ports.insert(spec(&svc).ports[0].node_port.unwrap()));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_waits_for_its_finalizer() {
    use capstan_proto::api::core::v1::Namespace;
    let server = TestServer::start().await;
    server.admin_kubeconfig();
    let mut c = ResourcesClient::new(channel(&server, "user-capstan-admin"));
    let ns = Namespace {
        metadata: Some(ObjectMeta {
            name: "team-a".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = create(&mut c, "", &ns).await;
    assert_eq!(
        created.spec.as_ref().unwrap().finalizers,
        vec!["kubernetes".to_owned()]
    );
    c.delete(DeleteRequest {
        resource: rref::<Namespace>(),
        name: "team-a".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let marked: Namespace = get(&mut c, "", "team-a").await;
    assert!(
        marked
            .metadata
            .as_ref()
            .unwrap()
            .deletion_timestamp
            .is_some()
    );
    assert_eq!(marked.status.as_ref().unwrap().phase, "Terminating");
    // Nothing new may be created in it meanwhile.
    let err = c
        .create(CreateRequest {
            resource: rref::<Pod>(),
            namespace: "team-a".into(),
            object: pod("p", "").encode_to_vec(),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    // The namespace controller's last step: the finalizer goes, so does it.
    let mut finalized = marked.clone();
    finalized.spec.as_mut().unwrap().finalizers.clear();
    c.update(UpdateRequest {
        resource: rref::<Namespace>(),
        namespace: String::new(),
        object: finalized.encode_to_vec(),
        dry_run: false,
    })
    .await
    .unwrap();
    let gone = c
        .get(GetRequest {
            resource: rref::<Namespace>(),
            namespace: String::new(),
            name: "team-a".into(),
            allow_stale: false,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    server.stop().await;
}

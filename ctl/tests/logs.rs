//! `capctl logs` end to end: capctl → apiserver (in process) → a fake
//! kubelet on loopback serving mutual TLS with a node certificate from the
//! cluster CA. The fake echoes the request it received, so the test sees
//! that each flag (`-c`, `--tail`, `--limit-bytes`, `--previous`, `-f`)
//! reached the kubelet, and that `deployment/NAME` picks the running,
//! ready pod.

mod support;

use std::time::Duration;

use capstan_client::Api;
use capstan_pki::{CertificateAuthority, TlsPaths, Usage};
use capstan_proto::api::core::v1::{Node, Pod};
use capstan_proto::rpc::kubelet_server::{Kubelet, KubeletServer};
use capstan_proto::rpc::{LogChunk, LogsRequest};
use support::Ctl;
use tonic::{Request, Response, Status};

/// Answers every request with one line describing it, then a second line.
struct EchoKubelet;

#[tonic::async_trait]
impl Kubelet for EchoKubelet {
    type ContainerLogsStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<LogChunk, Status>> + Send>>;

    async fn container_logs(
        &self,
        request: Request<LogsRequest>,
    ) -> Result<Response<Self::ContainerLogsStream>, Status> {
        let r = request.into_inner();
        if r.container == "gone" {
            return Err(Status::not_found("container \"gone\" has no log"));
        }
        let chunks = vec![
            Ok(LogChunk {
                data: format!(
                    "{}/{}/{} tail={} limit={} previous={} follow={}\n",
                    r.namespace,
                    r.name,
                    r.container,
                    r.tail_lines,
                    r.limit_bytes,
                    r.previous,
                    r.follow
                )
                .into_bytes(),
            }),
            Ok(LogChunk {
                data: b"second line\n".to_vec(),
            }),
        ];
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
}

/// Starts the fake kubelet for node `n1`; returns its port.
async fn start_kubelet(ctl: &Ctl) -> u16 {
    let pki = ctl.server.pki_dir();
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
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KubeletServer::new(EchoKubelet))
            .serve_with_incoming(capstan_pki::net::tls_incoming(listener, serving)),
    );
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_through_the_apiserver_from_the_kubelet() {
    let ctl = Ctl::start().await;
    let port = start_kubelet(&ctl).await;
    ctl.apply("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n")
        .await;
    let nodes: Api<Node> = Api::all(ctl.client());
    let mut node = nodes.get("n1").await.unwrap();
    node.status = Some(
        serde_json::from_value(serde_json::json!({
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "conditions": [{"type": "Ready", "status": "True"}]
        }))
        .unwrap(),
    );
    nodes.update_status(&node).await.unwrap();

    // Two pods of deployment web: one pending, one running and ready on n1.
    ctl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])
    .await;
    ctl.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web-a, labels: {app: web}}\nspec:\n  containers:\n  - {name: nginx, image: nginx}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: web-b, labels: {app: web}}\nspec:\n  nodeName: n1\n  containers:\n  - {name: nginx, image: nginx}\n  - {name: side, image: envoy}\n",
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(ctl.client(), "default");
    let mut b = pods.get("web-b").await.unwrap();
    b.status = Some(
        serde_json::from_value(serde_json::json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "nginx", "ready": true, "state": {"running": {}}}]
        }))
        .unwrap(),
    );
    pods.update_status(&b).await.unwrap();

    let out = ctl.run(&["logs", "web-b"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "default/web-b/nginx tail=0 limit=0 previous=false follow=false\nsecond line\n"
    );
    assert_eq!(
        out.stderr,
        "Defaulted container \"nginx\" out of: nginx, side\n"
    );
    assert_eq!(
        ctl.ok(&[
            "logs",
            "pod/web-b",
            "-c",
            "side",
            "--tail=5",
            "--limit-bytes=100",
            "--previous",
            "-f"
        ])
        .await,
        "default/web-b/side tail=5 limit=100 previous=true follow=true\nsecond line\n"
    );
    let out = ctl.run(&["logs", "deployment/web"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("default/web-b/nginx "),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("Found 2 pods, using pod/web-b"),
        "{}",
        out.stderr
    );

    // The kubelet's refusal comes back through the apiserver.
    let mut gone = pods.get("web-b").await.unwrap();
    gone.spec.as_mut().unwrap().containers[1].name = "gone".into();
    // Container names are immutable on a pod: use a new one.
    gone.metadata = Some(capstan_proto::api::meta::v1::ObjectMeta {
        name: "web-c".into(),
        ..Default::default()
    });
    gone.status = None;
    pods.create(&gone).await.unwrap();
    let stderr = ctl.fails(&["logs", "web-c", "-c", "gone"], 1).await;
    assert!(
        stderr.contains("Error from server (NotFound)") && stderr.contains("has no log"),
        "{stderr}"
    );
}

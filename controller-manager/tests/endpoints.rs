//! The endpoints controller against an in-process apiserver, as
//! system:kube-controller-manager: Endpoints follow the pods a Service
//! selects (ready and not-ready apart, named target ports resolved), and
//! go away with the Service.

use std::time::{Duration, Instant};

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, Client, DeleteParams};
use capstan_controller_manager::{Config, Controller};
use capstan_proto::api::core::v1::{
    Container, ContainerPort, Endpoints, Pod, PodCondition, PodSpec, PodStatus, Service,
    ServicePort, ServiceSpec,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::intstr::IntOrString;

const WAIT: Duration = Duration::from_secs(20);

fn pod(name: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            labels: [("app".to_owned(), "web".to_owned())].into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: "web".into(),
                ports: vec![ContainerPort {
                    name: "http".into(),
                    container_port: Some(8080),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

/// Sets the pod's IP and Ready condition, as a kubelet would.
async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let mut p = pods.get(name).await.unwrap();
    p.status = Some(PodStatus {
        phase: "Running".into(),
        pod_ip: ip.into(),
        conditions: vec![PodCondition {
            r#type: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    pods.update_status(&p).await.unwrap();
}

/// Waits until the Endpoints `web` have these ready and not-ready IPs.
async fn wait_endpoints(api: &Api<Endpoints>, ready: &[&str], not_ready: &[&str]) -> Endpoints {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(ep)) = api.get_opt("web").await {
            let ips = |f: fn(&capstan_proto::api::core::v1::EndpointSubset) -> Vec<String>| {
                let mut v: Vec<String> = ep.subsets.iter().flat_map(f).collect();
                v.sort();
                v
            };
            let r = ips(|s| s.addresses.iter().map(|a| a.ip.clone()).collect());
            let n = ips(|s| s.not_ready_addresses.iter().map(|a| a.ip.clone()).collect());
            if r == ready && n == not_ready {
                return ep;
            }
        }
        assert!(
            Instant::now() < deadline,
            "endpoints {ready:?}/{not_ready:?} within {WAIT:?}: {:?}",
            api.get_opt("web").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_the_selected_pods() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let server = TestServer::start().await;
    let config = Config::parse(&format!(
        "kubeconfig: {}\nleaderElection: {{ leaderElect: false }}\n",
        server
            .kubeconfig("system:kube-controller-manager", None)
            .display()
    ))
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let manager = tokio::spawn(capstan_controller_manager::run_controllers(
        config,
        vec![Controller {
            name: "endpoints",
            run: |ctx, stop| Box::pin(capstan_controller_manager::endpoints::run(ctx, stop)),
        }],
        async {
            let _ = stopped.await;
        },
    ));

    let admin = Client::from_kubeconfig(Some(&server.admin_kubeconfig()), None).unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let services: Api<Service> = Api::namespaced(admin.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(admin.clone(), "default");
    for name in ["a", "b", "c"] {
        pods.create(&pod(name)).await.unwrap();
    }
    set_status(&pods, "a", "127.50.1.2", true).await;
    set_status(&pods, "b", "127.50.1.3", false).await;
    // "c" has no IP yet: not listed at all.
    services
        .create(&Service {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                labels: [("tier".to_owned(), "front".to_owned())].into(),
                ..Default::default()
            }),
            spec: Some(ServiceSpec {
                selector: [("app".to_owned(), "web".to_owned())].into(),
                ports: vec![ServicePort {
                    name: "http".into(),
                    port: Some(80),
                    target_port: Some(IntOrString::String("http".into())),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        })
        .await
        .unwrap();

    let ep = wait_endpoints(&endpoints, &["127.50.1.2"], &["127.50.1.3"]).await;
    assert_eq!(
        ep.subsets[0].ports[0].port,
        Some(8080),
        "named port resolved"
    );
    assert_eq!(ep.subsets[0].ports[0].name, "http");
    assert_eq!(
        ep.metadata
            .as_ref()
            .unwrap()
            .labels
            .get("tier")
            .map(String::as_str),
        Some("front"),
        "the Service's labels"
    );

    // Readiness moves addresses; a deleted pod leaves.
    set_status(&pods, "b", "127.50.1.3", true).await;
    set_status(&pods, "c", "127.50.1.4", true).await;
    wait_endpoints(&endpoints, &["127.50.1.2", "127.50.1.3", "127.50.1.4"], &[]).await;
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    wait_endpoints(&endpoints, &["127.50.1.3", "127.50.1.4"], &[]).await;

    // A hand-deleted Endpoints comes back; the Service's deletion takes it.
    endpoints
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_endpoints(&endpoints, &["127.50.1.3", "127.50.1.4"], &[]).await;
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while endpoints.get_opt("web").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "endpoints deleted with the service"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let _ = stop.send(());
    tokio::time::timeout(WAIT, manager)
        .await
        .expect("controller-manager stops")
        .unwrap()
        .unwrap();
    server.stop().await;
}

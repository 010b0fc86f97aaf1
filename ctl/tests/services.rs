//! capctl's service commands against an in-process apiserver: `expose`
//! (the selector, ports and labels taken from the exposed object, the
//! cluster IP and node port allocated by the apiserver), and the `get`
//! tables for services and endpoints.

mod support;

use support::{Ctl, json};

const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web, tier: front}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: exprs}
spec:
  selector: {matchExpressions: [{key: app, operator: Exists}]}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {run: solo}}
spec: {containers: [{name: a, image: nginx}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses: [{ip: 127.0.1.2}, {ip: 127.0.1.3}, {ip: 127.0.1.4}, {ip: 127.0.1.5}]
  notReadyAddresses: [{ip: 127.0.1.9}]
  ports: [{port: 8080}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expose_and_service_tables() {
    let ctl = Ctl::start().await;
    ctl.apply(WORKLOADS).await;

    // --dry-run=client prints the service and stores nothing.
    let dry = ctl
        .ok(&[
            "expose",
            "deployment",
            "web",
            "--dry-run=client",
            "-o",
            "json",
        ])
        .await;
    let doc = json(&dry);
    assert_eq!(doc["kind"], "Service");
    assert_eq!(doc["spec"]["selector"], serde_json::json!({"app": "web"}));
    assert_eq!(doc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(ctl.ok(&["get", "svc", "-o", "name"]).await, "");

    // ClusterIP from the deployment: port introspected, selector and labels copied.
    assert_eq!(
        ctl.ok(&["expose", "deployment", "web"]).await,
        "service/web exposed\n"
    );
    let svc = json(&ctl.ok(&["get", "service", "web", "-o", "json"]).await);
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "web"}));
    assert_eq!(svc["metadata"]["labels"]["tier"], "front");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
    assert!(cluster_ip.parse::<std::net::IpAddr>().is_ok(), "{svc}");

    // NodePort with explicit flags: the apiserver allocates the node port.
    assert_eq!(
        ctl.ok(&[
            "expose",
            "deploy/web",
            "--name=web-np",
            "--port=80",
            "--target-port=8080",
            "--type=NodePort",
        ])
        .await,
        "service/web-np exposed\n"
    );
    let np = json(&ctl.ok(&["get", "svc", "web-np", "-o", "json"]).await);
    let node_port = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!(node_port > 0, "{np}");
    assert_eq!(np["spec"]["ports"][0]["targetPort"], 8080);

    // A pod: its labels select; without a container port, --port is needed.
    let stderr = ctl.fails(&["expose", "pod", "solo"], 1).await;
    assert!(
        stderr.contains("couldn't find port via --port flag or introspection"),
        "{stderr}"
    );
    assert_eq!(
        ctl.ok(&[
            "expose",
            "pod/solo",
            "--port=53",
            "--protocol=UDP",
            "--type=LoadBalancer"
        ])
        .await,
        "service/solo exposed\n"
    );
    let solo = json(&ctl.ok(&["get", "svc", "solo", "-o", "json"]).await);
    assert_eq!(solo["spec"]["selector"], serde_json::json!({"run": "solo"}));

    // matchExpressions are refused; a missing object is NotFound.
    let stderr = ctl.fails(&["expose", "rs", "exprs", "--port=80"], 1).await;
    assert!(
        stderr.contains("couldn't retrieve selectors via --selector flag or introspection"),
        "{stderr}"
    );
    let stderr = ctl.fails(&["expose", "deploy/nope", "--port=80"], 1).await;
    assert!(
        stderr.contains("Error from server (NotFound): deployments.apps \"nope\" not found"),
        "{stderr}"
    );
    ctl.fails(&["expose", "configmap/x"], 64).await;

    // The service table, kubectl's columns.
    let table = ctl.ok(&["get", "svc", "-o", "wide"]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row = |name: &str| rows.iter().find(|r| r[0] == name).unwrap().clone();
    let web = row("web");
    assert_eq!(
        web[1..5],
        ["ClusterIP", cluster_ip.as_str(), "<none>", "8080/TCP"]
    );
    assert_eq!(web[6], "app=web");
    let np_row = row("web-np");
    assert_eq!(np_row[1], "NodePort");
    assert_eq!(np_row[4], format!("80:{node_port}/TCP"));
    let solo_row = row("solo");
    assert_eq!(solo_row[1], "LoadBalancer");
    assert_eq!(solo_row[3], "<pending>");
    assert!(
        solo_row[4].starts_with("53:") && solo_row[4].ends_with("/UDP"),
        "{solo_row:?}"
    );

    // The endpoints table: ready addresses only, three then "+ N more...".
    let table = ctl.ok(&["get", "ep", "web"]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ENDPOINTS", "AGE"]);
    let line = lines.next().unwrap();
    assert!(
        line.contains("127.0.1.2:8080,127.0.1.3:8080,127.0.1.4:8080 + 1 more..."),
        "{table}"
    );
    assert!(!table.contains("127.0.1.9"), "{table}");

    // describe service: kubectl's layout, the endpoints per port, the events.
    let out = ctl.ok(&["describe", "svc", "web"]).await;
    for expected in [
        "Name:                     web\n",
        "Labels:                   app=web\n                          tier=front\n",
        "Selector:                 app=web\n",
        "Type:                     ClusterIP\n",
        &format!("IP:                       {cluster_ip}\n"),
        "Port:                     <unset>  8080/TCP\n",
        "TargetPort:               8080/TCP\n",
        "Endpoints:                127.0.1.2:8080,127.0.1.3:8080,127.0.1.4:8080 + 1 more...\n",
        "Session Affinity:         None\n",
        "Events:",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
    let out = ctl.ok(&["describe", "service/web-np"]).await;
    assert!(
        out.contains(&format!(
            "NodePort:                 <unset>  {node_port}/TCP\n"
        )),
        "{out}"
    );
    assert!(out.contains("Endpoints:                <none>\n"), "{out}");
}

//! Leader election between two controller-managers against an in-process
//! apiserver: only the Lease holder acts, and when it dies without
//! releasing the Lease the other takes over within 3 s (Lease 2 s).

mod support;

use std::time::{Duration, Instant};

use capstan_apiserver::testing::TestServer;
use capstan_client::{Api, DeleteParams};
use capstan_controller_manager::{Config, LeaderElection};
use capstan_proto::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use capstan_proto::api::coordination::v1::Lease;
use capstan_proto::api::core::v1::Pod;
use capstan_proto::api::meta::v1::{LabelSelector, ObjectMeta};
use support::*;

fn config(server: &TestServer, identity: &str) -> Config {
    let mut c = Config::new(cm_kubeconfig(server));
    c.identity = Some(identity.into());
    c.leader_election = LeaderElection {
        leader_elect: true,
        lease_duration_seconds: 2.0,
        renew_deadline_seconds: 1.5,
        retry_period_seconds: 0.5,
    };
    c
}

async fn holder(leases: &Api<Lease>) -> String {
    leases
        .get_opt("kube-controller-manager")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_the_standby_takes_over_within_3s() {
    let server = TestServer::start().await;
    let client = admin(&server);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    let a = start(config(&server, "cm-a"), only(&["replicaset"]));
    eventually("cm-a holds the Lease", || async {
        (holder(&leases).await == "cm-a").then_some(())
    })
    .await;
    let _b = start(config(&server, "cm-b"), only(&["replicaset"]));

    sets.create(&ReplicaSet {
        metadata: Some(ObjectMeta {
            name: "ha".into(),
            ..Default::default()
        }),
        spec: Some(ReplicaSetSpec {
            replicas: Some(2),
            selector: Some(LabelSelector {
                match_labels: [("app".to_owned(), "ha".to_owned())].into(),
                ..Default::default()
            }),
            template: Some(template("ha", "web:1")),
            ..Default::default()
        }),
        status: None,
    })
    .await
    .unwrap();
    eventually("2 pods", || async {
        (live_pods(&pods, "ha").await.len() == 2).then_some(())
    })
    .await;
    // Two seconds of both running: the standby neither steals the Lease
    // nor creates pods of its own.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(holder(&leases).await, "cm-a");
    assert_eq!(
        live_pods(&pods, "ha").await.len(),
        2,
        "only the leader acts"
    );

    // The leader dies without releasing the Lease.
    a.kill();
    let killed = Instant::now();
    eventually("cm-b holds the Lease", || async {
        (holder(&leases).await == "cm-b").then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    println!("takeover after {takeover:?}");
    assert!(
        takeover <= Duration::from_secs(3),
        "takeover took {takeover:?}"
    );

    // And acts: a deleted pod is replaced.
    let victim = name(&live_pods(&pods, "ha").await[0]);
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the new leader replaces the deleted pod", || async {
        let live = live_pods(&pods, "ha").await;
        (live.len() == 2 && live.iter().all(|p| name(p) != victim)).then_some(())
    })
    .await;
}

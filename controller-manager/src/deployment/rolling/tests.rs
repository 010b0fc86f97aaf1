//! Rollout arithmetic checked against Kubernetes's documented examples.

use super::*;
use capstan_proto::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use capstan_proto::api::meta::v1::ObjectMeta;
use capstan_proto::timestamp::Time;

fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                r#type: "RollingUpdate".into(),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rs(name: &str, created: i64, replicas: i32, available: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: Some(ObjectMeta {
            name: name.into(),
            creation_timestamp: Some(Time::from_unix_seconds(created)),
            ..Default::default()
        }),
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            available_replicas: Some(available),
            ..Default::default()
        }),
    }
}

#[test]
fn fenceposts_round_surge_up_and_unavailable_down() {
    let pct = |s: &str| IntOrString::String(s.into());
    assert_eq!(
        resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10).unwrap(),
        (3, 2)
    );
    assert_eq!(resolve_fenceposts(None, None, 4).unwrap(), (1, 1));
    assert_eq!(resolve_fenceposts(None, None, 1).unwrap(), (1, 0));
    assert_eq!(
        resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&pct("10%")), 5).unwrap(),
        (0, 1),
        "both zero: one may be unavailable"
    );
    assert!(
        resolve_fenceposts(Some(&pct("x%")), None, 5)
            .unwrap_err()
            .contains("maxSurge")
    );
    let d = deployment(3, IntOrString::Int(5), IntOrString::Int(7));
    assert_eq!(max_unavailable(&d), 3, "capped at replicas");
}

#[test]
fn new_set_grows_within_surge() {
    let d = deployment(4, IntOrString::Int(1), IntOrString::Int(1));
    let old = rs("old", 1, 4, 4);
    let new = rs("new", 2, 0, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
    let new1 = rs("new", 2, 1, 0);
    assert_eq!(
        new_rs_new_replicas(&d, &[&old, &new1], &new1),
        1,
        "at surge: wait"
    );
    let old3 = rs("old", 1, 3, 3);
    assert_eq!(new_rs_new_replicas(&d, &[&old3, &new1], &new1), 2);
    let new4 = rs("new", 2, 3, 3);
    assert_eq!(
        new_rs_new_replicas(&d, &[&rs("old", 1, 0, 0), &new4], &new4),
        4,
        "never past replicas"
    );
}

#[test]
fn old_sets_shrink_keeping_min_available_unhealthy_first() {
    let d = deployment(4, IntOrString::Int(1), IntOrString::Int(1));
    // Old 4/4 available, new 1 not yet available: may drop 5-3-1 = 1.
    let old = rs("old", 1, 4, 4);
    let new = rs("new", 2, 1, 0);
    assert_eq!(
        reconcile_old(&d, Some(&new), &[&old]),
        vec![("old".to_string(), 3)]
    );
    // Nothing more until the new pod is available.
    let old3 = rs("old", 1, 3, 3);
    let new2 = rs("new", 2, 2, 0);
    assert_eq!(reconcile_old(&d, Some(&new2), &[&old3]), vec![]);
    // Unhealthy old replicas go first, oldest set first.
    let sick = rs("sick", 0, 2, 0);
    let healthy = rs("healthy", 1, 3, 3);
    let new0 = rs("new", 2, 0, 0);
    let plan = reconcile_old(&d, Some(&new0), &[&healthy, &sick]);
    assert_eq!(
        plan,
        vec![("sick".to_string(), 0)],
        "availability kept at 3"
    );
}

#[test]
fn proportional_scaling_spreads_by_size() {
    // Kubernetes's example: 10 replicas, surge 3, mid-rollout 8 old + 5 new;
    // scaled to 15: allowed 15+4=19, add 6 over 13.
    let mut d = deployment(15, IntOrString::Int(3), IntOrString::Int(2));
    let mut old = rs("old", 1, 8, 8);
    let mut new = rs("new", 2, 5, 0);
    for s in [&mut old, &mut new] {
        s.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(MAX_REPLICAS.into(), "13".into());
    }
    if let Some(ru) = d
        .spec
        .as_mut()
        .unwrap()
        .strategy
        .as_mut()
        .unwrap()
        .rolling_update
        .as_mut()
    {
        ru.max_surge = Some(IntOrString::String("25%".into()));
    }
    let plan = proportional(&d, &[&old, &new], 13);
    let total: i32 = plan.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 19, "{plan:?}");
    let size = |n: &str| plan.iter().find(|(x, _)| x == n).unwrap().1;
    assert!(size("old") > 8 && size("new") > 5, "{plan:?}");
    assert!(
        size("old") > size("new"),
        "the larger set gets more: {plan:?}"
    );
    // Scaled to 0: everything to 0.
    let d0 = deployment(0, IntOrString::Int(1), IntOrString::Int(1));
    let plan = proportional(&d0, &[&old, &new], 13);
    assert_eq!(plan.iter().map(|(_, n)| n).sum::<i32>(), 0);
}

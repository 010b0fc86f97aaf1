//! `logs POD|pod/NAME|KIND/NAME [-c CONTAINER] [-f] [--tail N] [--previous]
//! [--limit-bytes N]`: a container's log, streamed by the apiserver from
//! the pod's kubelet ([`capstan_client::pods::logs`]). For a workload
//! (`deployment/web`, `rs/…`, `rc/…`, `sts/…`) one of its pods is chosen as
//! kubectl does (bound, running, ready first) and named on stderr. Without
//! `-c`, the container is the pod's `kubectl.kubernetes.io/default-container`,
//! else its first (named on stderr when there are several).

use std::io::Write as _;

use capstan_proto::api::core::v1::Pod;
use capstan_proto::rpc::LogsRequest;
use capstan_proto::{Object, Resource as _};
use clap::Args;
use futures::StreamExt as _;
use serde_json::Value;

use crate::dynamic::DynApi;
use crate::{Context, Error, table};

/// The annotation naming the container `logs` and `exec` default to.
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// `capctl logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `POD`, `pod/NAME`, or `deployment/NAME` (also rs, rc, sts).
    #[arg(value_name = "POD|KIND/NAME")]
    pub target: String,
    /// The container (default: the pod's default container, else its first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new output until the container ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// The log of the previous, terminated instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Stop after this many bytes (0: no limit).
    #[arg(long = "limit-bytes", default_value_t = 0)]
    pub limit_bytes: i64,
}

/// The names of a pod's containers and init containers (marked).
fn container_names(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let spec = pod.spec.clone().unwrap_or_default();
    (
        spec.containers.into_iter().map(|c| c.name).collect(),
        spec.init_containers.into_iter().map(|c| c.name).collect(),
    )
}

/// The container to read: `-c`, checked against the pod, else the
/// default one; the `Defaulted container` note when there was a choice.
pub fn choose_container(
    pod: &Pod,
    asked: Option<&str>,
) -> Result<(String, Option<String>), String> {
    let meta = pod.metadata.clone().unwrap_or_default();
    let (containers, inits) = container_names(pod);
    if let Some(c) = asked {
        if containers.iter().chain(&inits).any(|n| n == c) {
            return Ok((c.to_owned(), None));
        }
        return Err(format!(
            "container {c:?} is not valid for pod {:?}, choose one of: [{}]",
            meta.name,
            containers
                .iter()
                .chain(&inits)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if let Some(c) = meta.annotations.get(DEFAULT_CONTAINER)
        && containers.contains(c)
    {
        return Ok((c.clone(), None));
    }
    let Some(first) = containers.first() else {
        return Err(format!("pod {:?} has no containers", meta.name));
    };
    let note = (containers.len() + inits.len() > 1).then(|| {
        let mut all: Vec<String> = containers.clone();
        all.extend(inits.iter().map(|i| format!("{i} (init)")));
        format!("Defaulted container {first:?} out of: {}", all.join(", "))
    });
    Ok((first.clone(), note))
}

/// kubectl's order for picking the pod of a workload to log: bound before
/// unbound, Running before Unknown before Pending, ready before not, more
/// restarts first, then the oldest.
fn logging_rank(pod: &Value) -> (u8, u8, u8, i64, String) {
    let bound = table::at(pod, "spec.nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = match table::at(pod, "status.phase").and_then(Value::as_str) {
        Some("Running") => 0,
        Some("Unknown") => 1,
        Some("Pending") => 2,
        _ => 3,
    };
    let ready = table::items(pod, "status.conditions")
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let restarts: i64 = table::items(pod, "status.containerStatuses")
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let created = table::at(pod, "metadata.creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    (
        u8::from(!bound),
        phase,
        u8::from(!ready),
        -restarts,
        created,
    )
}

/// The pod `target` names, directly or through its workload's selector.
async fn find_pod(ctx: &Context, target: &str) -> Result<Pod, Error> {
    let (kind, name) = match target.split_once('/') {
        Some((k, n)) if !n.is_empty() => (crate::kind(k)?, n),
        Some(_) => return Err(Error::Usage(format!("{target:?}: no name after the '/'"))),
        None => (&Pod::INFO, target),
    };
    let not_found = |plural: &str| {
        Error::Api(capstan_client::Error::NotFound {
            message: format!("{plural} \"{name}\" not found"),
        })
    };
    let api = DynApi::new(&ctx.client, kind, &ctx.namespace);
    let obj = api.get(name).await?.ok_or_else(|| not_found(kind.plural))?;
    if let Object::Pod(pod) = obj {
        return Ok(pod);
    }
    let value = crate::get::to_value(&obj)?;
    let selector = match kind.kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController" => {
            table::selector(&value["spec"]["selector"])
        }
        _ => {
            return Err(Error::Usage(format!(
                "cannot get logs of {}: expected a pod, deployment, replicaset, replicationcontroller or statefulset",
                kind.plural
            )));
        }
    };
    if selector.is_empty() || selector == "<none>" {
        return Err(Error::Other(format!(
            "{} has no selector to find its pods by",
            crate::object_ref(&obj)
        )));
    }
    let pods = DynApi::new(&ctx.client, &Pod::INFO, &ctx.namespace)
        .list(&selector, "")
        .await?;
    let mut ranked = pods
        .into_iter()
        .map(|p| Ok((logging_rank(&crate::get::to_value(&p)?), p)))
        .collect::<Result<Vec<_>, Error>>()?;
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    let count = ranked.len();
    match ranked.into_iter().next() {
        Some((_, Object::Pod(pod))) => {
            if count > 1 {
                eprintln!(
                    "Found {count} pods, using pod/{}",
                    pod.metadata.as_ref().map_or("", |m| m.name.as_str())
                );
            }
            Ok(pod)
        }
        _ => Err(Error::Other(format!(
            "no pods found for {} (selector {selector})",
            crate::object_ref(&obj)
        ))),
    }
}

/// Checks the flags before connecting.
pub fn check(args: &LogsArgs) -> Result<(), Error> {
    if args.tail < -1 {
        return Err(Error::Usage(format!(
            "--tail={}: must be -1 (all) or a number of lines",
            args.tail
        )));
    }
    if args.limit_bytes < 0 {
        return Err(Error::Usage(format!(
            "--limit-bytes={}: must not be negative",
            args.limit_bytes
        )));
    }
    if args.target.is_empty() {
        return Err(Error::Usage("no pod given".into()));
    }
    Ok(())
}

/// Runs `capctl logs`.
pub async fn logs(ctx: &Context, args: &LogsArgs) -> Result<(), Error> {
    check(args)?;
    let pod = find_pod(ctx, &args.target).await?;
    let (container, note) =
        choose_container(&pod, args.container.as_deref()).map_err(Error::Other)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    let meta = pod.metadata.unwrap_or_default();
    let request = LogsRequest {
        namespace: meta.namespace,
        name: meta.name,
        container,
        follow: args.follow,
        previous: args.previous,
        tail_lines: args.tail.max(0),
        limit_bytes: args.limit_bytes,
    };
    let mut stream = capstan_client::pods::logs(&ctx.client, request).await?;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        out.write_all(&chunk)
            .and_then(|()| out.flush())
            .map_err(|e| Error::Other(format!("cannot write the log: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{Container, PodSpec};
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn pod(containers: &[&str], inits: &[&str], default: Option<&str>) -> Pod {
        let c = |n: &&str| Container {
            name: (*n).to_owned(),
            ..Default::default()
        };
        Pod {
            metadata: Some(ObjectMeta {
                name: "web-1".into(),
                annotations: default
                    .map(|d| [(DEFAULT_CONTAINER.to_owned(), d.to_owned())].into())
                    .unwrap_or_default(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: containers.iter().map(c).collect(),
                init_containers: inits.iter().map(c).collect(),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn chooses_containers_like_kubectl() {
        assert_eq!(
            choose_container(&pod(&["web"], &[], None), None),
            Ok(("web".into(), None))
        );
        let (c, note) = choose_container(&pod(&["web", "side"], &["init"], None), None).unwrap();
        assert_eq!(c, "web");
        assert_eq!(
            note.unwrap(),
            "Defaulted container \"web\" out of: web, side, init (init)"
        );
        assert_eq!(
            choose_container(&pod(&["web", "side"], &[], Some("side")), None),
            Ok(("side".into(), None))
        );
        assert_eq!(
            choose_container(&pod(&["web"], &["init"], None), Some("init")),
            Ok(("init".into(), None))
        );
        let err = choose_container(&pod(&["web"], &[], None), Some("db")).unwrap_err();
        assert!(
            err.contains("\"db\" is not valid for pod \"web-1\""),
            "{err}"
        );
    }
}

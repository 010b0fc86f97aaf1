//! `expose KIND NAME|KIND/NAME [--port P] [--target-port T] [--protocol
//! TCP|UDP|SCTP] [--type T] [--name N] [--selector k=v,…] [--labels
//! k=v,…]`, as kubectl builds the Service: the selector from the
//! exposed object (a Deployment's or ReplicaSet's `matchLabels` —
//! `matchExpressions` are refused —, a ReplicationController's selector,
//! a pod's labels, a service's selector), the ports from its containers
//! (or the service's ports) unless `--port` is given (several introspected
//! ports become `port-1`, `port-2`…, as kubectl names them), the target
//! port the port unless `--target-port`, the name the exposed object's,
//! the labels its labels. The apiserver allocates the cluster IP and
//! node ports. Prints `service/NAME exposed`.

use clap::Args;
use serde_json::{Map, Value, json};

use crate::create_deployment::{DryRun, print_result};
use crate::dynamic::DynApi;
use crate::table::{at, items};
use crate::{Context, Error};

/// `capctl expose`.
#[derive(Debug, Args)]
pub struct ExposeArgs {
    /// `KIND NAME` or `KIND/NAME` (deployment, replicaset, replicationcontroller, pod, service).
    #[arg(required = true, num_args = 1..=2, value_name = "KIND[/NAME]")]
    pub args: Vec<String>,
    /// The service's port (default: the exposed object's ports).
    #[arg(long)]
    pub port: Option<i32>,
    /// The port (number or container port name) traffic is sent to (default: the port).
    #[arg(long = "target-port", value_name = "PORT")]
    pub target_port: Option<String>,
    /// The ports' protocol: TCP, UDP or SCTP (default: the exposed ports', else TCP).
    #[arg(long)]
    pub protocol: Option<String>,
    /// The service's type: ClusterIP, NodePort, LoadBalancer or ExternalName.
    #[arg(long = "type", value_name = "TYPE")]
    pub service_type: Option<String>,
    /// The service's name (default: the exposed object's).
    #[arg(long)]
    pub name: Option<String>,
    /// The selector `k=v,…` (default: the exposed object's).
    #[arg(long)]
    pub selector: Option<String>,
    /// The service's labels `k=v,…` (default: the exposed object's).
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Build the service without storing it: client (print it) or server (have it validated).
    #[arg(long = "dry-run", value_enum, num_args = 0..=1, require_equals = true, default_value_t = DryRun::None, default_missing_value = "client")]
    pub dry_run: DryRun,
    /// Print the service: yaml, json or name.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

/// One service port before it is written out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortSpec {
    port: i32,
    protocol: Option<String>,
}

/// `k=v,k2=v2` as a JSON map, or a usage error naming the bad pair.
fn parse_map(flag: &str, text: &str) -> Result<Map<String, Value>, Error> {
    let mut map = Map::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::Usage(format!(
                "--{flag}: {pair:?} is not of the form key=value"
            )));
        };
        map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
    }
    Ok(map)
}

/// The selector of the exposed object (its JSON), as kubectl introspects it.
fn introspect_selector(kind: &str, obj: &Value) -> Result<Map<String, Value>, Error> {
    let refuse = |why: &str| {
        Error::Other(format!(
            "couldn't retrieve selectors via --selector flag or introspection: {why}"
        ))
    };
    let map = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
    let selector = match kind {
        "Deployment" | "ReplicaSet" => {
            let sel = at(obj, "spec.selector");
            if sel.is_some_and(|s| !items(s, "matchExpressions").is_empty()) {
                return Err(refuse(&format!(
                    "the {} has a selector with matchExpressions, which a service selector cannot express",
                    kind.to_ascii_lowercase()
                )));
            }
            map(sel.and_then(|s| s.get("matchLabels")))
        }
        "ReplicationController" | "Service" => map(at(obj, "spec.selector")),
        "Pod" => map(at(obj, "metadata.labels")),
        other => return Err(refuse(&format!("cannot expose a {other}"))),
    };
    if selector.is_empty() {
        return Err(refuse(&format!(
            "the {} has no labels to select by",
            kind.to_ascii_lowercase()
        )));
    }
    Ok(selector)
}

/// The ports of the exposed object: its containers' (a pod's, or the
/// template's), or a service's.
fn introspect_ports(kind: &str, obj: &Value) -> Vec<PortSpec> {
    let protocol = |p: &Value| p.get("protocol").and_then(Value::as_str).map(str::to_owned);
    if kind == "Service" {
        return items(obj, "spec.ports")
            .iter()
            .filter_map(|p| {
                Some(PortSpec {
                    port: i32::try_from(p.get("port")?.as_i64()?).ok()?,
                    protocol: protocol(p),
                })
            })
            .collect();
    }
    let containers = if kind == "Pod" {
        items(obj, "spec.containers")
    } else {
        items(obj, "spec.template.spec.containers")
    };
    containers
        .iter()
        .flat_map(|c| items(c, "ports"))
        .filter_map(|p| {
            Some(PortSpec {
                port: i32::try_from(p.get("containerPort")?.as_i64()?).ok()?,
                protocol: protocol(p),
            })
        })
        .collect()
}

/// `--target-port`: a number stays a number, anything else is a port name.
fn target_port(text: &str) -> Value {
    text.parse::<i64>()
        .map_or_else(|_| Value::String(text.to_owned()), Value::from)
}

/// The Service kubectl would build for `obj` (the exposed object's JSON).
fn build(args: &ExposeArgs, kind: &str, name: &str, obj: &Value) -> Result<Value, Error> {
    let selector = match &args.selector {
        Some(s) => parse_map("selector", s)?,
        None => introspect_selector(kind, obj)?,
    };
    let ports = match args.port {
        Some(port) if (1..=65535).contains(&port) => vec![PortSpec {
            port,
            protocol: None,
        }],
        Some(port) => {
            return Err(Error::Usage(format!(
                "--port={port}: must be between 1 and 65535"
            )));
        }
        None => introspect_ports(kind, obj),
    };
    if ports.is_empty() {
        return Err(Error::Other(
            "couldn't find port via --port flag or introspection".into(),
        ));
    }
    if let Some(p) = &args.protocol
        && !matches!(p.as_str(), "TCP" | "UDP" | "SCTP")
    {
        return Err(Error::Usage(format!(
            "--protocol={p}: expected TCP, UDP or SCTP"
        )));
    }
    let several = ports.len() > 1;
    let ports: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut port = Map::new();
            if several {
                port.insert("name".into(), format!("port-{}", i + 1).into());
            }
            let protocol = args
                .protocol
                .clone()
                .or_else(|| p.protocol.clone())
                .unwrap_or_else(|| "TCP".into());
            port.insert("protocol".into(), protocol.into());
            port.insert("port".into(), p.port.into());
            port.insert(
                "targetPort".into(),
                args.target_port
                    .as_deref()
                    .map_or_else(|| p.port.into(), target_port),
            );
            Value::Object(port)
        })
        .collect();
    let labels = match &args.labels {
        Some(l) => parse_map("labels", l)?,
        None => at(obj, "metadata.labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    };
    let mut spec = json!({ "ports": ports, "selector": selector });
    if let Some(t) = &args.service_type {
        if !matches!(
            t.as_str(),
            "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
        ) {
            return Err(Error::Usage(format!(
                "--type={t}: expected ClusterIP, NodePort, LoadBalancer or ExternalName"
            )));
        }
        spec["type"] = Value::String(t.clone());
    }
    let mut metadata = json!({ "name": args.name.clone().unwrap_or_else(|| name.to_owned()) });
    if !labels.is_empty() {
        metadata["labels"] = Value::Object(labels);
    }
    Ok(json!({ "apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec }))
}

/// `KIND NAME` or `KIND/NAME`, the kind resolved.
fn target(args: &[String]) -> Result<(&'static capstan_proto::KindInfo, String), Error> {
    let (kind, name) = match args {
        [one] => one.split_once('/').ok_or_else(|| {
            Error::Usage(format!(
                "{one:?}: expected KIND NAME or KIND/NAME (e.g. deployment/web)"
            ))
        })?,
        [kind, name] => (kind.as_str(), name.as_str()),
        _ => return Err(Error::Usage("expected KIND NAME or KIND/NAME".into())),
    };
    let info = crate::kind(kind)?;
    if !matches!(
        info.kind,
        "Deployment" | "ReplicaSet" | "ReplicationController" | "Pod" | "Service"
    ) {
        return Err(Error::Usage(format!(
            "cannot expose a {}: expected a deployment, replica set, replication controller, pod or service",
            info.kind
        )));
    }
    Ok((info, name.to_owned()))
}

/// Checks the arguments before connecting.
pub fn check(args: &ExposeArgs) -> Result<(), Error> {
    target(&args.args)?;
    if let Some(o) = args.output.as_deref()
        && !matches!(o, "yaml" | "json" | "name")
    {
        return Err(Error::Usage(format!(
            "unknown output format {o:?}: expected yaml, json or name"
        )));
    }
    Ok(())
}

/// Runs `capctl expose`.
pub async fn expose(ctx: &Context, args: &ExposeArgs) -> Result<(), Error> {
    let (info, name) = target(&args.args)?;
    let api = DynApi::new(&ctx.client, info, &ctx.namespace);
    let Some(exposed) = api.get(&name).await? else {
        let resource = if info.group.is_empty() {
            info.plural.to_owned()
        } else {
            format!("{}.{}", info.plural, info.group)
        };
        return Err(Error::Api(capstan_client::Error::NotFound {
            message: format!("{resource} \"{name}\" not found"),
        }));
    };
    let service = build(args, info.kind, &name, &crate::get::to_value(&exposed)?)?;
    let bytes = serde_json::to_vec(&service)
        .map_err(|e| Error::Other(format!("cannot encode the service: {e}")))?;
    let object = capstan_proto::decode_one(&bytes)
        .map_err(|e| Error::Other(format!("the service built is invalid: {e}")))?;
    if args.dry_run == DryRun::Client {
        return print_result(&object, args.output.as_deref(), "exposed", DryRun::Client);
    }
    let services = DynApi::new(&ctx.client, object.info(), &ctx.namespace);
    let stored = services
        .create_with(&object, args.dry_run == DryRun::Server)
        .await?;
    print_result(&stored, args.output.as_deref(), "exposed", args.dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ExposeArgs,
    }

    fn args(line: &[&str]) -> ExposeArgs {
        Cmd::parse_from(std::iter::once("expose").chain(line.iter().copied())).args
    }

    #[test]
    fn builds_from_a_deployment() {
        let deploy = json!({
            "metadata": {"labels": {"app": "web", "team": "a"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"ports": [{"containerPort": 8080}]}]}}}
        });
        let svc = build(&args(&["deploy/web"]), "Deployment", "web", &deploy).unwrap();
        assert_eq!(svc["metadata"]["name"], "web");
        assert_eq!(svc["metadata"]["labels"]["team"], "a");
        assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"protocol": "TCP", "port": 8080, "targetPort": 8080}])
        );
        let svc = build(
            &args(&[
                "deploy/web",
                "--port=80",
                "--target-port=http",
                "--type=NodePort",
                "--name=front",
                "--protocol=UDP",
                "-l",
                "svc=front",
                "--selector=app=web,track=stable",
            ]),
            "Deployment",
            "web",
            &deploy,
        )
        .unwrap();
        assert_eq!(svc["metadata"]["name"], "front");
        assert_eq!(svc["metadata"]["labels"], json!({"svc": "front"}));
        assert_eq!(
            svc["spec"]["selector"],
            json!({"app": "web", "track": "stable"})
        );
        assert_eq!(svc["spec"]["type"], "NodePort");
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"protocol": "UDP", "port": 80, "targetPort": "http"}])
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let exprs = json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}});
        let e = build(&args(&["rs/x", "--port=80"]), "ReplicaSet", "x", &exprs).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "error: couldn't retrieve selectors via --selector flag or introspection"
            ),
            "{e}"
        );
        let pod = json!({"metadata": {"labels": {"app": "p"}}, "spec": {"containers": [{}]}});
        let e = build(&args(&["pod/p"]), "Pod", "p", &pod).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: couldn't find port via --port flag or introspection"
        );
        let two = json!({"spec": {"selector": {"app": "r"}, "template": {"spec": {"containers": [
            {"ports": [{"containerPort": 80}]}, {"ports": [{"containerPort": 53, "protocol": "UDP"}]}]}}}});
        let svc = build(&args(&["rc/r"]), "ReplicationController", "r", &two).unwrap();
        assert_eq!(svc["spec"]["ports"][1]["name"], "port-2");
        assert_eq!(svc["spec"]["ports"][1]["protocol"], "UDP");
        assert!(target(&["configmap/x".to_owned()]).is_err());
    }
}

//! `create deployment NAME --image IMG… [--replicas N] [--port P] [--
//! COMMAND ARGS…]`, as kubectl builds it: labels and selector `app=NAME`,
//! one container per image named after the image's last path segment
//! without its tag or digest, the command (if any) in every container,
//! the port on the first. `--dry-run=client` builds the object without
//! sending it; `-o yaml|json|name` prints it.

use std::collections::BTreeMap;

use capstan_proto::Object;
use capstan_proto::api::apps::v1::{Deployment, DeploymentSpec};
use capstan_proto::api::core::v1::{Container, ContainerPort, PodSpec, PodTemplateSpec};
use capstan_proto::api::meta::v1::{LabelSelector, ObjectMeta};
use clap::{Args, ValueEnum};

use crate::dynamic::DynApi;
use crate::{Context, Error, object_ref};

/// `--dry-run` values (kubectl's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Send the object (the default).
    None,
    /// Build the object and print it; send nothing.
    Client,
    /// Have the server default and validate it; store nothing.
    Server,
}

/// `capctl create deployment`.
#[derive(Debug, Args)]
pub struct DeploymentArgs {
    /// The deployment's name.
    pub name: String,
    /// A container image; repeat for several containers.
    #[arg(long, required = true, value_name = "IMAGE")]
    pub image: Vec<String>,
    /// spec.replicas.
    #[arg(short = 'r', long, default_value_t = 1)]
    pub replicas: i32,
    /// The port the first container exposes.
    #[arg(long, value_name = "PORT")]
    pub port: Option<i32>,
    /// Build (client) or check (server) the object without storing it.
    #[arg(long = "dry-run", value_enum, num_args = 0..=1, require_equals = true, default_value_t = DryRun::None, default_missing_value = "client")]
    pub dry_run: DryRun,
    /// Print the object: yaml, json or name.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// The command every container runs (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// kubectl's container name for an image: the last path segment without
/// tag or digest, `_` and `.` made `-` (kubectl then adds a random
/// suffix; this does not, so the name is predictable).
pub fn container_name(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let last = last.split('@').next().unwrap_or(last);
    let last = last.split(':').next().unwrap_or(last);
    last.replace(['_', '.'], "-")
}

/// The deployment kubectl would build from these flags.
pub fn build(args: &DeploymentArgs) -> Result<Deployment, Error> {
    if args.replicas < 0 {
        return Err(Error::Usage(format!(
            "--replicas={}: must not be negative",
            args.replicas
        )));
    }
    if let Some(port) = args.port
        && !(1..=65535).contains(&port)
    {
        return Err(Error::Usage(format!(
            "--port={port}: must be between 1 and 65535"
        )));
    }
    let labels = BTreeMap::from([("app".to_owned(), args.name.clone())]);
    let mut containers: Vec<Container> = args
        .image
        .iter()
        .map(|image| Container {
            name: container_name(image),
            image: image.clone(),
            command: args.command.clone(),
            ..Default::default()
        })
        .collect();
    if let (Some(port), Some(first)) = (args.port, containers.first_mut()) {
        first.ports = vec![ContainerPort {
            container_port: Some(port),
            ..Default::default()
        }];
    }
    Ok(Deployment {
        metadata: Some(ObjectMeta {
            name: args.name.clone(),
            labels: labels.clone(),
            ..Default::default()
        }),
        spec: Some(DeploymentSpec {
            replicas: Some(args.replicas),
            selector: Some(LabelSelector {
                match_labels: labels.clone(),
                ..Default::default()
            }),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels,
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    })
}

/// Prints `obj` as `-o` asks, or `kind/name created` (with the dry-run
/// mark) without `-o`.
pub(crate) fn print_result(
    obj: &Object,
    output: Option<&str>,
    verb: &str,
    dry_run: DryRun,
) -> Result<(), Error> {
    match output {
        None => {
            let mark = match dry_run {
                DryRun::None => "",
                DryRun::Client => " (dry run)",
                DryRun::Server => " (server dry run)",
            };
            println!("{} {verb}{mark}", object_ref(obj));
        }
        Some("name") => println!("{}", object_ref(obj)),
        Some("yaml") => print!(
            "{}",
            serde_yaml_ng::to_string(&crate::get::to_value(obj)?)
                .map_err(|e| Error::Other(format!("cannot encode YAML: {e}")))?
        ),
        Some("json") => println!(
            "{}",
            serde_json::to_string_pretty(&crate::get::to_value(obj)?)
                .map_err(|e| Error::Other(format!("cannot encode JSON: {e}")))?
        ),
        Some(other) => {
            return Err(Error::Usage(format!(
                "unknown output format {other:?}: expected yaml, json or name"
            )));
        }
    }
    Ok(())
}

/// Runs `capctl create deployment`; `connect` is called only when
/// something is sent.
pub async fn create_deployment(
    args: &DeploymentArgs,
    connect: impl FnOnce() -> Result<Context, Error>,
) -> Result<(), Error> {
    if let Some(o) = args.output.as_deref()
        && !matches!(o, "yaml" | "json" | "name")
    {
        return Err(Error::Usage(format!(
            "unknown output format {o:?}: expected yaml, json or name"
        )));
    }
    let object: Object = build(args)?.into();
    if args.dry_run == DryRun::Client {
        let mut shown = object;
        shown.metadata_mut().namespace = String::new();
        return print_result(&shown, args.output.as_deref(), "created", DryRun::Client);
    }
    let ctx = connect()?;
    let api = DynApi::new(&ctx.client, object.info(), &ctx.namespace);
    let stored = api
        .create_with(&object, args.dry_run == DryRun::Server)
        .await?;
    print_result(&stored, args.output.as_deref(), "created", args.dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_like_kubectl() {
        assert_eq!(container_name("nginx"), "nginx");
        assert_eq!(container_name("nginx:1.25"), "nginx");
        assert_eq!(
            container_name("registry.local:5000/team/web_app:v2"),
            "web-app"
        );
        assert_eq!(container_name("busybox@sha256:abcd"), "busybox");
    }

    #[test]
    fn builds_kubectls_deployment() {
        let args = DeploymentArgs {
            name: "web".into(),
            image: vec!["nginx:1.25".into(), "busybox".into()],
            replicas: 3,
            port: Some(8080),
            dry_run: DryRun::Client,
            output: None,
            command: vec!["sleep".into(), "3600".into()],
        };
        let d = build(&args).unwrap();
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.selector.unwrap().match_labels["app"], "web");
        let template = spec.template.unwrap();
        assert_eq!(template.metadata.unwrap().labels["app"], "web");
        let containers = template.spec.unwrap().containers;
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0].name, "nginx");
        assert_eq!(containers[0].ports[0].container_port, Some(8080));
        assert!(containers[1].ports.is_empty());
        assert_eq!(containers[1].command, ["sleep", "3600"]);
    }
}

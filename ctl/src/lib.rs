//! `capctl`, Capstan's command-line client, generic over every served kind:
//! each resource command looks the kind up in [`capstan_proto::KINDS`]
//! (plural, singular, short name or `Kind`) and talks to the one generic
//! `Resources` service ([`dynamic::DynApi`]); no command has a case per kind
//! except the table columns in [`table`].
//!
//! # Commands built (this slice)
//!
//! - `apply -f FILE|DIR|-` (multi-document; every document is checked
//!   before anything is sent; creates, or replaces carrying the stored
//!   resourceVersion; prints `pod/nginx-demo created|configured|unchanged`);
//!   `create -f FILE|DIR|-`.
//! - `get KIND[/NAME] [NAME…]` (also `KIND,KIND…` and `all`) with
//!   `-o yaml|json|name|wide|jsonpath=…` (a subset: paths, `[N]`, `[*]`,
//!   `['key']`, `range`/`end`, quoted literals), `-l`,
//!   `--field-selector`, `-n`, `-A`, `--show-labels`, `-w` (one kind, or
//!   one object by name: list, then every change; resumes from the last
//!   revision, relists on `Expired`); the default table has
//!   NAME, AGE and kubectl's columns (pod STATUS computed as kubectl
//!   does; `-o wide` adds kubectl's wide columns) for pods, deployments, replica sets,
//!   replication controllers, stateful sets, services, namespaces, nodes,
//!   config maps, secrets and HPAs.
//! - `delete KIND NAME…`, `delete KIND -l SEL`, `delete KIND --all`,
//!   `delete -f FILE`, with `--grace-period`.
//! - `create namespace NAME`, `create configmap NAME --from-literal=k=v
//!   --from-file=[key=]path`, `create secret generic NAME` (same flags,
//!   `--type`), `create deployment NAME --image IMG… [--replicas N]
//!   [--port P] [--dry-run[=client|server]] [-o yaml|json|name] [--
//!   COMMAND…]`.
//! - Workloads: `set image KIND/NAME CONTAINER=IMAGE…` (deployments,
//!   replica sets, replication controllers, stateful sets, pods);
//!   `rollout status|history|undo|pause|resume|restart deployment/NAME`
//!   (status follows a watch with kubectl's progress lines, `--timeout`,
//!   `--watch=false`; history and undo read the ReplicaSets' revision
//!   annotations); `logs POD|deployment/NAME [-c C] [-f] [--tail N]
//!   [--previous] [--limit-bytes N]`.
//! - `label` / `annotate KIND NAME KEY=VALUE… KEY-…` (`--overwrite` to
//!   change a key), `scale KIND NAME --replicas=N` (kinds whose spec has
//!   `replicas`, per the schema) — JSON merge patches.
//! - `describe KIND [NAME…]|KIND/NAME|KIND -l SEL`: the object (metadata,
//!   then each top-level section as YAML) and its Events — one generic
//!   layout, except deployments (kubectl's: replicas, strategy, pod
//!   template, conditions, old and new ReplicaSets) and services
//!   (kubectl's: type, IPs, each port with its target, node port and
//!   endpoints, session affinity, traffic policy).
//! - `expose deployment|rs|rc|pod|service NAME` (also `KIND/NAME`) with
//!   `--port`, `--target-port`, `--protocol`, `--type`, `--name`,
//!   `--selector`, `--labels`, `--dry-run`, `-o`: a Service built as
//!   kubectl builds it ([`expose`]); `get svc` / `get ep` in kubectl's
//!   columns (EXTERNAL-IP, `80:30390/TCP`, `+ N more...`).
//! - `explain KIND[.field.path]`, from the API descriptors' comments.
//! - `api-resources`, `version`, `cluster members [-o json]`.
//! - `completion bash|zsh|fish`, written from the clap definition and the
//!   served kinds (object names are completed from the cluster).
//!
//! Usage errors exit 64, every other failure 1; API errors print
//! `Error from server (Reason): message` plus one line per field cause
//! the message does not already state; an invalid manifest prints every
//! field error with its path and nothing is sent. Once sending starts, a
//! document the server refuses is reported and the others still go
//! (kubectl's behaviour); the exit status is then 1.
//!
//! # Not built yet
//!
//! - JSONPath filters (`?()`), slices and `..`; `-o custom-columns`;
//!   `--sort-by`; `get -w --watch-only`.
//! - `label`/`annotate` with `-l`/`--all`; `scale --current-replicas`;
//!   `explain --recursive`; `delete --wait` (a pod bound to a node is only
//!   marked for deletion, as reported).
//! - `create` forms other than deployment, namespace, configmap and
//!   secret generic; `rollout` for stateful sets; kubectl's per-kind
//!   `describe` layouts other than deployments' and services'; `create
//!   service`; `expose --session-affinity|--external-ip|--cluster-ip`.
//! - `apply` replaces the whole object (no three-way merge with a
//!   last-applied annotation, no server-side apply), so fields set by
//!   others (e.g. `spec.replicas` by an autoscaler) are reset to the
//!   manifest's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod apply;
pub mod completion;
pub mod create;
pub mod create_deployment;
pub mod delete;
pub mod describe;
pub mod describe_deployment;
pub mod describe_service;
pub mod dynamic;
pub mod error;
pub mod explain;
pub mod expose;
pub mod get;
pub mod info;
pub mod jsonpath;
pub mod logs;
pub mod manifest;
pub mod patch;
pub mod pod_status;
pub mod rollout;
pub mod rollout_history;
pub mod rollout_status;
pub mod set;
pub mod table;
pub mod watch;

pub use error::{EXIT_USAGE, Error};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "capctl",
    version,
    about = "Drive a Capstan cluster: apply, get, delete and create objects of every kind."
)]
pub struct Cli {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.capstan/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: current-context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from manifests.
    Apply(apply::ApplyArgs),
    /// Create objects from manifests, or a deployment, namespace, config map or secret.
    Create(create::CreateArgs),
    /// Show objects.
    Get(get::GetArgs),
    /// Delete objects.
    Delete(delete::DeleteArgs),
    /// Show objects in detail, with their events.
    Describe(describe::DescribeArgs),
    /// Make a deployment, replica set, replication controller, pod or service reachable as a new Service.
    Expose(expose::ExposeArgs),
    /// Add, change (--overwrite) or remove (KEY-) labels.
    Label(patch::MetaArgs),
    /// Add, change (--overwrite) or remove (KEY-) annotations.
    Annotate(patch::MetaArgs),
    /// Set spec.replicas of deployments, replica sets, stateful sets, replication controllers.
    Scale(patch::ScaleArgs),
    /// Change a part of objects: `set image`.
    Set(set::SetArgs),
    /// Follow, list, undo, pause, resume or restart a deployment's rollouts.
    Rollout(rollout::RolloutArgs),
    /// Print a container's log (through the apiserver, from its kubelet).
    Logs(logs::LogsArgs),
    /// Describe a kind or a field, from the API's own field comments.
    Explain(explain::ExplainArgs),
    /// List the served kinds.
    ApiResources(info::ApiResourcesArgs),
    /// Print the client version (and the identity the server sees).
    Version,
    /// Print a shell completion script (bash, zsh, fish).
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: completion::Shell,
    },
    /// The apiserver replicas.
    Cluster {
        /// What to show.
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

/// `capctl cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Each replica: id, role, addresses, term, commit and applied index, health.
    Members(info::MembersArgs),
}

/// Output format flag shared by several commands.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Output format: yaml, json, name or wide (default: a table).
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

/// What a command needs from the global flags: a connected client and the
/// namespace to work in.
pub struct Context {
    /// The connection to the cluster.
    pub client: capstan_client::Client,
    /// `-n`, else the kubeconfig context's namespace.
    pub namespace: String,
    /// Whether `-n` was given explicitly.
    pub explicit_namespace: bool,
    /// The resolved kubeconfig context (to reach one replica directly).
    pub connection: capstan_client::kubeconfig::Connection,
}

impl Context {
    fn connect(cli: &Cli) -> Result<Self, Error> {
        let connection = capstan_client::Kubeconfig::load(cli.kubeconfig.as_deref())
            .and_then(|k| k.connection(cli.context.as_deref()))
            .map_err(|e| capstan_client::Error::Config(e.to_string()))?;
        let client = capstan_client::Client::from_connection(&connection)?;
        let namespace = cli
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        Ok(Self {
            client,
            namespace,
            explicit_namespace: cli.namespace.is_some(),
            connection,
        })
    }
}

/// The kind a CLI user means by `name`, or a usage error naming it.
pub fn kind(name: &str) -> Result<&'static capstan_proto::KindInfo, Error> {
    capstan_proto::kinds::lookup_cli(name).ok_or_else(|| {
        Error::Usage(format!(
            "the server doesn't have a resource type \"{name}\" (see `capctl api-resources`)"
        ))
    })
}

/// `pod/nginx` for core kinds, `deployment.apps/web` for others (kubectl's
/// form).
pub fn object_ref(obj: &capstan_proto::Object) -> String {
    let info = obj.info();
    let kind = info.kind.to_ascii_lowercase();
    if info.group.is_empty() {
        format!("{kind}/{}", obj.name())
    } else {
        format!("{kind}.{}/{}", info.group, obj.name())
    }
}

/// Checks the kinds named by `KIND[/NAME]` arguments before connecting, so
/// a typo is a usage error even without a cluster.
fn check_kinds(args: &[String]) -> Result<(), Error> {
    let Some(first) = args.first() else {
        return Ok(());
    };
    if first.contains('/') {
        for a in args {
            kind(a.split_once('/').map_or(a.as_str(), |(k, _)| k))?;
        }
    } else {
        get::kinds(first)?;
    }
    Ok(())
}

/// Runs one command line.
pub async fn run(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::ApiResources(args) => info::api_resources(args),
        Command::Version => info::version(&cli).await,
        Command::Explain(args) => explain::explain(args),
        Command::Completion { shell } => completion::completion(*shell),
        Command::Label(args) => {
            patch::label_or_annotate(&Context::connect(&cli)?, args, "labels").await
        }
        Command::Annotate(args) => {
            patch::label_or_annotate(&Context::connect(&cli)?, args, "annotations").await
        }
        Command::Scale(args) => patch::scale(&Context::connect(&cli)?, args).await,
        Command::Set(args) => set::set(&Context::connect(&cli)?, args).await,
        Command::Rollout(args) => {
            rollout::check(args)?;
            rollout::rollout(&Context::connect(&cli)?, args).await
        }
        Command::Logs(args) => {
            logs::check(args)?;
            logs::logs(&Context::connect(&cli)?, args).await
        }
        Command::Expose(args) => {
            expose::check(args)?;
            expose::expose(&Context::connect(&cli)?, args).await
        }
        Command::Apply(args) => apply::apply(&Context::connect(&cli)?, args).await,
        Command::Create(args) => create::create(&cli, args).await,
        Command::Get(args) => {
            check_kinds(&args.args)?;
            get::get(&Context::connect(&cli)?, args).await
        }
        Command::Describe(args) => {
            check_kinds(&args.args)?;
            describe::describe(&Context::connect(&cli)?, args).await
        }
        Command::Delete(args) => {
            check_kinds(&args.args)?;
            delete::delete(&Context::connect(&cli)?, args).await
        }
        Command::Cluster {
            command: ClusterCommand::Members(args),
        } => info::members(&Context::connect(&cli)?, args).await,
    }
}

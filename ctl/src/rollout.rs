//! `rollout status|history|undo|pause|resume|restart deployment/NAME`
//! (also `deployment NAME`): the command line, the target, and the three
//! commands that are one patch of the Deployment — pause and resume
//! (`spec.paused`), restart (the template annotation
//! `kubectl.kubernetes.io/restartedAt`, so the controller rolls every
//! pod). Status is in [`crate::rollout_status`], history and undo in
//! [`crate::rollout_history`].

use capstan_client::Api;
use capstan_client::api::Patch;
use capstan_proto::api::apps::v1::Deployment;
use clap::{ArgAction, Args, Subcommand};
use serde_json::json;

use crate::{Context, Error};

/// `capctl rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RolloutCommand,
}

/// The deployment a rollout command acts on.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// `deployment/NAME`, or `deployment NAME`.
    #[arg(required = true, num_args = 1..=2, value_name = "deployment/NAME")]
    pub args: Vec<String>,
}

/// `capctl rollout …`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Follow a rollout until it is complete (or has failed).
    Status {
        /// The deployment.
        #[command(flatten)]
        target: Target,
        /// Give up after this long (`30s`, `5m`, `1h30m`; `0`: never).
        #[arg(long, default_value = "0", value_parser = parse_duration)]
        timeout: std::time::Duration,
        /// Keep watching until the rollout is complete (`--watch=false`:
        /// print the current state once).
        #[arg(short = 'w', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
        watch: bool,
    },
    /// List the revisions (or show one with --revision).
    History {
        /// The deployment.
        #[command(flatten)]
        target: Target,
        /// Show this revision's pod template.
        #[arg(long)]
        revision: Option<i64>,
    },
    /// Roll back to the previous revision (or --to-revision).
    Undo {
        /// The deployment.
        #[command(flatten)]
        target: Target,
        /// The revision to roll back to (0: the previous one).
        #[arg(long = "to-revision", default_value_t = 0)]
        to_revision: i64,
    },
    /// Stop the controller from rolling out template changes.
    Pause {
        /// The deployment.
        #[command(flatten)]
        target: Target,
    },
    /// Let the controller roll out template changes again.
    Resume {
        /// The deployment.
        #[command(flatten)]
        target: Target,
    },
    /// Replace every pod (a new rollout of the same template).
    Restart {
        /// The deployment.
        #[command(flatten)]
        target: Target,
    },
}

/// A Go-style duration: `0`, `90s`, `5m`, `1h30m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("{text:?}: missing unit (ms, s, m, h)"))?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?}: expected a number before the unit"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
        };
        total += value * scale;
        rest = next;
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

impl Target {
    /// The deployment's name, or a usage error for other kinds.
    pub fn deployment_name(&self) -> Result<String, Error> {
        let (kind, name) = match &self.args[..] {
            [one] => match one.split_once('/') {
                Some((k, n)) => (k, n),
                None => {
                    return Err(Error::Usage(format!(
                        "{one:?}: expected deployment/NAME or deployment NAME"
                    )));
                }
            },
            [k, n] => (k.as_str(), n.as_str()),
            _ => return Err(Error::Usage("expected deployment/NAME".into())),
        };
        let info = crate::kind(kind)?;
        if info.kind != "Deployment" {
            return Err(Error::Usage(format!(
                "rollout is implemented for deployments only, not {}",
                info.plural
            )));
        }
        if name.is_empty() {
            return Err(Error::Usage("no deployment name given".into()));
        }
        Ok(name.to_owned())
    }
}

/// The `Error from server (NotFound)` kubectl prints for a missing deployment.
pub(crate) fn not_found(name: &str) -> Error {
    Error::Api(capstan_client::Error::NotFound {
        message: format!("deployments.apps \"{name}\" not found"),
    })
}

/// Reads the deployment, NotFound naming it.
pub(crate) async fn get(api: &Api<Deployment>, name: &str) -> Result<Deployment, Error> {
    api.get_opt(name).await?.ok_or_else(|| not_found(name))
}

fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// `deployment.apps/NAME`.
pub(crate) fn reference(name: &str) -> String {
    format!("deployment.apps/{name}")
}

/// Sets `spec.paused`; prints `paused`/`resumed`, or `already …`.
async fn set_paused(api: &Api<Deployment>, name: &str, pause: bool) -> Result<(), Error> {
    let current = get(api, name).await?;
    let verb = if pause { "paused" } else { "resumed" };
    if paused(&current) == pause {
        println!("{} already {verb}", reference(name));
        return Ok(());
    }
    let rv = current
        .metadata
        .as_ref()
        .map(|m| m.resource_version.clone())
        .unwrap_or_default();
    let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"paused": pause}});
    api.patch(name, &Patch::Merge(patch)).await?;
    println!("{} {verb}", reference(name));
    Ok(())
}

/// Stamps the template with `kubectl.kubernetes.io/restartedAt`.
async fn restart(api: &Api<Deployment>, name: &str) -> Result<(), Error> {
    let current = get(api, name).await?;
    if paused(&current) {
        return Err(Error::Other(format!(
            "deployments.apps \"{name}\" can't restart paused deployment (run rollout resume first)"
        )));
    }
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Other(format!("cannot format the time: {e}")))?;
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now
    }}}}});
    api.patch(name, &Patch::Merge(patch)).await?;
    println!("{} restarted", reference(name));
    Ok(())
}

/// Runs `capctl rollout …`.
pub async fn rollout(ctx: &Context, args: &RolloutArgs) -> Result<(), Error> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match &args.command {
        RolloutCommand::Status {
            target,
            timeout,
            watch,
        } => {
            let name = target.deployment_name()?;
            crate::rollout_status::status(&api, &name, *timeout, *watch).await
        }
        RolloutCommand::History { target, revision } => {
            let name = target.deployment_name()?;
            crate::rollout_history::history(ctx, &api, &name, *revision).await
        }
        RolloutCommand::Undo {
            target,
            to_revision,
        } => {
            let name = target.deployment_name()?;
            crate::rollout_history::undo(ctx, &api, &name, *to_revision).await
        }
        RolloutCommand::Pause { target } => {
            set_paused(&api, &target.deployment_name()?, true).await
        }
        RolloutCommand::Resume { target } => {
            set_paused(&api, &target.deployment_name()?, false).await
        }
        RolloutCommand::Restart { target } => restart(&api, &target.deployment_name()?).await,
    }
}

/// Checks the target before connecting, so a wrong kind is a usage error
/// even without a cluster.
pub fn check(args: &RolloutArgs) -> Result<(), Error> {
    let target = match &args.command {
        RolloutCommand::Status { target, .. }
        | RolloutCommand::History { target, .. }
        | RolloutCommand::Undo { target, .. }
        | RolloutCommand::Pause { target }
        | RolloutCommand::Resume { target }
        | RolloutCommand::Restart { target } => target,
    };
    target.deployment_name().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn targets() {
        let t = |a: &[&str]| Target {
            args: a.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(t(&["deployment/web"]).deployment_name().unwrap(), "web");
        assert_eq!(t(&["deploy", "web"]).deployment_name().unwrap(), "web");
        assert!(t(&["pod/web"]).deployment_name().is_err());
        assert!(t(&["web"]).deployment_name().is_err());
    }
}

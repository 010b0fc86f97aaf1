//! `rollout status deployment/NAME`: kubectl's deployment status viewer
//! ([`deployment_status`], no IO) over a watch of the one Deployment.
//! Each state that differs from the last one printed gives a progress
//! line; the command ends when the rollout is complete (exit 0), when the
//! Progressing condition says `ProgressDeadlineExceeded` or the
//! Deployment is deleted (exit 1), or after `--timeout`. A watch stream
//! that ends is reopened from the last revision seen; an expired one
//! reads the Deployment again.

use std::time::Duration;

use capstan_client::Api;
use capstan_client::api::{ListParams, WatchEvent};
use capstan_proto::api::apps::v1::Deployment;
use futures::StreamExt as _;

use crate::Error;

/// Pause before reopening a watch stream that ended.
const REOPEN_AFTER: Duration = Duration::from_millis(200);

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still rolling; kubectl's `Waiting for …` line.
    Waiting(String),
    /// Complete: `deployment "NAME" successfully rolled out`.
    Done(String),
    /// Failed: the progress deadline passed.
    Failed(String),
}

/// kubectl's `DeploymentStatusViewer.Status`.
pub fn deployment_status(d: &Deployment) -> Progress {
    let meta = d.metadata.clone().unwrap_or_default();
    let name = &meta.name;
    let status = d.status.clone().unwrap_or_default();
    if meta.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Progress::Waiting("Waiting for deployment spec update to be observed...".into());
    }
    let progressing = status.conditions.iter().find(|c| c.r#type == "Progressing");
    if progressing.is_some_and(|c| c.reason == "ProgressDeadlineExceeded") {
        return Progress::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = d.spec.as_ref().and_then(|s| s.replicas)
        && updated < desired
    {
        return Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Progress::Done(format!("deployment {name:?} successfully rolled out"))
}

/// Prints `d`'s state unless it is the last one printed; `Some` when the
/// command is over.
fn show(d: &Deployment, last: &mut Option<Progress>) -> Option<Result<(), Error>> {
    let progress = deployment_status(d);
    let changed = last.as_ref() != Some(&progress);
    let outcome = match &progress {
        Progress::Waiting(line) => {
            if changed {
                println!("{line}");
            }
            None
        }
        Progress::Done(line) => {
            println!("{line}");
            Some(Ok(()))
        }
        Progress::Failed(line) => Some(Err(Error::Other(line.clone()))),
    };
    *last = Some(progress);
    outcome
}

/// Follows the rollout of deployment `name`.
pub async fn status(
    api: &Api<Deployment>,
    name: &str,
    timeout: Duration,
    watch: bool,
) -> Result<(), Error> {
    let follow = follow(api, name, watch);
    if timeout.is_zero() {
        return follow.await;
    }
    match tokio::time::timeout(timeout, follow).await {
        Ok(result) => result,
        Err(_) => Err(Error::Other("timed out waiting for the condition".into())),
    }
}

/// Reads the deployment again (its watch resume point was compacted):
/// shows it and moves `rv` to it.
async fn reread(
    api: &Api<Deployment>,
    name: &str,
    rv: &mut String,
    last: &mut Option<Progress>,
) -> Result<Option<Result<(), Error>>, Error> {
    let d = crate::rollout::get(api, name).await?;
    *rv = d
        .metadata
        .as_ref()
        .map(|m| m.resource_version.clone())
        .unwrap_or_default();
    Ok(show(&d, last))
}

async fn follow(api: &Api<Deployment>, name: &str, watch: bool) -> Result<(), Error> {
    let mut last = None;
    let current = crate::rollout::get(api, name).await?;
    if let Some(outcome) = show(&current, &mut last) {
        return outcome;
    }
    if !watch {
        return Ok(());
    }
    let params = ListParams::default().fields(&format!("metadata.name={name}"));
    let mut rv = current
        .metadata
        .map(|m| m.resource_version)
        .unwrap_or_default();
    loop {
        let mut stream = match api.watch(&params, &rv).await {
            Ok(stream) => stream,
            // Compacted past the resume point: read the deployment again.
            Err(e) if e.is_expired() => {
                if let Some(outcome) = reread(api, name, &mut rv, &mut last).await? {
                    return outcome;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)) => {
                    rv = d
                        .metadata
                        .as_ref()
                        .map(|m| m.resource_version.clone())
                        .unwrap_or_default();
                    if let Some(outcome) = show(&d, &mut last) {
                        return outcome;
                    }
                }
                Ok(WatchEvent::Deleted(_)) => {
                    return Err(Error::Other(format!(
                        "deployment {name:?} has been deleted"
                    )));
                }
                Ok(WatchEvent::Bookmark(at)) => rv = at,
                Err(e) if e.is_expired() => {
                    if let Some(outcome) = reread(api, name, &mut rv, &mut last).await? {
                        return outcome;
                    }
                    break;
                }
                // The replica went away mid-stream: reopen (elsewhere).
                Err(_) => break,
            }
        }
        tokio::time::sleep(REOPEN_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn deployment(generation: i64, desired: i32, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                generation: Some(generation),
                ..Default::default()
            }),
            spec: Some(DeploymentSpec {
                replicas: Some(desired),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    fn counts(observed: i64, replicas: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..Default::default()
        }
    }

    #[test]
    fn kubectls_lines() {
        let w = |s: &str| Progress::Waiting(s.into());
        assert_eq!(
            deployment_status(&deployment(2, 4, counts(1, 4, 4, 4))),
            w("Waiting for deployment spec update to be observed...")
        );
        assert_eq!(
            deployment_status(&deployment(2, 4, counts(2, 5, 1, 4))),
            w(
                "Waiting for deployment \"web\" rollout to finish: 1 out of 4 new replicas have been updated..."
            )
        );
        assert_eq!(
            deployment_status(&deployment(2, 4, counts(2, 5, 4, 4))),
            w(
                "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination..."
            )
        );
        assert_eq!(
            deployment_status(&deployment(2, 4, counts(2, 4, 4, 3))),
            w(
                "Waiting for deployment \"web\" rollout to finish: 3 of 4 updated replicas are available..."
            )
        );
        assert_eq!(
            deployment_status(&deployment(2, 4, counts(2, 4, 4, 4))),
            Progress::Done("deployment \"web\" successfully rolled out".into())
        );
        let mut failed = counts(2, 4, 1, 3);
        failed.conditions.push(DeploymentCondition {
            r#type: "Progressing".into(),
            status: "False".into(),
            reason: "ProgressDeadlineExceeded".into(),
            ..Default::default()
        });
        assert_eq!(
            deployment_status(&deployment(2, 4, failed)),
            Progress::Failed("deployment \"web\" exceeded its progress deadline".into())
        );
    }
}

//! The namespace controller: empties a namespace being deleted, then lets
//! it go.
//!
//! A namespace with a deletionTimestamp (phase `Terminating`; the
//! apiserver refuses new objects in it) has every namespaced object of
//! every served kind deleted (one delete-collection per kind, each with
//! its default grace period, so pods stop gracefully); once a list of
//! every kind comes back empty, the `kubernetes` finalizer is removed and
//! the apiserver removes the namespace. Until then it is looked at again
//! every second, with status conditions `NamespaceContentRemaining` and
//! `NamespaceDeletionContentFailure` saying what is left and what failed.
//!
//! Capstan has no `namespaces/finalize` subresource and, today, its
//! apiserver neither defaults `spec.finalizers: [kubernetes]` nor holds a
//! namespace for it: the controller removes `kubernetes` from
//! `spec.finalizers` *and* from `metadata.finalizers` with a plain update
//! (a namespace created with `metadata.finalizers: [kubernetes]` is held
//! until its content is gone). A namespace the apiserver removed at once
//! (no finalizer) still has its leftover content deleted, when the
//! controller sees it go and finds no namespace of that name.

pub mod config;

use std::sync::Arc;
use std::time::Duration;

use capstan_client::events::{EventType, Recorder};
use capstan_client::runtime::{Action, RateLimit, WorkQueue, run_workers};
use capstan_client::{Api, Error};
use capstan_proto::api::core::v1::{Namespace, NamespaceCondition};
use capstan_proto::timestamp::Time;

use crate::controller::{Context, Shutdown};
use crate::gc::kinds::{self, KindOps};
use crate::informer::Change;

pub use config::NamespaceConfig;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// How soon a namespace with content left is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

struct Shared {
    ctx: Context,
    kinds: Vec<Box<dyn KindOps>>,
    recorder: Recorder,
}

/// Runs until `stop`.
pub async fn run(ctx: Context, stop: Shutdown) -> anyhow::Result<()> {
    let workers_n = ctx.config.namespace_controller.concurrent_namespace_syncs;
    let namespaces = ctx.informers.get::<Namespace>();
    let queue: WorkQueue<String> = WorkQueue::new(RateLimit::default());
    let q = queue.clone();
    let name = |n: &Namespace| {
        n.metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default()
    };
    let deleting = |n: &Namespace| {
        n.metadata
            .as_ref()
            .is_some_and(|m| m.deletion_timestamp.is_some())
    };
    namespaces.add_handler(move |change| match change {
        Change::Restarted(all) => all
            .iter()
            .filter(|n| deleting(n))
            .for_each(|n| q.add(name(n))),
        Change::Applied { new, .. } if deleting(new) => q.add(name(new)),
        Change::Applied { .. } => {}
        Change::Deleted(old) => q.add(name(old)),
    });
    let shared = Arc::new(Shared {
        recorder: ctx.recorder("namespace-controller"),
        kinds: kinds::all()
            .into_iter()
            .filter(|k| k.info().namespaced)
            .collect(),
        ctx,
    });
    let workers = run_workers(queue.clone(), workers_n, move |ns: String| {
        let shared = shared.clone();
        async move { shared.reconcile(&ns).await }
    });
    tokio::select! {
        () = workers => {}
        () = stop.requested() => queue.shutdown(),
    }
    Ok(())
}

/// What a pass over a namespace's content found.
#[derive(Debug, Default)]
struct Content {
    /// `kind: count` of what is still there.
    remaining: Vec<String>,
    /// What could not be deleted or listed, and why.
    failures: Vec<String>,
}

impl Shared {
    async fn reconcile(&self, name: &str) -> Result<Action, Error> {
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let Some(ns) = api.get_opt(name).await? else {
            // Removed without waiting for its content: delete what is left.
            let content = self.delete_content(name).await;
            if content.remaining.is_empty() && content.failures.is_empty() {
                return Ok(Action::Done);
            }
            return Ok(Action::RequeueAfter(RECHECK));
        };
        if ns
            .metadata
            .as_ref()
            .is_none_or(|m| m.deletion_timestamp.is_none())
        {
            return Ok(Action::Done);
        }
        let content = self.delete_content(name).await;
        if !content.remaining.is_empty() || !content.failures.is_empty() {
            self.report(&api, &ns, &content).await?;
            return Ok(Action::RequeueAfter(RECHECK));
        }
        self.finalize(&api, ns).await?;
        Ok(Action::Done)
    }

    /// Deletes every namespaced object in `namespace`, then counts what is left.
    async fn delete_content(&self, namespace: &str) -> Content {
        let client = &self.ctx.client;
        let mut content = Content::default();
        for ops in &self.kinds {
            if let Err(e) = ops.delete_all(client, namespace).await
                && !e.is_not_found()
            {
                content.failures.push(format!("{}: {e}", ops.info().plural));
            }
        }
        for ops in &self.kinds {
            match ops.count(client, namespace).await {
                Ok(0) => {}
                Ok(n) => content
                    .remaining
                    .push(format!("{}: {n}", ops.info().plural)),
                Err(e) => content.failures.push(format!("{}: {e}", ops.info().plural)),
            }
        }
        content
    }

    /// Phase Terminating and conditions saying what is left.
    async fn report(&self, api: &Api<Namespace>, ns: &Namespace, c: &Content) -> Result<(), Error> {
        let mut updated = ns.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        status.phase = "Terminating".into();
        set_condition(
            &mut status.conditions,
            "NamespaceContentRemaining",
            !c.remaining.is_empty(),
            "SomeResourcesRemain",
            &format!("Some resources are remaining: {}", c.remaining.join(", ")),
        );
        set_condition(
            &mut status.conditions,
            "NamespaceDeletionContentFailure",
            !c.failures.is_empty(),
            "ContentDeletionFailed",
            &format!(
                "Failed to delete all resource types: {}",
                c.failures.join("; ")
            ),
        );
        if &updated != ns {
            match api.update_status(&updated).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() || e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes the `kubernetes` finalizer: the apiserver then removes the namespace.
    async fn finalize(&self, api: &Api<Namespace>, mut ns: Namespace) -> Result<(), Error> {
        let name = ns
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let spec = ns.spec.get_or_insert_with(Default::default);
        let before = spec.finalizers.len();
        spec.finalizers.retain(|f| f != FINALIZER);
        let mut changed = spec.finalizers.len() != before;
        let meta = ns.metadata.get_or_insert_with(Default::default);
        let before = meta.finalizers.len();
        meta.finalizers.retain(|f| f != FINALIZER);
        changed |= meta.finalizers.len() != before;
        if !changed {
            return Ok(());
        }
        match api.update(&ns).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
        tracing::info!(namespace = %name, "content deleted; finalizer kubernetes removed");
        self.recorder.publish(
            &ns,
            EventType::Normal,
            "NamespaceFinalized",
            &format!("Deleted all content of namespace {name}; removed finalizer {FINALIZER}"),
        );
        Ok(())
    }
}

/// Sets condition `kind` True (with `reason`, `message`) or False.
fn set_condition(
    conditions: &mut Vec<NamespaceCondition>,
    kind: &str,
    on: bool,
    reason: &str,
    message: &str,
) {
    let (status, reason, message) = if on {
        ("True", reason, message)
    } else {
        (
            "False",
            "ContentDeleted",
            "All content successfully deleted",
        )
    };
    match conditions.iter_mut().find(|c| c.r#type == kind) {
        Some(c) if c.status == status && c.reason == reason && c.message == message => {}
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(Time::now());
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message.into();
        }
        None if on => conditions.push(NamespaceCondition {
            r#type: kind.into(),
            status: status.into(),
            last_transition_time: Some(Time::now()),
            reason: reason.into(),
            message: message.into(),
        }),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_what_remains() {
        let mut c = Vec::new();
        set_condition(&mut c, "NamespaceContentRemaining", false, "r", "m");
        assert!(c.is_empty(), "no False condition added from nothing");
        set_condition(
            &mut c,
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            "pods: 1",
        );
        assert_eq!(c[0].status, "True");
        assert_eq!(c[0].message, "pods: 1");
        let t = c[0].last_transition_time;
        set_condition(
            &mut c,
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            "pods: 2",
        );
        assert_eq!(c[0].last_transition_time, t);
        set_condition(&mut c, "NamespaceContentRemaining", false, "", "");
        assert_eq!(c[0].status, "False");
        assert_eq!(c[0].reason, "ContentDeleted");
    }
}

//! `apply -f` and `create -f`: every document is read and checked first
//! ([`crate::manifest`]); then, in order, each object is created, or (apply
//! only) replaced carrying the stored resourceVersion.
//!
//! `unchanged` is told from `configured` by a dry-run update first: when
//! the object the server would store (defaulted, status and server-set
//! metadata carried over) equals the stored one apart from
//! `metadata.generation`, nothing is written. (The generation is ignored
//! because the apiserver today compares specs before defaulting them, so
//! even a no-op replace bumps it and writes; with that fixed, the real
//! update alone would leave the resourceVersion as it was.)

use capstan_proto::Object;
use clap::Args;

use crate::dynamic::DynApi;
use crate::{Context, Error, object_ref};

/// `capctl apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A manifest file, a directory of them, or `-` for standard input.
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "FILE|DIR|-"
    )]
    pub filename: Vec<String>,
}

/// The namespace `obj` goes to: its own, checked against an explicit `-n`;
/// else the context's.
fn target_namespace(ctx: &Context, obj: &Object) -> Result<String, Error> {
    if !obj.info().namespaced {
        return Ok(String::new());
    }
    let own = obj.namespace();
    if own.is_empty() {
        return Ok(ctx.namespace.clone());
    }
    if ctx.explicit_namespace && own != ctx.namespace {
        return Err(Error::Usage(format!(
            "the namespace from the provided object \"{own}\" does not match the namespace \"{}\"; you must pass '--namespace={own}' to perform this operation",
            ctx.namespace
        )));
    }
    Ok(own.to_owned())
}

/// Creates or updates every object in the manifests.
pub async fn apply(ctx: &Context, args: &ApplyArgs) -> Result<(), Error> {
    apply_or_create(ctx, &args.filename, false).await
}

/// Applies (`create_only` false) or creates every object in `files`.
pub async fn apply_or_create(
    ctx: &Context,
    files: &[String],
    create_only: bool,
) -> Result<(), Error> {
    let manifests = crate::manifest::read_all(files)?;
    // Check every namespace before sending anything.
    let targets = manifests
        .iter()
        .map(|m| target_namespace(ctx, &m.object))
        .collect::<Result<Vec<_>, _>>()?;
    let mut failed = false;
    for (m, namespace) in manifests.into_iter().zip(targets) {
        let api = DynApi::new(&ctx.client, m.object.info(), &namespace);
        let what = object_ref(&m.object);
        let outcome = if create_only {
            api.create(&m.object).await.map(|_| "created")
        } else {
            apply_one(&api, m.object).await
        };
        match outcome {
            Ok(verb) => println!("{what} {verb}"),
            Err(e) => {
                failed = true;
                let doing = if create_only { "creating" } else { "applying" };
                eprintln!(
                    "{}",
                    crate::error::api_message_in(&e, &format!("{doing} {what} from {}", m.source))
                );
            }
        }
    }
    if failed { Err(Error::Reported) } else { Ok(()) }
}

async fn apply_one(api: &DynApi, mut obj: Object) -> Result<&'static str, capstan_client::Error> {
    match api.get(obj.name()).await? {
        None => api.create(&obj).await.map(|_| "created"),
        Some(stored) => {
            let stored_rv = stored
                .metadata()
                .map(|m| m.resource_version.clone())
                .unwrap_or_default();
            obj.metadata_mut().resource_version = stored_rv.clone();
            let mut would_be = api.update(&obj, true).await?;
            would_be.metadata_mut().generation = stored.metadata().and_then(|m| m.generation);
            if would_be == stored {
                return Ok("unchanged");
            }
            let updated = api.update(&obj, false).await?;
            let new_rv = updated.metadata().map(|m| m.resource_version.as_str());
            Ok(if new_rv == Some(stored_rv.as_str()) {
                "unchanged"
            } else {
                "configured"
            })
        }
    }
}

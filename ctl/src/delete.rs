//! `delete KIND NAME…`, `delete KIND -l SEL`, `delete KIND --all`,
//! `delete -f FILE`: prints `pod "web" deleted` per object (kubectl's
//! form); a missing name is reported and makes the exit status 1, the
//! other names are still deleted.

use clap::Args;

use crate::dynamic::DynApi;
use crate::{Context, Error};

/// `capctl delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `KIND NAME…`, `KIND/NAME…`, or `KIND` with `-l` or `--all`.
    #[arg(value_name = "KIND [NAME]")]
    pub args: Vec<String>,
    /// Delete the objects in these manifests.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub filename: Vec<String>,
    /// Delete every object matching this label selector.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Delete every object of the kind in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Seconds a pod may take to stop (0: at once); default: the kind's.
    #[arg(long = "grace-period")]
    pub grace_period: Option<i64>,
    /// Treat a missing object as success.
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
}

fn verb(removed: bool) -> &'static str {
    if removed {
        "deleted"
    } else {
        "marked for deletion"
    }
}

/// Runs `capctl delete`.
pub async fn delete(ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let grace = args.grace_period.filter(|g| *g >= 0);
    let mut targets = Vec::new();
    if !args.filename.is_empty() {
        if !args.args.is_empty() || args.selector.is_some() || args.all {
            return Err(Error::Usage(
                "-f cannot be combined with KIND, NAME, -l or --all".into(),
            ));
        }
        for m in crate::manifest::read_all(&args.filename)? {
            let ns = if m.object.namespace().is_empty() {
                ctx.namespace.clone()
            } else {
                m.object.namespace().to_owned()
            };
            targets.push((m.object.info(), ns, m.object.name().to_owned()));
        }
    } else {
        let Some(first) = args.args.first() else {
            return Err(Error::Usage(
                "delete needs KIND NAME…, KIND -l SELECTOR, KIND --all or -f FILE".into(),
            ));
        };
        if first.contains('/') {
            for a in &args.args {
                match a.split_once('/') {
                    Some((k, n)) if !n.is_empty() => {
                        targets.push((crate::kind(k)?, ctx.namespace.clone(), n.to_owned()))
                    }
                    _ => {
                        return Err(Error::Usage(format!(
                            "{a:?}: when one argument is KIND/NAME, all must be"
                        )));
                    }
                }
            }
        } else {
            let info = crate::kind(first)?;
            let names = &args.args[1..];
            let by_selector = args.selector.is_some() || args.all;
            if by_selector != names.is_empty() {
                return Err(Error::Usage(
                    "give either names, or -l SELECTOR / --all (not both, not neither)".into(),
                ));
            }
            if by_selector {
                let api = DynApi::new(&ctx.client, info, &ctx.namespace);
                let deleted = api
                    .delete_collection(args.selector.as_deref().unwrap_or(""), "", grace)
                    .await?;
                if deleted.is_empty() {
                    eprintln!("No resources found");
                }
                for obj in deleted {
                    println!(
                        "{} \"{}\" deleted",
                        info.kind.to_ascii_lowercase(),
                        obj.name()
                    );
                }
                return Ok(());
            }
            for n in names {
                targets.push((info, ctx.namespace.clone(), n.clone()));
            }
        }
    }
    let mut failed = false;
    for (info, ns, name) in targets {
        let api = DynApi::new(&ctx.client, info, &ns);
        match api.delete(&name, grace).await {
            Ok(removed) => println!(
                "{} \"{name}\" {}",
                info.kind.to_ascii_lowercase(),
                verb(removed)
            ),
            Err(e) if e.is_not_found() && args.ignore_not_found => {}
            Err(e) => {
                failed = true;
                eprintln!("{}", crate::error::api_message(&e));
            }
        }
    }
    if failed { Err(Error::Reported) } else { Ok(()) }
}

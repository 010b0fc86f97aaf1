//! Commands that change one part of existing objects through a JSON merge
//! patch, for every kind: `label` and `annotate` (`key=value` to add,
//! `--overwrite` to change, `key-` to remove) and `scale --replicas=N`
//! (kinds whose spec has `replicas`, found in the API schema).

use std::collections::BTreeMap;

use capstan_proto::KindInfo;
use clap::Args;
use serde_json::{Map, Value, json};

use crate::dynamic::DynApi;
use crate::{Context, Error, object_ref};

/// `capctl label` / `capctl annotate`.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// `KIND NAME… KEY=VALUE… KEY-…` or `KIND/NAME… KEY=VALUE…`.
    #[arg(required = true, num_args = 2.., value_name = "KIND NAME KEY=VALUE|KEY-")]
    pub args: Vec<String>,
    /// Change keys that already have a different value.
    #[arg(long)]
    pub overwrite: bool,
}

/// `capctl scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// `KIND NAME…` or `KIND/NAME…`.
    #[arg(required = true, value_name = "KIND NAME")]
    pub args: Vec<String>,
    /// The new number of replicas.
    #[arg(long, required = true)]
    pub replicas: u32,
}

/// The objects named on a command line.
type Targets = Vec<(&'static KindInfo, String)>;

/// Splits `KIND NAME…` / `KIND/NAME…` followed by other arguments
/// (those `is_rest` recognises).
pub(crate) fn targets(
    args: &[String],
    is_rest: impl Fn(&str) -> bool,
) -> Result<(Targets, Vec<String>), Error> {
    let split = args.iter().position(|a| is_rest(a)).unwrap_or(args.len());
    let (objs, rest) = args.split_at(split);
    let mut out = Vec::new();
    match objs.first() {
        None => return Err(Error::Usage("no KIND NAME given".into())),
        Some(first) if first.contains('/') => {
            for a in objs {
                match a.split_once('/') {
                    Some((k, n)) if !n.is_empty() => out.push((crate::kind(k)?, n.to_owned())),
                    _ => {
                        return Err(Error::Usage(format!(
                            "{a:?}: when one argument is KIND/NAME, all must be"
                        )));
                    }
                }
            }
        }
        Some(first) => {
            let info = crate::kind(first)?;
            if objs.len() < 2 {
                return Err(Error::Usage(format!("no {} name given", info.kind)));
            }
            out.extend(objs[1..].iter().map(|n| (info, n.clone())));
        }
    }
    Ok((out, rest.to_vec()))
}

fn is_change(a: &str) -> bool {
    a.contains('=') || (a.ends_with('-') && !a.contains('/'))
}

/// Parsed `key=value` (Some) and `key-` (None) arguments.
fn changes(rest: &[String]) -> Result<BTreeMap<String, Option<String>>, Error> {
    if rest.is_empty() {
        return Err(Error::Usage("no KEY=VALUE or KEY- given".into()));
    }
    let mut out = BTreeMap::new();
    for a in rest {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => match a.strip_suffix('-') {
                Some(k) => (k, None),
                None => return Err(Error::Usage(format!("{a:?}: expected KEY=VALUE or KEY-"))),
            },
        };
        if k.is_empty() {
            return Err(Error::Usage(format!("{a:?}: empty key")));
        }
        if out.insert(k.to_owned(), v).is_some() {
            return Err(Error::Usage(format!("key {k:?} given more than once")));
        }
    }
    Ok(out)
}

/// Runs `label` (`field` = "labels") or `annotate` (`field` = "annotations").
pub async fn label_or_annotate(ctx: &Context, args: &MetaArgs, field: &str) -> Result<(), Error> {
    let (objs, rest) = targets(&args.args, is_change)?;
    let changes = changes(&rest)?;
    let verb = if field == "labels" {
        "labeled"
    } else {
        "annotated"
    };
    for (info, name) in objs {
        let api = DynApi::new(&ctx.client, info, &ctx.namespace);
        let Some(current) = api.get(&name).await? else {
            return Err(Error::Api(capstan_client::Error::NotFound {
                message: format!("{} \"{name}\" not found", info.plural),
            }));
        };
        let meta = current.metadata().cloned().unwrap_or_default();
        let existing = if field == "labels" {
            &meta.labels
        } else {
            &meta.annotations
        };
        let mut patch = Map::new();
        for (k, v) in &changes {
            match (v, existing.get(k)) {
                (Some(v), Some(old)) if old != v && !args.overwrite => {
                    return Err(Error::Other(format!(
                        "{} already has {field} key {k:?} = {old:?}; pass --overwrite to change it",
                        object_ref(&current)
                    )));
                }
                (Some(v), _) => {
                    patch.insert(k.clone(), json!(v));
                }
                (None, _) => {
                    patch.insert(k.clone(), Value::Null);
                }
            }
        }
        // Carry the resourceVersion read, so a concurrent change is a Conflict.
        let doc = json!({"metadata": {field: patch, "resourceVersion": meta.resource_version}});
        let updated = api.merge_patch(&name, &doc).await?;
        println!("{} {verb}", object_ref(&updated));
    }
    Ok(())
}

/// Runs `scale`.
pub async fn scale(ctx: &Context, args: &ScaleArgs) -> Result<(), Error> {
    let (objs, _) = targets(&args.args, |_| false)?;
    for (info, name) in objs {
        if capstan_proto::schema::schema()
            .resolve(info.message, "spec.replicas")
            .is_none()
        {
            return Err(Error::Usage(format!(
                "{} cannot be scaled: its spec has no replicas field",
                info.plural
            )));
        }
        let api = DynApi::new(&ctx.client, info, &ctx.namespace);
        let updated = api
            .merge_patch(&name, &json!({"spec": {"replicas": args.replicas}}))
            .await?;
        println!("{} scaled", object_ref(&updated));
    }
    Ok(())
}

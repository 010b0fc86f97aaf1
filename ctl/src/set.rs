//! `set image KIND/NAME… CONTAINER=IMAGE…` (also `KIND NAME…`): changes
//! container images in the pod template of deployments, replica sets,
//! replication controllers and stateful sets, or in a pod's own spec.
//! `*=IMAGE` sets every container; init containers are matched too, as
//! kubectl does. The change is a JSON merge patch carrying the
//! resourceVersion read, so a concurrent write is a Conflict, not lost.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::dynamic::DynApi;
use crate::{Context, Error, object_ref};

/// `capctl set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// What to set.
    #[command(subcommand)]
    pub what: SetWhat,
}

/// `capctl set …`.
#[derive(Debug, Subcommand)]
pub enum SetWhat {
    /// Change container images (`CONTAINER=IMAGE`, `*=IMAGE` for all).
    Image(ImageArgs),
}

/// `capctl set image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// `KIND/NAME… CONTAINER=IMAGE…` or `KIND NAME… CONTAINER=IMAGE…`.
    #[arg(required = true, num_args = 2.., value_name = "KIND/NAME CONTAINER=IMAGE")]
    pub args: Vec<String>,
}

/// Where a kind keeps its pod spec, as JSON pointer-ish segments.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "Deployment" | "ReplicaSet" | "ReplicationController" | "StatefulSet" => {
            Some(&["spec", "template", "spec"])
        }
        _ => None,
    }
}

/// The `CONTAINER=IMAGE` pairs.
fn images(rest: &[String]) -> Result<Vec<(String, String)>, Error> {
    if rest.is_empty() {
        return Err(Error::Usage(
            "no CONTAINER=IMAGE given (e.g. `capctl set image deployment/web web=nginx:1.25`)"
                .into(),
        ));
    }
    rest.iter()
        .map(|a| match a.split_once('=') {
            Some((c, i)) if !c.is_empty() && !i.is_empty() => Ok((c.to_owned(), i.to_owned())),
            _ => Err(Error::Usage(format!("{a:?}: expected CONTAINER=IMAGE"))),
        })
        .collect()
}

/// Applies `pairs` to the container lists of `spec`; returns the changed
/// lists (by field name) or names a container that is not there.
fn set_images(spec: &Value, pairs: &[(String, String)]) -> Result<Vec<(String, Value)>, String> {
    let mut lists: Vec<(String, Value)> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| spec.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect();
    for (container, image) in pairs {
        let mut found = false;
        for (_, list) in &mut lists {
            for c in list.as_array_mut().into_iter().flatten() {
                if container == "*" || c.get("name").and_then(Value::as_str) == Some(container) {
                    c["image"] = json!(image);
                    found = true;
                }
            }
        }
        if !found {
            return Err(format!("unable to find container named {container:?}"));
        }
    }
    Ok(lists)
}

/// Runs `capctl set image`.
pub async fn set(ctx: &Context, args: &SetArgs) -> Result<(), Error> {
    let SetWhat::Image(args) = &args.what;
    let (objs, rest) = crate::patch::targets(&args.args, |a| a.contains('='))?;
    let pairs = images(&rest)?;
    for (info, _) in &objs {
        if pod_spec_path(info.kind).is_none() {
            return Err(Error::Usage(format!(
                "{} have no containers to set images of (deployments, replicasets, replicationcontrollers, statefulsets, pods)",
                info.plural
            )));
        }
    }
    for (info, name) in objs {
        let api = DynApi::new(&ctx.client, info, &ctx.namespace);
        let Some(current) = api.get(&name).await? else {
            return Err(Error::Api(capstan_client::Error::NotFound {
                message: format!("{} \"{name}\" not found", info.plural),
            }));
        };
        let path = pod_spec_path(info.kind).unwrap_or(&[]);
        let value = crate::get::to_value(&current)?;
        let spec = path.iter().fold(&value, |v, k| &v[*k]);
        let lists = set_images(spec, &pairs)
            .map_err(|e| Error::Other(format!("{}: {e}", object_ref(&current))))?;
        let mut patch = Value::Object(lists.into_iter().collect());
        for k in path.iter().rev() {
            patch = json!({ *k: patch });
        }
        patch["metadata"] = json!({"resourceVersion": value["metadata"]["resourceVersion"]});
        let updated = api.merge_patch(&name, &patch).await?;
        println!("{} image updated", object_ref(&updated));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_named_and_all_containers() {
        let spec = json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "web", "image": "nginx:1"}, {"name": "side", "image": "envoy"}]
        });
        let lists = set_images(&spec, &[("web".into(), "nginx:2".into())]).unwrap();
        let containers = &lists.iter().find(|(f, _)| f == "containers").unwrap().1;
        assert_eq!(containers[0]["image"], "nginx:2");
        assert_eq!(containers[1]["image"], "envoy");
        let lists = set_images(&spec, &[("*".into(), "x".into())]).unwrap();
        assert!(
            lists
                .iter()
                .flat_map(|(_, l)| l.as_array().unwrap())
                .all(|c| c["image"] == "x")
        );
        let err = set_images(&spec, &[("nope".into(), "x".into())]).unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(images(&["web".into()]).is_err());
    }
}

//! `describe KIND [NAME…]` / `KIND/NAME` / `KIND -l SEL`: the object for
//! people — name, namespace, labels, annotations, creation time, then each
//! other top-level section (`Spec:`, `Status:`, `Data:` …) as indented
//! YAML — and the Events about it (field selector on `involvedObject`),
//! oldest first. The same for every kind except deployments, which have
//! kubectl's own layout ([`crate::describe_deployment`]).

use std::collections::BTreeMap;

use capstan_proto::{KindInfo, Object, kinds};
use clap::Args;
use serde_json::Value;

use crate::dynamic::DynApi;
use crate::get::to_value;
use crate::{Context, Error, table};

/// `capctl describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// `KIND [NAME…]` or `KIND/NAME…`; a KIND alone describes every object.
    #[arg(required = true, value_name = "KIND [NAME]")]
    pub args: Vec<String>,
    /// Describe every object matching this label selector.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
}

fn map_lines(title: &str, map: &BTreeMap<String, String>) -> String {
    let pad = " ".repeat(14);
    if map.is_empty() {
        return format!("{title:<14}<none>\n");
    }
    let mut out = String::new();
    for (i, (k, v)) in map.iter().enumerate() {
        let lead = if i == 0 {
            format!("{title:<14}")
        } else {
            pad.clone()
        };
        out.push_str(&format!("{lead}{k}={v}\n"));
    }
    out
}

fn title(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn section(key: &str, value: &Value) -> Result<String, Error> {
    let yaml = match value {
        Value::Object(_) | Value::Array(_) => serde_yaml_ng::to_string(value)
            .map_err(|e| Error::Other(format!("cannot encode YAML: {e}")))?,
        Value::String(s) => return Ok(format!("{:<14}{s}\n", format!("{}:", title(key)))),
        other => return Ok(format!("{:<14}{other}\n", format!("{}:", title(key)))),
    };
    let mut out = format!("{}:\n", title(key));
    for line in yaml.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// The text for one object and its events.
fn describe_one(obj: &Object, events: &[Object]) -> Result<String, Error> {
    let meta = obj.metadata().cloned().unwrap_or_default();
    let v = to_value(obj)?;
    let mut out = format!("{:<14}{}\n", "Name:", obj.name());
    if obj.info().namespaced {
        out.push_str(&format!("{:<14}{}\n", "Namespace:", obj.namespace()));
    }
    out.push_str(&map_lines("Labels:", &meta.labels));
    out.push_str(&map_lines("Annotations:", &meta.annotations));
    out.push_str(&format!(
        "{:<14}{}\n",
        "API Version:",
        obj.info().api_version
    ));
    out.push_str(&format!("{:<14}{}\n", "Kind:", obj.info().kind));
    if let Some(t) = table::at(&v, "metadata.creationTimestamp").and_then(Value::as_str) {
        out.push_str(&format!("{:<14}{t}\n", "Created:"));
    }
    for key in ["ownerReferences", "finalizers", "deletionTimestamp"] {
        if let Some(x) = v.get("metadata").and_then(|m| m.get(key)) {
            out.push_str(&section(key, x)?);
        }
    }
    if let Value::Object(map) = &v {
        for (key, value) in map {
            if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                out.push_str(&section(key, value)?);
            }
        }
    }
    out.push_str(&events_table(events)?);
    Ok(out)
}

fn events_table(events: &[Object]) -> Result<String, Error> {
    if events.is_empty() {
        return Ok("Events:       <none>\n".into());
    }
    let now = time::OffsetDateTime::now_utc();
    let mut rows = Vec::new();
    let mut values = events.iter().map(to_value).collect::<Result<Vec<_>, _>>()?;
    let when = |e: &Value| {
        [
            "lastTimestamp",
            "eventTime",
            "firstTimestamp",
            "metadata.creationTimestamp",
        ]
        .iter()
        .find_map(|p| table::at(e, p).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
    };
    values.sort_by_key(|e| when(e));
    for e in &values {
        let s = |p: &str| {
            table::at(e, p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let from = match s("source.component") {
            c if c.is_empty() => s("reportingComponent"),
            c => c,
        };
        let count = table::at(e, "count").and_then(Value::as_i64).unwrap_or(1);
        let age = table::age(Some(&when(e)), now);
        rows.push(vec![
            s("type"),
            s("reason"),
            if count > 1 {
                format!("{age} (x{count})")
            } else {
                age
            },
            from,
            s("message"),
        ]);
    }
    let header: Vec<String> = ["Type", "Reason", "Age", "From", "Message"]
        .map(String::from)
        .to_vec();
    let mut out = String::from("Events:\n");
    let dashes: Vec<String> = header.iter().map(|h| "-".repeat(h.len())).collect();
    let mut all = vec![dashes];
    all.extend(rows);
    for line in table::render(&header, &all).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// A deployment in kubectl's layout ([`crate::describe_deployment`]).
async fn deployment(ctx: &Context, obj: &Object, events: &[Object]) -> Result<String, Error> {
    let rs_info = kinds::lookup("apps/v1", "ReplicaSet").expect("ReplicaSet is served");
    let replica_sets = DynApi::new(&ctx.client, rs_info, obj.namespace())
        .list("", "")
        .await?
        .iter()
        .map(to_value)
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = crate::describe_deployment::describe(&to_value(obj)?, &replica_sets);
    out.push_str(&events_table(events)?);
    Ok(out)
}

/// A service in kubectl's layout ([`crate::describe_service`]), with
/// the Endpoints object of the same name.
async fn service(ctx: &Context, obj: &Object, events: &[Object]) -> Result<String, Error> {
    let ep_info = kinds::lookup("v1", "Endpoints").expect("Endpoints is served");
    let endpoints = DynApi::new(&ctx.client, ep_info, obj.namespace())
        .get(obj.name())
        .await?
        .map(|e| to_value(&e))
        .transpose()?;
    let mut out = crate::describe_service::describe(&to_value(obj)?, endpoints.as_ref());
    out.push_str(&events_table(events)?);
    Ok(out)
}

/// Runs `capctl describe`.
pub async fn describe(ctx: &Context, args: &DescribeArgs) -> Result<(), Error> {
    let first = &args.args[0];
    let mut objects = Vec::new();
    let mut failed = false;
    let namespace = if args.all_namespaces {
        ""
    } else {
        ctx.namespace.as_str()
    };
    let named: Vec<(&'static KindInfo, String)> = if first.contains('/') {
        args.args
            .iter()
            .map(|a| match a.split_once('/') {
                Some((k, n)) if !n.is_empty() => Ok((crate::kind(k)?, n.to_owned())),
                _ => Err(Error::Usage(format!(
                    "{a:?}: when one argument is KIND/NAME, all must be"
                ))),
            })
            .collect::<Result<_, _>>()?
    } else {
        let info = crate::kind(first)?;
        if args.args.len() == 1 {
            let api = DynApi::new(&ctx.client, info, namespace);
            objects = api.list(args.selector.as_deref().unwrap_or(""), "").await?;
            if objects.is_empty() {
                eprintln!("No resources found");
            }
            Vec::new()
        } else {
            args.args[1..].iter().map(|n| (info, n.clone())).collect()
        }
    };
    for (info, name) in named {
        match DynApi::new(&ctx.client, info, &ctx.namespace)
            .get(&name)
            .await?
        {
            Some(obj) => objects.push(obj),
            None => {
                failed = true;
                eprintln!(
                    "Error from server (NotFound): {} \"{name}\" not found",
                    info.plural
                );
            }
        }
    }
    let event_info = kinds::lookup("v1", "Event").expect("Event is served");
    for (i, obj) in objects.iter().enumerate() {
        if i > 0 {
            println!("\n");
        }
        let fields = format!(
            "involvedObject.kind={},involvedObject.name={}",
            obj.info().kind,
            obj.name()
        );
        let events = DynApi::new(&ctx.client, event_info, obj.namespace())
            .list("", &fields)
            .await?;
        if obj.info().kind == "Deployment" {
            print!("{}", deployment(ctx, obj, &events).await?);
        } else if obj.info().kind == "Service" {
            print!("{}", service(ctx, obj, &events).await?);
        } else {
            print!("{}", describe_one(obj, &events)?);
        }
    }
    if failed { Err(Error::Reported) } else { Ok(()) }
}

//! `get KIND[/NAME] [NAME…]`: named objects, or a list filtered by label
//! and field selectors, in one namespace or all (`-A`), printed as a table
//! ([`crate::table`]) or as YAML, JSON or `kind/name` lines.

use capstan_proto::{KindInfo, Object};
use clap::Args;
use serde_json::{Value, json};

use crate::dynamic::DynApi;
use crate::table::Place;
use crate::{Context, Error, OutputArgs, object_ref, table};

/// `capctl get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// `KIND`, `KIND NAME…`, or `KIND/NAME…`.
    #[arg(required = true, value_name = "KIND[/NAME]")]
    pub args: Vec<String>,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Label selector (`a=b,c!=d,e in (x,y),!f`).
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Field selector (`metadata.name=x,status.phase=Running`).
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Add a LABELS column.
    #[arg(long = "show-labels")]
    pub show_labels: bool,
    /// After listing, print each change as it happens (until interrupted).
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// How to print.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    /// A table; `wide` adds the wide-only columns.
    Table {
        /// `-o wide`.
        wide: bool,
    },
    /// `-o yaml`.
    Yaml,
    /// `-o json`.
    Json,
    /// `-o name`: `kind/name` lines.
    Name,
    /// `-o jsonpath=TEMPLATE`.
    JsonPath(crate::jsonpath::Template),
}

pub(crate) fn format(output: &OutputArgs) -> Result<Format, Error> {
    Ok(match output.output.as_deref() {
        None => Format::Table { wide: false },
        Some("wide") => Format::Table { wide: true },
        Some("yaml") => Format::Yaml,
        Some("json") => Format::Json,
        Some("name") => Format::Name,
        Some(other) if other.starts_with("jsonpath=") => Format::JsonPath(
            crate::jsonpath::Template::parse(&other["jsonpath=".len()..])?,
        ),
        Some(other) => {
            return Err(Error::Usage(format!(
                "unknown output format {other:?}: expected yaml, json, name, wide or jsonpath=TEMPLATE"
            )));
        }
    })
}

/// Which objects the arguments name.
enum Query {
    /// Every object of these kinds (filtered by selectors).
    List(Vec<&'static KindInfo>),
    /// Named objects.
    Named(Vec<(&'static KindInfo, String)>),
}

fn query(args: &[String]) -> Result<Query, Error> {
    if args[0].contains('/') {
        let named = args
            .iter()
            .map(|a| match a.split_once('/') {
                Some((k, n)) if !n.is_empty() => Ok((crate::kind(k)?, n.to_owned())),
                _ => Err(Error::Usage(format!(
                    "{a:?}: when one argument is KIND/NAME, all must be"
                ))),
            })
            .collect::<Result<_, _>>()?;
        return Ok(Query::Named(named));
    }
    let kinds = kinds(&args[0])?;
    if args.len() == 1 {
        Ok(Query::List(kinds))
    } else {
        let [info] = kinds[..] else {
            return Err(Error::Usage(format!(
                "names can be given with one kind only, not {:?}",
                args[0]
            )));
        };
        Ok(Query::Named(
            args[1..].iter().map(|n| (info, n.clone())).collect(),
        ))
    }
}

/// What `get all` lists, as kubectl has it (for the kinds served).
pub const ALL: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "replicasets",
    "statefulsets",
    "horizontalpodautoscalers",
    "replicationcontrollers",
];

/// `pods`, `pods,services` or `all`.
pub fn kinds(arg: &str) -> Result<Vec<&'static KindInfo>, Error> {
    let mut out: Vec<&'static KindInfo> = Vec::new();
    for name in arg.split(',').filter(|n| !n.is_empty()) {
        let names = if name == "all" { ALL } else { &[name][..] };
        for n in names {
            let info = crate::kind(n)?;
            if !out.contains(&info) {
                out.push(info);
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Usage(format!("no kind in {arg:?}")));
    }
    Ok(out)
}

/// Runs `capctl get`.
pub async fn get(ctx: &Context, args: &GetArgs) -> Result<(), Error> {
    let format = format(&args.output)?;
    let query = query(&args.args)?;
    if args.watch {
        let (info, name) = match &query {
            Query::List(kinds) if kinds.len() == 1 => (kinds[0], None),
            Query::Named(names) if names.len() == 1 => (names[0].0, Some(names[0].1.as_str())),
            _ => {
                return Err(Error::Usage(
                    "-w watches one kind, or one object by name".into(),
                ));
            }
        };
        return crate::watch::watch(ctx, args, format, info, name).await;
    }
    let namespace = if args.all_namespaces {
        ""
    } else {
        ctx.namespace.as_str()
    };
    let mut failed = false;
    let (objects, single, several_kinds) = match &query {
        Query::List(kinds) => {
            let mut objects = Vec::new();
            for info in kinds {
                let api = DynApi::new(&ctx.client, info, namespace);
                objects.extend(
                    api.list(
                        args.selector.as_deref().unwrap_or(""),
                        args.field_selector.as_deref().unwrap_or(""),
                    )
                    .await?,
                );
            }
            if objects.is_empty() && matches!(format, Format::Table { .. }) {
                if kinds.iter().any(|k| k.namespaced) && !namespace.is_empty() {
                    eprintln!("No resources found in {namespace} namespace.");
                } else {
                    eprintln!("No resources found");
                }
                return Ok(());
            }
            (objects, false, kinds.len() > 1)
        }
        Query::Named(names) => {
            if args.selector.is_some() {
                return Err(Error::Usage(
                    "a label selector (-l) cannot be combined with names".into(),
                ));
            }
            let mut objects = Vec::new();
            for (info, name) in names {
                match DynApi::new(&ctx.client, info, &ctx.namespace)
                    .get(name)
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
            let mut distinct: Vec<&KindInfo> = names.iter().map(|(k, _)| *k).collect();
            distinct.dedup();
            (objects, names.len() == 1, distinct.len() > 1)
        }
    };
    print(&objects, format, single, several_kinds, args)?;
    if failed { Err(Error::Reported) } else { Ok(()) }
}

pub(crate) fn to_value(obj: &Object) -> Result<Value, Error> {
    obj.to_value()
        .map_err(|e| Error::Other(format!("cannot encode {}: {e}", object_ref(obj))))
}

/// One object as itself, several as a `kind: List`.
fn document(objects: &[Object], single: bool) -> Result<Value, Error> {
    if single && objects.len() == 1 {
        return to_value(&objects[0]);
    }
    let items = objects
        .iter()
        .map(to_value)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items,
        "metadata": {"resourceVersion": ""},
    }))
}

fn print(
    objects: &[Object],
    format: Format,
    single: bool,
    several_kinds: bool,
    args: &GetArgs,
) -> Result<(), Error> {
    match format {
        Format::Name => {
            for obj in objects {
                println!("{}", object_ref(obj));
            }
        }
        Format::Json => {
            let doc = document(objects, single)?;
            let text = serde_json::to_string_pretty(&doc)
                .map_err(|e| Error::Other(format!("cannot encode JSON: {e}")))?;
            println!("{text}");
        }
        Format::JsonPath(template) => {
            let doc = document(objects, single)?;
            print!("{}", template.render(&doc));
        }
        Format::Yaml => {
            let doc = document(objects, single)?;
            let text = serde_yaml_ng::to_string(&doc)
                .map_err(|e| Error::Other(format!("cannot encode YAML: {e}")))?;
            print!("{text}");
        }
        Format::Table { wide } => {
            // Objects of several kinds (KIND/NAME arguments) get one table per kind.
            let mut kinds: Vec<&'static KindInfo> = Vec::new();
            for obj in objects {
                if !kinds.contains(&obj.info()) {
                    kinds.push(obj.info());
                }
            }
            let now = time::OffsetDateTime::now_utc();
            for (i, info) in kinds.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                let of_kind: Vec<&Object> = objects.iter().filter(|o| o.info() == *info).collect();
                print!(
                    "{}",
                    kind_table(info, &of_kind, wide, args, several_kinds, now)?
                );
            }
        }
    }
    Ok(())
}

fn kind_table(
    info: &KindInfo,
    objects: &[&Object],
    wide: bool,
    args: &GetArgs,
    qualify: bool,
    now: time::OffsetDateTime,
) -> Result<String, Error> {
    let rows = objects
        .iter()
        .map(|obj| row(info, obj, wide, args, qualify, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(table::render(&header(info, wide, args), &rows))
}

/// The table header for `info`.
pub(crate) fn header(info: &KindInfo, wide: bool, args: &GetArgs) -> Vec<String> {
    let columns = table::extra_columns(info.kind);
    let mut header = Vec::new();
    if args.all_namespaces && info.namespaced {
        header.push("NAMESPACE".to_owned());
    }
    header.push("NAME".to_owned());
    let names = |place| {
        columns
            .iter()
            .filter(move |c| c.place == place)
            .map(|c| c.name.to_owned())
    };
    header.extend(names(Place::BeforeAge));
    header.push("AGE".to_owned());
    header.extend(names(Place::AfterAge));
    if wide {
        header.extend(names(Place::Wide));
    }
    if args.show_labels {
        header.push("LABELS".to_owned());
    }
    header
}

/// One object's table row, matching [`header`].
pub(crate) fn row(
    info: &KindInfo,
    obj: &Object,
    wide: bool,
    args: &GetArgs,
    qualify: bool,
    now: time::OffsetDateTime,
) -> Result<Vec<String>, Error> {
    let columns = table::extra_columns(info.kind);
    let v = to_value(obj)?;
    let mut row = Vec::new();
    if args.all_namespaces && info.namespaced {
        row.push(obj.namespace().to_owned());
    }
    row.push(if qualify {
        object_ref(obj)
    } else {
        obj.name().to_owned()
    });
    let cells = |place| {
        columns
            .iter()
            .filter(move |c| c.place == place)
            .map(|c| (c.cell)(&v))
    };
    row.extend(cells(Place::BeforeAge));
    row.push(table::age(
        table::at(&v, "metadata.creationTimestamp").and_then(Value::as_str),
        now,
    ));
    row.extend(cells(Place::AfterAge));
    if wide {
        row.extend(cells(Place::Wide));
    }
    if args.show_labels {
        let labels = obj
            .metadata()
            .map(|m| {
                m.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        row.push(if labels.is_empty() {
            "<none>".into()
        } else {
            labels
        });
    }
    Ok(row)
}

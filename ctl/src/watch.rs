//! `get -w`: list, print, then print every change as it happens, resuming
//! the watch from the last revision seen when a replica ends the stream
//! (the client fails over to another replica on reopening). A resume point
//! the server has compacted (`Expired`) lists again and carries on.

use std::time::Duration;

use capstan_proto::KindInfo;
use capstan_proto::rpc::EventType;

use crate::dynamic::DynApi;
use crate::get::{Format, GetArgs, header, row, to_value};
use crate::{Context, Error, object_ref, table};

/// Pause before reopening a stream that ended.
const REOPEN_AFTER: Duration = Duration::from_millis(200);

/// Prints objects one at a time: table rows padded to the first rows'
/// widths (the header is printed once), YAML documents separated by
/// `---`, JSON documents one after another, or `kind/name` lines.
struct Printer<'a> {
    info: &'static KindInfo,
    format: Format,
    args: &'a GetArgs,
    widths: Vec<usize>,
}

impl Printer<'_> {
    fn line(&self, cells: &[String]) -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let w = self.widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<w$}   "));
            }
        }
        out.trim_end().to_owned()
    }

    fn start(&mut self, objects: &[capstan_proto::Object]) -> Result<(), Error> {
        if let Format::Table { wide } = self.format {
            let now = time::OffsetDateTime::now_utc();
            let header = header(self.info, wide, self.args);
            let rows = objects
                .iter()
                .map(|o| row(self.info, o, wide, self.args, false, now))
                .collect::<Result<Vec<_>, _>>()?;
            print!("{}", table::render(&header, &rows));
            self.widths = header.iter().map(String::len).collect();
            for r in &rows {
                for (w, c) in self.widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            return Ok(());
        }
        objects.iter().try_for_each(|o| self.object(o))
    }

    fn object(&self, obj: &capstan_proto::Object) -> Result<(), Error> {
        match &self.format {
            Format::Table { wide } => {
                let now = time::OffsetDateTime::now_utc();
                println!(
                    "{}",
                    self.line(&row(self.info, obj, *wide, self.args, false, now)?)
                );
            }
            Format::Name => println!("{}", object_ref(obj)),
            Format::JsonPath(template) => print!("{}", template.render(&to_value(obj)?)),
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&to_value(obj)?)
                    .map_err(|e| Error::Other(format!("cannot encode JSON: {e}")))?
            ),
            Format::Yaml => print!(
                "---\n{}",
                serde_yaml_ng::to_string(&to_value(obj)?)
                    .map_err(|e| Error::Other(format!("cannot encode YAML: {e}")))?
            ),
        }
        Ok(())
    }
}

/// Runs `get -w` for one kind (one object when `name` is given).
pub async fn watch(
    ctx: &Context,
    args: &GetArgs,
    format: Format,
    info: &'static KindInfo,
    name: Option<&str>,
) -> Result<(), Error> {
    let namespace = if args.all_namespaces {
        ""
    } else {
        ctx.namespace.as_str()
    };
    let api = DynApi::new(&ctx.client, info, namespace);
    let labels = args.selector.as_deref().unwrap_or("");
    let mut fields = args.field_selector.clone().unwrap_or_default();
    if let Some(name) = name {
        if !fields.is_empty() {
            fields.push(',');
        }
        fields.push_str(&format!("metadata.name={name}"));
    }
    let mut printer = Printer {
        info,
        format,
        args,
        widths: Vec::new(),
    };
    let (objects, mut rv) = api.list_at(labels, &fields).await?;
    printer.start(&objects)?;
    loop {
        let mut stream = api.watch(labels, &fields, &rv).await?;
        loop {
            let event = match stream.message().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(status) => {
                    let e = capstan_client::Error::from_status(&status);
                    if e.is_expired() {
                        rv = relist(&api, labels, &fields, &printer).await?;
                        break;
                    }
                    // The replica went away mid-stream: reopen elsewhere.
                    break;
                }
            };
            match EventType::try_from(event.r#type) {
                Ok(EventType::Bookmark) => rv = event.resource_version,
                Ok(EventType::Added | EventType::Modified | EventType::Deleted) => {
                    let obj = api.decode(&event.object)?;
                    rv = event.resource_version;
                    printer.object(&obj)?;
                }
                Ok(EventType::Error) => {
                    let status = event.error.unwrap_or_default();
                    if status.reason == "Expired" || status.reason == "Gone" {
                        rv = relist(&api, labels, &fields, &printer).await?;
                        break;
                    }
                    return Err(Error::Other(format!(
                        "the watch ended: {}: {}",
                        status.reason, status.message
                    )));
                }
                Err(_) => {
                    return Err(Error::Other(format!(
                        "unknown watch event type {}",
                        event.r#type
                    )));
                }
            }
        }
        tokio::time::sleep(REOPEN_AFTER).await;
    }
}

/// Lists again after the resume point was compacted; prints every object
/// (changes in the gap cannot be told apart) and returns the new revision.
async fn relist(
    api: &DynApi,
    labels: &str,
    fields: &str,
    printer: &Printer<'_>,
) -> Result<String, Error> {
    let (objects, rv) = api.list_at(labels, fields).await?;
    objects.iter().try_for_each(|o| printer.object(o))?;
    Ok(rv)
}

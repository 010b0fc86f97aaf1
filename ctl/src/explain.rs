//! `explain KIND[.field.path]`: a kind's or a field's description and its
//! fields, from the comments in the API's own protobuf descriptors
//! ([`capstan_proto::schema`]), laid out as `kubectl explain` does.

use capstan_proto::schema::{MessageSchema, schema};
use clap::Args;

use crate::Error;

/// `capctl explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// `KIND` or `KIND.field.path` (`pods.spec.containers`).
    #[arg(value_name = "KIND[.FIELD…]")]
    pub target: String,
}

fn indent(text: &str, by: &str) -> String {
    if text.is_empty() {
        return format!("{by}<empty>\n");
    }
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

fn fields(message: &MessageSchema, root: bool) -> String {
    let mut out = String::from("FIELDS:\n");
    if root {
        out.push_str("   apiVersion\t<string>\n     The versioned schema of this object.\n\n");
        out.push_str("   kind\t<string>\n     The kind of this object.\n\n");
    }
    for f in &message.fields {
        out.push_str(&format!("   {}\t<{}>\n", f.json_name, f.type_name()));
        out.push_str(&indent(f.doc.lines().next().unwrap_or(""), "     "));
        out.push('\n');
    }
    out
}

/// The text `explain` prints for `target`.
pub fn explain_text(target: &str) -> Result<String, Error> {
    let (kind, path) = target.split_once('.').unwrap_or((target, ""));
    let info = crate::kind(kind)?;
    let root = info.schema();
    let mut out = format!(
        "KIND:     {}\nVERSION:  {}\n\n",
        info.kind, info.api_version
    );
    if path.is_empty() {
        out.push_str("DESCRIPTION:\n");
        out.push_str(&indent(&root.doc, "     "));
        out.push('\n');
        out.push_str(&fields(root, true));
        return Ok(out);
    }
    let found = schema().resolve(info.message, path).ok_or_else(|| {
        Error::Usage(format!(
            "field \"{path}\" does not exist in {} (see `capctl explain {kind}`)",
            info.kind
        ))
    })?;
    out.push_str(&format!(
        "FIELD:    {} <{}>\n\nDESCRIPTION:\n",
        found.field.json_name,
        found.field.type_name()
    ));
    out.push_str(&indent(&found.field.doc, "     "));
    if let Some(m) = found.message {
        if !m.doc.is_empty() && m.doc != found.field.doc {
            out.push_str(&indent(&m.doc, "     "));
        }
        out.push('\n');
        out.push_str(&fields(m, false));
    }
    Ok(out)
}

/// Runs `capctl explain`.
pub fn explain(args: &ExplainArgs) -> Result<(), Error> {
    print!("{}", explain_text(&args.target)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_field_paths() {
        let pod = explain_text("pods").unwrap();
        assert!(pod.starts_with("KIND:     Pod\nVERSION:  v1\n"), "{pod}");
        assert!(
            pod.contains("   spec\t<PodSpec>") || pod.contains("   spec\t<"),
            "{pod}"
        );
        let containers = explain_text("po.spec.containers").unwrap();
        assert!(
            containers.contains("FIELD:    containers <[]"),
            "{containers}"
        );
        assert!(containers.contains("   image\t<string>"), "{containers}");
        let err = explain_text("pods.spec.nope").unwrap_err();
        assert!(err.to_string().contains("spec.nope"), "{err}");
        assert_eq!(err.exit_code(), crate::EXIT_USAGE);
    }
}

//! Build script: compiles `proto/**/*.proto` with prost-build and derives
//! serde for every generated message from its descriptor, so the Rust types
//! read and write Kubernetes JSON:
//!
//! - every field is renamed to its proto `json_name` (`podIP`, `clusterIPs`);
//! - empty values are omitted as Kubernetes omits them: empty strings, empty
//!   lists, empty maps and absent (`None`) messages and `optional` scalars;
//! - `map<string, bytes>` fields are base64 in JSON, as Kubernetes writes them;
//! - a plain (non-`optional`) numeric or bool field is refused, because it
//!   could not tell `replicas: 0` from an absent field and so would not
//!   round-trip a document exactly.
//!
//! The descriptor set (with source info, so comments are kept for `explain`)
//! is written to `$OUT_DIR/capstan_descriptor_set.bin`; `src/schema.rs`
//! embeds it and the decoder walks documents against it.

use std::env;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};

/// Proto messages implemented by hand in the crate, with their Rust paths.
const EXTERN_TYPES: &[(&str, &str)] = &[
    (".capstan.meta.v1.Quantity", "crate::quantity::Quantity"),
    (".capstan.meta.v1.Time", "crate::timestamp::Time"),
    (".capstan.meta.v1.MicroTime", "crate::timestamp::MicroTime"),
    (".capstan.meta.v1.IntOrString", "crate::intstr::IntOrString"),
    (
        ".capstan.meta.v1.RawExtension",
        "crate::raw_extension::RawExtension",
    ),
];

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from("proto");
    let mut protos = Vec::new();
    collect_protos(&root, &mut protos)?;
    protos.sort();
    println!("cargo:rerun-if-changed=proto");
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let mut config = prost_build::Config::new();
    config.btree_map(["."]);
    for (proto, rust) in EXTERN_TYPES {
        config.extern_path(*proto, *rust);
    }
    let fds = config.load_fds(&protos, &[&root])?;
    annotate(&mut config, &fds)?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("capstan_descriptor_set.bin"),
        fds.encode_to_vec(),
    )?;
    config.compile_fds(fds)?;

    // The client API service (no serde: its messages carry encoded objects).
    println!("cargo:rerun-if-changed=rpc/resource.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["rpc/resource.proto"], &["rpc"])?;
    Ok(())
}

/// Every `.proto` file under `dir`, recursively.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// Adds the serde derive and per-field serde attributes to every generated
/// message of our own packages.
fn annotate(config: &mut prost_build::Config, fds: &FileDescriptorSet) -> Result<(), String> {
    for file in &fds.file {
        let package = file.package();
        if !package.starts_with("capstan.") {
            continue;
        }
        for message in &file.message_type {
            let path = format!(".{package}.{}", message.name());
            if EXTERN_TYPES.iter().any(|(p, _)| *p == path) {
                continue;
            }
            if message
                .nested_type
                .iter()
                .any(|n| !n.options.as_ref().is_some_and(|o| o.map_entry()))
            {
                return Err(format!("{path}: nested messages are not supported"));
            }
            config.message_attribute(
                &path,
                "#[derive(::serde::Serialize, ::serde::Deserialize)]\n#[serde(default)]",
            );
            for field in &message.field {
                let attr = field_serde(&path, message, field)?;
                config.field_attribute(format!("{path}.{}", field.name()), attr);
            }
        }
    }
    Ok(())
}

/// The `#[serde(...)]` attribute for one field.
fn field_serde(
    message_path: &str,
    message: &DescriptorProto,
    field: &FieldDescriptorProto,
) -> Result<String, String> {
    let json_name = field
        .json_name
        .clone()
        .unwrap_or_else(|| lower_camel(field.name()));
    let mut parts = vec![format!("rename = \"{json_name}\"")];
    let repeated = field.label() == Label::Repeated;
    let ty = field.r#type();
    if let Some(entry) = repeated.then(|| map_entry(message, field)).flatten() {
        let value_is_bytes = entry
            .field
            .iter()
            .find(|f| f.number() == 2)
            .is_some_and(|f| f.r#type() == Type::Bytes);
        if value_is_bytes {
            parts.push("with = \"crate::serde_helpers::base64_map\"".into());
        }
        parts.push("skip_serializing_if = \"::std::collections::BTreeMap::is_empty\"".into());
    } else if repeated {
        if ty == Type::Bytes {
            return Err(format!(
                "{message_path}.{}: repeated bytes is not supported",
                field.name()
            ));
        }
        parts.push("skip_serializing_if = \"::std::vec::Vec::is_empty\"".into());
    } else if field.proto3_optional() || ty == Type::Message {
        parts.push("skip_serializing_if = \"::std::option::Option::is_none\"".into());
    } else {
        match ty {
            Type::String => {
                parts.push("skip_serializing_if = \"::std::string::String::is_empty\"".into())
            }
            Type::Bytes => {
                parts.push("with = \"crate::serde_helpers::base64_bytes\"".into());
                parts.push("skip_serializing_if = \"::std::vec::Vec::is_empty\"".into());
            }
            _ => {
                return Err(format!(
                    "{message_path}.{}: scalar fields must be `optional` so that an absent \
                     value and zero stay distinct",
                    field.name()
                ));
            }
        }
    }
    Ok(format!("#[serde({})]", parts.join(", ")))
}

/// The map-entry message of a `map<..>` field, if it is one.
fn map_entry<'a>(
    message: &'a DescriptorProto,
    field: &FieldDescriptorProto,
) -> Option<&'a DescriptorProto> {
    let type_name = field.type_name();
    let short = type_name.rsplit('.').next()?;
    message
        .nested_type
        .iter()
        .find(|n| n.name() == short && n.options.as_ref().is_some_and(|o| o.map_entry()))
}

/// protoc's default JSON name: `snake_case` to `lowerCamelCase`.
fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

//! The API schema at run time: the protobuf descriptor set produced by
//! `build.rs` (embedded in the crate, with source info so every field keeps
//! its comment), indexed by message name. The decoder walks documents
//! against it; `capctl explain` can print it.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

/// The serialized `FileDescriptorSet` of every proto in the crate, with
/// source info (comments).
pub static DESCRIPTOR_SET_BYTES: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/capstan_descriptor_set.bin"));

/// Full names of the hand-written value types, which the schema walk treats
/// as scalars with their own JSON forms.
pub mod well_known {
    /// `Quantity`: a string such as `250m` (a bare number is accepted).
    pub const QUANTITY: &str = "capstan.meta.v1.Quantity";
    /// `Time`: an RFC 3339 string.
    pub const TIME: &str = "capstan.meta.v1.Time";
    /// `MicroTime`: an RFC 3339 string.
    pub const MICRO_TIME: &str = "capstan.meta.v1.MicroTime";
    /// `IntOrString`: a number or a string.
    pub const INT_OR_STRING: &str = "capstan.meta.v1.IntOrString";
    /// `RawExtension`: any JSON value.
    pub const RAW_EXTENSION: &str = "capstan.meta.v1.RawExtension";
}

/// The type of a field's value (of each element, for repeated fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// `string`.
    String,
    /// `bool`.
    Bool,
    /// `int32` / `sint32` / `sfixed32`.
    Int32,
    /// `int64` / `sint64` / `sfixed64`.
    Int64,
    /// `uint32` / `fixed32`.
    UInt32,
    /// `uint64` / `fixed64`.
    UInt64,
    /// `float` / `double`.
    Float,
    /// `bytes`, base64 in JSON.
    Bytes,
    /// A message, by full name without the leading dot.
    Message(String),
    /// A `map<string, V>`, with the value type.
    Map(Box<FieldType>),
}

/// One field of a message.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// The proto field name (`pod_ip`).
    pub name: String,
    /// The JSON name (`podIP`).
    pub json_name: String,
    /// The value type.
    pub ty: FieldType,
    /// Whether the field is a list (maps are not).
    pub repeated: bool,
    /// The field's comment from the proto, trimmed.
    pub doc: String,
}

/// One message: its fields and comment.
#[derive(Debug, Clone)]
pub struct MessageSchema {
    /// Full name without the leading dot (`capstan.core.v1.Pod`).
    pub full_name: String,
    /// The message's comment from the proto, trimmed.
    pub doc: String,
    /// The fields, in declaration order.
    pub fields: Vec<FieldSchema>,
}

impl MessageSchema {
    /// The field with this JSON name.
    pub fn field(&self, json_name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.json_name == json_name)
    }
}

/// Every message of the API, by full name.
#[derive(Debug)]
pub struct Schema {
    messages: HashMap<String, MessageSchema>,
}

impl Schema {
    /// The message with this full name (`capstan.core.v1.Pod`).
    pub fn message(&self, full_name: &str) -> Option<&MessageSchema> {
        self.messages.get(full_name.trim_start_matches('.'))
    }

    /// Every message, in no particular order.
    pub fn messages(&self) -> impl Iterator<Item = &MessageSchema> {
        self.messages.values()
    }
}

/// The decoded descriptor set.
pub fn descriptor_set() -> &'static FileDescriptorSet {
    static SET: LazyLock<FileDescriptorSet> = LazyLock::new(|| {
        FileDescriptorSet::decode(DESCRIPTOR_SET_BYTES).expect("embedded descriptor set decodes")
    });
    &SET
}

/// The API schema, built once from the descriptor set.
pub fn schema() -> &'static Schema {
    static SCHEMA: LazyLock<Schema> = LazyLock::new(|| build(descriptor_set()));
    &SCHEMA
}

fn build(set: &FileDescriptorSet) -> Schema {
    let mut messages = HashMap::new();
    for file in &set.file {
        let comments: HashMap<&[i32], &str> = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .filter_map(|l| Some((l.path.as_slice(), l.leading_comments.as_deref()?)))
            .collect();
        for (mi, message) in file.message_type.iter().enumerate() {
            let mi = mi as i32;
            let full_name = format!("{}.{}", file.package(), message.name());
            let fields = message
                .field
                .iter()
                .enumerate()
                .map(|(fi, field)| {
                    let ty = field_type(message, field.r#type(), field.type_name());
                    let is_map = matches!(ty, FieldType::Map(_));
                    FieldSchema {
                        name: field.name().to_owned(),
                        json_name: field.json_name().to_owned(),
                        ty,
                        repeated: field.label() == Label::Repeated && !is_map,
                        doc: clean(comments.get(&[4, mi, 2, fi as i32][..]).copied()),
                    }
                })
                .collect();
            let doc = clean(comments.get(&[4, mi][..]).copied());
            messages.insert(
                full_name.clone(),
                MessageSchema {
                    full_name,
                    doc,
                    fields,
                },
            );
        }
    }
    Schema { messages }
}

fn field_type(message: &DescriptorProto, ty: Type, type_name: &str) -> FieldType {
    match ty {
        Type::String => FieldType::String,
        Type::Bool => FieldType::Bool,
        Type::Int32 | Type::Sint32 | Type::Sfixed32 | Type::Enum => FieldType::Int32,
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => FieldType::Int64,
        Type::Uint32 | Type::Fixed32 => FieldType::UInt32,
        Type::Uint64 | Type::Fixed64 => FieldType::UInt64,
        Type::Float | Type::Double => FieldType::Float,
        Type::Bytes => FieldType::Bytes,
        Type::Message | Type::Group => {
            let short = type_name.rsplit('.').next().unwrap_or_default();
            let entry = message
                .nested_type
                .iter()
                .find(|n| n.name() == short && n.options.as_ref().is_some_and(|o| o.map_entry()));
            match entry.and_then(|e| e.field.iter().find(|f| f.number() == 2)) {
                Some(value) => FieldType::Map(Box::new(field_type(
                    message,
                    value.r#type(),
                    value.type_name(),
                ))),
                None => FieldType::Message(type_name.trim_start_matches('.').to_owned()),
            }
        }
    }
}

fn clean(comment: Option<&str>) -> String {
    comment
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_carry_json_names_and_docs() {
        let pod_status = schema().message("capstan.core.v1.PodStatus").unwrap();
        let pod_ip = pod_status.field("podIP").unwrap();
        assert_eq!(pod_ip.name, "pod_ip");
        assert_eq!(pod_ip.ty, FieldType::String);
        assert!(pod_ip.doc.contains("IP address"), "{}", pod_ip.doc);
        let labels = schema()
            .message(".capstan.meta.v1.ObjectMeta")
            .unwrap()
            .field("labels")
            .unwrap();
        assert_eq!(labels.ty, FieldType::Map(Box::new(FieldType::String)));
        assert!(!labels.repeated);
    }

    #[test]
    fn resolves_paths_for_explain() {
        let s = schema();
        let containers = s
            .resolve(
                "capstan.apps.v1.Deployment",
                "spec.template.spec.containers",
            )
            .unwrap();
        assert_eq!(containers.field.type_name(), "[]Container");
        assert!(containers.message.unwrap().field("image").is_some());
        let limits = s
            .resolve("capstan.core.v1.Pod", "spec.containers.resources.limits")
            .unwrap();
        assert_eq!(limits.field.type_name(), "map[string]Quantity");
        assert!(limits.message.is_none());
        let port = s
            .resolve("capstan.core.v1.Service", "spec.ports.targetPort")
            .unwrap();
        assert_eq!(port.field.type_name(), "IntOrString");
        assert!(s.resolve("capstan.core.v1.Pod", "spec.nope").is_none());
        assert!(
            s.resolve("capstan.core.v1.Pod", "metadata.name.x")
                .is_none()
        );
    }
}

/// A field found by [`Schema::resolve`], with the message its values hold
/// (for message, list-of-message and map-of-message fields).
#[derive(Debug, Clone, Copy)]
pub struct ResolvedField<'a> {
    /// The field.
    pub field: &'a FieldSchema,
    /// The message of its values, when they are messages with fields.
    pub message: Option<&'a MessageSchema>,
}

impl Schema {
    /// Follows a dotted JSON field path (`spec.template.spec.containers`,
    /// no list indexes or map keys) from the message `root`, for `explain`.
    pub fn resolve(&self, root: &str, path: &str) -> Option<ResolvedField<'_>> {
        let mut message = self.message(root)?;
        let mut found = None;
        for name in path.split('.').filter(|s| !s.is_empty()) {
            if found.is_some() {
                message = found.and_then(|f: ResolvedField<'_>| f.message)?;
            }
            let field = message.field(name)?;
            let inner = match &field.ty {
                FieldType::Map(value) => value.as_ref(),
                other => other,
            };
            let message = match inner {
                FieldType::Message(name) => self
                    .message(name)
                    .filter(|m| !is_scalar_message(name) && !m.fields.is_empty()),
                _ => None,
            };
            found = Some(ResolvedField { field, message });
        }
        found
    }
}

/// Whether a message is one of the hand-written value types, which JSON
/// writes as scalars.
fn is_scalar_message(name: &str) -> bool {
    use well_known::*;
    [QUANTITY, TIME, MICRO_TIME, INT_OR_STRING, RAW_EXTENSION].contains(&name)
}

impl FieldSchema {
    /// The JSON type in `kubectl explain`'s words: `string`, `integer`,
    /// `boolean`, `[]Container`, `map[string]string`, `Object`.
    pub fn type_name(&self) -> String {
        let base = type_word(&self.ty);
        if self.repeated {
            format!("[]{base}")
        } else {
            base
        }
    }
}

fn type_word(ty: &FieldType) -> String {
    match ty {
        FieldType::String => "string".into(),
        FieldType::Bool => "boolean".into(),
        FieldType::Int32 | FieldType::Int64 | FieldType::UInt32 | FieldType::UInt64 => {
            "integer".into()
        }
        FieldType::Float => "number".into(),
        FieldType::Bytes => "string (base64)".into(),
        FieldType::Map(value) => format!("map[string]{}", type_word(value)),
        FieldType::Message(name) => match name.as_str() {
            well_known::QUANTITY => "Quantity".into(),
            well_known::TIME | well_known::MICRO_TIME => "string (RFC 3339)".into(),
            well_known::INT_OR_STRING => "IntOrString".into(),
            well_known::RAW_EXTENSION => "Object (any)".into(),
            other => other.rsplit('.').next().unwrap_or(other).to_owned(),
        },
    }
}

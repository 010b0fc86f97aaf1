//! Reading and writing Kubernetes JSON and YAML.
//!
//! Decoding: bytes (YAML or JSON, possibly several documents, `kind: List`
//! expanded) → for each document, `apiVersion` and `kind` resolved against
//! [`KINDS`] → the document walked against the kind's
//! schema collecting every problem → the typed object. Nothing is returned
//! unless every document is valid.
//!
//! Encoding: typed object → JSON or YAML exactly as Kubernetes writes it:
//! `apiVersion` and `kind` first, camelCase names, empty fields omitted.
//! One simplification: an empty string is always omitted, also for the few
//! fields Kubernetes writes even when empty (e.g. `imageID: ""`).
//!
//! ```
//! use capstan_proto::{Object, decode};
//!
//! let yaml = b"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: web, image: nginx}]}\n";
//! let objects = decode(yaml).unwrap();
//! let Object::Pod(pod) = &objects[0] else { unreachable!() };
//! assert_eq!(pod.spec.as_ref().unwrap().containers[0].image, "nginx");
//! assert!(objects[0].to_yaml().unwrap().starts_with("apiVersion: v1\nkind: Pod\n"));
//!
//! let err = decode(b"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: web, imagee: nginx}]}\n")
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "spec.containers[0].imagee: unknown field (did you mean spec.containers[0].image?)"
//! );
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DecodeError, FieldError, Reason};
use crate::kinds::{self, KINDS, KindInfo, Object, Resource};
use crate::validate::{Walker, describe, has_string, suggest};

/// A typed object serialized with its `apiVersion` and `kind` first.
#[derive(Debug, Serialize)]
pub struct Typed<'a, T> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    object: &'a T,
}

impl<'a, T: Resource> Typed<'a, T> {
    /// Wraps `object` for serialization with its type fields.
    pub fn new(object: &'a T) -> Self {
        Self {
            api_version: T::INFO.api_version,
            kind: T::INFO.kind,
            object,
        }
    }
}

/// Decodes every document in `input` (YAML or JSON); all must be valid.
pub fn decode(input: &[u8]) -> Result<Vec<Object>, DecodeError> {
    let documents = parse_documents(input)?;
    let many = documents.len() > 1;
    let mut objects = Vec::with_capacity(documents.len());
    let mut errors = Vec::new();
    for (i, document) in documents.into_iter().enumerate() {
        match decode_value(document) {
            Ok(object) => objects.push(object),
            Err(e) => errors.extend(e.errors.into_iter().map(|mut e| {
                e.document = many.then_some(i);
                e
            })),
        }
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        Err(DecodeError { errors })
    }
}

/// Decodes exactly one document.
pub fn decode_one(input: &[u8]) -> Result<Object, DecodeError> {
    let mut documents = parse_documents(input)?;
    if documents.len() != 1 {
        return Err(DecodeError::single(FieldError::new(
            "",
            Reason::InvalidValue,
            format!("expected exactly one document, found {}", documents.len()),
        )));
    }
    decode_value(documents.remove(0))
}

/// Decodes exactly one document, which must be of kind `T`.
pub fn decode_as<T: Resource>(input: &[u8]) -> Result<T, DecodeError> {
    T::from_object(decode_one(input)?).map_err(|other| {
        let got = other.info();
        DecodeError::single(FieldError::new(
            "kind",
            Reason::InvalidValue,
            format!(
                "expected {} {}, got {} {}",
                T::INFO.api_version,
                T::INFO.kind,
                got.api_version,
                got.kind
            ),
        ))
    })
}

/// Checks one JSON document against its kind's schema and deserializes it.
pub fn decode_value(mut document: Value) -> Result<Object, DecodeError> {
    let mut errors = Vec::new();
    let info = check_document(&mut document, &mut errors);
    match info {
        Some(info) if errors.is_empty() => {
            Object::from_checked_value(info, document).map_err(|e| {
                DecodeError::single(FieldError::new("", Reason::InvalidValue, e.to_string()))
            })
        }
        _ => Err(DecodeError { errors }),
    }
}

/// Splits `input` into JSON values, one per document: JSON when it starts
/// with `{`, YAML otherwise. Empty YAML documents are skipped and
/// `kind: List` documents are replaced by their items. Syntax errors carry
/// the line they were found on.
pub fn parse_documents(input: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let text = std::str::from_utf8(input).map_err(|e| {
        DecodeError::single(FieldError::new(
            "",
            Reason::Syntax,
            format!("input is not UTF-8: {e}"),
        ))
    })?;
    let mut documents = Vec::new();
    if text.trim_start().starts_with('{') {
        for document in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            let document = document.map_err(|e| syntax_error("JSON", e.line(), &e.to_string()))?;
            documents.push(document);
        }
    } else {
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let document = Value::deserialize(document).map_err(|e| {
                let line = e.location().map(|l| l.line()).unwrap_or(0);
                syntax_error("YAML", line, &e.to_string())
            })?;
            if !document.is_null() {
                documents.push(document);
            }
        }
    }
    Ok(documents.into_iter().flat_map(expand_list).collect())
}

fn syntax_error(format: &str, line: usize, detail: &str) -> DecodeError {
    let mut error = FieldError::new(
        "",
        Reason::Syntax,
        if detail.contains("line") {
            format!("invalid {format}: {detail}")
        } else {
            format!("invalid {format} at line {line}: {detail}")
        },
    );
    error.line = Some(line);
    DecodeError::single(error)
}

/// A `kind: List` document's items, or the document itself.
fn expand_list(document: Value) -> Vec<Value> {
    let is_list = document.get("kind").and_then(Value::as_str) == Some("List")
        && document.get("items").is_some_and(Value::is_array);
    match document {
        Value::Object(mut object) if is_list => match object.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        other => vec![other],
    }
}

/// Resolves the document's kind and walks it; returns the kind when known.
fn check_document(document: &mut Value, errors: &mut Vec<FieldError>) -> Option<&'static KindInfo> {
    let Value::Object(object) = document else {
        errors.push(FieldError::new(
            "",
            Reason::WrongType,
            format!("expected an object, got {}", describe(document)),
        ));
        return None;
    };
    let api_version = type_field(object, "apiVersion", errors);
    let kind = type_field(object, "kind", errors);
    let info = match (api_version, kind) {
        (_, None) => None,
        (Some(api_version), Some(kind)) => match kinds::lookup(&api_version, &kind) {
            Some(info) => Some(info),
            None => unserved(&api_version, &kind, errors),
        },
        (None, Some(kind)) => match kinds::lookup_kind(&kind) {
            Some(info) => Some(info),
            None => unserved("", &kind, errors),
        },
    };
    let info = info?;
    Walker {
        schema: crate::schema::schema(),
        errors,
    }
    .walk_message(info.schema(), document, "", &["apiVersion", "kind"]);
    match document.get("metadata") {
        Some(Value::Object(meta))
            if has_string(meta, "name") || has_string(meta, "generateName") => {}
        Some(Value::Object(_)) | None => errors.push(FieldError::new(
            "metadata.name",
            Reason::Required,
            "required value (or set metadata.generateName)",
        )),
        Some(_) => {} // already reported as the wrong type
    }
    Some(info)
}

/// Reads `apiVersion` or `kind`, reporting it missing or mistyped.
fn type_field(
    object: &serde_json::Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            errors.push(FieldError::new(key, Reason::Required, "required value"));
            None
        }
        Some(other) => {
            errors.push(FieldError::new(
                key,
                Reason::WrongType,
                format!("expected string, got {}", describe(other)),
            ));
            None
        }
    }
}

/// Reports an unserved apiVersion/kind pair; returns the kind to check the
/// rest of the document against, when the kind is served in another version.
fn unserved(
    api_version: &str,
    kind: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'static KindInfo> {
    if let Some(info) = kinds::lookup_kind(kind) {
        errors.push(FieldError::new(
            "apiVersion",
            Reason::NotServed,
            format!(
                "apiVersion {api_version} is not served; {kind} is served as {}",
                info.api_version
            ),
        ));
        return Some(info);
    }
    let suggestion = suggest(kind, KINDS.iter().map(|k| k.kind));
    let mut error = FieldError::new(
        "kind",
        Reason::NotServed,
        match suggestion {
            Some(s) => format!("kind {kind} is not served (did you mean {s}?)"),
            None => format!("kind {kind} is not served"),
        },
    );
    error.suggestion = suggestion.map(str::to_owned);
    errors.push(error);
    None
}

/// The JSON value of a typed object, with `apiVersion` and `kind`.
pub fn to_value<T: Resource>(object: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(Typed::new(object))
}

/// The compact JSON of a typed object, with `apiVersion` and `kind` first.
pub fn to_json<T: Resource>(object: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Typed::new(object))
}

/// The YAML of a typed object, with `apiVersion` and `kind` first.
pub fn to_yaml<T: Resource>(object: &T) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(&Typed::new(object))
}

impl<'de> Deserialize<'de> for Object {
    /// Reads a document with `apiVersion` and `kind`, checked like [`decode_value`].
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let document = Value::deserialize(deserializer)?;
        decode_value(document).map_err(serde::de::Error::custom)
    }
}

impl Object {
    /// Checks and decodes one JSON document (see [`decode_value`]).
    pub fn from_value(document: Value) -> Result<Object, DecodeError> {
        decode_value(document)
    }

    /// The JSON value, with `apiVersion` and `kind`.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// Compact JSON, `apiVersion` and `kind` first.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Indented JSON, `apiVersion` and `kind` first.
    pub fn to_json_pretty(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// YAML, `apiVersion` and `kind` first.
    pub fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        serde_yaml_ng::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_no_documents() {
        assert!(decode(b"").unwrap().is_empty());
        assert!(decode(b"---\n---\n").unwrap().is_empty());
        assert!(decode_one(b"").is_err());
    }

    #[test]
    fn concatenated_json_documents() {
        let input = br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}
{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}"#;
        let names: Vec<_> = decode(input)
            .unwrap()
            .iter()
            .map(|o| o.name().to_owned())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn non_object_document_is_refused() {
        let err = decode(b"- a\n- b\n").unwrap_err();
        assert_eq!(err.to_string(), "expected an object, got array");
    }

    #[test]
    fn null_fields_read_as_absent() {
        let object = decode_one(
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: a, creationTimestamp: null}\nspec: null\n",
        )
        .unwrap();
        assert_eq!(
            object.to_json().unwrap(),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}"#
        );
    }

    #[test]
    fn typed_serializes_type_fields_first() {
        let mut ns = crate::api::core::v1::Namespace::default();
        ns.metadata_mut().name = "a".into();
        assert_eq!(
            to_yaml(&ns).unwrap(),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n"
        );
    }
}

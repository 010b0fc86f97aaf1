//! The schema walk: checks a JSON document against a message of the
//! [`schema`](crate::schema) and collects every problem, not just the first:
//! unknown fields (with a suggestion when one is a small edit away) and
//! values of the wrong type. It also normalizes the document for serde:
//! `null` fields are removed (Kubernetes treats them as absent) and bare
//! numbers given as quantities become strings.

use serde_json::{Map, Value};

use crate::error::{FieldError, Reason};
use crate::schema::{FieldType, MessageSchema, Schema, well_known};

/// Walks documents against one schema, appending problems to `errors`.
pub(crate) struct Walker<'a> {
    pub(crate) schema: &'a Schema,
    pub(crate) errors: &'a mut Vec<FieldError>,
}

impl Walker<'_> {
    /// Checks the object `value` against `message`; `also_known` are extra
    /// accepted keys (`apiVersion` and `kind` at the top level), which are
    /// left for the caller to check.
    pub(crate) fn walk_message(
        &mut self,
        message: &MessageSchema,
        value: &mut Value,
        path: &str,
        also_known: &[&str],
    ) {
        let Value::Object(object) = value else {
            self.wrong_type(path, "object", value);
            return;
        };
        object.retain(|_, v| !v.is_null());
        for (key, child) in object.iter_mut() {
            let child_path = join(path, key);
            if also_known.contains(&key.as_str()) {
                continue;
            }
            match message.field(key) {
                Some(field) if field.repeated => {
                    let Value::Array(items) = child else {
                        self.wrong_type(&child_path, "array", child);
                        continue;
                    };
                    for (i, item) in items.iter_mut().enumerate() {
                        self.walk_value(&field.ty, item, &format!("{child_path}[{i}]"));
                    }
                }
                Some(field) => self.walk_value(&field.ty, child, &child_path),
                None => self.unknown_field(message, also_known, path, key),
            }
        }
    }

    fn walk_value(&mut self, ty: &FieldType, value: &mut Value, path: &str) {
        match ty {
            FieldType::String => {
                if !value.is_string() {
                    self.wrong_type(path, "string", value);
                }
            }
            FieldType::Bool => {
                if !value.is_boolean() {
                    self.wrong_type(path, "boolean", value);
                }
            }
            FieldType::Int32 => self.integer(path, value, i32::MIN.into(), i32::MAX.into()),
            FieldType::Int64 => self.integer(path, value, i64::MIN.into(), i64::MAX.into()),
            FieldType::UInt32 => self.integer(path, value, 0, u32::MAX.into()),
            FieldType::UInt64 => self.integer(path, value, 0, u64::MAX.into()),
            FieldType::Float => {
                if !value.is_number() {
                    self.wrong_type(path, "number", value);
                }
            }
            FieldType::Bytes => self.base64(path, value),
            FieldType::Map(value_ty) => {
                let Value::Object(map) = value else {
                    self.wrong_type(path, "object", value);
                    return;
                };
                for (key, item) in map.iter_mut() {
                    self.walk_value(value_ty, item, &format!("{path}[{key}]"));
                }
            }
            FieldType::Message(name) => self.walk_named(name, value, path),
        }
    }

    fn walk_named(&mut self, name: &str, value: &mut Value, path: &str) {
        match name {
            well_known::TIME | well_known::MICRO_TIME => match value {
                Value::String(s) => {
                    if let Err(e) = crate::timestamp::Time::parse(s) {
                        self.push(FieldError::new(path, Reason::InvalidValue, e.to_string()));
                    }
                }
                other => self.wrong_type(path, "RFC 3339 timestamp string", other),
            },
            well_known::QUANTITY => {
                if let Value::Number(n) = value {
                    *value = Value::String(n.to_string());
                }
                match value {
                    Value::String(s) => {
                        if let Err(e) = crate::quantity::Quantity::parse(s) {
                            self.push(FieldError::new(path, Reason::InvalidValue, e.to_string()));
                        }
                    }
                    other => self.wrong_type(path, "quantity string", other),
                }
            }
            well_known::INT_OR_STRING => match value {
                Value::String(_) => {}
                Value::Number(_) => self.integer(path, value, i32::MIN.into(), i32::MAX.into()),
                other => self.wrong_type(path, "integer or string", other),
            },
            well_known::RAW_EXTENSION => {}
            _ => match self.schema.message(name) {
                Some(message) => self.walk_message(message, value, path, &[]),
                None => self.push(FieldError::new(
                    path,
                    Reason::InvalidValue,
                    format!("no schema for message {name}"),
                )),
            },
        }
    }

    fn integer(&mut self, path: &str, value: &Value, min: i128, max: i128) {
        let n = match value {
            Value::Number(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => {}
            Some(n) => self.push(FieldError::new(
                path,
                Reason::InvalidValue,
                format!("{n} is out of range ({min} to {max})"),
            )),
            None => self.wrong_type(path, "integer", value),
        }
    }

    fn base64(&mut self, path: &str, value: &Value) {
        use base64::Engine as _;
        match value {
            Value::String(s) => {
                if let Err(e) = base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                    self.push(FieldError::new(
                        path,
                        Reason::InvalidValue,
                        format!("invalid base64: {e}"),
                    ));
                }
            }
            other => self.wrong_type(path, "base64 string", other),
        }
    }

    fn unknown_field(
        &mut self,
        message: &MessageSchema,
        also_known: &[&str],
        path: &str,
        key: &str,
    ) {
        let candidates = message
            .fields
            .iter()
            .map(|f| f.json_name.as_str())
            .chain(also_known.iter().copied());
        let suggestion = suggest(key, candidates).map(|s| join(path, s));
        let message = match &suggestion {
            Some(s) => format!("unknown field (did you mean {s}?)"),
            None => "unknown field".to_owned(),
        };
        let mut error = FieldError::new(join(path, key), Reason::UnknownField, message);
        error.suggestion = suggestion;
        self.push(error);
    }

    fn wrong_type(&mut self, path: &str, expected: &str, got: &Value) {
        self.push(FieldError::new(
            path,
            Reason::WrongType,
            format!("expected {expected}, got {}", describe(got)),
        ));
    }

    fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }
}

/// `parent.child`, or `child` at the top level.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// The candidate closest to `input`, if it is a small edit away (about one
/// edit per three characters, at most three, and always at least one).
pub(crate) fn suggest<'a>(
    input: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (input.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| {
            let exact = strsim::damerau_levenshtein(input, c);
            let folded = strsim::damerau_levenshtein(&input.to_lowercase(), &c.to_lowercase());
            (exact.min(folded.max(1)), c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A short description of a JSON value for error messages: `string "x"`.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "array".to_owned(),
        Value::Object(_) => "object".to_owned(),
    }
}

/// Whether `object[key]` is a non-empty string.
pub(crate) fn has_string(object: &Map<String, Value>, key: &str) -> bool {
    object
        .get(key)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_edits_only() {
        let fields = ["apiVersion", "kind", "metadata", "spec", "status"];
        assert_eq!(
            suggest("apiSerdion", fields.into_iter()),
            Some("apiVersion")
        );
        assert_eq!(suggest("matadata", fields.into_iter()), Some("metadata"));
        assert_eq!(suggest("Kind", fields.into_iter()), Some("kind"));
        assert_eq!(suggest("sepc", fields.into_iter()), Some("spec"));
        assert_eq!(suggest("banana", fields.into_iter()), None);
    }

    #[test]
    fn describe_values() {
        assert_eq!(describe(&Value::from("x")), "string \"x\"");
        assert_eq!(describe(&Value::from(1.5)), "number 1.5");
    }
}

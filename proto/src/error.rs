//! Decoding errors. A document is checked completely before it is refused,
//! so a [`DecodeError`] carries every problem found, each a [`FieldError`]
//! naming the offending field path (`spec.containers[0].imagee`).

use std::fmt;

/// What kind of problem a [`FieldError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The input is not well-formed YAML or JSON.
    Syntax,
    /// A field the schema does not have.
    UnknownField,
    /// A value of the wrong JSON type (a string where an integer belongs).
    WrongType,
    /// A value of the right type that is still not acceptable (bad base64,
    /// bad timestamp, out-of-range integer).
    InvalidValue,
    /// A required field is missing.
    Required,
    /// The `apiVersion`/`kind` pair is not served.
    NotServed,
    /// A value outside the supported set (an unknown `restartPolicy`).
    NotSupported,
    /// A value that must be unique appears twice (two containers named `web`).
    Duplicate,
    /// A value that may not be set or changed (an immutable field).
    Forbidden,
    /// A value longer than allowed.
    TooLong,
}

impl Reason {
    /// A stable machine-readable name, e.g. `FieldValueUnknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Syntax => "Syntax",
            Reason::UnknownField => "FieldValueUnknown",
            Reason::WrongType => "FieldValueTypeInvalid",
            Reason::InvalidValue => "FieldValueInvalid",
            Reason::Required => "FieldValueRequired",
            Reason::NotServed => "KindNotServed",
            Reason::NotSupported => "FieldValueNotSupported",
            Reason::Duplicate => "FieldValueDuplicate",
            Reason::Forbidden => "FieldValueForbidden",
            Reason::TooLong => "FieldValueTooLong",
        }
    }
}

/// One problem with one field of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Index of the document in a multi-document input, when it had several.
    pub document: Option<usize>,
    /// Path of the field, `spec.containers[0].image`; empty for the whole
    /// document (syntax errors).
    pub path: String,
    /// What kind of problem this is.
    pub reason: Reason,
    /// Human-readable description, e.g. `unknown field (did you mean spec.template?)`.
    pub message: String,
    /// For an unknown field: the path of the field probably meant.
    pub suggestion: Option<String>,
    /// For a syntax error: the 1-based line it was found on.
    pub line: Option<usize>,
}

impl FieldError {
    /// An error at `path` with no suggestion and no line.
    pub fn new(path: impl Into<String>, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            document: None,
            path: path.into(),
            reason,
            message: message.into(),
            suggestion: None,
            line: None,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(doc) = self.document {
            write!(f, "document {}: ", doc + 1)?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A document (or several) refused, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// Every problem found, in document order then field order.
    pub errors: Vec<FieldError>,
}

impl DecodeError {
    /// A decode error with a single problem.
    pub fn single(error: FieldError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// Whether some error reports exactly this field path.
    pub fn has_path(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [] => f.write_str("invalid document"),
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} errors:", many.len())?;
                for e in many {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_every_error() {
        let mut second = FieldError::new("spec.replica", Reason::UnknownField, "unknown field");
        second.document = Some(1);
        let err = DecodeError {
            errors: vec![
                FieldError::new("metadata.name", Reason::Required, "required value"),
                second,
            ],
        };
        assert_eq!(
            err.to_string(),
            "2 errors:\n  metadata.name: required value\n  document 2: spec.replica: unknown field"
        );
        assert!(err.has_path("spec.replica"));
        assert_eq!(Reason::Required.as_str(), "FieldValueRequired");
    }
}

//! Label key and value rules, with Kubernetes's messages
//! (`k8s.io/apimachinery/pkg/util/validation`): keys are qualified names
//! (`[prefix/]name`, the prefix a DNS-1123 subdomain), values are empty or
//! name-like.
//!
//! The `*_errors` functions return every problem found, as Kubernetes's
//! `Is…` functions do, for the apiserver to turn into field errors; the
//! `validate_*` functions wrap them in an [`InvalidLabel`].

use std::fmt;

/// Most characters in a label name (the part after any prefix) or value.
pub const LABEL_NAME_MAX_LENGTH: usize = 63;
/// Most characters in a DNS-1123 subdomain (a label key's prefix).
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const QUALIFIED_NAME_PATTERN: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
     alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation \
     is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

const DNS1123_SUBDOMAIN_PATTERN: &str = "a lowercase RFC 1123 subdomain must consist of lower \
     case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
     character (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const LABEL_VALUE_PATTERN: &str = "a valid label must be an empty string or consist of \
     alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
     character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is \
     '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// Which part of a label was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPart {
    /// The key (`app.kubernetes.io/name`).
    Key,
    /// The value.
    Value,
}

impl fmt::Display for LabelPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelPart::Key => "key",
            LabelPart::Value => "value",
        })
    }
}

/// A label key or value that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label {part} {text:?}: {}", .reasons.join("; "))]
pub struct InvalidLabel {
    /// Key or value.
    pub part: LabelPart,
    /// The offending text.
    pub text: String,
    /// Kubernetes's messages, one per broken rule (never empty).
    pub reasons: Vec<String>,
}

/// Checks a label key: an optional DNS-1123 subdomain prefix and `/`, then a
/// name of at most 63 characters, `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub fn validate_label_key(key: &str) -> Result<(), InvalidLabel> {
    invalid_if_any(LabelPart::Key, key, qualified_name_errors(key))
}

/// Checks a label value: empty, or at most 63 characters of
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub fn validate_label_value(value: &str) -> Result<(), InvalidLabel> {
    invalid_if_any(LabelPart::Value, value, label_value_errors(value))
}

fn invalid_if_any(part: LabelPart, text: &str, reasons: Vec<String>) -> Result<(), InvalidLabel> {
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(InvalidLabel {
            part,
            text: text.to_owned(),
            reasons,
        })
    }
}

/// Problems with a qualified name (a label or annotation key), in Kubernetes's
/// words (`IsQualifiedName`); empty if it is valid.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let name = match value.split_once('/') {
        None => value,
        Some((_, rest)) if rest.contains('/') => {
            errors.push(format!(
                "a qualified name {QUALIFIED_NAME_PATTERN} with an optional DNS subdomain prefix \
                 and '/' (e.g. 'example.com/MyName')"
            ));
            return errors;
        }
        Some((prefix, name)) => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|message| format!("prefix part {message}")),
                );
            }
            name
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > LABEL_NAME_MAX_LENGTH {
        errors.push(format!(
            "name part must be no more than {LABEL_NAME_MAX_LENGTH} characters"
        ));
    }
    if !is_name_like(name) {
        errors.push(format!("name part {QUALIFIED_NAME_PATTERN}"));
    }
    errors
}

/// Problems with a label value, in Kubernetes's words (`IsValidLabelValue`);
/// empty if it is valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_NAME_MAX_LENGTH {
        errors.push(format!(
            "must be no more than {LABEL_NAME_MAX_LENGTH} characters"
        ));
    }
    if !value.is_empty() && !is_name_like(value) {
        errors.push(LABEL_VALUE_PATTERN.to_owned());
    }
    errors
}

/// Problems with a DNS-1123 subdomain (`example.com`), in Kubernetes's words
/// (`IsDNS1123Subdomain`); empty if it is valid.
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errors.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters"
        ));
    }
    if !value.split('.').all(is_dns1123_label_like) {
        errors.push(DNS1123_SUBDOMAIN_PATTERN.to_owned());
    }
    errors
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, ignoring length.
fn is_name_like(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, ignoring length.
fn is_dns1123_label_like(text: &str) -> bool {
    let bytes = text.as_bytes();
    let end_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            end_ok(first) && end_ok(last) && bytes.iter().all(|b| end_ok(b) || *b == b'-')
        }
        _ => false,
    }
}

//! Label selectors, equality- and set-based, as strings
//! (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and as a `LabelSelector`'s
//! `matchLabels`/`matchExpressions`, with the label key and value rules they
//! share with object validation.
//!
//! A [`Selector`] is a list of [`Requirement`]s that must all hold; the empty
//! selector matches everything. Both forms end in the same type, validated as
//! Kubernetes validates them (`k8s.io/apimachinery/pkg/labels`), and
//! [`Selector`]'s `Display` writes the canonical string, which parses back to
//! an equal selector.
//!
//! Layout: `parser` reads the string syntax, `validation` holds the key and
//! value rules (re-exported here), this file the types, matching and printing.
//!
//! Differences from Kubernetes, none visible to a client: `==` is kept as `=`
//! (it means the same and prints as `=`), and a requirement's values are kept
//! sorted and deduplicated.

mod parser;
#[cfg(test)]
mod tests;
mod validation;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use validation::{
    DNS1123_SUBDOMAIN_MAX_LENGTH, InvalidLabel, LABEL_NAME_MAX_LENGTH, LabelPart,
    dns1123_subdomain_errors, label_value_errors, qualified_name_errors, validate_label_key,
    validate_label_value,
};

/// How a [`Requirement`] tests a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `key=value` or `key==value`: the label is present with that value.
    Equals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>5`: the label is present and an integer greater than the value
    /// (node affinity's `Gt`).
    GreaterThan,
    /// `key<5`: the label is present and an integer less than the value
    /// (node affinity's `Lt`).
    LessThan,
}

impl Operator {
    /// The operator named as in a `LabelSelector`'s `matchExpressions`
    /// (`In`, `NotIn`, `Exists`, `DoesNotExist`).
    pub fn from_label_selector_operator(name: &str) -> Option<Self> {
        match name {
            "In" => Some(Self::In),
            "NotIn" => Some(Self::NotIn),
            "Exists" => Some(Self::Exists),
            "DoesNotExist" => Some(Self::DoesNotExist),
            _ => None,
        }
    }

    /// The operator named as in a `NodeSelectorRequirement` (the
    /// `LabelSelector` ones plus `Gt` and `Lt`).
    pub fn from_node_selector_operator(name: &str) -> Option<Self> {
        match name {
            "Gt" => Some(Self::GreaterThan),
            "Lt" => Some(Self::LessThan),
            _ => Self::from_label_selector_operator(name),
        }
    }
}

/// One condition on one label. Build with [`Requirement::new`], which
/// validates as Kubernetes's `NewRequirement`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted, without duplicates.
    values: Vec<String>,
}

/// Why a selector, or one of its requirements, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// The string form does not follow the grammar.
    #[error("invalid label selector at byte {position}: found {found}, expected {expected}")]
    Syntax {
        /// Byte offset of the offending token.
        position: usize,
        /// The token found: quoted text, or `end of string`.
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// A key or value breaks the label rules.
    #[error("invalid label selector{}: {source}", at(*.position))]
    Label {
        /// Byte offset of the requirement's key, when parsing a string.
        position: Option<usize>,
        /// The broken rules.
        source: InvalidLabel,
    },
    /// The values do not suit the operator (`In` with none, `Exists` with
    /// some, `Gt` with a non-integer).
    #[error("invalid label selector{}: requirement on {key:?}: {reason}", at(*.position))]
    Values {
        /// Byte offset of the requirement's key, when parsing a string.
        position: Option<usize>,
        /// The requirement's key.
        key: String,
        /// Kubernetes's message.
        reason: &'static str,
    },
    /// A `matchExpressions` operator other than `In`, `NotIn`, `Exists` and
    /// `DoesNotExist`.
    #[error(
        "invalid label selector: {operator:?} is not a valid label selector operator \
         (on key {key:?}); expected In, NotIn, Exists or DoesNotExist"
    )]
    UnknownOperator {
        /// The expression's key.
        key: String,
        /// The operator as written.
        operator: String,
    },
}

/// `" at byte N"`, or nothing.
fn at(position: Option<usize>) -> String {
    position.map_or_else(String::new, |p| format!(" at byte {p}"))
}

impl Requirement {
    /// A validated requirement: the key must be a valid label key and every
    /// value a valid label value; `Equals`/`NotEquals` take exactly one value,
    /// `In`/`NotIn` at least one, `Exists`/`DoesNotExist` none, and
    /// `GreaterThan`/`LessThan` exactly one integer.
    pub fn new<V: Into<String>>(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = V>,
    ) -> Result<Self, SelectorError> {
        Self::new_at(key.into(), operator, values, None)
    }

    /// [`Requirement::new`], with errors placed at `position`.
    fn new_at<V: Into<String>>(
        key: String,
        operator: Operator,
        values: impl IntoIterator<Item = V>,
        position: Option<usize>,
    ) -> Result<Self, SelectorError> {
        let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
        validate_label_key(&key).map_err(|source| SelectorError::Label { position, source })?;
        let count_problem = match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                Some("for 'in', 'notin' operators, values set can't be empty")
            }
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                Some("exact-match compatibility requires one single value")
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                Some("values set must be empty for exists and does not exist")
            }
            Operator::GreaterThan | Operator::LessThan if values.len() != 1 => {
                Some("for 'Gt', 'Lt' operators, exactly one value is required")
            }
            Operator::GreaterThan | Operator::LessThan if values[0].parse::<i64>().is_err() => {
                Some("for 'Gt', 'Lt' operators, the value must be an integer")
            }
            _ => None,
        };
        if let Some(reason) = count_problem {
            return Err(SelectorError::Values {
                position,
                key,
                reason,
            });
        }
        for value in &values {
            validate_label_value(value)
                .map_err(|source| SelectorError::Label { position, source })?;
        }
        values.sort();
        values.dedup();
        Ok(Self {
            key,
            operator,
            values,
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and without duplicates (empty for `Exists` and
    /// `DoesNotExist`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy the requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// Whether the labels looked up by `label` satisfy the requirement (for
    /// label sets that are not a `BTreeMap`).
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        let value = label(&self.key);
        let listed = |value: &str| {
            self.values
                .binary_search_by(|v| v.as_str().cmp(value))
                .is_ok()
        };
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(listed),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(listed),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(Ok(actual)), Some(Ok(bound))) = (
                    value.map(str::parse::<i64>),
                    self.values.first().map(|v| v.parse::<i64>()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// The string form: `a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`,
    /// `a>1`, `a<1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let values = self.values.join(",");
        match self.operator {
            Operator::Equals => write!(f, "{key}={values}"),
            Operator::NotEquals => write!(f, "{key}!={values}"),
            Operator::In => write!(f, "{key} in ({values})"),
            Operator::NotIn => write!(f, "{key} notin ({values})"),
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::GreaterThan => write!(f, "{key}>{values}"),
            Operator::LessThan => write!(f, "{key}<{values}"),
        }
    }
}

/// A label selector: requirements that must all hold, kept sorted by key.
/// The empty selector (`Default`) matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches everything (the empty string).
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector of `requirements`, sorted by key (stably: requirements on
    /// one key keep their order).
    pub fn new(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self { requirements }
    }

    /// Parses the string form, as `labels.Parse` does; the empty (or
    /// all-whitespace) string is the selector that matches everything.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        parser::parse(text).map(Self::new)
    }

    /// The selector of a `LabelSelector`, as Kubernetes's
    /// `LabelSelectorAsSelector`: each `matchLabels` entry is an `Equals`
    /// requirement, each `matchExpressions` entry `(key, operator, values)` a
    /// requirement whose operator is one of `In`, `NotIn`, `Exists`,
    /// `DoesNotExist`. Both empty give the selector that matches everything.
    /// (A missing `LabelSelector` is different: Kubernetes reads it as
    /// matching nothing.)
    pub fn from_parts(
        match_labels: &BTreeMap<String, String>,
        match_expressions: impl IntoIterator<Item = (String, String, Vec<String>)>,
    ) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in match_labels {
            requirements.push(Requirement::new(
                key.as_str(),
                Operator::Equals,
                [value.as_str()],
            )?);
        }
        for (key, operator, values) in match_expressions {
            let Some(op) = Operator::from_label_selector_operator(&operator) else {
                return Err(SelectorError::UnknownOperator { key, operator });
            };
            requirements.push(Requirement::new(key, op, values)?);
        }
        Ok(Self::new(requirements))
    }

    /// The selector requiring exactly `labels` (Kubernetes's
    /// `SelectorFromValidatedSet`, but validated).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Self, SelectorError> {
        Self::from_parts(labels, [])
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this is the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// Whether the labels looked up by `label` satisfy every requirement.
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| r.matches_with(&label))
    }

    /// The one value `key` must have, if a requirement pins it (`key=v` or
    /// `key in (v)`), as Kubernetes's `RequiresExactMatch`; useful to narrow a
    /// list through an index before matching.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find_map(|r| match (r.operator, r.values.as_slice()) {
                (Operator::Equals | Operator::In, [value]) if r.key == key => Some(value.as_str()),
                _ => None,
            })
    }
}

impl fmt::Display for Selector {
    /// The canonical string form: requirements by key, joined by `,`; empty
    /// for the selector that matches everything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

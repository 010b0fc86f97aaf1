//! Building blocks shared by every kind's validation: [`FieldError`]
//! constructors that write Kubernetes's messages (`Required value`,
//! `Invalid value: "x": ...`, `Unsupported value: ...`, `Duplicate value: ...`),
//! and the string rules Kubernetes keeps in `k8s.io/apimachinery/pkg/util/validation`
//! that `capstan_proto::labels` does not already provide (DNS-1123 and
//! DNS-1035 labels, IANA service names, environment variable names, config
//! keys, path segment names, IP addresses, port numbers).

use std::fmt::Debug;
use std::net::IpAddr;

use capstan_proto::labels::{dns1123_subdomain_errors, label_value_errors, qualified_name_errors};
use capstan_proto::{FieldError, Reason};

/// `path: Required value[: detail]`.
pub(crate) fn required(path: impl Into<String>, detail: &str) -> FieldError {
    let message = if detail.is_empty() {
        "Required value".to_owned()
    } else {
        format!("Required value: {detail}")
    };
    FieldError::new(path, Reason::Required, message)
}

/// `path: Invalid value: <value>: detail`; strings are quoted, numbers not.
pub(crate) fn invalid(path: impl Into<String>, value: impl Debug, detail: &str) -> FieldError {
    FieldError::new(
        path,
        Reason::InvalidValue,
        format!("Invalid value: {value:?}: {detail}"),
    )
}

/// `path: Unsupported value: "v": supported values: "a", "b"`.
pub(crate) fn not_supported(
    path: impl Into<String>,
    value: &str,
    supported: &[&str],
) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError::new(
        path,
        Reason::NotSupported,
        format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
    )
}

/// `path: Duplicate value: <value>`.
pub(crate) fn duplicate(path: impl Into<String>, value: impl Debug) -> FieldError {
    FieldError::new(
        path,
        Reason::Duplicate,
        format!("Duplicate value: {value:?}"),
    )
}

/// `path: Forbidden: detail`.
pub(crate) fn forbidden(path: impl Into<String>, detail: &str) -> FieldError {
    FieldError::new(path, Reason::Forbidden, format!("Forbidden: {detail}"))
}

/// `path: Too long: may not be more than N bytes`.
pub(crate) fn too_long(path: impl Into<String>, max: usize) -> FieldError {
    FieldError::new(
        path,
        Reason::TooLong,
        format!("Too long: may not be more than {max} bytes"),
    )
}

/// `path: Not found: <value>` (Kubernetes's `field.NotFound`; reported as
/// [`Reason::InvalidValue`], which has no separate not-found reason).
pub(crate) fn not_found(path: impl Into<String>, value: impl Debug) -> FieldError {
    FieldError::new(path, Reason::InvalidValue, format!("Not found: {value:?}"))
}

/// `path: Invalid value: <new>: field is immutable` when `new != old`.
pub(crate) fn immutable<T: PartialEq + Debug>(path: &str, new: &T, old: &T) -> Option<FieldError> {
    (new != old).then(|| invalid(path, new, "field is immutable"))
}

/// One `Invalid` error per message.
pub(crate) fn invalid_each(path: &str, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages
        .into_iter()
        .map(|m| invalid(path, value, &m))
        .collect()
}

/// `must be greater than or equal to 0` when negative.
pub(crate) fn non_negative(path: &str, value: i64) -> Option<FieldError> {
    (value < 0).then(|| invalid(path, value, "must be greater than or equal to 0"))
}

/// Most characters in a DNS-1123 or DNS-1035 label.
pub(crate) const DNS_LABEL_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case \
     alphanumeric characters or '-', and must start and end with an alphanumeric character \
     (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const DNS1035_LABEL_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric \
     characters or '-', start with an alphabetic character, and end with an alphanumeric \
     character (e.g. 'my-name',  or 'abc-123', regex used for validation is \
     '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Problems with a DNS-1123 label (`IsDNS1123Label`), empty if valid.
pub(crate) fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS_LABEL_MAX_LENGTH {
        errors.push(format!(
            "must be no more than {DNS_LABEL_MAX_LENGTH} characters"
        ));
    }
    let b = value.as_bytes();
    let ok = match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    };
    if !ok {
        errors.push(DNS1123_LABEL_MESSAGE.to_owned());
    }
    errors
}

/// Problems with a DNS-1035 label (`IsDNS1035Label`), empty if valid.
pub(crate) fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS_LABEL_MAX_LENGTH {
        errors.push(format!(
            "must be no more than {DNS_LABEL_MAX_LENGTH} characters"
        ));
    }
    let b = value.as_bytes();
    let ok = match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_lowercase()
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    };
    if !ok {
        errors.push(DNS1035_LABEL_MESSAGE.to_owned());
    }
    errors
}

/// Problems with an IANA service name, a named port (`IsValidPortName`).
pub(crate) fn port_name_errors(port: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if port.len() > 15 {
        errors.push("must be no more than 15 characters".to_owned());
    }
    if !port
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errors.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned(),
        );
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)".to_owned());
    }
    if port.contains("--") {
        errors.push("must not contain consecutive hyphens".to_owned());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errors.push("must not begin or end with a hyphen".to_owned());
    }
    errors
}

/// Problems with a port number (`IsValidPortNum`): 1 to 65535.
pub(crate) fn port_num_errors(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_owned()]
    }
}

/// `must not be '.'`, `must not be '..'`, `must not start with '..'`.
fn chdir_prefix_errors(value: &str) -> Option<String> {
    match value {
        "." => Some("must not be '.'".to_owned()),
        ".." => Some("must not be '..'".to_owned()),
        v if v.starts_with("..") => Some("must not start with '..'".to_owned()),
        _ => None,
    }
}

/// Problems with an environment variable name (`IsEnvVarName`):
/// `[-._a-zA-Z][-._a-zA-Z0-9]*`, not `.`/`..`, not starting with `..`.
pub(crate) fn env_var_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let word = |c: u8| c.is_ascii_alphabetic() || matches!(c, b'-' | b'.' | b'_');
    let ok = match value.as_bytes().split_first() {
        Some((&first, rest)) => word(first) && rest.iter().all(|&c| word(c) || c.is_ascii_digit()),
        None => false,
    };
    if !ok {
        errors.push(
            "a valid environment variable name must consist of alphabetic characters, digits, \
             '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or \
             'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is \
             '[-._a-zA-Z][-._a-zA-Z0-9]*')"
                .to_owned(),
        );
    }
    errors.extend(chdir_prefix_errors(value));
    errors
}

/// Problems with a ConfigMap or Secret key (`IsConfigMapKey`):
/// `[-._a-zA-Z0-9]+`, at most 253 characters, not `.`/`..`, not starting
/// with `..`.
pub(crate) fn config_key_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters".to_owned());
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errors.push(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' \
             (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is \
             '[-._a-zA-Z0-9]+')"
                .to_owned(),
        );
    }
    errors.extend(chdir_prefix_errors(value));
    errors
}

/// Problems with a name used as one path segment (`IsValidPathSegmentName`;
/// with `prefix`, `IsValidPathSegmentPrefix`).
pub(crate) fn path_segment_errors(name: &str, prefix: bool) -> Vec<String> {
    if !prefix {
        for bad in [".", ".."] {
            if name == bad {
                return vec![format!("may not be '{bad}'")];
            }
        }
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// Problems with an IP address (`IsValidIP`).
pub(crate) fn ip_errors(value: &str) -> Vec<String> {
    if value.parse::<IpAddr>().is_ok() {
        Vec::new()
    } else {
        vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_owned()]
    }
}

/// Problems with an endpoint IP that is valid but special
/// (`ValidateNonSpecialIP`): unspecified, link-local.
///
/// Unlike Kubernetes, loopback addresses are allowed: Capstan's process
/// runtime gives each pod its own address in 127.0.0.0/8, so on one
/// machine endpoints are loopback addresses by design.
pub(crate) fn special_ip_errors(value: &str) -> Vec<String> {
    let Ok(ip) = value.parse::<IpAddr>() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    if ip.is_unspecified() {
        errors.push(format!("may not be unspecified ({ip})"));
    }
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (v4.is_link_local(), o[0] == 224 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            ((s[0] & 0xffc0) == 0xfe80, (s[0] & 0xff0f) == 0xff02)
        }
    };
    if link_local {
        errors.push("may not be in the link-local range (169.254.0.0/16, fe80::/10)".to_owned());
    }
    if link_local_multicast {
        errors.push(
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".to_owned(),
        );
    }
    errors
}

/// The rule a kind's `metadata.name` follows (Kubernetes's `ValidateNameFunc`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// A DNS-1123 subdomain (most kinds).
    Subdomain,
    /// A DNS-1123 label (Namespace).
    Label,
    /// A DNS-1035 label (Service).
    Dns1035Label,
    /// Anything usable as one URL path segment (RBAC kinds, HorizontalPodAutoscaler).
    PathSegment,
}

impl NameRule {
    /// Problems with `name`; with `prefix` (a generateName), a trailing `-`
    /// is allowed, as Kubernetes's `maskTrailingDash` allows it.
    pub(crate) fn errors(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name =
            if prefix && self != NameRule::PathSegment && name.len() > 1 && name.ends_with('-') {
                // Kubernetes replaces the last two characters by `a`.
                let mut m = name.to_owned();
                m.pop();
                m.pop();
                m.push('a');
                masked = m;
                masked.as_str()
            } else {
                name
            };
        match self {
            NameRule::Subdomain => dns1123_subdomain_errors(name),
            NameRule::Label => dns1123_label_errors(name),
            NameRule::Dns1035Label => dns1035_label_errors(name),
            NameRule::PathSegment => path_segment_errors(name, prefix),
        }
    }
}

/// Label keys and values (`ValidateLabels`); errors are reported at `path`
/// itself (`metadata.labels`), as Kubernetes reports them.
pub(crate) fn validate_labels<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    path: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in labels {
        errors.extend(invalid_each(path, key, qualified_name_errors(key)));
        errors.extend(invalid_each(path, value, label_value_errors(value)));
    }
    errors
}

/// A label key (`ValidateLabelName`).
pub(crate) fn validate_label_name(key: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, key, qualified_name_errors(key))
}

/// `InclusiveRangeError`: `must be between lo and hi, inclusive`.
pub(crate) fn range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

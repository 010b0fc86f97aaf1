//! The client's error type: the apiserver's machine-readable reason
//! (`NotFound`, `Conflict`, `Invalid` with field causes, ...) read back from
//! a gRPC status's [`ApiStatus`](capstan_proto::rpc::ApiStatus) details,
//! plus the client's own failures (connection, decoding, configuration).

use capstan_proto::rpc::StatusCause;
use tonic::Code;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object (or the kind) does not exist.
    #[error("NotFound: {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// An object with that name already exists.
    #[error("AlreadyExists: {message}")]
    AlreadyExists {
        /// The server's message.
        message: String,
    },
    /// The object's resourceVersion is not the stored one: read and retry.
    #[error("Conflict: {message}")]
    Conflict {
        /// The server's message.
        message: String,
    },
    /// Validation failed; one cause per field.
    #[error("Invalid: {message}")]
    Invalid {
        /// The server's message.
        message: String,
        /// The field-level problems (`field`, `reason`, `message`).
        causes: Vec<StatusCause>,
    },
    /// RBAC refused the request.
    #[error("Forbidden: {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// The client certificate was not accepted.
    #[error("Unauthorized: {message}")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// The resourceVersion or continue token refers to compacted history:
    /// list again.
    #[error("Expired: {message}")]
    Expired {
        /// The server's message.
        message: String,
    },
    /// No replica could serve the call (all down, or no Raft leader).
    #[error("Unavailable: {message}")]
    Unavailable {
        /// The last message seen.
        message: String,
    },
    /// The outcome is unknown: a write may or may not have been applied.
    #[error("Timeout: {message}")]
    Timeout {
        /// The server's or the client's message.
        message: String,
    },
    /// Any other reason (`BadRequest`, `InternalError`, `MethodNotAllowed`, ...).
    #[error("{reason}: {message}")]
    Other {
        /// The server's reason, or the gRPC code's name when there was none.
        reason: String,
        /// The gRPC code.
        code: Code,
        /// The message.
        message: String,
    },
    /// The server's answer could not be decoded as the expected kind.
    #[error("cannot decode the server's answer: {0}")]
    Decode(String),
    /// The client is misconfigured (kubeconfig, TLS material, addresses).
    #[error("client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The machine-readable reason, as the apiserver names it.
    pub fn reason(&self) -> &str {
        match self {
            Error::NotFound { .. } => "NotFound",
            Error::AlreadyExists { .. } => "AlreadyExists",
            Error::Conflict { .. } => "Conflict",
            Error::Invalid { .. } => "Invalid",
            Error::Forbidden { .. } => "Forbidden",
            Error::Unauthorized { .. } => "Unauthorized",
            Error::Expired { .. } => "Expired",
            Error::Unavailable { .. } => "Unavailable",
            Error::Timeout { .. } => "Timeout",
            Error::Other { reason, .. } => reason,
            Error::Decode(_) => "Decode",
            Error::Config(_) => "Config",
        }
    }

    /// Reads the reason out of a gRPC status (its `ApiStatus` details; the
    /// gRPC code when the status carries none, as transport errors do).
    pub fn from_status(status: &tonic::Status) -> Self {
        let api = capstan_proto::rpc::api_status(status);
        let message = api
            .as_ref()
            .map(|a| a.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| status.message().to_owned());
        let reason = match &api {
            Some(a) => a.reason.clone(),
            None => match status.code() {
                Code::NotFound => "NotFound".into(),
                Code::AlreadyExists => "AlreadyExists".into(),
                Code::Aborted => "Conflict".into(),
                Code::PermissionDenied => "Forbidden".into(),
                Code::Unauthenticated => "Unauthorized".into(),
                Code::OutOfRange => "Expired".into(),
                Code::Unavailable => "Unavailable".into(),
                Code::DeadlineExceeded => "Timeout".into(),
                code => format!("{code:?}"),
            },
        };
        match reason.as_str() {
            "NotFound" => Error::NotFound { message },
            "AlreadyExists" => Error::AlreadyExists { message },
            "Conflict" => Error::Conflict { message },
            "Invalid" => Error::Invalid {
                message,
                causes: api.map(|a| a.causes).unwrap_or_default(),
            },
            "Forbidden" => Error::Forbidden { message },
            "Unauthorized" => Error::Unauthorized { message },
            "Expired" | "Gone" => Error::Expired { message },
            "Unavailable" => Error::Unavailable { message },
            "Timeout" => Error::Timeout { message },
            _ => Error::Other {
                reason,
                code: status.code(),
                message,
            },
        }
    }

    /// The error an [`capstan_proto::rpc::ApiStatus`] describes (one item
    /// of a batch answer).
    pub fn from_api_status(status: capstan_proto::rpc::ApiStatus) -> Self {
        let details = prost::Message::encode_to_vec(&status);
        Self::from_status(&tonic::Status::with_details(
            Code::Unknown,
            status.message,
            details.into(),
        ))
    }

    /// Whether this is `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether this is `Conflict`.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// Whether this is `Expired` (relist).
    pub fn is_expired(&self) -> bool {
        matches!(self, Error::Expired { .. })
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::from_status(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::rpc::ApiStatus;
    use prost::Message as _;

    #[test]
    fn reason_from_details_then_code() {
        let details = ApiStatus {
            reason: "Invalid".into(),
            message: "Pod \"x\" is invalid".into(),
            causes: vec![StatusCause {
                field: "spec.containers".into(),
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
            }],
            ..Default::default()
        }
        .encode_to_vec();
        let e = Error::from(tonic::Status::with_details(
            Code::InvalidArgument,
            "m",
            details.into(),
        ));
        match &e {
            Error::Invalid { causes, message } => {
                assert_eq!(causes[0].field, "spec.containers");
                assert_eq!(message, "Pod \"x\" is invalid");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.reason(), "Invalid");
        let e = Error::from(tonic::Status::unavailable("Connection refused"));
        assert_eq!(e.reason(), "Unavailable");
        let e = Error::from(tonic::Status::internal("boom"));
        assert_eq!(e.reason(), "Internal");
    }
}

//! API errors: a Kubernetes-style reason, a message and field causes,
//! carried to clients as a gRPC status whose details hold an
//! [`ApiStatus`](capstan_proto::rpc::ApiStatus).

use capstan_proto::rpc::{ApiStatus, StatusCause};
use capstan_proto::{FieldError, KindInfo};
use prost::Message as _;
use tonic::Code;

use crate::store::StoreError;

/// One failed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The gRPC code.
    pub code: Code,
    /// The machine-readable reason (`NotFound`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// The human message.
    pub message: String,
    /// Field-level causes (for `Invalid`).
    pub causes: Vec<StatusCause>,
    /// The kind the error is about.
    pub kind: String,
    /// The object name the error is about.
    pub name: String,
}

impl ApiError {
    fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            causes: Vec::new(),
            kind: String::new(),
            name: String::new(),
        }
    }

    fn about(mut self, info: &KindInfo, name: &str) -> Self {
        self.kind = info.kind.to_owned();
        self.name = name.to_owned();
        self
    }

    /// `<plural> "<name>" not found`.
    pub fn not_found(info: &KindInfo, name: &str) -> Self {
        Self::new(
            Code::NotFound,
            "NotFound",
            format!("{} {name:?} not found", info.plural),
        )
        .about(info, name)
    }

    /// `<plural> "<name>" already exists`.
    pub fn already_exists(info: &KindInfo, name: &str) -> Self {
        Self::new(
            Code::AlreadyExists,
            "AlreadyExists",
            format!("{} {name:?} already exists", info.plural),
        )
        .about(info, name)
    }

    /// An optimistic-concurrency failure.
    pub fn conflict(info: &KindInfo, name: &str, detail: impl std::fmt::Display) -> Self {
        Self::new(
            Code::Aborted,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {detail}",
                info.plural
            ),
        )
        .about(info, name)
    }

    /// A validation failure with one cause per field error.
    pub fn invalid(info: &KindInfo, name: &str, errors: &[FieldError]) -> Self {
        let details: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let mut e = Self::new(
            Code::InvalidArgument,
            "Invalid",
            format!("{} {name:?} is invalid: {}", info.kind, details.join(", ")),
        )
        .about(info, name);
        e.causes = errors
            .iter()
            .map(|f| StatusCause {
                field: f.path.clone(),
                reason: f.reason.as_str().to_owned(),
                message: f.message.clone(),
            })
            .collect();
        e
    }

    /// The resource (kind or version) is not served.
    pub fn not_found_resource(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, "NotFound", message)
    }

    /// The request itself is malformed (bad selector, bad object bytes).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, "BadRequest", message)
    }

    /// The caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, "Forbidden", message)
    }

    /// The caller is not authenticated.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, "Unauthorized", message)
    }

    /// History needed for the request is compacted: relist.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(Code::OutOfRange, "Expired", message)
    }

    /// No leader reachable; nothing was written.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, "Unavailable", message)
    }

    /// Something broke on the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, "InternalError", message)
    }

    /// The operation is not supported for this kind.
    pub fn method_not_supported(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, "MethodNotAllowed", message)
    }

    /// Maps a store failure about object `name` of `info`.
    pub fn from_store(e: StoreError, info: &KindInfo, name: &str) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(info, name),
            StoreError::AlreadyExists => Self::already_exists(info, name),
            StoreError::Conflict { .. } | StoreError::Reserved(_) => Self::conflict(info, name, &e),
            StoreError::Expired(m) => Self::expired(m),
            StoreError::BadRequest(m) => Self::bad_request(m),
            StoreError::TooLarge(m) => {
                Self::new(Code::InvalidArgument, "RequestEntityTooLarge", m).about(info, name)
            }
            StoreError::Unavailable(m) => Self::unavailable(m),
            StoreError::Indeterminate(m) => Self::new(
                Code::DeadlineExceeded,
                "Timeout",
                format!("the outcome of the request is unknown (it may still be applied): {m}"),
            ),
            StoreError::Internal(m) => Self::internal(m),
        }
    }

    /// The HTTP status Kubernetes would answer with (for audit and metrics).
    pub fn http_code(&self) -> u16 {
        match self.reason {
            "NotFound" => 404,
            "AlreadyExists" | "Conflict" => 409,
            "Invalid" => 422,
            "BadRequest" => 400,
            "Forbidden" => 403,
            "Unauthorized" => 401,
            "Expired" => 410,
            "RequestEntityTooLarge" => 413,
            "MethodNotAllowed" => 405,
            "Timeout" => 504,
            "Unavailable" => 503,
            _ => 500,
        }
    }

    /// The status as carried on the wire.
    pub fn api_status(&self) -> ApiStatus {
        ApiStatus {
            reason: self.reason.to_owned(),
            message: self.message.clone(),
            causes: self.causes.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            code: i32::from(self.http_code()),
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let details = e.api_status().encode_to_vec();
        tonic::Status::with_details(e.code, e.message, details.into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::Pod;
    use capstan_proto::{Reason, Resource};

    #[test]
    fn invalid_carries_field_causes_through_grpc() {
        let errors = [FieldError::new(
            "spec.containers[0].image",
            Reason::Required,
            "Required value",
        )];
        let status: tonic::Status = ApiError::invalid(&Pod::INFO, "web", &errors).into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let back = capstan_proto::rpc::api_status(&status).unwrap();
        assert_eq!(back.reason, "Invalid");
        assert_eq!(back.code, 422);
        assert_eq!(back.causes[0].field, "spec.containers[0].image");
        assert_eq!(back.causes[0].reason, "FieldValueRequired");
        assert!(
            status.message().contains("Pod \"web\" is invalid"),
            "{}",
            status.message()
        );
    }
}

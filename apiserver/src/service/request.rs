//! What every API call shares: the caller, the kind it is about, the
//! authorization check, and — when it ends — metrics and the audit record.

use std::time::Instant;

use capstan_proto::KindInfo;
use capstan_proto::Object;
use capstan_proto::labels::Selector;
use capstan_proto::rpc::ResourceRef;

use super::Api;
use super::errors::ApiError;
use crate::audit::Record;
use crate::auth::{Attributes, Decision, User, Verb};
use crate::registry::fields::FieldSelector;

/// A request's label and field selectors, parsed for its kind.
pub struct Filter {
    /// The label selector.
    pub labels: Selector,
    /// The field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Parses both selectors; a malformed one is a `BadRequest` naming it.
    pub fn parse(info: &KindInfo, labels: &str, fields: &str) -> Result<Self, ApiError> {
        let labels_parsed = Selector::parse(labels)
            .map_err(|e| ApiError::bad_request(format!("labelSelector {labels:?}: {e}")))?;
        let fields = FieldSelector::parse(info, fields)
            .map_err(|e| ApiError::bad_request(format!("fieldSelector: {e}")))?;
        Ok(Self {
            labels: labels_parsed,
            fields,
        })
    }

    /// Whether both selectors are empty (every object matches).
    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether `obj` satisfies both selectors.
    pub fn matches(&self, obj: &Object) -> bool {
        let empty = Default::default();
        self.labels
            .matches(obj.metadata().map_or(&empty, |m| &m.labels))
            && self.fields.matches(obj)
    }
}

/// Resolves a request's resource to a served kind.
pub fn resolve(resource: Option<&ResourceRef>) -> Result<&'static KindInfo, ApiError> {
    let r = resource.ok_or_else(|| ApiError::bad_request("resource: required"))?;
    let info = capstan_proto::kinds::lookup_resource(&r.group, &r.resource).ok_or_else(|| {
        let group = if r.group.is_empty() { "core" } else { &r.group };
        ApiError::not_found_resource(format!(
            "the server does not serve resource {:?} in API group {group:?}",
            r.resource
        ))
    })?;
    if !r.version.is_empty() && r.version != info.version {
        return Err(ApiError::not_found_resource(format!(
            "version {:?} of {} is not served; served: {}",
            r.version, info.plural, info.api_version
        )));
    }
    Ok(info)
}

/// One call in progress.
pub struct Call {
    /// The caller.
    pub user: User,
    /// The verb (for metrics, audit, authorization).
    pub verb: Verb,
    /// The kind.
    pub info: &'static KindInfo,
    /// `status` for the status subresource.
    pub subresource: &'static str,
    /// The namespace acted in.
    pub namespace: String,
    /// The object name, once known.
    pub name: String,
    started: Instant,
}

impl Call {
    /// Starts timing a call.
    pub fn new(user: User, verb: Verb, info: &'static KindInfo) -> Self {
        Self {
            user,
            verb,
            info,
            subresource: "",
            namespace: String::new(),
            name: String::new(),
            started: Instant::now(),
        }
    }

    /// Asks the authorizer; `Forbidden` unless allowed.
    pub fn authorize<T>(
        &self,
        api: &Api<T>,
        field_requirements: &[(String, String)],
        existing: Option<&Object>,
        new: Option<&Object>,
    ) -> Result<(), ApiError> {
        let attrs = Attributes {
            user: &self.user,
            verb: self.verb,
            group: self.info.group,
            resource: self.info.plural,
            subresource: self.subresource,
            namespace: &self.namespace,
            name: &self.name,
            field_requirements,
            existing,
            new,
        };
        match api.authorizer.authorize(&attrs) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(ApiError::forbidden(reason)),
            Decision::NoOpinion => Err(ApiError::forbidden("no authorizer allowed the request")),
        }
    }

    /// Records metrics and, for mutating verbs, the audit record; converts
    /// the error for the wire.
    pub fn finish<T, R>(
        self,
        api: &Api<T>,
        result: Result<R, ApiError>,
    ) -> Result<R, tonic::Status> {
        self.finish_keeping_error(api, result).map_err(Into::into)
    }

    /// As [`Call::finish`], but keeps the [`ApiError`] (one item of a
    /// batch answer).
    pub fn finish_keeping_error<T, R>(
        self,
        api: &Api<T>,
        result: Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let code = match &result {
            Ok(_) if self.verb == Verb::Create => 201,
            Ok(_) => 200,
            Err(e) => e.http_code(),
        };
        let verb = if self.subresource == "status" && self.verb == Verb::Update {
            "updatestatus"
        } else {
            self.verb.as_str()
        };
        api.metrics
            .request(verb, self.info.plural, code, self.started.elapsed());
        if self.verb.is_mutating() {
            api.audit.record(Record {
                time: crate::audit::now(),
                user: self.user.name.clone(),
                groups: self.user.groups.clone(),
                verb: self.verb.as_str().to_owned(),
                group: self.info.group.to_owned(),
                resource: self.info.plural.to_owned(),
                subresource: self.subresource.to_owned(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                code,
                reason: result
                    .as_ref()
                    .err()
                    .map(|e| e.reason.to_owned())
                    .unwrap_or_default(),
            });
        }
        result
    }
}

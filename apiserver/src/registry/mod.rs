//! The registry: everything the apiserver knows about each kind, in one
//! place.
//!
//! - [`validation`]: defaults and validation as Kubernetes does them
//!   (`defaults`, `validate`, `validate_update`), each problem a
//!   [`FieldError`](capstan_proto::FieldError) with its field path.
//! - [`strategy`]: the spec/status split (status ignored on update, spec
//!   ignored on update-status), generation bumps, what create resets.
//! - [`allocation`]: ClusterIPs and node ports for Services, held as
//!   keys written in the Service's own transactions.
//! - [`fields`]: the field selectors each kind supports.

pub mod allocation;
pub mod fields;
pub mod strategy;
pub mod validation;

//! The generated API types, one module per proto package
//! (`capstan.core.v1` is [`core::v1`]), produced by `build.rs` from
//! `proto/capstan/**.proto`. Every message derives `prost::Message` and
//! serde with Kubernetes JSON names; doc comments come from the protos.
#![allow(missing_docs, clippy::all)]

/// `capstan.meta.v1`: object metadata, label selectors, conditions.
pub mod meta {
    /// Version v1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/capstan.meta.v1.rs"));
    }
}

/// `capstan.core.v1`: the core group (`apiVersion: v1`).
pub mod core {
    /// Version v1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/capstan.core.v1.rs"));
    }
}

/// `capstan.apps.v1`: the `apps` group.
pub mod apps {
    /// Version v1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/capstan.apps.v1.rs"));
    }
}

/// `capstan.autoscaling.v1`: the `autoscaling` group.
pub mod autoscaling {
    /// Version v1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/capstan.autoscaling.v1.rs"));
    }
}

/// `capstan.rbac.v1`: the `rbac.authorization.k8s.io` group.
pub mod rbac {
    /// Version v1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/capstan.rbac.v1.rs"));
    }
}

/// `capstan.coordination.v1`: the `coordination.k8s.io` group.
pub mod coordination {
    /// Version v1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/capstan.coordination.v1.rs"));
    }
}

//! The labels the kubelet puts on sandboxes and containers to find them
//! again after a restart (Kubernetes's names).

/// The pod's uid.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// The pod's name.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// The pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// The container's name.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";

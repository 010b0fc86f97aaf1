//! Resource amounts as the scheduler counts them: millicores of CPU, bytes
//! of memory and a number of pods, read once from a pod's requests or a
//! node's allocatable so that filtering and scoring only add integers.
//!
//! A pod's request follows Kubernetes (`resource.PodRequests`): the sum of
//! its containers' requests, or the largest init container's request when
//! that is larger (init containers run one at a time, before the others),
//! plus the pod's `overhead`. A container without a request counts 0.
//!
//! For scoring only, Kubernetes counts a container without a CPU or memory
//! request as 100m and 200Mi ([`DEFAULT_MILLI_CPU_REQUEST`],
//! [`DEFAULT_MEMORY_REQUEST`]), so that many request-less pods do not all
//! land on one node; [`PodRequests::non_zero`] holds that figure.

use std::collections::BTreeMap;

use capstan_proto::api::core::v1::{Container, Pod};
use capstan_proto::quantity::Quantity;

/// CPU counted for a container without a CPU request, when scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory counted for a container without a memory request, when scoring.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of the resources the scheduler accounts for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
}

impl Resources {
    /// Reads `cpu`, `memory` and `ephemeral-storage` from a resource list.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let get = |name: &str| list.get(name);
        Self {
            milli_cpu: get("cpu").map_or(0, Quantity::milli_value),
            memory: get("memory").map_or(0, Quantity::value),
            ephemeral_storage: get("ephemeral-storage").map_or(0, Quantity::value),
        }
    }

    /// The sum, saturating.
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_add(other.milli_cpu),
            memory: self.memory.saturating_add(other.memory),
            ephemeral_storage: self
                .ephemeral_storage
                .saturating_add(other.ephemeral_storage),
        }
    }

    /// The difference, saturating.
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_sub(other.milli_cpu),
            memory: self.memory.saturating_sub(other.memory),
            ephemeral_storage: self
                .ephemeral_storage
                .saturating_sub(other.ephemeral_storage),
        }
    }

    /// The larger of each resource.
    pub fn max(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.max(other.milli_cpu),
            memory: self.memory.max(other.memory),
            ephemeral_storage: self.ephemeral_storage.max(other.ephemeral_storage),
        }
    }
}

/// What a pod asks of the node it runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodRequests {
    /// Its requests, for the fit filter.
    pub requests: Resources,
    /// Its requests with CPU and memory defaulted per container, for scoring.
    pub non_zero: Resources,
}

impl PodRequests {
    /// The requests of `pod` (see the module docs).
    pub fn of(pod: &Pod) -> Self {
        let Some(spec) = pod.spec.as_ref() else {
            return Self::default();
        };
        let mut requests = Resources::default();
        let mut non_zero = Resources::default();
        for c in &spec.containers {
            requests = requests.plus(container_requests(c));
            non_zero = non_zero.plus(container_non_zero(c));
        }
        for c in &spec.init_containers {
            requests = requests.max(container_requests(c));
            non_zero = non_zero.max(container_non_zero(c));
        }
        let overhead = Resources::from_list(&spec.overhead);
        Self {
            requests: requests.plus(overhead),
            non_zero: non_zero.plus(overhead),
        }
    }
}

fn container_requests(c: &Container) -> Resources {
    c.resources
        .as_ref()
        .map(|r| Resources::from_list(&r.requests))
        .unwrap_or_default()
}

fn container_non_zero(c: &Container) -> Resources {
    let requests = c.resources.as_ref().map(|r| &r.requests);
    let has = |name: &str| requests.is_some_and(|r| r.contains_key(name));
    let mut r = container_requests(c);
    if !has("cpu") {
        r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if !has("memory") {
        r.memory = DEFAULT_MEMORY_REQUEST;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{PodSpec, ResourceRequirements};

    fn container(cpu: Option<&str>, memory: Option<&str>) -> Container {
        let mut requests = BTreeMap::new();
        if let Some(cpu) = cpu {
            requests.insert("cpu".to_owned(), Quantity::parse(cpu).unwrap());
        }
        if let Some(memory) = memory {
            requests.insert("memory".to_owned(), Quantity::parse(memory).unwrap());
        }
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: init,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn containers_add_up_and_missing_requests_count_zero() {
        let p = pod(
            vec![
                container(Some("250m"), Some("64Mi")),
                container(None, None),
                container(Some("1"), None),
            ],
            vec![],
        );
        let r = PodRequests::of(&p);
        assert_eq!(r.requests.milli_cpu, 1250);
        assert_eq!(r.requests.memory, 64 << 20);
        // Scoring counts 100m / 200Mi for what is missing.
        assert_eq!(r.non_zero.milli_cpu, 1350);
        assert_eq!(r.non_zero.memory, (64 << 20) + 2 * DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn init_containers_count_as_the_max() {
        let p = pod(
            vec![container(Some("100m"), Some("1Gi"))],
            vec![
                container(Some("2"), Some("10Mi")),
                container(Some("500m"), None),
            ],
        );
        let r = PodRequests::of(&p).requests;
        assert_eq!(r.milli_cpu, 2000);
        assert_eq!(r.memory, 1 << 30);
    }

    #[test]
    fn overhead_is_added() {
        let mut p = pod(vec![container(Some("100m"), None)], vec![]);
        p.spec
            .as_mut()
            .unwrap()
            .overhead
            .insert("cpu".into(), Quantity::parse("50m").unwrap());
        assert_eq!(PodRequests::of(&p).requests.milli_cpu, 150);
        assert_eq!(PodRequests::of(&Pod::default()), PodRequests::default());
    }
}

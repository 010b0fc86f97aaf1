//! The pod-template-hash: which ReplicaSet runs which template.
//!
//! Kubernetes hashes a deep print of the template with FNV-1a (32 bit) and
//! the Deployment's `collisionCount`, and spells the number with
//! `rand.SafeEncodeString`. Capstan hashes the template's **protobuf
//! encoding** instead (deterministic: fields in tag order, maps are
//! ordered), then the collision count as 8 little-endian bytes as
//! Kubernetes does, and spells the decimal value the same safe way. The
//! value is stable across processes and releases as long as the proto
//! schema of PodTemplateSpec is; it is only a name — matching a ReplicaSet
//! to a template compares the templates themselves ([`equal_ignore_hash`]).

use capstan_proto::api::core::v1::PodTemplateSpec;
use prost::Message as _;

/// The label (and name suffix) holding the hash.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a32(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Kubernetes's `rand.SafeEncodeString`: each byte mapped into an
/// alphabet without vowels or look-alikes (no accidental words).
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE[usize::from(b) % SAFE.len()] as char)
        .collect()
}

/// The hash of `template` with `collision_count`.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h = fnv1a32(&template.encode_to_vec(), 0x811c_9dc5);
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        h = fnv1a32(&bytes, h);
    }
    safe_encode(&h.to_string())
}

/// `template` without the pod-template-hash label.
fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    if let Some(m) = t.metadata.as_mut() {
        m.labels.remove(POD_TEMPLATE_HASH);
    }
    t
}

/// Whether two templates are the same but for the pod-template-hash label
/// (Kubernetes's `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{Container, PodSpec};
    use capstan_proto::api::meta::v1::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: [
                    ("app".to_owned(), "web".to_owned()),
                    ("tier".to_owned(), "a".to_owned()),
                ]
                .into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: image.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn hash_is_stable_safe_and_sensitive() {
        let a = compute_hash(&template("web:1"), None);
        // Pinned: a change of this value renames every ReplicaSet.
        assert_eq!(a, compute_hash(&template("web:1"), None));
        assert!(a.bytes().all(|b| SAFE.contains(&b)), "{a}");
        assert_ne!(a, compute_hash(&template("web:2"), None));
        assert_ne!(a, compute_hash(&template("web:1"), Some(1)));
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(fnv1a32(b"a", 0x811c_9dc5), 0xe40c_292c);
    }

    #[test]
    fn equality_ignores_only_the_hash_label() {
        let mut hashed = template("web:1");
        hashed
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .insert(POD_TEMPLATE_HASH.into(), "abc".into());
        assert!(equal_ignore_hash(&hashed, &template("web:1")));
        assert!(!equal_ignore_hash(&hashed, &template("web:2")));
    }
}

//! A self-describing protobuf encoding of an object of any kind: the
//! object's own encoding wrapped with its `apiVersion` and `kind`
//! (`capstan.meta.v1.TypedObject`, like Kubernetes's `runtime.Unknown`), so
//! a store or a watch stream can hold objects of every kind and decode them
//! without knowing the kind in advance.

use prost::Message as _;

use crate::api::meta::v1::TypedObject;
use crate::kinds::{self, Object};

/// Why typed-object bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not a valid protobuf encoding.
    #[error("invalid protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The envelope names a kind that is not served.
    #[error("{api_version} {kind} is not served")]
    NotServed {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
}

impl Object {
    /// The object's protobuf encoding wrapped with its `apiVersion` and `kind`.
    pub fn encode_typed(&self) -> Vec<u8> {
        let info = self.info();
        TypedObject {
            api_version: info.api_version.to_owned(),
            kind: info.kind.to_owned(),
            raw: self.encode_to_vec(),
        }
        .encode_to_vec()
    }

    /// Decodes bytes written by [`Object::encode_typed`].
    pub fn decode_typed(bytes: &[u8]) -> Result<Object, EnvelopeError> {
        let typed = TypedObject::decode(bytes)?;
        let info = kinds::lookup(&typed.api_version, &typed.kind).ok_or_else(|| {
            EnvelopeError::NotServed {
                api_version: typed.api_version.clone(),
                kind: typed.kind.clone(),
            }
        })?;
        Ok(Object::decode(info, &typed.raw)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource as _;
    use crate::api::core::v1::Pod;

    #[test]
    fn typed_round_trip() {
        let mut pod = Pod::default();
        pod.metadata_mut().name = "web".into();
        let object = Object::Pod(pod);
        let bytes = object.encode_typed();
        assert_eq!(Object::decode_typed(&bytes).unwrap(), object);
    }

    #[test]
    fn unserved_kind_is_refused() {
        let bytes = TypedObject {
            api_version: "extensions/v1beta1".into(),
            kind: "Deployment".into(),
            raw: Vec::new(),
        }
        .encode_to_vec();
        let err = Object::decode_typed(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extensions/v1beta1 Deployment is not served"
        );
    }
}

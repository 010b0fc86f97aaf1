//! [`RawExtension`]: an embedded JSON document of any shape (Kubernetes's
//! `runtime.RawExtension`, e.g. `ControllerRevision.data`). Stored as the
//! document's JSON bytes in protobuf; written inline as JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An arbitrary embedded JSON document, kept as its JSON encoding.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RawExtension {
    /// The JSON encoding of the document.
    #[prost(bytes = "vec", tag = "1")]
    pub raw: Vec<u8>,
}

impl RawExtension {
    /// Wraps a JSON value.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self {
            raw: serde_json::to_vec(value).expect("a JSON value always serializes"),
        }
    }

    /// The embedded document as a JSON value (`null` when empty).
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        if self.raw.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.raw)
    }
}

impl Serialize for RawExtension {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawExtension {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Self::from_value(&value))
    }
}

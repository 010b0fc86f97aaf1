//! Serde adapters the generated code names in its `#[serde(with = ...)]`
//! attributes: bytes written as base64 strings, as Kubernetes writes
//! `Secret.data` and `ConfigMap.binaryData`.

/// `map<string, bytes>` as a JSON object of base64 (standard, padded) strings.
pub mod base64_map {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes each value as base64.
    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            out.serialize_entry(k, &STANDARD.encode(v))?;
        }
        out.end()
    }

    /// Reads each value from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let text = BTreeMap::<String, String>::deserialize(deserializer)?;
        text.into_iter()
            .map(|(k, v)| {
                let bytes = STANDARD
                    .decode(v.as_bytes())
                    .map_err(|e| serde::de::Error::custom(format!("{k}: invalid base64: {e}")))?;
                Ok((k, bytes))
            })
            .collect()
    }
}

/// `bytes` as a base64 (standard, padded) string.
pub mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the bytes as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads the bytes from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

//! [`IntOrString`]: a value that is either an `int32` or a string, as
//! Kubernetes's `intstr.IntOrString` (ports by number or name, `25%`).
//! In JSON it is a bare number or a string; in protobuf it is
//! `{ int32 int_val = 1; string str_val = 2; }` where the field present
//! says which.

use std::fmt;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, int32, skip_field, string};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `int32` or a string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    /// A number, e.g. a port `8080`.
    Int(i32),
    /// A string, e.g. a port name `http` or a percentage `25%`.
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        Self::Int(0)
    }
}

impl fmt::Debug for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "Int({v})"),
            Self::String(s) => write!(f, "String({s:?})"),
        }
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl From<i32> for IntOrString {
    fn from(v: i32) -> Self {
        Self::Int(v)
    }
}

impl From<&str> for IntOrString {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

impl From<String> for IntOrString {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl prost::Message for IntOrString {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            Self::Int(v) => int32::encode(1, v, buf),
            Self::String(s) => string::encode(2, s, buf),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            1 => {
                let mut v = 0;
                int32::merge(wire_type, &mut v, buf, ctx)?;
                *self = Self::Int(v);
                Ok(())
            }
            2 => {
                let mut s = String::new();
                string::merge(wire_type, &mut s, buf, ctx)?;
                *self = Self::String(s);
                Ok(())
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Self::Int(v) => int32::encoded_len(1, v),
            Self::String(s) => string::encoded_len(2, s),
        }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(v) => serializer.serialize_i32(*v),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IntOrString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an int32 or a string")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} is out of range for int32")))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} is out of range for int32")))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(IntOrString::String(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn json_both_ways() {
        assert_eq!(serde_json::to_string(&IntOrString::Int(80)).unwrap(), "80");
        assert_eq!(
            serde_json::to_string(&IntOrString::from("http")).unwrap(),
            "\"http\""
        );
        assert_eq!(
            serde_json::from_str::<IntOrString>("8080").unwrap(),
            IntOrString::Int(8080)
        );
        assert_eq!(
            serde_json::from_str::<IntOrString>("\"25%\"").unwrap(),
            IntOrString::from("25%")
        );
        assert!(serde_json::from_str::<IntOrString>("1.5").is_err());
        assert!(serde_json::from_str::<IntOrString>("4294967296").is_err());
    }

    #[test]
    fn protobuf_both_ways_including_zero() {
        for v in [
            IntOrString::Int(0),
            IntOrString::Int(-3),
            IntOrString::from(""),
        ] {
            let bytes = v.encode_to_vec();
            assert_eq!(IntOrString::decode(bytes.as_slice()).unwrap(), v);
        }
    }
}

//! Kubernetes timestamps. [`Time`] has second precision and is written in
//! JSON as `2026-11-27T14:01:47Z`; [`MicroTime`] has microsecond precision
//! and is written as `2026-11-27T14:01:47.123456Z`. Both are protobuf
//! messages `{ int64 seconds = 1; int32 nanos = 2; }` (like Kubernetes's
//! `meta/v1` Time), mapped from the proto with `extern_path`.
//!
//! Parsing accepts any RFC 3339 timestamp (any offset, any fraction) and
//! normalizes it to UTC, truncated to the type's precision, as Kubernetes
//! does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// An RFC 3339 string that could not be parsed as a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {input:?}: {reason}")]
pub struct TimestampError {
    /// The rejected input.
    pub input: String,
    /// Why it was rejected.
    pub reason: String,
}

macro_rules! timestamp_type {
    ($(#[$doc:meta])* $name:ident, truncate_nanos_to = $unit:expr, subsecond = $sub:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
        pub struct $name {
            /// Seconds since the Unix epoch.
            #[prost(int64, tag = "1")]
            pub seconds: i64,
            /// Non-negative fraction of a second, in nanoseconds.
            #[prost(int32, tag = "2")]
            pub nanos: i32,
        }

        impl $name {
            /// The current time, truncated to this type's precision.
            pub fn now() -> Self {
                Self::from_offset_date_time(OffsetDateTime::now_utc())
            }

            /// A timestamp from a `time` date-time, truncated to this type's precision.
            pub fn from_offset_date_time(at: OffsetDateTime) -> Self {
                let nanos = at.nanosecond() as i32;
                Self {
                    seconds: at.unix_timestamp(),
                    nanos: nanos - nanos % $unit,
                }
            }

            /// A timestamp from Unix seconds (and no fraction).
            pub fn from_unix_seconds(seconds: i64) -> Self {
                Self { seconds, nanos: 0 }
            }

            /// This timestamp as a UTC `time` date-time, or `None` when out of range.
            pub fn to_offset_date_time(&self) -> Option<OffsetDateTime> {
                let at = OffsetDateTime::from_unix_timestamp(self.seconds).ok()?;
                at.replace_nanosecond(u32::try_from(self.nanos).ok()?).ok()
            }

            /// Parses an RFC 3339 timestamp, normalized to UTC and this type's precision.
            pub fn parse(input: &str) -> Result<Self, TimestampError> {
                let at = OffsetDateTime::parse(input, &Rfc3339).map_err(|e| TimestampError {
                    input: input.to_owned(),
                    reason: e.to_string(),
                })?;
                Ok(Self::from_offset_date_time(at.to_offset(UtcOffset::UTC)))
            }
        }

        impl From<OffsetDateTime> for $name {
            fn from(at: OffsetDateTime) -> Self {
                Self::from_offset_date_time(at)
            }
        }

        impl FromStr for $name {
            type Err = TimestampError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.to_offset_date_time().and_then(|at| at.format($sub).ok()) {
                    Some(text) => f.write_str(&text),
                    // Out of the representable range: say what it holds.
                    None => write!(f, "@{}s+{}ns", self.seconds, self.nanos),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let at = self.to_offset_date_time().ok_or_else(|| {
                    serde::ser::Error::custom(format!(
                        "timestamp {}s {}ns is out of range",
                        self.seconds, self.nanos
                    ))
                })?;
                let text = at.format($sub).map_err(serde::ser::Error::custom)?;
                serializer.serialize_str(&text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

timestamp_type!(
    /// A timestamp with second precision (Kubernetes `metav1.Time`).
    Time,
    truncate_nanos_to = 1_000_000_000,
    subsecond = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")
);

timestamp_type!(
    /// A timestamp with microsecond precision (Kubernetes `metav1.MicroTime`).
    MicroTime,
    truncate_nanos_to = 1_000,
    subsecond =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z")
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips_kubernetes_form() {
        let t = Time::parse("2026-11-27T14:01:47Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T14:01:47Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-11-27T14:01:47Z\""
        );
        let back: Time = serde_json::from_str("\"2026-11-27T14:01:47Z\"").unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn time_normalizes_offset_and_truncates_fraction() {
        let t = Time::parse("2026-11-27T15:01:47.987+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T14:01:47Z");
        assert_eq!(t.nanos, 0);
    }

    #[test]
    fn micro_time_keeps_microseconds() {
        let t = MicroTime::parse("2026-11-27T14:01:47.123456789Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T14:01:47.123456Z");
        assert_eq!(t.nanos, 123_456_000);
    }

    #[test]
    fn invalid_time_is_refused() {
        assert!(Time::parse("yesterday").is_err());
        assert!(serde_json::from_str::<Time>("\"2026-13-01T00:00:00Z\"").is_err());
    }

    #[test]
    fn protobuf_round_trip() {
        use prost::Message as _;
        let t = MicroTime::parse("2026-11-27T14:01:47.5Z").unwrap();
        let back = MicroTime::decode(t.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, t);
    }
}

//! Timestamps: the wire accepts RFC 3339 strings or epoch milliseconds; the model keeps milliseconds.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// The prefix of every timestamp decoding error, so that callers can map it to the `bad_timestamp` code.
pub const BAD_TIMESTAMP: &str = "bad_timestamp";

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Formats epoch milliseconds as RFC 3339 in UTC, with millisecond precision.
pub fn format_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The current wall-clock time in epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp or epoch milliseconds")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{BAD_TIMESTAMP}: {v} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        Err(E::custom(format!(
            "{BAD_TIMESTAMP}: {v} is not whole epoch milliseconds"
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse_rfc3339(v).ok_or_else(|| {
            E::custom(format!(
                "{BAD_TIMESTAMP}: {v:?} is not an RFC 3339 timestamp"
            ))
        })
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<i64, E> {
        Err(E::custom(format!(
            "{BAD_TIMESTAMP}: {v} is not a timestamp"
        )))
    }
}

/// Deserializes a required timestamp.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(MillisVisitor)
}

/// Deserializes an optional timestamp (`null` or absent is `None`).
pub fn opt_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp, epoch milliseconds or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            millis(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_millis() {
        let ms = parse_rfc3339("2026-11-27T10:00:00.250+01:00").unwrap();
        assert_eq!(format_rfc3339(ms), "2026-11-27T09:00:00.250Z");
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}

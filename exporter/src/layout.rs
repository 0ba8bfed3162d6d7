//! The lake layout: `{kind}/dt=YYYY-MM-DD/hour=HH/{name}.parquet`, partitioned by ingest time
//! (`received_at`, UTC), with names that are deterministic from the feed position.

use std::fmt;

use cauce_store::Kind;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// One hour of one kind: a folder of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// The kind.
    pub kind: Kind,
    /// The hour's start, epoch ms (UTC).
    pub hour_start_ms: i64,
}

const HOUR_MS: i64 = 3_600_000;

impl Partition {
    /// The partition of a record received at `received_at` (epoch ms).
    pub fn of(kind: Kind, received_at: i64) -> Self {
        Partition {
            kind,
            hour_start_ms: received_at.div_euclid(HOUR_MS) * HOUR_MS,
        }
    }

    fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.hour_start_ms).unwrap_or_default()
    }

    /// `dt=YYYY-MM-DD/hour=HH` under the kind's folder: `events/dt=2026-11-27/hour=09`.
    pub fn dir(&self) -> String {
        let t = self.time();
        format!(
            "{}/dt={:04}-{:02}-{:02}/hour={:02}",
            self.kind.plural(),
            t.year(),
            t.month(),
            t.day(),
            t.hour()
        )
    }

    /// The object key of a file in this partition.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}.parquet", self.dir())
    }

    /// Whether the hour has ended at `now_ms` (a closed hour can be compacted).
    pub fn is_closed(&self, now_ms: i64) -> bool {
        now_ms >= self.hour_start_ms + HOUR_MS
    }

    /// Parses the partition of an object key written by [`Partition::key`].
    pub fn parse_key(key: &str) -> Option<Partition> {
        let mut parts = key.split('/');
        let kind = Kind::parse(parts.next()?)?;
        let dt = parts.next()?.strip_prefix("dt=")?;
        let hour: u32 = parts.next()?.strip_prefix("hour=")?.parse().ok()?;
        let day = chrono::NaiveDate::parse_from_str(dt, "%Y-%m-%d").ok()?;
        let start = day.and_hms_opt(hour, 0, 0)?.and_utc().timestamp_millis();
        Some(Partition {
            kind,
            hour_start_ms: start,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir())
    }
}

/// A file name from the feed position: the shard (or feed id) and the first sequence number of
/// the rows it holds. Characters outside `[A-Za-z0-9._@-]` become `_`.
pub fn file_name(shard: &str, first_sequence: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._@-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}", clean(shard), clean(first_sequence))
}

/// The prefix of the bad-rows archive.
pub const BAD_ROWS: &str = "bad_rows";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_hours_close() {
        let p = Partition::of(Kind::Story, 1_795_800_123_456); // 2026-11-27T17:22:03Z
        assert_eq!(p.dir(), "stories/dt=2026-11-27/hour=17");
        let key = p.key(&file_name("sqlite", "42"));
        assert_eq!(key, "stories/dt=2026-11-27/hour=17/sqlite-42.parquet");
        assert_eq!(Partition::parse_key(&key), Some(p));
        assert!(!p.is_closed(1_795_800_123_456));
        assert!(p.is_closed(p.hour_start_ms + HOUR_MS));
    }
}

//! Where everything is in the lake. The one home of its key layout:
//!
//! ```text
//! {kind}/dt=YYYY-MM-DD/hour=HH/{name}.parquet      rows, by ingest hour (received_at, UTC)
//! bad_rows/dt=YYYY-MM-DD/hour=HH/{name}.ndjson     changes that could not be exported
//! reports/{app}/{report}.json                      the published reports of one app
//! reports/{app}/dashboard.html                     its dashboard
//! reports/index.json                               the apps reported on
//! ```
//!
//! Every name that comes from outside (a shard, an app id, a report name) goes through
//! [`safe_name`], which is one-to-one: two different names never share a key, and no name can
//! climb out of its folder.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::model::Kind;

const HOUR_MS: i64 = 3_600_000;

/// The folder of the bad-rows archive.
pub const BAD_ROWS: &str = "bad_rows";
/// The folder of the published reports.
pub const REPORTS: &str = "reports";
/// The key of the published reports' index.
pub const REPORTS_INDEX: &str = "reports/index.json";

/// `dt=YYYY-MM-DD/hour=HH` of the hour that starts at `hour_start_ms` (UTC).
fn hour_path(hour_start_ms: i64) -> String {
    let t: DateTime<Utc> = DateTime::from_timestamp_millis(hour_start_ms).unwrap_or_default();
    format!(
        "dt={:04}-{:02}-{:02}/hour={:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

/// The day of a `dt=YYYY-MM-DD` folder name.
fn parse_day(folder: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(folder.strip_prefix("dt=")?, "%Y-%m-%d").ok()
}

/// The start (epoch ms) of the hour named by the folders `dt=YYYY-MM-DD` and `hour=HH`.
fn parse_hour(dt: &str, hour: &str) -> Option<i64> {
    let hour: u32 = hour.strip_prefix("hour=")?.parse().ok()?;
    Some(
        parse_day(dt)?
            .and_hms_opt(hour, 0, 0)?
            .and_utc()
            .timestamp_millis(),
    )
}

/// The start of the hour that holds `ms`.
fn hour_start(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// One hour of one kind: a folder of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// The kind.
    pub kind: Kind,
    /// The hour's start, epoch ms (UTC).
    pub hour_start_ms: i64,
}

impl Partition {
    /// The partition of a record received at `received_at` (epoch ms).
    pub fn of(kind: Kind, received_at: i64) -> Self {
        Partition {
            kind,
            hour_start_ms: hour_start(received_at),
        }
    }

    /// The folder: `events/dt=2026-11-27/hour=09`.
    pub fn dir(&self) -> String {
        format!("{}/{}", self.kind.plural(), hour_path(self.hour_start_ms))
    }

    /// The object key of a Parquet file named `name` (see [`file_name`]) in this partition.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}.parquet", self.dir())
    }

    /// The ingest day (UTC).
    pub fn day(&self) -> NaiveDate {
        DateTime::from_timestamp_millis(self.hour_start_ms)
            .unwrap_or_default()
            .date_naive()
    }

    /// Whether the hour has ended at `now_ms` (a closed hour can be compacted).
    pub fn is_closed(&self, now_ms: i64) -> bool {
        now_ms >= self.hour_start_ms + HOUR_MS
    }

    /// The partition of a Parquet file's key, as [`Partition::key`] writes it; `None` for any
    /// other key.
    pub fn parse_key(key: &str) -> Option<Partition> {
        let mut parts = key.split('/');
        let kind = Kind::parse(parts.next()?)?;
        let hour_start_ms = parse_hour(parts.next()?, parts.next()?)?;
        let name = parts.next()?;
        (parts.next().is_none() && name.ends_with(".parquet")).then_some(Partition {
            kind,
            hour_start_ms,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir())
    }
}

/// The prefix under which every file of `kind` lies: `events/`.
pub fn kind_prefix(kind: Kind) -> String {
    format!("{}/", kind.plural())
}

/// A name made safe for one segment of a key, and one-to-one: ASCII letters, digits and
/// `_ - . @` are kept; every other byte, and a leading `.`, becomes `~` and two hex digits; the
/// empty name becomes `~`. So `a/b` → `a~2Fb`, `a_b` stays, `..` → `~2E.`; [`unsafe_name`]
/// turns it back.
pub fn safe_name(name: &str) -> String {
    if name.is_empty() {
        return "~".into();
    }
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b"_-@".contains(&b) || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// The name that [`safe_name`] made `safe` from; `None` when `safe` is not such a name.
pub fn unsafe_name(safe: &str) -> Option<String> {
    if safe == "~" {
        return Some(String::new());
    }
    let bytes = safe.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'~' {
            let hex = safe.get(i + 1..i + 3)?;
            if hex.bytes().any(|b| b.is_ascii_lowercase()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (safe_name(&name) == safe).then_some(name)
}

/// A data file's name from its feed position: the shard (or feed id) and the first sequence
/// number of the rows it holds. A retried batch gets the same name, and overwrites its file.
pub fn file_name(shard: &str, first_sequence: &str) -> String {
    format!("{}-{}", safe_name(shard), safe_name(first_sequence))
}

/// The key of an archive of changes that could not be exported: under the hour of `at_ms` (the
/// batch's time in the feed), named by the feed position of its first change.
pub fn bad_rows_key(at_ms: i64, shard: &str, first_sequence: &str) -> String {
    format!(
        "{BAD_ROWS}/{}/{}.ndjson",
        hour_path(hour_start(at_ms)),
        file_name(shard, first_sequence)
    )
}

/// The folder of one app's published reports, with a trailing `/`.
pub fn report_dir(app: &str) -> String {
    format!("{REPORTS}/{}/", safe_name(app))
}

/// The key of one app's published report.
pub fn report_key(app: &str, report: &str) -> String {
    format!("{}{}.json", report_dir(app), safe_name(report))
}

/// The key of one app's published dashboard.
pub fn dashboard_key(app: &str) -> String {
    format!("{}dashboard.html", report_dir(app))
}

/// The report name of a key that [`report_key`] made for `app`; `None` for any other key.
pub fn report_name(app: &str, key: &str) -> Option<String> {
    let stem = key.strip_prefix(&report_dir(app))?.strip_suffix(".json")?;
    unsafe_name(stem)
}

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
        assert_eq!(p.day(), NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
        assert!(!p.is_closed(1_795_800_123_456));
        assert!(p.is_closed(p.hour_start_ms + HOUR_MS));
    }

    #[test]
    fn only_data_file_keys_parse() {
        for key in [
            "stories/dt=2026-11-27/hour=17",
            "stories/dt=2026-11-27/hour=17/x.ndjson",
            "stories/dt=2026-11-27/hour=17/a/x.parquet",
            "stories/dt=2026-13-27/hour=17/x.parquet",
            "stories/dt=2026-11-27/hour=24/x.parquet",
            "stories/day=2026-11-27/hour=17/x.parquet",
            "bad_rows/dt=2026-11-27/hour=17/x.parquet",
            "reports/app/volume.json",
        ] {
            assert_eq!(Partition::parse_key(key), None, "{key}");
        }
    }

    #[test]
    fn the_archive_and_the_reports_have_their_own_folders() {
        let at = 1_795_800_123_456;
        assert_eq!(
            bad_rows_key(at, "cauce-events@2026", "42"),
            "bad_rows/dt=2026-11-27/hour=17/cauce-events@2026-42.ndjson"
        );
        assert_eq!(report_key("app_1", "volume"), "reports/app_1/volume.json");
        assert_eq!(dashboard_key("app_1"), "reports/app_1/dashboard.html");
        assert_eq!(
            report_name("app_1", &report_key("app_1", "volume")).as_deref(),
            Some("volume")
        );
        assert_eq!(report_name("app_1", &dashboard_key("app_1")), None);
        assert_eq!(report_name("app_2", &report_key("app_1", "volume")), None);
    }

    #[test]
    fn safe_names_are_one_to_one_and_stay_in_their_folder() {
        let names = [
            "", "~", "a/b", "a_b", "a~2Fb", "..", ".", ".x", "x.", "a b", "é", "app_1", "A@b-c.d",
            "~2E.", "a\0b",
        ];
        let safe: Vec<String> = names.iter().map(|n| safe_name(n)).collect();
        for (i, s) in safe.iter().enumerate() {
            assert!(
                !s.is_empty() && !s.contains('/') && !s.starts_with('.'),
                "{s}"
            );
            assert_eq!(unsafe_name(s).as_deref(), Some(names[i]), "{s}");
            for (j, t) in safe.iter().enumerate() {
                assert_eq!(i == j, s == t, "{:?} and {:?}", names[i], names[j]);
            }
        }
        assert_eq!(safe_name("a/b"), "a~2Fb");
        assert_eq!(safe_name("app_1"), "app_1");
        assert_eq!(unsafe_name("a~2fb"), None);
        assert_eq!(unsafe_name("a~2"), None);
        assert_eq!(unsafe_name(".x"), None);
    }
}

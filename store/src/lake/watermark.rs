//! How far the lake is complete: every record the API received before the watermark is in the
//! lake's files. The system that exports writes it (`cauce serve`, after each export pass);
//! reports read it, say it, and a report job can refuse a range past it.
//!
//! Completeness is by arrival (`received_at`): an event that happened before the watermark but
//! reaches the API after it (a phone offline for a day) lands in a later ingest hour, within
//! the API's 30-day limit on the past.

use serde::{Deserialize, Serialize};

use super::{get_if_present, Lake};
use crate::error::Result;
use crate::time::format_rfc3339;

/// The lake key of the watermark.
pub const KEY: &str = "state/watermark.json";

const HOUR_MS: i64 = 3_600_000;

/// The watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Every record received before this time (epoch ms) is in the lake.
    pub complete_before_ms: i64,
    /// The same, RFC 3339, for people.
    pub complete_before: String,
    /// When it was written (epoch ms).
    pub written_at_ms: i64,
}

impl Watermark {
    /// A watermark at `complete_before_ms`, written at `now_ms`.
    pub fn new(complete_before_ms: i64, now_ms: i64) -> Self {
        Watermark {
            complete_before_ms,
            complete_before: format_rfc3339(complete_before_ms),
            written_at_ms: now_ms,
        }
    }

    /// The end of the last complete hour: every ingest hour before it is whole.
    pub fn complete_hours_before_ms(&self) -> i64 {
        self.complete_before_ms.div_euclid(HOUR_MS) * HOUR_MS
    }

    /// Whether every record received before `end_ms` is in the lake.
    pub fn covers(&self, end_ms: i64) -> bool {
        end_ms <= self.complete_before_ms
    }
}

/// Reads the lake's watermark; `None` when nothing has written one.
pub async fn read(lake: &dyn Lake) -> Result<Option<Watermark>> {
    let Some(bytes) = get_if_present(lake, KEY).await? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes)?))
}

/// Writes the lake's watermark, replacing the one there.
pub async fn write(lake: &dyn Lake, watermark: &Watermark) -> Result<()> {
    let json = serde_json::to_vec(watermark).expect("a watermark serializes");
    lake.put(KEY, json.into()).await
}

/// The watermark of a system whose oldest record not yet in the lake was received at
/// `oldest_pending_ms` (`None`: nothing pending), at `now_ms`. `in_flight_ms` covers requests
/// the API has stamped but not yet queued.
pub fn at(oldest_pending_ms: Option<i64>, now_ms: i64, in_flight_ms: i64) -> Watermark {
    let settled = now_ms - in_flight_ms;
    Watermark::new(
        oldest_pending_ms.map_or(settled, |o| o.min(settled)),
        now_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_stops_at_the_oldest_pending_record_and_at_requests_in_flight() {
        let now = 1_790_000_000_000;
        assert_eq!(at(None, now, 2_000).complete_before_ms, now - 2_000);
        assert_eq!(
            at(Some(now - 60_000), now, 2_000).complete_before_ms,
            now - 60_000
        );
        assert_eq!(
            at(Some(now - 1_000), now, 2_000).complete_before_ms,
            now - 2_000
        );
        let w = Watermark::new(now + 1_234, now);
        assert_eq!(w.complete_hours_before_ms() % HOUR_MS, 0);
        assert!(w.complete_hours_before_ms() <= w.complete_before_ms);
        assert!(w.covers(now + 1_234) && !w.covers(now + 1_235));
        assert_eq!(w.complete_before, format_rfc3339(now + 1_234));
    }
}

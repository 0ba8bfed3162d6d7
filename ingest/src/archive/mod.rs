//! The raw archive: every request body that reached the queue, as it was received, with its app,
//! kind, request id and receive time. It is the backup of the lake: replaying a day of it into an
//! empty system ([`replay`]) makes the same lake again.
//!
//! One archived request is one NDJSON line (see [`RawLine`]), stored by receive hour:
//! `raw/dt=YYYY-MM-DD/hour=HH/…`. In AWS the `api` Lambda puts the lines on a Firehose delivery
//! stream ([`firehose::FirehoseArchive`]), which lands them gzip-compressed in the raw bucket; in
//! embedded mode [`local::LocalArchive`] writes zstd-compressed files under `DATA/raw/`.
//!
//! The archive is a second copy: a 2xx still means "durable in the queue". A failure to archive
//! is logged and counted, and never turns an accepted request into an error.

#[cfg(feature = "aws")]
pub mod firehose;
pub mod local;
pub mod replay;

use std::borrow::Cow;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use cauce_store::Kind;

use crate::error::Result;

/// The largest line the archive writes, bytes: Firehose's record limit (1,000 KiB). A body whose
/// line would be larger is archived as several lines, each with part of its `batch`.
pub const MAX_LINE_BYTES: usize = 1000 * 1024;

/// One archived request.
#[derive(Debug, Serialize, Deserialize)]
pub struct RawLine<'a> {
    /// The app, from the API key.
    #[serde(borrow)]
    pub app_id: Cow<'a, str>,
    /// The route's kind.
    pub kind: Kind,
    /// The request's id (API Gateway's, or one the embedded API made up).
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    /// The API's clock when the body was read, epoch ms: replay validates against it, so it
    /// accepts and rejects what the API did.
    pub received_at: i64,
    /// The body as it was sent, as JSON; absent when the body had line breaks (pretty-printed
    /// JSON), which NDJSON cannot hold raw: then it is in `body_text`.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub body: Option<&'a RawValue>,
    /// The protocol of a body that is not one of Cauce's own, and its shape: `segment/batch`,
    /// or `segment/` and a call (`segment/track`), for the analytics SDKs' routes. Replay
    /// translates such a body as the API did. Absent for Cauce's own bodies.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Cow<'a, str>>,
    /// The body as it was sent, as a JSON string, when it had line breaks.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<Cow<'a, str>>,
}

impl RawLine<'_> {
    /// The body's bytes, exactly as the API read them.
    pub fn body_bytes(&self) -> &[u8] {
        match (&self.body, &self.body_text) {
            (Some(raw), _) => raw.get().as_bytes(),
            (None, Some(text)) => text.as_bytes(),
            (None, None) => b"",
        }
    }
}

/// Where archived lines go.
#[async_trait]
pub trait RawArchive: Send + Sync {
    /// Archives the lines of one request (from [`lines`]), received at `received_at` (epoch ms).
    async fn put(&self, received_at: i64, lines: Vec<Vec<u8>>) -> Result<()>;
}

/// The NDJSON lines (each ending in `\n`) that archive one request body. The body must be
/// JSON (the API archives only bodies it could parse). One line, unless that line would pass
/// [`MAX_LINE_BYTES`]: then the body's `batch` is split over as many lines as it takes, each
/// `{"sent_at", "batch": [part]}`, which replay takes exactly as it takes the whole.
pub fn lines(
    app_id: &str,
    kind: Kind,
    protocol: Option<&str>,
    request_id: &str,
    received_at: i64,
    body: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(body)
        .map_err(|e| crate::IngestError::Config(format!("an archived body is not UTF-8: {e}")))?;
    // The body was parsed by the API already: it goes into the line as it is, not parsed again.
    let line = |body: &str| -> Result<Vec<u8>> {
        let body = body.trim_matches([' ', '\t', '\n', '\r']);
        // Raw line breaks can only be whitespace between JSON tokens, but they are part of what
        // was sent (and of `properties` as stored): such a body is kept whole, as a string.
        let multiline = body.bytes().any(|b| matches!(b, b'\n' | b'\r'));
        let mut out = serde_json::to_vec(&RawLine {
            app_id: Cow::Borrowed(app_id),
            kind,
            request_id: Cow::Borrowed(request_id),
            received_at,
            protocol: protocol.map(Cow::Borrowed),
            body: None,
            body_text: multiline.then_some(Cow::Borrowed(body)),
        })?;
        if !multiline {
            out.pop(); // the closing brace
            out.extend_from_slice(b",\"body\":");
            out.extend_from_slice(body.as_bytes());
            out.push(b'}');
        }
        out.push(b'\n');
        Ok(out)
    };
    let first = line(text)?;
    // Another protocol's body is kept whole (the SDKs' are at most 500 KB by default): split,
    // its messages would lose the batch's context and time.
    if first.len() <= MAX_LINE_BYTES || protocol.is_some() {
        return Ok(vec![first]);
    }
    #[derive(Deserialize, Serialize)]
    struct Envelope<'a> {
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        sent_at: Option<&'a RawValue>,
        #[serde(borrow)]
        batch: Vec<&'a RawValue>,
    }
    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(text) else {
        return Ok(vec![first]);
    };
    // The line's bytes besides the items: metadata, field names, `sent_at`.
    let head =
        128 + app_id.len() + request_id.len() + envelope.sent_at.map_or(0, |s| s.get().len());
    let mut out = Vec::new();
    let mut part = Envelope {
        sent_at: envelope.sent_at,
        batch: Vec::new(),
    };
    let mut size = head;
    let mut flush = |part: &mut Envelope<'_>| -> Result<()> {
        if !part.batch.is_empty() {
            out.push(line(&serde_json::to_string(&part)?)?);
            part.batch.clear();
        }
        Ok(())
    };
    for item in envelope.batch {
        if size + item.get().len() + 1 > MAX_LINE_BYTES {
            flush(&mut part)?;
            size = head;
        }
        size += item.get().len() + 1;
        part.batch.push(item);
    }
    flush(&mut part)?;
    Ok(out)
}

/// The archive's folder of an hour, under its root: `dt=2026-11-30/hour=09`.
pub fn hour_dir(received_at: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(received_at).unwrap_or_default();
    at.format("dt=%Y-%m-%d/hour=%H").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> serde_json::Value {
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(!line[..line.len() - 1].contains(&b'\n'));
        serde_json::from_slice(line).unwrap()
    }

    #[test]
    fn a_body_is_one_line_with_its_metadata_and_its_bytes_kept() {
        let compact = br#"{"batch": [{"event_id": "e1", "name": "caf\u00e9", "n": 1.50}]}"#;
        let pretty = b"{\"batch\": [\n  {\"event_id\": \"e1\", \"n\": 1.50}\r\n]}";
        for body in [&compact[..], &pretty[..]] {
            let out = lines("app", Kind::Story, None, "req-1", 1_764_500_000_123, body).unwrap();
            assert_eq!(out.len(), 1);
            let v = parse(&out[0]);
            assert_eq!(v["app_id"], "app");
            assert_eq!(v["kind"], "story");
            assert_eq!(v["request_id"], "req-1");
            assert_eq!(v["received_at"], 1_764_500_000_123_i64);
            let line: RawLine<'_> = serde_json::from_slice(&out[0]).unwrap();
            assert_eq!(line.body_bytes(), body, "the bytes as sent");
        }
        // A one-line body stays JSON, for queries over the archive.
        let v = parse(&lines("app", Kind::Event, None, "r", 1, compact).unwrap()[0]);
        assert_eq!(v["body"]["batch"][0]["name"], "caf\u{e9}");
    }

    #[test]
    fn a_body_too_large_for_one_line_is_split_by_items_in_order() {
        let items: Vec<String> = (0..80)
            .map(|i| format!(r#"{{"event_id":"e{i}","pad":"{}"}}"#, "x".repeat(30_000)))
            .collect();
        let body = format!(
            r#"{{"sent_at":"2026-11-30T10:00:00Z","batch":[{}]}}"#,
            items.join(",")
        );
        assert!(body.len() > MAX_LINE_BYTES);
        let out = lines("app", Kind::Event, None, "r", 5, body.as_bytes()).unwrap();
        assert!(out.len() >= 3, "{}", out.len());
        let mut ids = Vec::new();
        for line in &out {
            assert!(line.len() <= MAX_LINE_BYTES, "{}", line.len());
            let v = parse(line);
            assert_eq!(v["body"]["sent_at"], "2026-11-30T10:00:00Z");
            assert_eq!(v["request_id"], "r");
            for item in v["body"]["batch"].as_array().unwrap() {
                ids.push(item["event_id"].as_str().unwrap().to_owned());
            }
        }
        let want: Vec<String> = (0..80).map(|i| format!("e{i}")).collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn hours_are_folders_by_receive_time() {
        assert_eq!(hour_dir(1_764_500_000_123), "dt=2025-11-30/hour=10");
    }
}

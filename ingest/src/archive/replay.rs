//! Replaying the raw archive into a queue: each archived request is validated again against its
//! own receive time and packed as the API packed it ([`accept`]), so the queue gets what it got
//! the first time, and the writer and the exporter make the same store and lake. Replay is
//! idempotent: items already stored are deduplicated by their keys.
//!
//! The archive is read through the `Lake` port, so a folder (`DATA/raw`) and an S3 prefix (the
//! Firehose bucket) replay alike: zstd files (`.zst`, embedded), gzip files (`.gz`, Firehose)
//! and plain NDJSON. A file cut short (a process killed mid-write) gives its whole lines.

use std::io::Read;

use chrono::NaiveDate;
use serde::Serialize;

use cauce_store::lake::Lake;

use super::RawLine;
use crate::api::{accept, accept_sdk, ApiConfig};
use crate::error::Result;
use crate::queue::{OutMessage, Queue};
use crate::segment::Shape;

/// Queue messages sent together.
const SEND_BATCH: usize = 500;

/// What a replay did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ReplayReport {
    /// Archive files read.
    pub files: usize,
    /// Archived requests replayed.
    pub requests: usize,
    /// Items accepted into the queue.
    pub accepted: usize,
    /// Items rejected (into the bad rows, as the first time).
    pub rejected: usize,
    /// Lines that could not be replayed (not an archive line, or a body refused as a whole),
    /// with the reason; the first 20.
    pub skipped: Vec<String>,
    /// How many lines could not be replayed.
    pub skipped_lines: usize,
    /// Files whose end was cut short (their whole lines were replayed).
    pub truncated: Vec<String>,
}

/// How many skipped lines a report names, with their reasons.
const SKIPPED_SHOWN: usize = 20;

impl ReplayReport {
    /// Adds another replay's counts (of another day) to these.
    pub fn absorb(&mut self, other: ReplayReport) {
        self.files += other.files;
        self.requests += other.requests;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.skipped_lines += other.skipped_lines;
        self.skipped.extend(other.skipped);
        self.skipped.truncate(SKIPPED_SHOWN);
        self.truncated.extend(other.truncated);
    }
}

/// Replays the archived requests received on `day` (UTC), in the order they were archived.
pub async fn replay_day(
    raw: &dyn Lake,
    day: NaiveDate,
    queue: &dyn Queue,
    config: &ApiConfig,
) -> Result<ReplayReport> {
    let mut objects = raw.list(&format!("{}/", day.format("dt=%Y-%m-%d"))).await?;
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let mut report = ReplayReport::default();
    let mut outbox: Vec<OutMessage> = Vec::new();
    for object in objects {
        let bytes = raw.get(&object.key).await?;
        let (text, whole) = decode(&object.key, &bytes);
        if !whole {
            tracing::warn!(file = %object.key, "An archive file ends cut short.");
            report.truncated.push(object.key.clone());
        }
        report.files += 1;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            replay_line(line, config, &mut report, &mut outbox);
            if outbox.len() >= SEND_BATCH {
                queue.send(std::mem::take(&mut outbox)).await?;
            }
        }
    }
    if !outbox.is_empty() {
        queue.send(outbox).await?;
    }
    Ok(report)
}

fn replay_line(
    line: &[u8],
    config: &ApiConfig,
    report: &mut ReplayReport,
    outbox: &mut Vec<OutMessage>,
) {
    let outcome = serde_json::from_slice::<RawLine<'_>>(line)
        .map_err(|e| format!("not an archive line: {e}"))
        .and_then(|raw| {
            let (app, body, at) = (&*raw.app_id, raw.body_bytes(), raw.received_at);
            let accepted = match raw.protocol.as_deref() {
                None => accept(raw.kind, app, body, at, config),
                Some(p) => match Shape::from_protocol(p) {
                    Some(shape) => accept_sdk(shape, app, body, at, config).map(|a| a.merged()),
                    None => {
                        return Err(format!(
                            "request {}: unknown protocol {p:?}",
                            raw.request_id
                        ))
                    }
                },
            };
            accepted.map_err(|e| format!("request {}: {e}", raw.request_id))
        });
    match outcome {
        Ok(accepted) => {
            report.requests += 1;
            report.accepted += accepted.accepted;
            report.rejected += accepted.rejected.len();
            outbox.extend(accepted.messages);
        }
        Err(reason) => {
            report.skipped_lines += 1;
            if report.skipped.len() < SKIPPED_SHOWN {
                report.skipped.push(reason);
            }
        }
    }
}

/// A file's NDJSON, decompressed by its name's extension, and whether it was whole. A cut-short
/// file gives what came before the cut, up to its last whole line.
pub fn decode(key: &str, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let read = if key.ends_with(".zst") {
        zstd::stream::read::Decoder::new(bytes).and_then(|mut d| d.read_to_end(&mut out))
    } else if key.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)
    } else {
        out.extend_from_slice(bytes);
        Ok(out.len())
    };
    let whole = read.is_ok();
    if !whole {
        let end = out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        out.truncate(end);
    }
    (out, whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_format_decodes_and_a_cut_file_gives_its_whole_lines() {
        let text = b"{\"a\":1}\n{\"b\":2}\n".repeat(1000);
        let zst = zstd::bulk::compress(&text, 1).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        for (key, bytes) in [("a.ndjson.zst", &zst), ("b.gz", &gz), ("c.ndjson", &text)] {
            assert_eq!(decode(key, bytes), (text.clone(), true), "{key}");
        }
        // Two frames, the second cut short: the first frame's lines, and not whole.
        let mut two = zst.clone();
        two.extend_from_slice(&zst[..zst.len() / 2]);
        let (out, whole) = decode("d.zst", &two);
        assert!(!whole);
        assert!(
            out.len() >= text.len() && out.ends_with(b"\n"),
            "{}",
            out.len()
        );
        assert!(out
            .split(|&b| b == b'\n')
            .all(|l| l.is_empty() || l.starts_with(b"{")));
    }
}

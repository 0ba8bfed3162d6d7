//! The DynamoDB Streams handler of the `exporter` Lambda.
//!
//! The event JSON is decoded straight into what the exporter needs: each record's event name,
//! sequence number, user identity and the `kind` and `doc` attributes of its images. Every
//! other attribute is skipped by the parser; no `HashMap` of `AttributeValue`s is built. The
//! `doc` (the record as JSON) is decoded into a [`RecordRef`], whose strings and JSON objects
//! borrow from it, and appended to the Arrow builders of its partition at once: no `String` or
//! `Box` per field.

use std::borrow::Cow;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use cauce_store::lake::Lake;
use cauce_store::{Kind, Op, RecordRef};

use crate::catalog::{partitions_of, Catalog};
use crate::error::Result;
use crate::transform::{PartitionBatch, Partitions};
use crate::writer::{archive_bad_changes, put_batches, BadChange, Written};

mod scan;

/// The principal that DynamoDB uses for removals caused by TTL expiry.
pub const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// The feed name of a stream record: the table and stream label from its source ARN, such as
/// `cauce-events@2026-11-27T00_00_00.000`.
pub fn shard_of(event_source_arn: Option<&str>) -> String {
    let arn = event_source_arn.unwrap_or("dynamodb");
    let tail = arn.rsplit_once(":table/").map_or(arn, |(_, t)| t);
    tail.replace("/stream/", "@").replace(['/', ':'], "_")
}

#[derive(Deserialize)]
struct EventLite<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct RecordLite<'a> {
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(rename = "eventSourceARN", default, borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "dynamodb", borrow)]
    change: ChangeLite<'a>,
    #[serde(rename = "userIdentity", default, borrow)]
    identity: Option<IdentityLite<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct ChangeLite<'a> {
    #[serde(rename = "SequenceNumber", borrow)]
    sequence: Cow<'a, str>,
    #[serde(rename = "ApproximateCreationDateTime", default)]
    created: Option<f64>,
    #[serde(rename = "NewImage", default, borrow)]
    new_image: Option<ImageLite<'a>>,
    #[serde(rename = "OldImage", default, borrow)]
    old_image: Option<ImageLite<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct IdentityLite<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "principalId", borrow)]
    principal: Cow<'a, str>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct ImageLite<'a> {
    #[serde(default, borrow)]
    kind: Option<AttrS<'a>>,
    #[serde(default, borrow)]
    doc: Option<AttrS<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct AttrS<'a> {
    #[serde(rename = "S", borrow)]
    s: Cow<'a, str>,
}

/// The image a change is about: the new one, or the old one for a removal. Its `kind` and its
/// `doc` (the record as JSON, unescaped).
fn image<'i, 'a>(
    change: &'i ChangeLite<'a>,
) -> std::result::Result<Option<(Kind, &'i str)>, String> {
    let present = |i: &&ImageLite<'a>| i.kind.is_some() || i.doc.is_some();
    let img = change.new_image.as_ref().filter(present);
    let Some(img) = img.or(change.old_image.as_ref().filter(present)) else {
        return Ok(None);
    };
    let kind = img
        .kind
        .as_ref()
        .and_then(|k| Kind::parse(&k.s))
        .ok_or("image without a valid `kind` attribute")?;
    let doc = img
        .doc
        .as_ref()
        .ok_or("image without a `doc` string attribute")?;
    Ok(Some((kind, &doc.s)))
}

/// A stream batch, decoded straight into Arrow columns.
#[derive(Debug, Default)]
pub struct Decoded {
    /// One sorted batch per partition.
    pub batches: Vec<PartitionBatch>,
    /// Records that cannot be exported, with their reasons, in feed order.
    pub bad: Vec<BadChange>,
    /// TTL expiries skipped.
    pub ttl_expired: usize,
    /// The first record's creation time in the stream, epoch ms.
    pub created: Option<i64>,
}

/// What a record that parsed but cannot be exported says: its shard, sequence and the reason.
type Refusal = (String, String, String);

/// Where decoded records go: their rows into the partitions' builders.
#[derive(Default)]
struct Sink {
    parts: Partitions,
    bad: Vec<BadChange>,
    ttl_expired: usize,
    created: Option<i64>,
    /// The last source ARN seen and its shard name: a batch comes from one shard.
    source: (String, String),
}

/// The shard name of a source ARN, computed once per ARN: `cache` holds the last one.
fn shard_cached<'c>(cache: &'c mut (String, String), source: Option<&str>) -> &'c str {
    let arn = source.unwrap_or_default();
    if cache.1.is_empty() || cache.0 != arn {
        *cache = (arn.to_owned(), shard_of(source));
    }
    &cache.1
}

impl Sink {
    /// Appends one record's row, skips a TTL expiry, or says why the record cannot be exported.
    fn take(&mut self, rec: &RecordLite<'_>) -> std::result::Result<(), Refusal> {
        let refuse = |sink: &mut Sink, reason: String| {
            let shard = shard_cached(&mut sink.source, rec.source.as_deref()).to_owned();
            (shard, rec.change.sequence.clone().into_owned(), reason)
        };
        let Some(op) = Op::parse(&rec.event_name) else {
            return Err(refuse(
                self,
                format!("unknown event name {:?}", rec.event_name),
            ));
        };
        self.created = self
            .created
            .or(rec.change.created.map(|s| (s * 1000.0) as i64));
        let ttl_expired = op == Op::Remove
            && rec
                .identity
                .as_ref()
                .is_some_and(|i| i.kind == "Service" && i.principal == TTL_PRINCIPAL);
        let (kind, doc) = match image(&rec.change) {
            Ok(Some(image)) => image,
            Ok(None) => return Err(refuse(self, "a record without images".into())),
            Err(reason) => return Err(refuse(self, reason)),
        };
        if ttl_expired {
            self.ttl_expired += 1;
            return Ok(());
        }
        let row = match RecordRef::from_json_ref(kind, doc) {
            Ok(row) => row,
            Err(e) => return Err(refuse(self, format!("`doc` is not a {kind}: {e}"))),
        };
        let shard = shard_cached(&mut self.source, rec.source.as_deref());
        let pushed = self.parts.push(op, &row, shard, &rec.change.sequence);
        pushed.map_err(|e| refuse(self, e.to_string()))
    }

    fn finish(self) -> Result<Decoded> {
        Ok(Decoded {
            batches: self.parts.finish()?,
            bad: self.bad,
            ttl_expired: self.ttl_expired,
            created: self.created,
        })
    }
}

/// Where the fast path's scanner and serde_json read `payload` differently, in words (`None`
/// when they read the same records, or both refuse). The scanner may leave to serde_json only
/// an event nested deeper than it follows. The property the `stream_scan` fuzz target checks.
pub fn scan_disagreement(payload: &str) -> Option<String> {
    scan::disagreement(payload)
}

/// Decodes a DynamoDB Streams event straight into sorted Arrow batches, one per partition;
/// records that cannot be decoded are kept, as they came, with their reasons.
///
/// The usual event is read in one pass by a scanner (`stream/scan.rs`), each record's `doc`
/// unescaped as it is walked over, parsed as soon as its record is read and its fields copied
/// once, into the builders. Only when some record does not parse or convert (or the scanner meets a shape it
/// does not expect) is the event read again, record by record with serde_json, so that each bad
/// record is archived whole with serde_json's words for what is wrong.
pub fn decode(payload: &str) -> Result<Decoded> {
    let mut sink = Sink::default();
    if scan::each_record(payload, |rec| sink.take(&rec).ok()).is_none() {
        sink = Sink::default();
        let event: EventLite<'_> = serde_json::from_str(payload)?;
        for raw in event.records {
            if let Err(bad) = decode_one(&mut sink, raw.get()) {
                sink.bad.push(bad);
            }
        }
    }
    sink.finish()
}

fn decode_one(sink: &mut Sink, raw: &str) -> std::result::Result<(), BadChange> {
    let bad = |shard: String, sequence, reason| BadChange {
        shard,
        sequence,
        reason,
        raw: raw.to_owned(),
    };
    let rec: RecordLite<'_> = serde_json::from_str(raw).map_err(|e| {
        bad(
            "unknown".into(),
            None,
            format!("not a DynamoDB stream record: {e}"),
        )
    })?;
    sink.take(&rec)
        .map_err(|(shard, sequence, reason)| bad(shard, Some(sequence), reason))
}

/// What one stream batch did.
#[derive(Debug, Default, Serialize)]
pub struct StreamReport {
    /// Files written.
    pub written: Vec<Written>,
    /// Records archived as bad rows.
    pub bad: usize,
    /// TTL expiries skipped.
    pub ttl_expired: usize,
}

/// The `exporter` Lambda's handler. Every change of the batch goes to the lake, bad records to
/// the bad-rows archive; on a failure to write, it reports the batch's first sequence number,
/// so that Lambda retries the batch (whose files keep their names, so nothing is duplicated).
/// New partitions are registered in the `catalog` when there is one (see [`export`]).
pub async fn handle(
    payload: &str,
    lake: &dyn Lake,
    catalog: Option<&dyn Catalog>,
) -> (DynamoDbEventResponse, Result<StreamReport>) {
    let mut response = DynamoDbEventResponse::default();
    let result = export(payload, lake, catalog).await;
    match &result {
        Ok(r) => tracing::info!(
            files = r.written.len(),
            bad = r.bad,
            ttl_expired = r.ttl_expired,
            "Batch exported."
        ),
        Err(err) => tracing::error!(error = %err, "Batch failed; it will be retried."),
    }
    if result.is_err() {
        let first = first_sequence(payload);
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = first;
        response.batch_item_failures.push(failure);
    }
    (response, result)
}

fn first_sequence(payload: &str) -> Option<String> {
    let event: EventLite<'_> = serde_json::from_str(payload).ok()?;
    event.records.iter().find_map(|raw| {
        #[derive(Deserialize)]
        struct Seq<'a> {
            #[serde(borrow)]
            dynamodb: ChangeSeq<'a>,
        }
        #[derive(Deserialize)]
        struct ChangeSeq<'a> {
            #[serde(rename = "SequenceNumber", borrow)]
            sequence: Cow<'a, str>,
        }
        serde_json::from_str::<Seq<'_>>(raw.get())
            .ok()
            .map(|s| s.dynamodb.sequence.into_owned())
    })
}

/// Exports one stream batch to the lake, then registers the partitions it wrote in the
/// `catalog`. A catalog failure does not fail the batch: the data is in the lake, and failing
/// would only retry it, and in the end skip it; the compactor registers the recent partitions
/// again every hour ([`crate::compact::scheduled`]).
pub async fn export(
    payload: &str,
    lake: &dyn Lake,
    catalog: Option<&dyn Catalog>,
) -> Result<StreamReport> {
    let decoded = decode(payload)?;
    let mut report = StreamReport {
        written: put_batches(lake, &decoded.batches).await?,
        bad: decoded.bad.len(),
        ttl_expired: decoded.ttl_expired,
    };
    if let Some(catalog) = catalog {
        if let Err(e) = catalog.register(&partitions_of(&report.written)).await {
            tracing::warn!(error = %e, "New partitions not registered; the compactor will.");
        }
    }
    let now = cauce_store::time::now_ms();
    if let Some(created) = decoded.created {
        let behind = (now - created).max(0) as f64 / 1e3;
        metrics::gauge!(cauce_store::metrics::EXPORT_LAG_SECONDS).set(behind);
    }
    let at = decoded.created.unwrap_or(now);
    if let Some(w) = archive_bad_changes(lake, &decoded.bad, at).await? {
        tracing::warn!(key = %w.key, rows = w.rows, "Bad stream records archived.");
        report.written.push(w);
    }
    Ok(report)
}

//! The DynamoDB Streams handler of the `exporter` Lambda.
//!
//! The event JSON is decoded straight into what the exporter needs: each record's event name,
//! sequence number, user identity and the `kind` and `doc` attributes of its images. Every
//! other attribute is skipped by the parser; no `HashMap` of `AttributeValue`s is built. The
//! `doc` (the record as JSON) is decoded into the typed model, then appended to Arrow builders.

use std::borrow::Cow;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use cauce_store::stream::{shard_of, TTL_PRINCIPAL};
use cauce_store::{Change, Kind, Op, Record};

use crate::error::Result;
use crate::lake::Lake;
use crate::writer::{archive_bad_changes, BadChange, LakeWriter, Written};

#[derive(Deserialize)]
struct EventLite<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
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

#[derive(Deserialize)]
struct IdentityLite<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "principalId", borrow)]
    principal: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ImageLite<'a> {
    #[serde(default, borrow)]
    kind: Option<AttrS<'a>>,
    #[serde(default, borrow)]
    doc: Option<AttrS<'a>>,
}

#[derive(Deserialize)]
struct AttrS<'a> {
    #[serde(rename = "S", borrow)]
    s: Cow<'a, str>,
}

fn image(img: Option<ImageLite<'_>>) -> std::result::Result<Option<Record>, String> {
    let Some(img) = img else { return Ok(None) };
    if img.kind.is_none() && img.doc.is_none() {
        return Ok(None);
    }
    let kind = img
        .kind
        .as_ref()
        .and_then(|k| Kind::parse(&k.s))
        .ok_or("image without a valid `kind` attribute")?;
    let doc = img.doc.ok_or("image without a `doc` string attribute")?;
    Record::from_json(kind, &doc.s)
        .map(Some)
        .map_err(|e| format!("`doc` is not a {kind}: {e}"))
}

/// One stream record, decoded.
#[derive(Debug)]
pub enum Decoded {
    /// A change to export, its size in bytes and its creation time in the stream (epoch ms).
    Change(Box<Change>, usize, Option<i64>),
    /// A record that cannot be exported, with its reason.
    Bad(BadChange),
}

fn decode_one(raw: &str) -> std::result::Result<Decoded, BadChange> {
    let rec: RecordLite<'_> = serde_json::from_str(raw).map_err(|e| BadChange {
        shard: "unknown".into(),
        sequence: None,
        reason: format!("not a DynamoDB stream record: {e}"),
        raw: raw.to_owned(),
    })?;
    convert(rec, raw.len()).map_err(|(shard, sequence, reason)| BadChange {
        shard,
        sequence: Some(sequence),
        reason,
        raw: raw.to_owned(),
    })
}

/// A record that parsed but cannot be exported: its shard, sequence number and the reason.
type Refusal = (String, String, String);

fn convert(rec: RecordLite<'_>, size: usize) -> std::result::Result<Decoded, Refusal> {
    let shard = shard_of(rec.source.as_deref());
    let sequence = rec.change.sequence.into_owned();
    let refuse = |reason: String| (shard.clone(), sequence.clone(), reason);
    let op = Op::parse(&rec.event_name)
        .ok_or_else(|| refuse(format!("unknown event name {:?}", rec.event_name)))?;
    let new_image = image(rec.change.new_image).map_err(&refuse)?;
    let old_image = image(rec.change.old_image).map_err(&refuse)?;
    let kind = new_image
        .as_ref()
        .or(old_image.as_ref())
        .map(Record::kind)
        .ok_or_else(|| refuse("a record without images".into()))?;
    let ttl_expired = op == Op::Remove
        && rec
            .identity
            .is_some_and(|i| i.kind == "Service" && i.principal == TTL_PRINCIPAL);
    let created = rec.change.created.map(|s| (s * 1000.0) as i64);
    let change = Change {
        kind,
        op,
        shard,
        sequence,
        ttl_expired,
        new_image,
        old_image,
    };
    Ok(Decoded::Change(Box::new(change), size, created))
}

#[derive(Deserialize)]
struct EventFast<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<RecordLite<'a>>,
}

/// Decodes a DynamoDB Streams event; records that cannot be decoded stay in place as bad.
///
/// The usual event is read in one pass. Only when some record does not parse or convert is
/// the event read again record by record, so that each bad record is archived as it came.
pub fn decode(payload: &str) -> Result<Vec<Decoded>> {
    if let Ok(event) = serde_json::from_str::<EventFast<'_>>(payload) {
        let mut out = Vec::with_capacity(event.records.len());
        for rec in event.records {
            let size = rec.change.size_hint();
            match convert(rec, size) {
                Ok(d) => out.push(d),
                Err(_) => return decode_each(payload),
            }
        }
        return Ok(out);
    }
    decode_each(payload)
}

fn decode_each(payload: &str) -> Result<Vec<Decoded>> {
    let event: EventLite<'_> = serde_json::from_str(payload)?;
    Ok(event
        .records
        .iter()
        .map(|raw| decode_one(raw.get()).unwrap_or_else(Decoded::Bad))
        .collect())
}

impl ChangeLite<'_> {
    /// About how many bytes the change carries: its images' `doc`s.
    fn size_hint(&self) -> usize {
        let doc = |i: &Option<ImageLite<'_>>| {
            i.as_ref()
                .and_then(|i| i.doc.as_ref())
                .map_or(0, |d| d.s.len())
        };
        doc(&self.new_image) + doc(&self.old_image)
    }
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
pub async fn handle(
    payload: &str,
    lake: &dyn Lake,
) -> (DynamoDbEventResponse, Result<StreamReport>) {
    let mut response = DynamoDbEventResponse::default();
    let result = export(payload, lake).await;
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

/// Exports one stream batch to the lake.
pub async fn export(payload: &str, lake: &dyn Lake) -> Result<StreamReport> {
    let mut writer = LakeWriter::new(usize::MAX);
    let mut bad = Vec::new();
    let mut report = StreamReport::default();
    let mut created = None;
    for d in decode(payload)? {
        match d {
            Decoded::Change(c, _, at) if c.ttl_expired => {
                created = created.or(at);
                report.ttl_expired += 1;
            }
            Decoded::Change(c, size, at) => {
                created = created.or(at);
                writer.write(*c, size);
            }
            Decoded::Bad(b) => bad.push(b),
        }
    }
    report.written = writer.flush(lake).await?;
    report.bad = bad.len();
    let at = created.unwrap_or_else(cauce_store::time::now_ms);
    if let Some(w) = archive_bad_changes(lake, &bad, at).await? {
        tracing::warn!(key = %w.key, rows = w.rows, "Bad stream records archived.");
        report.written.push(w);
    }
    Ok(report)
}

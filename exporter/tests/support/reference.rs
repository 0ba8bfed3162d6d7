//! The reference decoder of DynamoDB Streams events: `aws_lambda_events`, whose images are
//! `serde_dynamo` items, into the owned [`Change`] that the SQLite change log yields. It is the
//! plain way to read a stream event; the exporter's one-pass decoder (`stream.rs`) is held to it
//! by the tests, and the benchmark measures it as the naive anchor. No production code uses it.
#![allow(dead_code)]

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use serde_dynamo::AttributeValue;

use cauce_exporter::stream::{shard_of, TTL_PRINCIPAL};
use cauce_store::{Change, Kind, Op, Record, Result, StoreError};

fn string_attr<'a>(item: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn decode_image(item: &serde_dynamo::Item) -> Result<Option<(Kind, Record)>> {
    if item.is_empty() {
        return Ok(None);
    }
    let kind = string_attr(item, "kind")
        .and_then(Kind::parse)
        .ok_or_else(|| StoreError::BadChange("image without a valid `kind` attribute".into()))?;
    let doc = string_attr(item, "doc")
        .ok_or_else(|| StoreError::BadChange("image without a `doc` string attribute".into()))?;
    Ok(Some((kind, Record::from_json(kind, doc)?)))
}

/// Whether the service removed the record because its TTL expired.
pub fn is_ttl_expiry(record: &EventRecord) -> bool {
    record
        .user_identity
        .as_ref()
        .is_some_and(|u| u.type_ == "Service" && u.principal_id == TTL_PRINCIPAL)
}

/// Decodes one stream record.
pub fn decode_record(record: &EventRecord) -> Result<Change> {
    let op = Op::parse(&record.event_name).ok_or_else(|| {
        StoreError::BadChange(format!("unknown event name {:?}", record.event_name))
    })?;
    let new = decode_image(&record.change.new_image)?;
    let old = decode_image(&record.change.old_image)?;
    let kind = new
        .as_ref()
        .or(old.as_ref())
        .map(|(k, _)| *k)
        .ok_or_else(|| StoreError::BadChange("record without images".into()))?;
    let sequence = record
        .change
        .sequence_number
        .clone()
        .ok_or_else(|| StoreError::BadChange("record without a sequence number".into()))?;
    Ok(Change {
        kind,
        op,
        shard: shard_of(record.event_source_arn.as_deref()),
        sequence,
        ttl_expired: op == Op::Remove && is_ttl_expiry(record),
        new_image: new.map(|(_, r)| r),
        old_image: old.map(|(_, r)| r),
    })
}

/// Decodes every record of a stream event; a record that fails keeps its error, in place.
pub fn decode_event(event: &Event) -> Vec<Result<Change>> {
    event.records.iter().map(decode_record).collect()
}

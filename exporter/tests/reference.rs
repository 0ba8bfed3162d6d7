//! The reference decoder (`support/reference.rs`) on a real-shaped DynamoDB Streams Lambda event
//! (NEW_AND_OLD_IMAGES): the owned `Change`s the exporter's fast path is held to.

#[path = "support/reference.rs"]
mod reference;

use aws_lambda_events::event::dynamodb::Event;
use cauce_store::{Kind, Op, Record};
use reference::decode_event;

const FIXTURE: &str = include_str!("data/dynamodb-stream.json");

/// The fixture without its last record, the malformed one.
fn well_formed() -> Event {
    let mut event: Event = serde_json::from_str(FIXTURE).expect("fixture is a DynamoDB event");
    event.records.pop();
    event
}

#[test]
fn insert_modify_ttl_remove_and_user_remove_decode() {
    let event = well_formed();
    let changes: Vec<_> = decode_event(&event)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every record decodes");
    let summary: Vec<_> = changes
        .iter()
        .map(|c| (c.kind, c.op, c.ttl_expired, c.sequence.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (Kind::Event, Op::Insert, false, "111100000000000000000001"),
            (Kind::Story, Op::Modify, false, "111200000000000000000002"),
            (Kind::Event, Op::Remove, true, "111300000000000000000003"),
            (Kind::Story, Op::Remove, false, "111400000000000000000004"),
        ]
    );
    assert_eq!(changes[0].shard, "cauce-events@2026-11-27T00_00_00.000");

    let Some(Record::Event(e)) = &changes[0].new_image else {
        panic!("the insert carries the new event");
    };
    assert_eq!((e.app_id.as_str(), e.event_id.as_str()), ("app_1", "e-1"));
    assert_eq!(e.ts, 1_795_800_000_250);
    assert_eq!(e.properties.as_ref().unwrap().get(), r#"{"screen":"home"}"#);
    assert!(changes[0].old_image.is_none());

    let (old, new) = (&changes[1].old_image, &changes[1].new_image);
    assert_eq!(
        old.as_ref().and_then(Record::updated_at),
        Some(1_795_800_005_000)
    );
    assert_eq!(
        new.as_ref().and_then(Record::updated_at),
        Some(1_795_800_009_000)
    );
    let Some(Record::Story(s)) = new else {
        panic!("the modify carries the new story");
    };
    assert_eq!(s.steps.len(), 2);

    // Removals carry only the old image.
    assert!(changes[2].new_image.is_none() && changes[3].new_image.is_none());
    assert_eq!(changes[3].record().map(Record::key), Some("st-1".into()));
}

#[test]
fn a_record_without_a_doc_is_an_error_in_place() {
    let mut event = well_formed();
    event.records[1].change.new_image.remove("doc");
    let results = decode_event(&event);
    assert!(results[0].is_ok() && results[2].is_ok());
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("`doc`"), "{err}");
}

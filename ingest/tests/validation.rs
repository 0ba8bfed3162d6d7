//! One row per validation rule: the item, the stable error code and the field it names.

use cauce_ingest::validate::{parse_batch, BodyError, Code, Limits, WarningCode};
use cauce_store::{Kind, Record};

const NOW: i64 = 1_790_000_000_000; // 2026-09-21T14:13:20Z
const DAY: i64 = 86_400_000;

fn one(kind: Kind, item: &str) -> Result<Record, (Code, String, String)> {
    let body = format!(r#"{{"batch":[{item}]}}"#);
    let mut parsed = parse_batch(kind, body.as_bytes(), "app", NOW, &Limits::default())
        .unwrap_or_else(|e| panic!("body refused: {e:?}"));
    match (parsed.accepted.pop(), parsed.rejected.pop()) {
        (Some(r), None) => Ok(r),
        (None, Some((rej, raw))) => {
            assert_eq!(raw, item, "the rejected item is kept as sent");
            Err((rej.error, rej.field, rej.message))
        }
        other => panic!("one item gives one outcome, got {other:?}"),
    }
}

const EVENT: &str = r#""event_id":"e1","name":"open","timestamp":1790000000000"#;
const STORY: &str =
    r#""story_id":"s1","name":"checkout","started_at":1790000000000,"updated_at":1790000000000"#;
const TEST: &str = r#""experiment":"x","user_id":"u","variant":"a","exposed_at":1790000000000,"updated_at":1790000000000"#;

#[test]
fn every_rule_has_its_code_and_names_its_field() {
    let deep = r#"{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}"#;
    let wide = format!(
        "{{{}}}",
        (0..101)
            .map(|i| format!("\"k{i}\":1"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let big = "x".repeat(33 * 1024);
    let long = "y".repeat(257);
    let future = NOW + 2 * DAY;
    let past = NOW - 31 * DAY;
    let steps = (0..201)
        .map(|_| r#"{"name":"s","at":1790000000000}"#)
        .collect::<Vec<_>>()
        .join(",");
    #[rustfmt::skip]
    let table: Vec<(&str, Kind, String, Code, &str)> = vec![
        ("event without event_id", Kind::Event, r#"{"name":"n","timestamp":1790000000000}"#.into(), Code::MissingField, "event_id"),
        ("event without name", Kind::Event, r#"{"event_id":"e","timestamp":1790000000000}"#.into(), Code::MissingField, "name"),
        ("event without timestamp", Kind::Event, r#"{"event_id":"e","name":"n"}"#.into(), Code::MissingField, "timestamp"),
        ("null required field", Kind::Event, r#"{"event_id":null,"name":"n","timestamp":1790000000000}"#.into(), Code::MissingField, "event_id"),
        ("number for a string", Kind::Event, r#"{"event_id":7,"name":"n","timestamp":1790000000000}"#.into(), Code::BadType, "event_id"),
        ("item not an object", Kind::Event, "[1,2]".into(), Code::BadType, "item"),
        ("properties not an object", Kind::Event, format!(r#"{{{EVENT},"properties":[1]}}"#), Code::BadType, "properties"),
        ("context not an object", Kind::Event, format!(r#"{{{EVENT},"context":"ios"}}"#), Code::BadType, "context"),
        ("timestamp not a time", Kind::Event, r#"{"event_id":"e","name":"n","timestamp":"tuesday"}"#.into(), Code::BadTimestamp, "timestamp"),
        ("fractional milliseconds", Kind::Event, r#"{"event_id":"e","name":"n","timestamp":1.5}"#.into(), Code::BadTimestamp, "timestamp"),
        ("timestamp too far ahead", Kind::Event, format!(r#"{{"event_id":"e","name":"n","timestamp":{future}}}"#), Code::TimestampOutOfRange, "timestamp"),
        ("timestamp too old", Kind::Event, format!(r#"{{"event_id":"e","name":"n","timestamp":{past}}}"#), Code::TimestampOutOfRange, "timestamp"),
        ("lone surrogate in properties", Kind::Event, format!(r#"{{{EVENT},"properties":{{"a":"\ud800"}}}}"#), Code::BadValue, "properties"),
        ("lone surrogate in a step", Kind::Story, format!(r#"{{{STORY},"steps":[{{"name":"a","at":1790000000000,"properties":{{"b":"\udc00"}}}}]}}"#), Code::BadValue, "steps[0].properties"),
        ("timestamp in epoch seconds", Kind::Event, r#"{"event_id":"e","name":"n","timestamp":1790000000}"#.into(), Code::BadTimestamp, "timestamp"),
        ("timestamp in microseconds", Kind::Event, r#"{"event_id":"e","name":"n","timestamp":1790000000000000}"#.into(), Code::BadTimestamp, "timestamp"),
        ("updated_at in nanoseconds", Kind::Story, r#"{"story_id":"s","name":"n","started_at":1790000000000,"updated_at":1790000000000000000,"steps":[]}"#.into(), Code::BadTimestamp, "updated_at"),
        ("step time in seconds", Kind::Story, format!(r#"{{{STORY},"steps":[{{"name":"a","at":1790000000}}]}}"#), Code::BadTimestamp, "steps[0].at"),
        ("exposure time in seconds", Kind::Exposure, r#"{"experiment":"x","user_id":"u","variant":"a","exposed_at":1790000000,"updated_at":1790000000000}"#.into(), Code::BadTimestamp, "exposed_at"),
        ("empty id", Kind::Event, r#"{"event_id":"","name":"n","timestamp":1790000000000}"#.into(), Code::EmptyField, "event_id"),
        ("id too long", Kind::Event, format!(r#"{{"event_id":"{long}","name":"n","timestamp":1790000000000}}"#), Code::TooLong, "event_id"),
        ("control character in id", Kind::Event, r#"{"event_id":"a\u0007b","name":"n","timestamp":1790000000000}"#.into(), Code::BadValue, "event_id"),
        ("item too large", Kind::Event, format!(r#"{{{EVENT},"properties":{{"blob":"{big}"}}}}"#), Code::TooLarge, "item"),
        ("properties too deep", Kind::Event, format!(r#"{{{EVENT},"properties":{deep}}}"#), Code::TooDeep, "properties"),
        ("too many keys", Kind::Event, format!(r#"{{{EVENT},"context":{wide}}}"#), Code::TooManyKeys, "context"),
        ("story without steps", Kind::Story, format!("{{{STORY}}}"), Code::MissingField, "steps"),
        ("unknown outcome", Kind::Story, format!(r#"{{{STORY},"steps":[],"outcome":"won"}}"#), Code::BadValue, "outcome"),
        ("step without at", Kind::Story, format!(r#"{{{STORY},"steps":[{{"name":"cart"}}]}}"#), Code::MissingField, "steps[0].at"),
        ("step at not a time", Kind::Story, format!(r#"{{{STORY},"steps":[{{"name":"a","at":1790000000000}},{{"name":"b","at":"soon"}}]}}"#), Code::BadTimestamp, "steps[1].at"),
        ("step in the future", Kind::Story, format!(r#"{{{STORY},"steps":[{{"name":"a","at":{future}}}]}}"#), Code::TimestampOutOfRange, "steps[0].at"),
        ("too many steps", Kind::Story, format!(r#"{{{STORY},"steps":[{steps}]}}"#), Code::TooManySteps, "steps"),
        ("story updated_at missing", Kind::Story, r#"{"story_id":"s","name":"n","started_at":1790000000000,"steps":[]}"#.into(), Code::MissingField, "updated_at"),
        ("test without user", Kind::Exposure, r#"{"experiment":"x","variant":"a","exposed_at":1790000000000,"updated_at":1790000000000}"#.into(), Code::MissingField, "user_id"),
        ("converted not a bool", Kind::Exposure, format!(r#"{{{TEST},"converted":"yes"}}"#), Code::BadType, "converted"),
        ("value not a number", Kind::Exposure, format!(r#"{{{TEST},"value":"9.99"}}"#), Code::BadType, "value"),
        ("lone surrogate in an unknown field", Kind::Event, format!(r#"{{{EVENT},"userID":"\ud800"}}"#), Code::BadValue, "extra"),
        ("too many unknown fields", Kind::Event, format!(r#"{{{EVENT},{}}}"#, &wide[1..wide.len() - 1]), Code::TooManyKeys, "extra"),
        ("empty variant", Kind::Exposure, r#"{"experiment":"x","user_id":"u","variant":"","exposed_at":1790000000000,"updated_at":1790000000000}"#.into(), Code::EmptyField, "variant"),
    ];
    for (name, kind, item, code, field) in table {
        match one(kind, &item) {
            Ok(_) => panic!("{name}: accepted, expected {code:?}"),
            Err((got, got_field, message)) => {
                assert_eq!(
                    (got, got_field.as_str()),
                    (code, field),
                    "{name}: {message}"
                );
                assert!(
                    message.contains(field.split('[').next().unwrap()) || field == "item",
                    "{name}: the message names the field: {message}"
                );
            }
        }
    }
}

#[test]
fn valid_items_of_each_kind_are_accepted_and_stamped() {
    let e = one(Kind::Event, &format!(r#"{{{EVENT},"app_id":"someone-else","properties":{{"a":{{"b":[1]}}}},"context":{{"os":"ios"}}}}"#)).unwrap();
    assert_eq!(
        e.app_id(),
        "app",
        "the tenant comes from the key, not the body"
    );
    assert_eq!(e.received_at(), NOW);
    let s = one(Kind::Story, &format!(r#"{{{STORY},"outcome":"completed","steps":[{{"name":"cart","at":"2026-09-21T14:13:20Z"}}]}}"#)).unwrap();
    assert_eq!(s.updated_at(), Some(NOW));
    let t = one(
        Kind::Exposure,
        &format!(r#"{{{TEST},"converted":true,"value":9.5}}"#),
    )
    .unwrap();
    assert_eq!(t.key(), "x\u{1f}u");
}

#[test]
fn sent_at_corrects_client_clock_skew() {
    // The client's clock is 10 s behind: it sent at NOW-10s by its clock.
    let body = format!(r#"{{"sent_at":{},"batch":[{{{EVENT}}}]}}"#, NOW - 10_000);
    let parsed = parse_batch(Kind::Event, body.as_bytes(), "app", NOW, &Limits::default()).unwrap();
    assert_eq!(parsed.accepted[0].ts(), 1_790_000_000_000 + 10_000);
}

#[test]
fn body_level_errors() {
    let limits = Limits::default();
    let refuse =
        |body: &str| parse_batch(Kind::Event, body.as_bytes(), "app", NOW, &limits).unwrap_err();
    assert!(matches!(refuse("not json"), BodyError::Malformed(_)));
    assert!(matches!(refuse(r#"{"events":[]}"#), BodyError::Malformed(m) if m.contains("batch")));
    assert!(matches!(refuse(r#"{"batch":{}}"#), BodyError::Malformed(_)));
    assert_eq!(refuse(r#"{"batch":[]}"#), BodyError::EmptyBatch);
    assert!(
        matches!(refuse(r#"{"sent_at":"noon","batch":[{}]}"#), BodyError::BadSentAt(m) if m.contains("sent_at"))
    );
    // serde_json quotes what it refuses; a 100 KB string is echoed bounded (found by fuzzing).
    let quoted = format!(r#"{{"batch":"{}"}}"#, "x".repeat(100_000));
    let BodyError::Malformed(m) = refuse(&quoted) else {
        panic!("malformed")
    };
    assert!(
        m.starts_with("invalid type: string") && m.len() < 400,
        "{m}"
    );
    assert!(m.contains("bytes in all"), "marked as cut: {m}");
    let many = format!(r#"{{"batch":[{}]}}"#, vec!["{}"; 501].join(","));
    assert_eq!(
        refuse(&many),
        BodyError::TooManyItems {
            items: 501,
            max: 500
        }
    );
}

#[test]
fn clocks_in_seconds_or_a_year_off_are_refused_not_stored_as_1970() {
    let limits = Limits::default();
    // Seconds everywhere: the skew correction would cancel out and store 1970; refused.
    let seconds = format!(
        r#"{{"sent_at":{},"batch":[{{"event_id":"e","name":"n","timestamp":{}}}]}}"#,
        NOW / 1000,
        NOW / 1000
    );
    let refused = parse_batch(Kind::Event, seconds.as_bytes(), "app", NOW, &limits).unwrap_err();
    assert!(
        matches!(&refused, BodyError::BadSentAt(m) if m.contains("epoch seconds")),
        "{refused:?}"
    );
    // A device clock a year behind: every item is rejected, with its reason, and kept.
    let year = 365 * DAY;
    let body = format!(
        r#"{{"sent_at":{},"batch":[{{{EVENT}}},{{{EVENT}}}]}}"#,
        NOW - year
    );
    let parsed = parse_batch(Kind::Event, body.as_bytes(), "app", NOW, &limits).unwrap();
    assert!(parsed.accepted.is_empty());
    assert_eq!(parsed.rejected.len(), 2);
    for (r, raw) in &parsed.rejected {
        assert_eq!((r.error, r.field.as_str()), (Code::ClockSkew, "sent_at"));
        assert!(r.message.contains("7 days"), "{}", r.message);
        assert!(raw.contains("\"e1\""));
    }
    // Within the bound, the skew is corrected as before: a clock 6 days behind.
    let behind = NOW - 6 * DAY;
    let body = format!(
        r#"{{"sent_at":{behind},"batch":[{{"event_id":"e","name":"n","timestamp":{behind}}}]}}"#
    );
    let parsed = parse_batch(Kind::Event, body.as_bytes(), "app", NOW, &limits).unwrap();
    assert_eq!(parsed.accepted[0].ts(), NOW);
}

#[test]
fn a_huge_id_is_echoed_cut_short_and_marked() {
    let id = "é".repeat(300_000); // 600 KB
    let item = format!(r#"{{"event_id":"{id}","name":"n","timestamp":{NOW}}}"#);
    let body = format!(r#"{{"batch":[{item}]}}"#);
    let parsed = parse_batch(Kind::Event, body.as_bytes(), "app", NOW, &Limits::default()).unwrap();
    let (r, _) = &parsed.rejected[0];
    assert_eq!(r.error, Code::TooLarge);
    let echoed = r.id.as_deref().unwrap();
    assert!(echoed.len() < 300, "{} bytes", echoed.len());
    assert!(
        echoed.starts_with("éé") && echoed.ends_with("(600000 bytes in all)"),
        "{echoed}"
    );
    assert!(r.message.len() < 300);
}

#[test]
fn unknown_fields_are_kept_in_extra_and_named_in_warnings() {
    // A typo (`userId`), a field of another kind (`variant`), a client's own `extra`, and a
    // server field it may not set (`ts`): accepted, nothing dropped without a word.
    let body = format!(
        r#"{{"batch":[{{{EVENT},"userId":"u1","variant":{{"a":[1,"\u00e9"]}},"extra":7,"ts":5}},{{{EVENT}}}]}}"#
    );
    let parsed = parse_batch(Kind::Event, body.as_bytes(), "app", NOW, &Limits::default()).unwrap();
    assert_eq!(parsed.accepted.len(), 2);
    assert!(parsed.rejected.is_empty());
    let extra = parsed.accepted[0].extra().map(|j| j.get().to_owned());
    let extra: serde_json::Value = serde_json::from_str(&extra.expect("extra is set")).unwrap();
    assert_eq!(
        extra,
        serde_json::json!({"userId": "u1", "variant": {"a": [1, "\u{e9}"]}, "extra": 7})
    );
    assert!(
        parsed.accepted[1].extra().is_none(),
        "no unknown fields, no extra"
    );
    assert_ne!(parsed.accepted[0].ts(), 5, "a server field sent is ignored");
    let notes: Vec<(usize, &str, WarningCode)> = parsed
        .warnings
        .iter()
        .map(|w| (w.index, w.field.as_str(), w.warning))
        .collect();
    assert_eq!(
        notes,
        [
            (0, "userId", WarningCode::UnknownField),
            (0, "variant", WarningCode::UnknownField),
            (0, "extra", WarningCode::UnknownField),
            (0, "ts", WarningCode::ServerField),
        ]
    );
    assert!(parsed.warnings[0].message.contains("`userId`"));
    assert_eq!(parsed.warnings_omitted, 0);

    // The record as queued and stored carries `extra`, and reads back the same.
    let json = parsed.accepted[0].to_json();
    let back = Record::from_json(Kind::Event, &json).unwrap();
    assert_eq!(
        back.extra().map(|j| j.get()),
        parsed.accepted[0].extra().map(|j| j.get())
    );

    // A client cannot forge `extra` for a record without unknown fields: only its own fields
    // are kept.
    let body = format!(r#"{{"batch":[{{{STORY},"steps":[],"extra":{{"x":1}}}}]}}"#);
    let forged = parse_batch(Kind::Story, body.as_bytes(), "app", NOW, &Limits::default()).unwrap();
    assert_eq!(
        forged.accepted[0].extra().map(|j| j.get()),
        Some(r#"{"extra":{"x":1}}"#)
    );
}

#[test]
fn warnings_past_the_limit_are_counted_not_listed() {
    let limits = Limits {
        max_warnings: 3,
        ..Limits::default()
    };
    let item = format!(r#"{{{EVENT},"a":1,"b":2}}"#);
    let body = format!(r#"{{"batch":[{item},{item},{item}]}}"#);
    let parsed = parse_batch(Kind::Event, body.as_bytes(), "app", NOW, &limits).unwrap();
    assert_eq!(parsed.accepted.len(), 3);
    assert_eq!(parsed.warnings.len(), 3);
    assert_eq!(parsed.warnings_omitted, 3);
    assert_eq!(
        parsed.warnings.iter().map(|w| w.index).collect::<Vec<_>>(),
        [0, 0, 1]
    );
}

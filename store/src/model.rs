//! The data model: three kinds of records, their keys and their server-set fields.
//!
//! Client fields and server fields live in one struct per kind. The API deserializes a client item
//! straight into it and then overwrites the server fields it knows (`app_id`, `received_at`,
//! `ts`) with [`Record::stamp`], so a body can never choose its tenant. The last server field,
//! `ingest_seq`, is set by the writer from the queue message's sequence number
//! ([`Record::set_ingest_seq`]); whatever a body claims for it is overwritten there.
//!
//! The structs are generic over how they hold strings and JSON objects: owned by default
//! (`String`, [`Json`]), or borrowed from the JSON they were decoded from ([`RecordRef`]), which
//! lets the exporter read a record without a copy per field.

use std::borrow::Cow;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::time::{millis, opt_millis};

/// A free-form JSON object (`properties`, `context`), kept as the client's bytes.
pub type Json = Box<RawValue>;

/// A string decoded from JSON that borrows from it when it can (when it had no escapes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Borrowing;
        impl<'de> serde::de::Visitor<'de> for Borrowing {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Borrowing)
    }
}

/// A record decoded from its JSON without copying: its strings and JSON objects borrow from
/// the JSON (see [`Record::from_json_ref`]). The exporter reads stream records this way.
pub type RecordRef<'a> = Record<Text<'a>, &'a RawValue>;

/// The three kinds of records Cauce ingests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Telemetry: insert-only, the first accepted copy wins.
    Event,
    /// A user journey: upserted, the newest `updated_at` wins.
    Story,
    /// An A/B test exposure and its result (the kind named `test`, `tests`): upserted, the
    /// newest `updated_at` wins.
    #[serde(rename = "test")]
    Exposure,
}

impl Kind {
    /// All kinds, in a fixed order.
    pub const ALL: [Kind; 3] = [Kind::Event, Kind::Story, Kind::Exposure];

    /// The kind's position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The singular name used in JSON (`event`, `story`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Story => "story",
            Kind::Exposure => "test",
        }
    }

    /// The plural name used in URLs, tables and lake prefixes (`events`, `stories`, `tests`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Event => "events",
            Kind::Story => "stories",
            Kind::Exposure => "tests",
        }
    }

    /// Parses the singular or the plural name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.plural() == s)
    }

    /// Whether a newer version replaces an older one (stories, tests) or the first copy wins (events).
    pub fn is_upsert(self) -> bool {
        !matches!(self, Kind::Event)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A timestamp as the API reads it: whole epoch milliseconds, or an RFC 3339 string. The
/// records keep milliseconds; this type only describes the wire in the OpenAPI document.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum Timestamp {
    /// Epoch milliseconds, such as `1764590400000`.
    Millis(i64),
    /// RFC 3339, such as `2026-12-01T12:00:00.000Z`.
    #[schema(format = DateTime)]
    Rfc3339(String),
}

/// Fields that the server sets on every record, whatever the body said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The tenant, from the API key.
    pub app_id: String,
    /// The API's clock when the request arrived, epoch ms.
    pub received_at: i64,
    /// The client clock's offset: `received_at - sent_at`, or 0 when the client sent no `sent_at`.
    pub skew_ms: i64,
}

/// A telemetry event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default, J: Deserialize<'de>"))]
#[schema(as = Event, bound = "")]
pub struct Event<S = String, J = Json> {
    /// Server-set: the tenant.
    #[serde(default)]
    #[schema(value_type = String, read_only)]
    pub app_id: S,
    /// Client-chosen idempotency key.
    #[schema(value_type = String)]
    pub event_id: S,
    /// What happened, such as `screen_view`.
    #[schema(value_type = String)]
    pub name: S,
    /// The client's time, as sent, epoch ms.
    #[serde(deserialize_with = "millis")]
    #[schema(value_type = Timestamp)]
    pub timestamp: i64,
    /// Server-set: `timestamp` corrected for clock skew, epoch ms.
    #[serde(default)]
    #[schema(read_only)]
    pub ts: i64,
    /// Server-set: the API's clock on arrival, epoch ms.
    #[serde(default)]
    #[schema(read_only)]
    pub received_at: i64,
    /// Server-set: arrival order within the message group (see [`ingest_seq`]).
    #[serde(default)]
    #[schema(value_type = String, read_only)]
    pub ingest_seq: S,
    /// The user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub user_id: Option<S>,
    /// The session, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub session_id: Option<S>,
    /// The device's or browser's anonymous id, before or without a known user (the analytics
    /// SDKs' `anonymousId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub anonymous_id: Option<S>,
    /// The call that made the event, where it came from an analytics SDK's tracking protocol:
    /// `track`, `identify`, `page`, `screen`, `group` or `alias` (the field `type`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub call: Option<S>,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<J>,
    /// Device and app context (a JSON object: app_version, os, locale, device…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<J>,
    /// Server-set: the item's unknown top-level fields, kept as a JSON object (the API sets it;
    /// see `SCHEMA.md`), or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, read_only)]
    pub extra: Option<J>,
}

/// How a story ended, if it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not finished yet.
    #[default]
    InProgress,
    /// Reached its goal.
    Completed,
    /// The user left.
    Abandoned,
    /// Ended in an error.
    Failed,
}

impl Outcome {
    /// The snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::InProgress => "in_progress",
            Outcome::Completed => "completed",
            Outcome::Abandoned => "abandoned",
            Outcome::Failed => "failed",
        }
    }
}

/// One step of a story.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default, J: Deserialize<'de>"))]
#[schema(as = Step, bound = "")]
pub struct Step<S = String, J = Json> {
    /// The step's name, such as `cart`.
    #[schema(value_type = String)]
    pub name: S,
    /// When the step was reached, epoch ms.
    #[serde(deserialize_with = "millis")]
    #[schema(value_type = Timestamp)]
    pub at: i64,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<J>,
}

/// A user journey: ordered steps with an outcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default, J: Deserialize<'de>"))]
#[schema(as = Story, bound = "")]
pub struct Story<S = String, J = Json> {
    /// Server-set: the tenant.
    #[serde(default)]
    #[schema(value_type = String, read_only)]
    pub app_id: S,
    /// Client-chosen key.
    #[schema(value_type = String)]
    pub story_id: S,
    /// The journey's name, such as `checkout`.
    #[schema(value_type = String)]
    pub name: S,
    /// The user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub user_id: Option<S>,
    /// The session, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub session_id: Option<S>,
    /// When the journey started, epoch ms.
    #[serde(deserialize_with = "millis")]
    #[schema(value_type = Timestamp)]
    pub started_at: i64,
    /// When it ended, epoch ms.
    #[serde(
        default,
        deserialize_with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Timestamp>)]
    pub ended_at: Option<i64>,
    /// The version: a newer one replaces an older one.
    #[serde(deserialize_with = "millis")]
    #[schema(value_type = Timestamp)]
    pub updated_at: i64,
    /// How it ended.
    #[serde(default)]
    pub outcome: Outcome,
    /// The steps, in order.
    #[schema(value_type = Vec<Step>)]
    pub steps: Vec<Step<S, J>>,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<J>,
    /// Server-set: `started_at` corrected for clock skew, epoch ms.
    #[serde(default)]
    #[schema(read_only)]
    pub ts: i64,
    /// Server-set: the API's clock on arrival, epoch ms.
    #[serde(default)]
    #[schema(read_only)]
    pub received_at: i64,
    /// Server-set: arrival order within the message group.
    #[serde(default)]
    #[schema(value_type = String, read_only)]
    pub ingest_seq: S,
    /// Server-set: the item's unknown top-level fields, kept as a JSON object (the API sets it;
    /// see `SCHEMA.md`), or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, read_only)]
    pub extra: Option<J>,
}

/// One user's exposure to an A/B test, and its result: the kind `test` of the API and the lake.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default, J: Deserialize<'de>"))]
#[schema(as = Exposure, bound = "")]
pub struct Exposure<S = String, J = Json> {
    /// Server-set: the tenant.
    #[serde(default)]
    #[schema(value_type = String, read_only)]
    pub app_id: S,
    /// The experiment's name; with `user_id`, the key.
    #[schema(value_type = String)]
    pub experiment: S,
    /// The exposed user; with `experiment`, the key.
    #[schema(value_type = String)]
    pub user_id: S,
    /// The variant shown, such as `control`.
    #[schema(value_type = String)]
    pub variant: S,
    /// When the user was exposed, epoch ms.
    #[serde(deserialize_with = "millis")]
    #[schema(value_type = Timestamp)]
    pub exposed_at: i64,
    /// The version: a newer one replaces an older one.
    #[serde(deserialize_with = "millis")]
    #[schema(value_type = Timestamp)]
    pub updated_at: i64,
    /// Whether the user converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<bool>,
    /// A value attached to the conversion, such as revenue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<J>,
    /// Server-set: `exposed_at` corrected for clock skew, epoch ms.
    #[serde(default)]
    #[schema(read_only)]
    pub ts: i64,
    /// Server-set: the API's clock on arrival, epoch ms.
    #[serde(default)]
    #[schema(read_only)]
    pub received_at: i64,
    /// Server-set: arrival order within the message group.
    #[serde(default)]
    #[schema(value_type = String, read_only)]
    pub ingest_seq: S,
    /// Server-set: the item's unknown top-level fields, kept as a JSON object (the API sets it;
    /// see `SCHEMA.md`), or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, read_only)]
    pub extra: Option<J>,
}

/// Builds the `ingest_seq` of an item: the queue message's sequence number (zero-padded to 20
/// digits, the width of an SQS FIFO sequence number) followed by the item's index in the message
/// (5 digits). Compared as strings of equal width, it gives the arrival order within a group.
///
/// ```
/// use cauce_store::model::ingest_seq;
/// assert_eq!(ingest_seq("18849496460467696128", 7), "1884949646046769612800007");
/// assert!(ingest_seq("99", 3) < ingest_seq("100", 0));
/// ```
pub fn ingest_seq(message_seq: &str, index: usize) -> String {
    format!("{message_seq:0>20}{index:05}")
}

/// A record of any kind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record<S = String, J = Json> {
    /// An event.
    Event(Event<S, J>),
    /// A story.
    Story(Story<S, J>),
    /// A test: an A/B exposure and its result.
    #[serde(rename = "test")]
    Exposure(Exposure<S, J>),
}

/// Separates `experiment` and `user_id` in a test's key. Ids may not contain control characters.
pub const KEY_SEPARATOR: char = '\u{1f}';

impl Record {
    /// Decodes a record of a known kind from its JSON.
    pub fn from_json(kind: Kind, json: &str) -> serde_json::Result<Record> {
        Record::decode(kind, json)
    }

    /// Encodes the record's fields as JSON, without the `kind` tag.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_json(&mut out);
        out
    }

    /// Appends the record's fields as JSON, without the `kind` tag, to `out`.
    pub fn write_json(&self, out: &mut String) {
        let mut buf = std::mem::take(out).into_bytes();
        let res = match self {
            Record::Event(r) => serde_json::to_writer(&mut buf, r),
            Record::Story(r) => serde_json::to_writer(&mut buf, r),
            Record::Exposure(r) => serde_json::to_writer(&mut buf, r),
        };
        res.expect("records always serialize: their fields are strings, numbers and valid JSON");
        *out = String::from_utf8(buf).expect("serde_json writes UTF-8");
    }

    /// The idempotency key within the app and kind.
    pub fn key(&self) -> String {
        match self {
            Record::Event(r) => r.event_id.clone(),
            Record::Story(r) => r.story_id.clone(),
            Record::Exposure(r) => format!("{}{KEY_SEPARATOR}{}", r.experiment, r.user_id),
        }
    }

    /// Sets `extra`: the item's unknown top-level fields as a JSON object, or none.
    pub fn set_extra(&mut self, extra: Option<Json>) {
        match self {
            Record::Event(r) => r.extra = extra,
            Record::Story(r) => r.extra = extra,
            Record::Exposure(r) => r.extra = extra,
        }
    }

    /// Sets `ingest_seq`.
    pub fn set_ingest_seq(&mut self, seq: String) {
        match self {
            Record::Event(r) => r.ingest_seq = seq,
            Record::Story(r) => r.ingest_seq = seq,
            Record::Exposure(r) => r.ingest_seq = seq,
        }
    }

    /// Overwrites the server-set fields: tenant, arrival time and skew-corrected `ts`.
    pub fn stamp(&mut self, stamp: &Stamp) {
        let (app_id, received_at, ts, client_time) = match self {
            Record::Event(r) => (&mut r.app_id, &mut r.received_at, &mut r.ts, r.timestamp),
            Record::Story(r) => (&mut r.app_id, &mut r.received_at, &mut r.ts, r.started_at),
            Record::Exposure(r) => (&mut r.app_id, &mut r.received_at, &mut r.ts, r.exposed_at),
        };
        app_id.clone_from(&stamp.app_id);
        *received_at = stamp.received_at;
        *ts = client_time.saturating_add(stamp.skew_ms);
    }
}

impl<S: Deref<Target = str>, J> Record<S, J> {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Record::Event(_) => Kind::Event,
            Record::Story(_) => Kind::Story,
            Record::Exposure(_) => Kind::Exposure,
        }
    }

    /// The tenant.
    pub fn app_id(&self) -> &str {
        match self {
            Record::Event(r) => &r.app_id,
            Record::Story(r) => &r.app_id,
            Record::Exposure(r) => &r.app_id,
        }
    }

    /// The version of an upserted record; `None` for events.
    pub fn updated_at(&self) -> Option<i64> {
        match self {
            Record::Event(_) => None,
            Record::Story(r) => Some(r.updated_at),
            Record::Exposure(r) => Some(r.updated_at),
        }
    }

    /// The user, when known.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Record::Event(r) => r.user_id.as_deref(),
            Record::Story(r) => r.user_id.as_deref(),
            Record::Exposure(r) => Some(&*r.user_id),
        }
    }

    /// The session, when known.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Record::Event(r) => r.session_id.as_deref(),
            Record::Story(r) => r.session_id.as_deref(),
            Record::Exposure(_) => None,
        }
    }

    /// The skew-corrected event time, epoch ms.
    pub fn ts(&self) -> i64 {
        match self {
            Record::Event(r) => r.ts,
            Record::Story(r) => r.ts,
            Record::Exposure(r) => r.ts,
        }
    }

    /// The API's clock on arrival, epoch ms.
    pub fn received_at(&self) -> i64 {
        match self {
            Record::Event(r) => r.received_at,
            Record::Story(r) => r.received_at,
            Record::Exposure(r) => r.received_at,
        }
    }

    /// The arrival order within the message group.
    pub fn ingest_seq(&self) -> &str {
        match self {
            Record::Event(r) => &r.ingest_seq,
            Record::Story(r) => &r.ingest_seq,
            Record::Exposure(r) => &r.ingest_seq,
        }
    }

    /// The item's unknown top-level fields, as a JSON object, when it had any.
    pub fn extra(&self) -> Option<&J> {
        match self {
            Record::Event(r) => r.extra.as_ref(),
            Record::Story(r) => r.extra.as_ref(),
            Record::Exposure(r) => r.extra.as_ref(),
        }
    }
}

/// The fields the server sets on every record, whatever the body said: a client's value for
/// one of them is ignored.
pub const SERVER_FIELDS: [&str; 5] = ["app_id", "ts", "received_at", "ingest_seq", "extra"];

/// The top-level field names of one kind's records, server-set ones included, read from the
/// struct's own `Deserialize` impl so that the list cannot drift from the struct.
pub fn field_names(kind: Kind) -> &'static [&'static str] {
    use std::cell::Cell;

    /// A deserializer that only notes the field names a struct asks for, then stops.
    struct Names<'a>(&'a Cell<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stopped after reading the field names")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for Names<'_> {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.set(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    fn of(kind: Kind) -> &'static [&'static str] {
        let names = Cell::new(&[][..]);
        let _ = match kind {
            Kind::Event => Event::<String, Json>::deserialize(Names(&names)).map(drop),
            Kind::Story => Story::<String, Json>::deserialize(Names(&names)).map(drop),
            Kind::Exposure => Exposure::<String, Json>::deserialize(Names(&names)).map(drop),
        };
        names.get()
    }
    // Read once: the API asks for every item.
    static NAMES: std::sync::OnceLock<[&'static [&'static str]; 3]> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| Kind::ALL.map(of))[kind.index()]
}

impl<'a> RecordRef<'a> {
    /// Decodes a record of a known kind from its JSON, borrowing from it. It accepts exactly
    /// what [`Record::from_json`] accepts.
    pub fn from_json_ref(kind: Kind, json: &'a str) -> serde_json::Result<RecordRef<'a>> {
        Record::decode(kind, json)
    }
}

impl<'a, S, J> Record<S, J>
where
    Event<S, J>: Deserialize<'a>,
    Story<S, J>: Deserialize<'a>,
    Exposure<S, J>: Deserialize<'a>,
{
    fn decode(kind: Kind, json: &'a str) -> serde_json::Result<Self> {
        Ok(match kind {
            Kind::Event => Record::Event(serde_json::from_str(json)?),
            Kind::Story => Record::Story(serde_json::from_str(json)?),
            Kind::Exposure => Record::Exposure(serde_json::from_str(json)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_record_borrows_plain_strings_and_decodes_escapes() {
        let json =
            r#"{"event_id":"e1","name":"caf\u00e9 \"x\"","timestamp":1000,"properties":{"a":1}}"#;
        let r = RecordRef::from_json_ref(Kind::Event, json).unwrap();
        let Record::Event(e) = &r else {
            panic!("an event")
        };
        assert!(matches!(e.event_id.0, Cow::Borrowed("e1")));
        assert_eq!(&*e.name, "caf\u{e9} \"x\"");
        assert!(matches!(e.name.0, Cow::Owned(_)));
        assert_eq!(e.properties.map(RawValue::get), Some(r#"{"a":1}"#));
        assert_eq!((r.app_id(), r.ts(), r.kind()), ("", 0, Kind::Event));

        // It refuses what the owned decode refuses, with the same words.
        let bad = r#"{"event_id":"e1","timestamp":1000}"#;
        let err = |e: serde_json::Error| e.to_string();
        assert_eq!(
            RecordRef::from_json_ref(Kind::Event, bad)
                .map_err(err)
                .unwrap_err(),
            Record::from_json(Kind::Event, bad)
                .map_err(err)
                .unwrap_err()
        );
    }

    #[test]
    fn stamp_overrides_a_claimed_tenant_and_corrects_skew() {
        let json = r#"{"app_id":"evil","event_id":"e1","name":"n","timestamp":1000,"ts":5}"#;
        let mut r = Record::from_json(Kind::Event, json).unwrap();
        r.stamp(&Stamp {
            app_id: "good".into(),
            received_at: 9_000,
            skew_ms: 250,
        });
        assert_eq!(r.app_id(), "good");
        assert_eq!(r.ts(), 1_250);
        assert_eq!(r.received_at(), 9_000);
    }

    #[test]
    fn exposure_keys_join_experiment_and_user() {
        let json =
            r#"{"experiment":"exp","user_id":"u","variant":"a","exposed_at":1,"updated_at":2}"#;
        let r = Record::from_json(Kind::Exposure, json).unwrap();
        assert_eq!(r.key(), "exp\u{1f}u");
        assert_eq!(r.updated_at(), Some(2));
    }

    #[test]
    fn field_names_come_from_the_structs() {
        assert_eq!(
            field_names(Kind::Event),
            [
                "app_id",
                "event_id",
                "name",
                "timestamp",
                "ts",
                "received_at",
                "ingest_seq",
                "user_id",
                "session_id",
                "anonymous_id",
                "type",
                "properties",
                "context",
                "extra"
            ]
        );
        for kind in Kind::ALL {
            for server in SERVER_FIELDS {
                assert!(field_names(kind).contains(&server), "{kind}: {server}");
            }
        }
        assert!(field_names(Kind::Story).contains(&"steps"));
        assert!(field_names(Kind::Exposure).contains(&"converted"));
    }

    #[test]
    fn ingest_seq_sorts_by_message_then_item() {
        assert!(ingest_seq("99", 12) < ingest_seq("100", 0));
        assert!(ingest_seq("100", 2) < ingest_seq("100", 10));
    }
}

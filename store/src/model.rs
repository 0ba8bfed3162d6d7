//! The data model: three kinds of records, their keys and their server-set fields.
//!
//! Client fields and server fields live in one struct per kind. The API deserializes a client item
//! straight into it and then overwrites every server field (`app_id`, `received_at`, `ts`,
//! `ingest_seq`) with [`Record::stamp`], so a body can never choose its tenant.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::time::{millis, opt_millis};

/// A free-form JSON object (`properties`, `context`), kept as the client's bytes.
pub type Json = Box<RawValue>;

/// The three kinds of records Cauce ingests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Telemetry: insert-only, the first accepted copy wins.
    Event,
    /// A user journey: upserted, the newest `updated_at` wins.
    Story,
    /// An A/B test exposure and its result: upserted, the newest `updated_at` wins.
    Test,
}

impl Kind {
    /// All kinds, in a fixed order.
    pub const ALL: [Kind; 3] = [Kind::Event, Kind::Story, Kind::Test];

    /// The kind's position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The singular name used in JSON (`event`, `story`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Story => "story",
            Kind::Test => "test",
        }
    }

    /// The plural name used in URLs, tables and lake prefixes (`events`, `stories`, `tests`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Event => "events",
            Kind::Story => "stories",
            Kind::Test => "tests",
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Server-set: the tenant.
    #[serde(default)]
    pub app_id: String,
    /// Client-chosen idempotency key.
    pub event_id: String,
    /// What happened, such as `screen_view`.
    pub name: String,
    /// The client's time, as sent, epoch ms.
    #[serde(deserialize_with = "millis")]
    pub timestamp: i64,
    /// Server-set: `timestamp` corrected for clock skew, epoch ms.
    #[serde(default)]
    pub ts: i64,
    /// Server-set: the API's clock on arrival, epoch ms.
    #[serde(default)]
    pub received_at: i64,
    /// Server-set: arrival order within the message group (see [`ingest_seq`]).
    #[serde(default)]
    pub ingest_seq: String,
    /// The user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Json>,
    /// Device and app context (a JSON object: app_version, os, locale, device…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Json>,
}

/// How a story ended, if it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// The step's name, such as `cart`.
    pub name: String,
    /// When the step was reached, epoch ms.
    #[serde(deserialize_with = "millis")]
    pub at: i64,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Json>,
}

/// A user journey: ordered steps with an outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Story {
    /// Server-set: the tenant.
    #[serde(default)]
    pub app_id: String,
    /// Client-chosen key.
    pub story_id: String,
    /// The journey's name, such as `checkout`.
    pub name: String,
    /// The user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// When the journey started, epoch ms.
    #[serde(deserialize_with = "millis")]
    pub started_at: i64,
    /// When it ended, epoch ms.
    #[serde(
        default,
        deserialize_with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<i64>,
    /// The version: a newer one replaces an older one.
    #[serde(deserialize_with = "millis")]
    pub updated_at: i64,
    /// How it ended.
    #[serde(default)]
    pub outcome: Outcome,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Json>,
    /// Server-set: `started_at` corrected for clock skew, epoch ms.
    #[serde(default)]
    pub ts: i64,
    /// Server-set: the API's clock on arrival, epoch ms.
    #[serde(default)]
    pub received_at: i64,
    /// Server-set: arrival order within the message group.
    #[serde(default)]
    pub ingest_seq: String,
}

/// One user's exposure to an A/B test, and its result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Test {
    /// Server-set: the tenant.
    #[serde(default)]
    pub app_id: String,
    /// The experiment's name; with `user_id`, the key.
    pub experiment: String,
    /// The exposed user; with `experiment`, the key.
    pub user_id: String,
    /// The variant shown, such as `control`.
    pub variant: String,
    /// When the user was exposed, epoch ms.
    #[serde(deserialize_with = "millis")]
    pub exposed_at: i64,
    /// The version: a newer one replaces an older one.
    #[serde(deserialize_with = "millis")]
    pub updated_at: i64,
    /// Whether the user converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<bool>,
    /// A value attached to the conversion, such as revenue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Free-form properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Json>,
    /// Server-set: `exposed_at` corrected for clock skew, epoch ms.
    #[serde(default)]
    pub ts: i64,
    /// Server-set: the API's clock on arrival, epoch ms.
    #[serde(default)]
    pub received_at: i64,
    /// Server-set: arrival order within the message group.
    #[serde(default)]
    pub ingest_seq: String,
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
pub enum Record {
    /// An event.
    Event(Event),
    /// A story.
    Story(Story),
    /// A test.
    Test(Test),
}

/// Separates `experiment` and `user_id` in a test's key. Ids may not contain control characters.
pub const KEY_SEPARATOR: char = '\u{1f}';

impl Record {
    /// Decodes a record of a known kind from its JSON.
    pub fn from_json(kind: Kind, json: &str) -> serde_json::Result<Record> {
        Ok(match kind {
            Kind::Event => Record::Event(serde_json::from_str(json)?),
            Kind::Story => Record::Story(serde_json::from_str(json)?),
            Kind::Test => Record::Test(serde_json::from_str(json)?),
        })
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
            Record::Test(r) => serde_json::to_writer(&mut buf, r),
        };
        res.expect("records always serialize: their fields are strings, numbers and valid JSON");
        *out = String::from_utf8(buf).expect("serde_json writes UTF-8");
    }

    /// The record's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Record::Event(_) => Kind::Event,
            Record::Story(_) => Kind::Story,
            Record::Test(_) => Kind::Test,
        }
    }

    /// The tenant.
    pub fn app_id(&self) -> &str {
        match self {
            Record::Event(r) => &r.app_id,
            Record::Story(r) => &r.app_id,
            Record::Test(r) => &r.app_id,
        }
    }

    /// The idempotency key within the app and kind.
    pub fn key(&self) -> String {
        match self {
            Record::Event(r) => r.event_id.clone(),
            Record::Story(r) => r.story_id.clone(),
            Record::Test(r) => format!("{}{KEY_SEPARATOR}{}", r.experiment, r.user_id),
        }
    }

    /// The version of an upserted record; `None` for events.
    pub fn updated_at(&self) -> Option<i64> {
        match self {
            Record::Event(_) => None,
            Record::Story(r) => Some(r.updated_at),
            Record::Test(r) => Some(r.updated_at),
        }
    }

    /// The user, when known.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Record::Event(r) => r.user_id.as_deref(),
            Record::Story(r) => r.user_id.as_deref(),
            Record::Test(r) => Some(&r.user_id),
        }
    }

    /// The session, when known.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Record::Event(r) => r.session_id.as_deref(),
            Record::Story(r) => r.session_id.as_deref(),
            Record::Test(_) => None,
        }
    }

    /// The skew-corrected event time, epoch ms.
    pub fn ts(&self) -> i64 {
        match self {
            Record::Event(r) => r.ts,
            Record::Story(r) => r.ts,
            Record::Test(r) => r.ts,
        }
    }

    /// The API's clock on arrival, epoch ms.
    pub fn received_at(&self) -> i64 {
        match self {
            Record::Event(r) => r.received_at,
            Record::Story(r) => r.received_at,
            Record::Test(r) => r.received_at,
        }
    }

    /// The arrival order within the message group.
    pub fn ingest_seq(&self) -> &str {
        match self {
            Record::Event(r) => &r.ingest_seq,
            Record::Story(r) => &r.ingest_seq,
            Record::Test(r) => &r.ingest_seq,
        }
    }

    /// Sets `ingest_seq`.
    pub fn set_ingest_seq(&mut self, seq: String) {
        match self {
            Record::Event(r) => r.ingest_seq = seq,
            Record::Story(r) => r.ingest_seq = seq,
            Record::Test(r) => r.ingest_seq = seq,
        }
    }

    /// Overwrites the server-set fields: tenant, arrival time and skew-corrected `ts`.
    pub fn stamp(&mut self, stamp: &Stamp) {
        let (app_id, received_at, ts, client_time) = match self {
            Record::Event(r) => (&mut r.app_id, &mut r.received_at, &mut r.ts, r.timestamp),
            Record::Story(r) => (&mut r.app_id, &mut r.received_at, &mut r.ts, r.started_at),
            Record::Test(r) => (&mut r.app_id, &mut r.received_at, &mut r.ts, r.exposed_at),
        };
        app_id.clone_from(&stamp.app_id);
        *received_at = stamp.received_at;
        *ts = client_time.saturating_add(stamp.skew_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn test_keys_join_experiment_and_user() {
        let json =
            r#"{"experiment":"exp","user_id":"u","variant":"a","exposed_at":1,"updated_at":2}"#;
        let r = Record::from_json(Kind::Test, json).unwrap();
        assert_eq!(r.key(), "exp\u{1f}u");
        assert_eq!(r.updated_at(), Some(2));
    }

    #[test]
    fn ingest_seq_sorts_by_message_then_item() {
        assert!(ingest_seq("99", 12) < ingest_seq("100", 0));
        assert!(ingest_seq("100", 2) < ingest_seq("100", 10));
    }
}

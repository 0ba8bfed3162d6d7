//! Borrowed views of records: what one lake row is made of.
//!
//! The stream handler decodes a record's `doc` JSON straight into a view whose strings and JSON
//! objects borrow from the `doc` (no `String` or `Box` per field), and the builders of
//! [`crate::transform`] copy each field once, into Arrow. An owned [`Record`], as the SQLite
//! change log yields it, lends the same view, so both feeds build their columns with one code.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use cauce_store::model::{Event, Outcome, Step, Story, Test};
use cauce_store::time::{millis, opt_millis};
use cauce_store::{Kind, Record};

/// A string field: borrowed from the JSON unless it had escapes.
pub type Text<'a> = Cow<'a, str>;
/// A free-form JSON object (`properties`, `context`), borrowed as the client's bytes.
pub type Json<'a> = Option<&'a RawValue>;

/// An event's fields.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub struct EventRow<'a> {
    #[serde(default, borrow)]
    pub app_id: Text<'a>,
    #[serde(borrow)]
    pub event_id: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(deserialize_with = "millis")]
    pub timestamp: i64,
    #[serde(default)]
    pub ts: i64,
    #[serde(default)]
    pub received_at: i64,
    #[serde(default, borrow)]
    pub ingest_seq: Text<'a>,
    #[serde(default, borrow)]
    pub user_id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub session_id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub properties: Json<'a>,
    #[serde(default, borrow)]
    pub context: Json<'a>,
}

/// One step of a story.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub struct StepRow<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(deserialize_with = "millis")]
    pub at: i64,
    #[serde(default, borrow)]
    pub properties: Json<'a>,
}

/// A story's fields.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub struct StoryRow<'a> {
    #[serde(default, borrow)]
    pub app_id: Text<'a>,
    #[serde(borrow)]
    pub story_id: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow)]
    pub user_id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub session_id: Option<Text<'a>>,
    #[serde(deserialize_with = "millis")]
    pub started_at: i64,
    #[serde(default, deserialize_with = "opt_millis")]
    pub ended_at: Option<i64>,
    #[serde(deserialize_with = "millis")]
    pub updated_at: i64,
    #[serde(default)]
    pub outcome: Outcome,
    #[serde(borrow)]
    pub steps: Vec<StepRow<'a>>,
    #[serde(default, borrow)]
    pub properties: Json<'a>,
    #[serde(default)]
    pub ts: i64,
    #[serde(default)]
    pub received_at: i64,
    #[serde(default, borrow)]
    pub ingest_seq: Text<'a>,
}

/// A test's fields.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub struct TestRow<'a> {
    #[serde(default, borrow)]
    pub app_id: Text<'a>,
    #[serde(borrow)]
    pub experiment: Text<'a>,
    #[serde(borrow)]
    pub user_id: Text<'a>,
    #[serde(borrow)]
    pub variant: Text<'a>,
    #[serde(deserialize_with = "millis")]
    pub exposed_at: i64,
    #[serde(deserialize_with = "millis")]
    pub updated_at: i64,
    #[serde(default)]
    pub converted: Option<bool>,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default, borrow)]
    pub properties: Json<'a>,
    #[serde(default)]
    pub ts: i64,
    #[serde(default)]
    pub received_at: i64,
    #[serde(default, borrow)]
    pub ingest_seq: Text<'a>,
}

/// A record of any kind, borrowed.
#[derive(Debug)]
pub enum Row<'a> {
    /// An event.
    Event(EventRow<'a>),
    /// A story.
    Story(StoryRow<'a>),
    /// A test.
    Test(TestRow<'a>),
}

fn text(s: &str) -> Text<'_> {
    Cow::Borrowed(s)
}

fn opt_text(s: &Option<String>) -> Option<Text<'_>> {
    s.as_deref().map(text)
}

impl<'a> Row<'a> {
    /// Decodes a record of a known kind from its JSON, borrowing from it. It accepts exactly
    /// what [`Record::from_json`] accepts.
    pub fn parse(kind: Kind, json: &'a str) -> serde_json::Result<Row<'a>> {
        Ok(match kind {
            Kind::Event => Row::Event(serde_json::from_str(json)?),
            Kind::Story => Row::Story(serde_json::from_str(json)?),
            Kind::Test => Row::Test(serde_json::from_str(json)?),
        })
    }

    /// The view of an owned record.
    pub fn of(record: &'a Record) -> Row<'a> {
        match record {
            Record::Event(e) => Row::Event(EventRow::from(e)),
            Record::Story(s) => Row::Story(StoryRow::from(s)),
            Record::Test(t) => Row::Test(TestRow::from(t)),
        }
    }

    /// The record's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Row::Event(_) => Kind::Event,
            Row::Story(_) => Kind::Story,
            Row::Test(_) => Kind::Test,
        }
    }

    /// When the API received the record, epoch ms: it picks the lake partition.
    pub fn received_at(&self) -> i64 {
        match self {
            Row::Event(e) => e.received_at,
            Row::Story(s) => s.received_at,
            Row::Test(t) => t.received_at,
        }
    }
}

impl<'a> From<&'a Event> for EventRow<'a> {
    fn from(e: &'a Event) -> Self {
        EventRow {
            app_id: text(&e.app_id),
            event_id: text(&e.event_id),
            name: text(&e.name),
            timestamp: e.timestamp,
            ts: e.ts,
            received_at: e.received_at,
            ingest_seq: text(&e.ingest_seq),
            user_id: opt_text(&e.user_id),
            session_id: opt_text(&e.session_id),
            properties: e.properties.as_deref(),
            context: e.context.as_deref(),
        }
    }
}

impl<'a> From<&'a Step> for StepRow<'a> {
    fn from(s: &'a Step) -> Self {
        StepRow {
            name: text(&s.name),
            at: s.at,
            properties: s.properties.as_deref(),
        }
    }
}

impl<'a> From<&'a Story> for StoryRow<'a> {
    fn from(s: &'a Story) -> Self {
        StoryRow {
            app_id: text(&s.app_id),
            story_id: text(&s.story_id),
            name: text(&s.name),
            user_id: opt_text(&s.user_id),
            session_id: opt_text(&s.session_id),
            started_at: s.started_at,
            ended_at: s.ended_at,
            updated_at: s.updated_at,
            outcome: s.outcome,
            steps: s.steps.iter().map(StepRow::from).collect(),
            properties: s.properties.as_deref(),
            ts: s.ts,
            received_at: s.received_at,
            ingest_seq: text(&s.ingest_seq),
        }
    }
}

impl<'a> From<&'a Test> for TestRow<'a> {
    fn from(t: &'a Test) -> Self {
        TestRow {
            app_id: text(&t.app_id),
            experiment: text(&t.experiment),
            user_id: text(&t.user_id),
            variant: text(&t.variant),
            exposed_at: t.exposed_at,
            updated_at: t.updated_at,
            converted: t.converted,
            value: t.value,
            properties: t.properties.as_deref(),
            ts: t.ts,
            received_at: t.received_at,
            ingest_seq: text(&t.ingest_seq),
        }
    }
}

//! The Segment tracking protocol, as the analytics SDKs speak it (Segment's, RudderStack's,
//! Jitsu's), translated into Cauce's own records: pure functions from the body an SDK sent to
//! stamped event records, validated with the limits and codes of `/v1/events`' items (and, for
//! `Experiment Viewed`, a `/v1/tests` body). A body is read once, one level deep ([`read`]);
//! each message's fields become the record's, its properties and context copied as sent,
//! never written out as JSON and read again ([`Read::translate`]).
//! Spec: <https://segment.com/docs/connections/spec/>.
//!
//! Each message becomes one event:
//!
//! | Segment | event column |
//! |---|---|
//! | `messageId` | `event_id` (an SDK's retry carries the same one, and is deduplicated); without one, a hash of the message |
//! | `userId`, `anonymousId` (one required) | `user_id`, `anonymous_id` |
//! | `type` (or the route's call) | `type` |
//! | `event` (track), `name` (page, screen; else the call) | `name`; identify, group and alias are named after their call |
//! | `properties`; `traits`, else `context.traits` (identify); `{group_id, traits}` (group); `{previous_id}` (alias) | `properties` |
//! | `context`, over the batch's `context`; with `integrations`, `channel`, `_metadata` | `context` |
//! | `originalTimestamp`, else `timestamp`, else `sentAt`, else the time it was received | `timestamp`, corrected by the batch's `sentAt` into `ts` |
//!
//! `writeKey` is never stored. Any other field goes to `extra`, with a warning, as on
//! `/v1/events`. A `track` of `Experiment Viewed` with `experiment_id` and `variation_id` (or
//! `experiment_name` and `variation_name`) in its properties also writes an exposure.

use std::borrow::Cow;
use std::collections::BTreeMap;

use cauce_store::model::Json;
use cauce_store::{Event, Kind, Record, Text};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::validate::{
    admit, check_record, check_size, echo, fault, read_time, unknown_field, BodyError, Code, Fault,
    Limits, Note, Parsed, Rejection, Stamping, Warning,
};

/// A call of the tracking protocol: the event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `track`: an action, with its `event` name.
    Track,
    /// `identify`: who the user is, with `traits`.
    Identify,
    /// `page`: a web page view.
    Page,
    /// `screen`: a mobile screen view.
    Screen,
    /// `group`: the user's company or team, with `groupId` and `traits`.
    Group,
    /// `alias`: a new id for the user (`previousId` → `userId`).
    Alias,
}

impl Call {
    /// Every call.
    pub const ALL: [Call; 6] = [
        Call::Track,
        Call::Identify,
        Call::Page,
        Call::Screen,
        Call::Group,
        Call::Alias,
    ];

    /// The name the spec gives it (the `type` field).
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Track => "track",
            Call::Identify => "identify",
            Call::Page => "page",
            Call::Screen => "screen",
            Call::Group => "group",
            Call::Alias => "alias",
        }
    }

    /// The call of a `type` field.
    pub fn parse(s: &str) -> Option<Call> {
        Call::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What the SDK sent: a batch (`/v1/batch`, `/v1/b`), or one call (`/v1/track`, `/v1/t`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"batch": [messages], "context"?, "sentAt"?, "writeKey"?}`.
    Batch,
    /// One message, of this call unless it says another `type`.
    Single(Call),
}

impl Shape {
    /// The archive's name for a body of this shape (see `RawLine::protocol`): `segment/batch`,
    /// or `segment/` and the call.
    pub fn protocol(self) -> String {
        match self {
            Shape::Batch => "segment/batch".to_owned(),
            Shape::Single(call) => format!("segment/{}", call.as_str()),
        }
    }

    /// The shape that [`Shape::protocol`] names.
    pub fn from_protocol(name: &str) -> Option<Shape> {
        match name.strip_prefix("segment/")? {
            "batch" => Some(Shape::Batch),
            call => Call::parse(call).map(Shape::Single),
        }
    }
}

/// The body without its write keys (the body's and any message's), to be kept: written back
/// as sent but for them. A body that holds none is returned as it is.
pub fn without_write_key(body: &[u8]) -> Cow<'_, [u8]> {
    let holds = |text: &str| text.contains("writeKey");
    let Some(text) = std::str::from_utf8(body).ok().filter(|t| holds(t)) else {
        return Cow::Borrowed(body);
    };
    let Some(mut top) = fields_of(text) else {
        return Cow::Borrowed(body);
    };
    top.remove("writeKey");
    let batch = top.get("batch").filter(|b| holds(b.get()));
    let messages = batch.and_then(|b| serde_json::from_str::<Vec<&RawValue>>(b.get()).ok());
    let mut rewritten = String::new();
    if let Some(messages) = messages {
        rewritten.push('[');
        for (i, raw) in messages.iter().enumerate() {
            if i > 0 {
                rewritten.push(',');
            }
            match fields(raw).filter(|m| m.get("writeKey").is_some()) {
                Some(mut m) => {
                    m.remove("writeKey");
                    rewritten.push_str(&m.text());
                }
                None => rewritten.push_str(raw.get()),
            }
        }
        rewritten.push(']');
    }
    let rewritten = RawValue::from_string(rewritten).ok();
    let fields = top.0.iter().map(|(k, v)| match (&**k, &rewritten) {
        ("batch", Some(r)) => (&**k, &**r),
        _ => (&**k, *v),
    });
    Cow::Owned(Object::of(fields).into_bytes())
}

/// Why a body cannot be read at all (the SDKs drop a batch on a 400, so only these are one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// A body of the tracking protocol, read one level deep: its write key and its messages, not
/// yet translated (the write key may be what says whose messages they are).
#[derive(Debug)]
pub struct Read<'a> {
    /// The write key that the body carries, if any (an SDK's way to authenticate).
    pub write_key: Option<String>,
    default_call: Option<Call>,
    /// Each message's fields (without any `writeKey`), or its text when it is not an object.
    messages: Vec<(Option<Fields<'a>>, &'a str)>,
    batch_context: Option<Fields<'a>>,
    sent_at: Option<&'a RawValue>,
}

/// The messages of a body as Cauce records, validated and stamped as the items of
/// `/v1/events` are, with the same limits and codes.
#[derive(Debug)]
pub struct Translated {
    /// The accepted events, stamped, in the body's order.
    pub events: Vec<Record>,
    /// The refused messages with their index in the body, each with the message as sent
    /// (without the write key), for the bad-rows archive.
    pub rejected: Vec<(Rejection, String)>,
    /// Notes on accepted events (fields kept in `extra`), by the message's index.
    pub warnings: Vec<Warning>,
    /// How many more warnings there were than `warnings` lists.
    pub warnings_omitted: usize,
    /// The `/v1/tests` body of the `Experiment Viewed` exposures, as JSON text; `None` without
    /// any.
    pub exposures: Option<String>,
    /// The index in the body of each exposure.
    pub exposure_index: Vec<usize>,
}

/// Fields of a message that the translation reads.
const READ: &[&str] = &[
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "event",
    "name",
    "properties",
    "traits",
    "context",
    "integrations",
    "channel",
    "_metadata",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "writeKey",
    "groupId",
    "previousId",
];

/// Fields of a message kept in its `context`.
const INTO_CONTEXT: [&str; 3] = ["integrations", "channel", "_metadata"];

/// A JSON object read one level deep: each field's name and its value as sent (unparsed), in
/// the order sent. Names borrow from the body unless they had escapes.
#[derive(Debug, Clone, Default)]
struct Fields<'a>(Vec<(Text<'a>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The value of `key`: the last one when it was sent twice, as JSON parsers keep.
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| *v)
    }

    /// Removes every field named `key`.
    fn remove(&mut self, key: &str) -> Option<&'a RawValue> {
        let value = self.get(key);
        if value.is_some() {
            self.0.retain(|(k, _)| **k != *key);
        }
        value
    }

    /// The object as JSON text, its fields as sent.
    fn text(&self) -> String {
        Object::of(self.0.iter().map(|(k, v)| (&**k, *v)))
    }

    /// The fields by name, each name once (its last value): for merging and hashing.
    fn by_name(&self) -> BTreeMap<&str, &'a RawValue> {
        self.0.iter().map(|(k, v)| (&**k, *v)).collect()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The fields of `raw` when it is an object.
fn fields(raw: &RawValue) -> Option<Fields<'_>> {
    fields_of(raw.get())
}

/// The fields of the JSON text `text` when it is an object.
fn fields_of(text: &str) -> Option<Fields<'_>> {
    text.trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str(text).ok())
        .flatten()
}

/// Whether JSON text is an object with at least one field.
fn is_full_object(text: &str) -> bool {
    let text = text.trim();
    text.starts_with('{') && text[1..].trim_start() != "}"
}

/// Whether a value is absent or `null`.
fn is_null(v: Option<&RawValue>) -> bool {
    v.is_none_or(|v| v.get() == "null")
}

/// Appends `s` to `out` as a JSON string; copied as it is when nothing in it needs escaping.
fn push_str(out: &mut String, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&serde_json::to_string(s).expect("strings serialize"));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Writes a JSON object field by field, values as they are given, into a buffer it borrows.
struct Object<'o> {
    out: &'o mut String,
    empty: bool,
}

impl<'o> Object<'o> {
    fn open(out: &'o mut String) -> Self {
        out.push('{');
        Object { out, empty: true }
    }

    fn raw(&mut self, key: &str, value: &str) -> &mut Self {
        if !std::mem::take(&mut self.empty) {
            self.out.push(',');
        }
        push_str(self.out, key);
        self.out.push(':');
        self.out.push_str(value);
        self
    }

    fn text(&mut self, key: &str, value: &str) -> &mut Self {
        self.raw(key, "");
        push_str(self.out, value);
        self
    }

    fn fields<'k>(
        &mut self,
        fields: impl IntoIterator<Item = (&'k str, &'k RawValue)>,
    ) -> &mut Self {
        for (k, v) in fields {
            self.raw(k, v.get());
        }
        self
    }

    fn close(self) {
        self.out.push('}');
    }

    /// An object of `fields`, as text.
    fn of<'k>(fields: impl IntoIterator<Item = (&'k str, &'k RawValue)>) -> String {
        let mut out = String::with_capacity(256);
        let mut o = Object::open(&mut out);
        o.fields(fields);
        o.close();
        out
    }
}

/// Reads a body of `shape` one level deep. Malformed only when the body is not JSON or not the
/// shape. A message's properties and context are not parsed into a tree: they pass through as
/// sent.
pub fn read(body: &[u8], shape: Shape) -> Result<Read<'_>, Malformed> {
    let body =
        std::str::from_utf8(body).map_err(|e| Malformed(format!("the body is not UTF-8: {e}")))?;
    let mut top =
        fields_of(body).ok_or_else(|| match serde_json::from_str::<IgnoredAny>(body) {
            Err(e) => Malformed(format!("the body is not JSON: {e}")),
            Ok(_) => Malformed("the body must be a JSON object".into()),
        })?;
    let write_key = top
        .remove("writeKey")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    let body_sent_at = top.get("sentAt");
    // Each message read one level deep, in one pass over the batch; the batch read again as
    // raw values only when a message is not an object (to refuse it as sent).
    let (mut messages, batch_context, default_call): (Vec<(Option<Fields<'_>>, &str)>, _, _) =
        match shape {
            Shape::Batch => {
                let batch = top
                    .remove("batch")
                    .ok_or_else(|| Malformed("a batch body needs a `batch` array".into()))?;
                let messages = match serde_json::from_str::<Vec<Fields<'_>>>(batch.get()) {
                    Ok(all) => all.into_iter().map(|m| (Some(m), "")).collect(),
                    Err(_) => serde_json::from_str::<Vec<&RawValue>>(batch.get())
                        .map_err(|_| Malformed("a batch body needs a `batch` array".into()))?
                        .into_iter()
                        .map(|raw| (fields(raw), raw.get()))
                        .collect(),
                };
                (messages, top.get("context").and_then(fields), None)
            }
            Shape::Single(call) => (vec![(Some(top), "")], None, Some(call)),
        };
    for m in messages.iter_mut().filter_map(|(m, _)| m.as_mut()) {
        m.remove("writeKey");
    }
    let sent_at =
        body_sent_at.or_else(|| messages.iter().find_map(|(m, _)| m.as_ref()?.get("sentAt")));
    Ok(Read {
        write_key,
        default_call,
        messages,
        batch_context,
        sent_at,
    })
}

impl Read<'_> {
    /// Translates the messages into events for `app_id`, received at `received_at` (epoch ms:
    /// the time of a message that carries none), and validates them against `limits` as
    /// `/v1/events` validates its items. The whole body is refused only as `/v1/events` refuses
    /// one: too many messages, or a `sentAt` that is not a time.
    pub fn translate(
        self,
        app_id: &str,
        received_at: i64,
        limits: &Limits,
    ) -> Result<Translated, BodyError> {
        if self.messages.len() > limits.max_items {
            return Err(BodyError::TooManyItems {
                items: self.messages.len(),
                max: limits.max_items,
            });
        }
        let sent_ms = self.sent_at.map(|s| read_time("sentAt", s.get()));
        let sent_ms = sent_ms
            .transpose()
            .map_err(|f| BodyError::BadSentAt(echo(&f.message, limits)))?;
        let stamping = Stamping::new(sent_ms, app_id, received_at, limits)?;
        let received = received_at.to_string();
        let fallback_time = self.sent_at.map_or(received.as_str(), RawValue::get);
        let mut parsed = Parsed::with_capacity(self.messages.len());
        let (mut raws, mut exposures, mut exposure_index) = (Vec::new(), Vec::new(), Vec::new());
        for (index, (fields, text)) in self.messages.iter().enumerate() {
            let outcome = stamping.skewed().and_then(|()| {
                let Some(m) = fields else {
                    let why = "a message must be a JSON object";
                    return Err(fault(Code::BadType, "batch", why));
                };
                let ctx = self.batch_context.as_ref();
                let (record, extra, notes, exposure) =
                    message(m, ctx, self.default_call, fallback_time, limits)?;
                if let Some(x) = exposure {
                    exposures.push(x);
                    exposure_index.push(index);
                }
                check_record(&record, &stamping.stamp, limits)?;
                admit(record, extra, notes, &stamping.stamp, limits)
            });
            if outcome.is_err() {
                raws.push(
                    fields
                        .as_ref()
                        .map_or_else(|| (*text).to_owned(), Fields::text),
                );
            }
            let id = || fields.as_ref().and_then(|m| text_of(m.get("messageId")));
            parsed.push(index, outcome, || id().map(Cow::into_owned), "", limits);
        }
        let close = |items: Vec<String>| {
            let mut b = format!("{{\"batch\":[{}]", items.join(","));
            if let Some(sent) = self.sent_at {
                b.push_str(",\"sent_at\":");
                b.push_str(sent.get());
            }
            b.push('}');
            b
        };
        let rejected = parsed.rejected.into_iter().map(|(r, _)| r).zip(raws);
        Ok(Translated {
            events: parsed.accepted,
            rejected: rejected.collect(),
            warnings: parsed.warnings,
            warnings_omitted: parsed.warnings_omitted,
            exposures: (!exposures.is_empty()).then(|| close(exposures)),
            exposure_index,
        })
    }
}

/// A string field (an SDK may send a number for an id), borrowed from the body when it can be;
/// `None` when absent, empty or another type.
fn text_of(v: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = v?.get();
    match raw.as_bytes().first()? {
        b'"' => serde_json::from_str::<Text<'_>>(raw)
            .ok()
            .map(|t| t.0)
            .filter(|s| !s.is_empty()),
        b'-' | b'0'..=b'9' => Some(Cow::Borrowed(raw)),
        _ => None,
    }
}

/// JSON that the translation wrote (from the body's values) as a JSON value. What the body
/// holds is borrowed, and copied into a record without being read again.
fn written(text: String) -> Result<Cow<'static, RawValue>, Fault> {
    RawValue::from_string(text)
        .map(Cow::Owned)
        .map_err(|e| fault(Code::BadValue, "item", format!("not JSON: {e}")))
}

/// What one message makes: its event (not yet checked), its unknown fields as one object (for
/// `extra`) with a note on each, and its exposure when it is an `Experiment Viewed`.
type Message = (Record, Option<Json>, Vec<Note>, Option<String>);

/// One message as an event. Refused, with the field at fault, when it cannot be one at all.
fn message(
    m: &Fields<'_>,
    batch_context: Option<&Fields<'_>>,
    default_call: Option<Call>,
    fallback_time: &str,
    limits: &Limits,
) -> Result<Message, Fault> {
    check_size(
        m.0.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum(),
        limits,
    )?;
    let call = match m.get("type") {
        Some(t) => serde_json::from_str::<&str>(t.get())
            .ok()
            .and_then(Call::parse)
            .ok_or_else(|| {
                let calls: Vec<&str> = Call::ALL.iter().map(|c| c.as_str()).collect();
                let why = format!("`type` must be one of {}", calls.join(", "));
                fault(Code::BadValue, "type", why)
            })?,
        None => default_call.ok_or_else(|| {
            let why = "a message in a batch needs its `type`";
            fault(Code::BadValue, "type", why)
        })?,
    };
    let user = text_of(m.get("userId"));
    let anonymous = text_of(m.get("anonymousId"));
    if user.is_none() && anonymous.is_none() {
        let why = "`userId` or `anonymousId` is required";
        return Err(fault(Code::MissingField, "userId", why));
    }
    let name: Cow<'_, str> = match call {
        Call::Track => text_of(m.get("event")).ok_or_else(|| {
            let why = "a track call needs its `event` name";
            fault(Code::MissingField, "event", why)
        })?,
        Call::Page | Call::Screen => text_of(m.get("name")).unwrap_or(Cow::Borrowed(call.as_str())),
        Call::Identify | Call::Group | Call::Alias => Cow::Borrowed(call.as_str()),
    };
    // The message's context is read only where it must be (identify's traits, a merge).
    let own_raw = m.get("context");
    let own_context = || own_raw.and_then(fields);
    let built = |build: &dyn Fn(&mut Object<'_>)| {
        let mut s = String::with_capacity(64);
        let mut o = Object::open(&mut s);
        build(&mut o);
        o.close();
        written(s)
    };
    let properties: Option<Cow<'_, RawValue>> = match call {
        // RudderStack's SDKs send identify's traits in `context.traits`.
        Call::Identify => m
            .get("traits")
            .or_else(|| own_context()?.get("traits"))
            .map(Cow::Borrowed),
        Call::Group => Some(built(&|p| {
            match text_of(m.get("groupId")) {
                Some(g) => p.text("group_id", &g),
                None => p.raw("group_id", "null"),
            };
            p.raw("traits", m.get("traits").map_or("null", RawValue::get));
        })?),
        Call::Alias => Some(built(&|p| {
            match text_of(m.get("previousId")) {
                Some(prev) => p.text("previous_id", &prev),
                None => p.raw("previous_id", "null"),
            };
        })?),
        _ => m.get("properties").map(Cow::Borrowed),
    };
    let properties = properties.filter(|p| p.get() != "null");
    // The batch's context, the message's over it key by key, then the message's delivery
    // fields: taken as sent when the message's own is all there is.
    let into_context: Vec<(&str, &RawValue)> = INTO_CONTEXT
        .iter()
        .filter_map(|f| m.get(f).filter(|v| !is_null(Some(v))).map(|v| (*f, v)))
        .collect();
    let context: Option<Cow<'_, RawValue>> = match (batch_context, into_context.is_empty()) {
        (None, true) => own_raw
            .filter(|c| is_full_object(c.get()))
            .map(Cow::Borrowed),
        _ => {
            let own = own_context().unwrap_or_default();
            let mut merged = batch_context.map(Fields::by_name).unwrap_or_default();
            merged.extend(own.by_name());
            merged.extend(into_context);
            let merged = (!merged.is_empty()).then(|| written(Object::of(merged)));
            merged.transpose()?
        }
    };
    let timestamp = ["originalTimestamp", "timestamp"]
        .iter()
        .find_map(|f| m.get(f).filter(|v| !is_null(Some(v))))
        .map_or(fallback_time, RawValue::get);
    let id = text_of(m.get("messageId"));
    // Without a `messageId`, a hash of the message's fields by name: the same when resent.
    let event_id = match &id {
        Some(id) => id.clone().into_owned(),
        None => {
            let digest = Sha256::digest(Object::of(m.by_name()).as_bytes());
            format!("h-{}", &hex::encode(digest)[..32])
        }
    };
    // What the translation does not read stays, as on /v1/events: in `extra`, with a warning.
    let unknown: Vec<(&str, &RawValue)> =
        m.0.iter()
            .filter(|(k, _)| !READ.contains(&&**k))
            .map(|(k, v)| (&**k, *v))
            .collect();
    let notes = unknown
        .iter()
        .map(|(k, _)| unknown_field(Kind::Event, k))
        .collect();
    let extra = (!unknown.is_empty()).then(|| written(Object::of(unknown)));
    let exposure = (call == Call::Track && name == "Experiment Viewed")
        .then(|| {
            let who = user.as_deref().or(anonymous.as_deref())?;
            exposure(m.get("properties")?, who, id.as_deref(), timestamp)
        })
        .flatten();
    let event = Event {
        app_id: String::new(),
        event_id,
        name: name.into_owned(),
        timestamp: read_time("timestamp", timestamp)?,
        ts: 0,
        received_at: 0,
        ingest_seq: String::new(),
        user_id: user.map(Cow::into_owned),
        session_id: None,
        anonymous_id: anonymous.map(Cow::into_owned),
        call: Some(call.as_str().to_owned()),
        properties: properties.map(Cow::into_owned),
        context: context.map(Cow::into_owned),
        extra: None,
    };
    let extra = extra.transpose()?.map(Cow::into_owned);
    Ok((Record::Event(event), extra, notes, exposure))
}

/// The exposure of an `Experiment Viewed`, when its properties name the experiment and variant.
fn exposure(properties: &RawValue, user: &str, id: Option<&str>, at: &str) -> Option<String> {
    let p = fields(properties)?;
    let pick = |a: &str, b: &str| text_of(p.get(a)).or_else(|| text_of(p.get(b)));
    let experiment = pick("experiment_id", "experiment_name")?;
    let variant = pick("variation_id", "variation_name")?;
    let at: Value = serde_json::from_str(at).ok()?;
    Some(
        json!({
            "experiment": experiment, "user_id": user, "variant": variant,
            "exposed_at": at, "updated_at": at,
            "properties": { "source": "Experiment Viewed", "message_id": id },
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cauce_store::time::parse_rfc3339;

    /// The clock of the server in these tests: shortly after the messages were sent.
    const RECEIVED: &str = "2026-11-30T10:00:10Z";

    fn ms(at: &str) -> i64 {
        parse_rfc3339(at).unwrap()
    }

    fn translated(body: &[u8], shape: Shape) -> Translated {
        read(body, shape)
            .unwrap()
            .translate("app_1", ms(RECEIVED), &Limits::default())
            .unwrap()
    }

    fn batch(messages: Value) -> Translated {
        translated(messages.to_string().as_bytes(), Shape::Batch)
    }

    /// The accepted events as JSON trees.
    fn events(t: &Translated) -> Vec<Value> {
        let tree = |r: &Record| serde_json::from_str(&r.to_json()).unwrap();
        t.events.iter().map(tree).collect()
    }

    fn parsed(body: Option<String>) -> Value {
        serde_json::from_str(&body.expect("a body")).expect("the translation writes JSON")
    }

    #[test]
    fn each_call_becomes_an_event() {
        let t = batch(json!({
            "writeKey": "ck_secret", "sentAt": "2026-11-30T10:00:05Z",
            "context": {"library": {"name": "analytics-kotlin"}, "os": {"name": "Android"}},
            "batch": [
                {"type": "track", "messageId": "m1", "anonymousId": "a1", "event": "Song Played",
                 "properties": {"title": "x"}, "originalTimestamp": "2026-11-30T10:00:00Z",
                 "context": {"os": {"name": "Android", "version": "14"}}, "integrations": {"All": true}},
                {"type": "identify", "messageId": "m2", "userId": 42, "traits": {"plan": "pro"},
                 "timestamp": "2026-11-30T10:00:01Z"},
                {"type": "screen", "messageId": "m3", "userId": "u1", "name": "Home"},
                {"type": "group", "messageId": "m4", "userId": "u1", "groupId": "g1", "traits": {"n": 3}},
                {"type": "alias", "messageId": "m5", "userId": "u2", "previousId": "a1", "writeKey": "ck_x"},
                {"type": "page", "userId": "u1", "channel": "web", "custom": 1},
            ]
        }));
        assert!(t.rejected.is_empty(), "{:?}", t.rejected);
        let e = events(&t);
        assert_eq!(e.len(), 6);
        assert_eq!(e[0]["event_id"], "m1");
        assert_eq!(e[0]["app_id"], "app_1");
        assert_eq!(e[0]["received_at"], ms(RECEIVED));
        assert_eq!(e[0]["name"], "Song Played");
        assert_eq!(e[0]["type"], "track");
        assert_eq!(e[0]["anonymous_id"], "a1");
        assert!(e[0].get("user_id").is_none());
        assert_eq!(e[0]["timestamp"], ms("2026-11-30T10:00:00Z"));
        assert_eq!(
            e[0]["ts"],
            ms("2026-11-30T10:00:05Z"),
            "corrected by the 5 s between sentAt and the server's clock"
        );
        assert_eq!(
            e[0]["context"]["os"]["version"], "14",
            "the message's context wins"
        );
        assert_eq!(
            e[0]["context"]["library"]["name"], "analytics-kotlin",
            "the batch's is merged"
        );
        assert_eq!(e[0]["context"]["integrations"]["All"], true);
        assert_eq!(
            (e[1]["user_id"].as_str(), e[1]["name"].as_str()),
            (Some("42"), Some("identify"))
        );
        assert_eq!(e[1]["properties"]["plan"], "pro");
        assert_eq!(e[1]["timestamp"], ms("2026-11-30T10:00:01Z"));
        assert_eq!(e[2]["name"], "Home");
        assert_eq!(
            e[2]["timestamp"],
            ms("2026-11-30T10:00:05Z"),
            "no time of its own: sentAt"
        );
        assert_eq!(
            e[3]["properties"],
            json!({"group_id": "g1", "traits": {"n": 3}})
        );
        assert_eq!(e[4]["properties"], json!({"previous_id": "a1"}));
        assert!(
            !e.iter().any(|e| e.to_string().contains("ck_")),
            "a write key is never kept"
        );
        assert_eq!(e[5]["name"], "page");
        assert_eq!(e[5]["context"]["channel"], "web");
        assert_eq!(
            e[5]["extra"],
            json!({"custom": 1}),
            "an unknown field stays, in `extra`"
        );
        assert_eq!(
            (
                t.warnings.len(),
                t.warnings[0].index,
                t.warnings[0].field.as_str()
            ),
            (1, 5, "custom")
        );
        assert!(e[5]["event_id"].as_str().unwrap().starts_with("h-"));
        assert!(t.exposures.is_none());
    }

    #[test]
    fn a_message_without_an_id_gets_the_same_one_when_resent() {
        let message = json!({"type": "track", "userId": "u", "event": "e"});
        let id_of = |t: Translated| events(&t)[0]["event_id"].clone();
        let id = id_of(batch(json!({"batch": [message.clone()]})));
        assert_eq!(id, id_of(batch(json!({"batch": [message]}))));
        // The hash of its fields by name, whatever their order: the same in every version.
        let fields = r#"{"event":"e","type":"track","userId":"u"}"#;
        let digest = hex::encode(Sha256::digest(fields.as_bytes()));
        assert_eq!(id, format!("h-{}", &digest[..32]));
        let reordered = br#"{"batch": [{"userId": "u", "event": "e", "type": "track"}]}"#;
        assert_eq!(id, id_of(translated(reordered, Shape::Batch)));
        let other = batch(json!({"batch": [{"type": "track", "userId": "u", "event": "f"}]}));
        assert_ne!(id, id_of(other));
    }

    #[test]
    fn escaped_names_and_values_are_read_back() {
        let t = batch(json!({"batch": [
            {"type": "track", "messageId": "m\"1", "userId": "ü\u{e9}", "event": "Say \"hi\" \\o/",
             "we\"ird\\": {"a": "\u{7}"}, "properties": {"q\"": "\\"},
             "context": {"k\n": 1}, "channel": "tab\t"},
        ]}));
        let e = &events(&t)[0];
        assert_eq!(e["event_id"], "m\"1");
        assert_eq!(e["user_id"], "ü\u{e9}");
        assert_eq!(e["name"], "Say \"hi\" \\o/");
        assert_eq!(e["extra"]["we\"ird\\"], json!({"a": "\u{7}"}));
        assert_eq!(e["properties"], json!({"q\"": "\\"}));
        assert_eq!(e["context"], json!({"k\n": 1, "channel": "tab\t"}));
    }

    #[test]
    fn bad_messages_are_refused_one_by_one_as_v1_events_refuses_items() {
        let long = "x".repeat(300);
        let big = "y".repeat(40_000);
        let t = batch(json!({"batch": [
            {"type": "track", "messageId": "ok", "userId": "u", "event": "e", "writeKey": "ck_k"},
            {"type": "track", "messageId": "nobody", "event": "e", "writeKey": "ck_k"},
            {"type": "track", "messageId": "unnamed", "userId": "u"},
            {"type": "fly", "messageId": "fly", "userId": "u"},
            {"messageId": "untyped", "userId": "u"},
            "not an object",
            {"type": "track", "messageId": "long", "userId": long, "event": "e"},
            {"type": "track", "messageId": "when", "userId": "u", "event": "e", "timestamp": "yesterday"},
            {"type": "track", "messageId": "old", "userId": "u", "event": "e", "timestamp": "2025-01-01T00:00:00Z"},
            {"type": "track", "messageId": "props", "userId": "u", "event": "e", "properties": [1]},
            {"type": "track", "messageId": "big", "userId": "u", "event": "e", "properties": {"b": big}},
        ]}));
        assert_eq!(t.events.len(), 1);
        let why: Vec<(usize, &str, &str)> = t
            .rejected
            .iter()
            .map(|(r, _)| (r.index, r.field.as_str(), r.error.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                (1, "userId", "missing_field"),
                (2, "event", "missing_field"),
                (3, "type", "bad_value"),
                (4, "type", "bad_value"),
                (5, "batch", "bad_type"),
                (6, "user_id", "too_long"),
                (7, "timestamp", "bad_timestamp"),
                (8, "timestamp", "timestamp_out_of_range"),
                (9, "properties", "bad_type"),
                (10, "item", "too_large"),
            ]
        );
        assert_eq!(t.rejected[0].0.id.as_deref(), Some("nobody"));
        let (_, raw) = &t.rejected[0];
        assert!(raw.contains("\"nobody\"") && !raw.contains("ck_k"), "{raw}");
        assert_eq!(t.rejected[4].1, "\"not an object\"");
    }

    #[test]
    fn a_whole_body_is_refused_only_as_v1_events_refuses_one() {
        let limits = Limits::default();
        let at = ms(RECEIVED);
        let of = |body: Value| {
            let body = body.to_string();
            read(body.as_bytes(), Shape::Batch)
                .unwrap()
                .translate("a", at, &limits)
        };
        let m = json!({"type": "track", "userId": "u", "event": "e"});
        assert!(matches!(
            of(json!({"sentAt": "soon", "batch": [m]})),
            Err(BodyError::BadSentAt(why)) if why.contains("sentAt")
        ));
        assert!(matches!(
            of(json!({"batch": vec![m.clone(); 501]})),
            Err(BodyError::TooManyItems {
                items: 501,
                max: 500
            })
        ));
        // A clock a month off: every message refused, none accepted.
        let t = of(json!({"sentAt": "2026-10-30T10:00:00Z", "batch": [m.clone(), m]})).unwrap();
        assert!(t.events.is_empty());
        assert!(t.rejected.iter().all(|(r, _)| r.error == Code::ClockSkew));
    }

    #[test]
    fn a_single_call_takes_the_routes_type() {
        let body = json!({"userId": "u", "event": "Signed Up", "writeKey": "k", "sentAt": "2026-11-30T10:00:00Z"});
        let body = body.to_string();
        let read = read(body.as_bytes(), Shape::Single(Call::Track)).unwrap();
        assert_eq!(read.write_key.as_deref(), Some("k"));
        let t = read
            .translate("a", ms(RECEIVED), &Limits::default())
            .unwrap();
        let e = &events(&t)[0];
        assert_eq!(
            (e["type"].as_str(), e["name"].as_str()),
            (Some("track"), Some("Signed Up"))
        );
        assert!(super::read(b"[1]", Shape::Batch).is_err());
        assert!(super::read(b"{\"batch\": 1}", Shape::Batch).is_err());
        assert!(super::read(b"{nope", Shape::Single(Call::Page)).is_err());
        // No time at all: the time it was received.
        let bare = json!({"userId": "u", "name": "Home"}).to_string();
        let t = translated(bare.as_bytes(), Shape::Single(Call::Page));
        assert_eq!(events(&t)[0]["timestamp"], ms(RECEIVED));
    }

    #[test]
    fn experiment_viewed_is_also_an_exposure() {
        let t = batch(json!({"batch": [
            {"type": "track", "messageId": "x1", "userId": "u1", "event": "Experiment Viewed",
             "timestamp": "2026-11-30T10:00:00Z",
             "properties": {"experiment_id": "checkout", "variation_id": "b"}},
            {"type": "track", "messageId": "x2", "anonymousId": "a2", "event": "Experiment Viewed",
             "timestamp": "2026-11-30T10:00:00Z",
             "properties": {"experiment_name": "Onboarding", "variation_name": "Control"}},
            {"type": "track", "messageId": "x3", "userId": "u3", "event": "Experiment Viewed",
             "timestamp": "2026-11-30T10:00:00Z", "properties": {"experiment_id": "no variation"}},
        ]}));
        assert_eq!(t.events.len(), 3, "every one is an event");
        assert_eq!(t.exposure_index, [0, 1]);
        let x = parsed(t.exposures);
        assert_eq!(x["batch"][0]["experiment"], "checkout");
        assert_eq!(x["batch"][0]["variant"], "b");
        assert_eq!(x["batch"][1]["user_id"], "a2");
        assert_eq!(x["batch"][1]["variant"], "Control");
        assert_eq!(x["batch"][0]["exposed_at"], "2026-11-30T10:00:00Z");
    }

    #[test]
    fn write_keys_are_taken_out_of_what_is_kept_and_nothing_else() {
        let plain = br#"{"batch":[{"type":"track","n":1.50}]}"#;
        assert!(matches!(without_write_key(plain), Cow::Borrowed(_)));
        let body = br#"{"writeKey":"ck_a","batch":[{"type":"track","writeKey":"ck_b","n":1.50},{"n":2}],"sentAt":"2026-11-30T10:00:00Z"}"#;
        let kept = String::from_utf8(without_write_key(body).into_owned()).unwrap();
        assert!(!kept.contains("writeKey"), "{kept}");
        assert!(kept.contains("1.50"), "values as sent: {kept}");
        let v: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(v["batch"][1]["n"], 2);
        assert_eq!(v["sentAt"], "2026-11-30T10:00:00Z");
        let single = br#"{"writeKey":"ck_a","event":"e"}"#;
        assert_eq!(&*without_write_key(single), br#"{"event":"e"}"#);
        for shape in [Shape::Batch, Shape::Single(Call::Alias)] {
            assert_eq!(Shape::from_protocol(&shape.protocol()), Some(shape));
        }
        assert_eq!(Shape::from_protocol("segment/fly"), None);
    }
}

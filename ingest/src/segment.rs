//! The Segment tracking protocol, as the analytics SDKs speak it (Segment's, RudderStack's,
//! Jitsu's), translated into Cauce's own batches: a pure function from the body an SDK sent to
//! the `/v1/events` (and, for `Experiment Viewed`, `/v1/tests`) bodies that the API validates
//! and queues as if a client had sent them. Spec: <https://segment.com/docs/connections/spec/>.
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

use cauce_store::Text;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

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

/// Why a body cannot be read at all (the SDKs drop a batch on a 400, so only these are one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// A message that cannot become an event, refused with its index.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// Its index in the batch (0 for a single call).
    pub index: usize,
    /// Its `messageId`, when it had one.
    pub id: Option<String>,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// The message as sent (without the write key), for the bad-rows archive.
    pub raw: String,
}

/// A body of the tracking protocol as Cauce batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The write key that the body carries, if any (an SDK's way to authenticate).
    pub write_key: Option<String>,
    /// The `/v1/events` body, as JSON text: `{"batch": [events], "sent_at"?}`; `None` without
    /// events.
    pub events: Option<String>,
    /// The index in the SDK's batch of each event, in order.
    pub event_index: Vec<usize>,
    /// The `/v1/tests` body of the `Experiment Viewed` exposures, as JSON text; `None` without
    /// any.
    pub exposures: Option<String>,
    /// The index in the SDK's batch of each exposure.
    pub exposure_index: Vec<usize>,
    /// Messages that are not events at all.
    pub refused: Vec<Refused>,
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

/// Translates a body of `shape`, received at `received_at` (epoch ms: the time of a message
/// that carries none). Malformed only when the body is not JSON or not the shape. Messages are
/// read one level deep and written out as text: their properties and context pass through as
/// sent, without being parsed into a tree.
pub fn translate(body: &[u8], shape: Shape, received_at: i64) -> Result<Translated, Malformed> {
    let body =
        std::str::from_utf8(body).map_err(|e| Malformed(format!("the body is not UTF-8: {e}")))?;
    let mut top =
        fields_of(body).ok_or_else(|| match serde_json::from_str::<IgnoredAny>(body) {
            Err(e) => Malformed(format!("the body is not JSON: {e}")),
            Ok(_) => Malformed("the body must be a JSON object".into()),
        })?;
    let write_key = top
        .get("writeKey")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    let body_sent_at = top.get("sentAt");
    // Each message read one level deep, in one pass over the batch; the batch read again as
    // raw values only when a message is not an object (to refuse it as sent).
    let (messages, batch_context, default_call): (Vec<(Option<Fields<'_>>, &str)>, _, _) =
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
    let sent_at =
        body_sent_at.or_else(|| messages.iter().find_map(|(m, _)| m.as_ref()?.get("sentAt")));
    let received = received_at.to_string();
    let fallback_time = sent_at.map_or(received.as_str(), RawValue::get);
    let mut out = Translated {
        write_key,
        events: None,
        event_index: Vec::new(),
        exposures: None,
        exposure_index: Vec::new(),
        refused: Vec::new(),
    };
    // The events are written straight into their body; exposures are rare.
    let mut events = String::with_capacity(body.len() + 96 * messages.len());
    events.push_str("{\"batch\":[");
    let mut exposures = Vec::new();
    for (index, (fields, raw)) in messages.into_iter().enumerate() {
        let mark = events.len();
        if !out.event_index.is_empty() {
            events.push(',');
        }
        let translated = match fields {
            Some(m) => event(
                &mut events,
                m,
                batch_context.as_ref(),
                default_call,
                fallback_time,
            ),
            None => Err(refused(
                None,
                "batch",
                "a message must be a JSON object",
                raw.to_owned(),
            )),
        };
        match translated {
            Ok(exposure) => {
                out.event_index.push(index);
                if let Some(x) = exposure {
                    exposures.push(x);
                    out.exposure_index.push(index);
                }
            }
            Err(mut refused) => {
                events.truncate(mark);
                refused.index = index;
                out.refused.push(refused);
            }
        }
    }
    let close = |mut b: String| {
        b.push(']');
        if let Some(sent) = sent_at {
            b.push_str(",\"sent_at\":");
            b.push_str(sent.get());
        }
        b.push('}');
        b
    };
    out.events = (!out.event_index.is_empty()).then(|| close(events));
    out.exposures =
        (!exposures.is_empty()).then(|| close(format!("{{\"batch\":[{}", exposures.join(","))));
    Ok(out)
}

/// A string field (an SDK may send a number for an id), borrowed from the body when it can be;
/// `None` when absent, empty or another type.
fn text(v: Option<&RawValue>) -> Option<Cow<'_, str>> {
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

/// Writes one message as an event's JSON into `out`; returns its exposure when it is an
/// `Experiment Viewed`. A refused message writes nothing.
fn event<'a>(
    out: &mut String,
    mut m: Fields<'a>,
    batch_context: Option<&Fields<'a>>,
    default_call: Option<Call>,
    fallback_time: &str,
) -> Result<Option<String>, Refused> {
    m.remove("writeKey");
    let raw = |m: &Fields<'_>| Object::of(m.0.iter().map(|(k, v)| (&**k, *v)));
    let id = text(m.get("messageId"));
    let owned_id = || id.as_deref().map(str::to_owned);
    let call = match m.get("type") {
        Some(t) => serde_json::from_str::<&str>(t.get())
            .ok()
            .and_then(Call::parse)
            .ok_or_else(|| {
                let calls: Vec<&str> = Call::ALL.iter().map(|c| c.as_str()).collect();
                let why = format!("`type` must be one of {}", calls.join(", "));
                refused(owned_id(), "type", &why, raw(&m))
            })?,
        None => default_call.ok_or_else(|| {
            let why = "a message in a batch needs its `type`";
            refused(owned_id(), "type", why, raw(&m))
        })?,
    };
    let user = text(m.get("userId"));
    let anonymous = text(m.get("anonymousId"));
    if user.is_none() && anonymous.is_none() {
        let why = "`userId` or `anonymousId` is required";
        return Err(refused(owned_id(), "userId", why, raw(&m)));
    }
    let name: Cow<'_, str> = match call {
        Call::Track => text(m.get("event")).ok_or_else(|| {
            let why = "a track call needs its `event` name";
            refused(owned_id(), "event", why, raw(&m))
        })?,
        Call::Page | Call::Screen => text(m.get("name")).unwrap_or(Cow::Borrowed(call.as_str())),
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
        Cow::Owned(s)
    };
    let properties: Option<Cow<'a, str>> = match call {
        // RudderStack's SDKs send identify's traits in `context.traits`.
        Call::Identify => m
            .get("traits")
            .or_else(|| own_context()?.get("traits"))
            .map(|t| Cow::Borrowed(t.get())),
        Call::Group => Some(built(&|p| {
            match text(m.get("groupId")) {
                Some(g) => p.text("group_id", &g),
                None => p.raw("group_id", "null"),
            };
            p.raw("traits", m.get("traits").map_or("null", RawValue::get));
        })),
        Call::Alias => Some(built(&|p| {
            match text(m.get("previousId")) {
                Some(prev) => p.text("previous_id", &prev),
                None => p.raw("previous_id", "null"),
            };
        })),
        _ => m.get("properties").map(|p| Cow::Borrowed(p.get())),
    };
    let properties = properties.filter(|p| p != "null");
    // The batch's context, the message's over it key by key, then the message's delivery
    // fields: written as sent when the message's own is all there is.
    let into_context: Vec<(&str, &RawValue)> = INTO_CONTEXT
        .iter()
        .filter_map(|f| m.get(f).filter(|v| !is_null(Some(v))).map(|v| (*f, v)))
        .collect();
    let context: Option<Cow<'a, str>> = match (batch_context, into_context.is_empty()) {
        (None, true) => own_raw
            .map(RawValue::get)
            .filter(|c| is_full_object(c))
            .map(Cow::Borrowed),
        _ => {
            let own = own_context().unwrap_or_default();
            let mut merged = batch_context.map(Fields::by_name).unwrap_or_default();
            merged.extend(own.by_name());
            merged.extend(into_context);
            (!merged.is_empty()).then(|| Cow::Owned(Object::of(merged)))
        }
    };
    let timestamp = ["originalTimestamp", "timestamp"]
        .iter()
        .find_map(|f| m.get(f).filter(|v| !is_null(Some(v))))
        .map_or(fallback_time, RawValue::get);
    // Without a `messageId`, a hash of the message's fields by name: the same when resent.
    let hashed;
    let event_id: &str = match &id {
        Some(id) => id,
        None => {
            let digest = Sha256::digest(Object::of(m.by_name()).as_bytes());
            hashed = format!("h-{}", &hex::encode(digest)[..32]);
            &hashed
        }
    };
    let mut e = Object::open(out);
    e.text("event_id", event_id)
        .text("name", &name)
        .text("type", call.as_str());
    if let Some(u) = &user {
        e.text("user_id", u);
    }
    if let Some(a) = &anonymous {
        e.text("anonymous_id", a);
    }
    if let Some(p) = &properties {
        e.raw("properties", p);
    }
    if let Some(c) = &context {
        e.raw("context", c);
    }
    e.raw("timestamp", timestamp);
    // What the translation does not read stays, as on /v1/events: in `extra`, with a warning.
    e.fields(
        m.0.iter()
            .filter(|(k, _)| !READ.contains(&&**k))
            .map(|(k, v)| (&**k, *v)),
    );
    e.close();
    let is_exposure = call == Call::Track && name == "Experiment Viewed";
    let exposure = is_exposure
        .then(|| {
            let who = user.as_deref().or(anonymous.as_deref())?;
            exposure(m.get("properties")?, who, id.as_deref(), timestamp)
        })
        .flatten();
    Ok(exposure)
}

/// The exposure of an `Experiment Viewed`, when its properties name the experiment and variant.
fn exposure(properties: &RawValue, user: &str, id: Option<&str>, at: &str) -> Option<String> {
    let p = fields(properties)?;
    let pick = |a: &str, b: &str| text(p.get(a)).or_else(|| text(p.get(b)));
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

fn refused(id: Option<String>, field: &'static str, message: &str, raw: String) -> Refused {
    Refused {
        index: 0,
        id,
        field,
        message: message.to_owned(),
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: i64 = 1_795_000_000_000;

    /// A body that translation wrote, as a tree.
    fn parsed(body: Option<String>) -> Value {
        serde_json::from_str(&body.expect("a body")).expect("the translation writes JSON")
    }

    fn batch(messages: Value) -> Translated {
        translate(messages.to_string().as_bytes(), Shape::Batch, RECEIVED).unwrap()
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
        assert_eq!(t.write_key.as_deref(), Some("ck_secret"));
        assert!(t.refused.is_empty(), "{:?}", t.refused);
        let events = parsed(t.events);
        assert_eq!(events["sent_at"], "2026-11-30T10:00:05Z");
        let e = events["batch"].as_array().unwrap();
        assert_eq!(e[0]["event_id"], "m1");
        assert_eq!(e[0]["name"], "Song Played");
        assert_eq!(e[0]["type"], "track");
        assert_eq!(e[0]["anonymous_id"], "a1");
        assert!(e[0].get("user_id").is_none());
        assert_eq!(e[0]["timestamp"], "2026-11-30T10:00:00Z");
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
        assert_eq!(e[1]["timestamp"], "2026-11-30T10:00:01Z");
        assert_eq!(e[2]["name"], "Home");
        assert_eq!(
            e[2]["timestamp"], "2026-11-30T10:00:05Z",
            "no time of its own: sentAt"
        );
        assert_eq!(
            e[3]["properties"],
            json!({"group_id": "g1", "traits": {"n": 3}})
        );
        assert_eq!(e[4]["properties"], json!({"previous_id": "a1"}));
        assert!(
            !e[4].to_string().contains("ck_x"),
            "a write key is never kept"
        );
        assert_eq!(e[5]["name"], "page");
        assert_eq!(e[5]["context"]["channel"], "web");
        assert_eq!(e[5]["custom"], 1, "an unknown field stays, for `extra`");
        assert!(e[5]["event_id"].as_str().unwrap().starts_with("h-"));
        assert!(t.exposures.is_none());
    }

    #[test]
    fn a_message_without_an_id_gets_the_same_one_when_resent() {
        let message = json!({"type": "track", "userId": "u", "event": "e"});
        let one = batch(json!({"batch": [message.clone()]}));
        let two = batch(json!({"batch": [message]}));
        let id = parsed(one.events)["batch"][0]["event_id"].clone();
        assert_eq!(id, parsed(two.events)["batch"][0]["event_id"]);
        // The hash of its fields by name, whatever their order: the same in every version.
        let fields = r#"{"event":"e","type":"track","userId":"u"}"#;
        let digest = hex::encode(Sha256::digest(fields.as_bytes()));
        assert_eq!(id, format!("h-{}", &digest[..32]));
        let reordered = br#"{"batch": [{"userId": "u", "event": "e", "type": "track"}]}"#;
        let three = translate(reordered, Shape::Batch, RECEIVED).unwrap();
        assert_eq!(id, parsed(three.events)["batch"][0]["event_id"]);
        let other = batch(json!({"batch": [{"type": "track", "userId": "u", "event": "f"}]}));
        assert_ne!(id, parsed(other.events)["batch"][0]["event_id"]);
    }

    #[test]
    fn escaped_names_and_values_are_written_back_as_json() {
        let t = batch(json!({"batch": [
            {"type": "track", "messageId": "m\"1", "userId": "ü\u{1}", "event": "Say \"hi\"\n",
             "we\"ird\\": {"a": "\u{7}"}, "properties": {"q\"": "\\"},
             "context": {"k\n": 1}, "channel": "tab\t"},
        ]}));
        let e = &parsed(t.events)["batch"][0];
        assert_eq!(e["event_id"], "m\"1");
        assert_eq!(e["user_id"], "ü\u{1}");
        assert_eq!(e["name"], "Say \"hi\"\n");
        assert_eq!(e["we\"ird\\"], json!({"a": "\u{7}"}));
        assert_eq!(e["properties"], json!({"q\"": "\\"}));
        assert_eq!(e["context"], json!({"k\n": 1, "channel": "tab\t"}));
    }

    #[test]
    fn bad_messages_are_refused_one_by_one() {
        let t = batch(json!({"batch": [
            {"type": "track", "messageId": "ok", "userId": "u", "event": "e"},
            {"type": "track", "messageId": "nobody", "event": "e"},
            {"type": "track", "messageId": "unnamed", "userId": "u"},
            {"type": "fly", "messageId": "fly", "userId": "u"},
            {"messageId": "untyped", "userId": "u"},
            "not an object",
        ]}));
        assert_eq!(t.event_index, [0]);
        let why: Vec<(usize, &str)> = t.refused.iter().map(|r| (r.index, r.field)).collect();
        assert_eq!(
            why,
            [
                (1, "userId"),
                (2, "event"),
                (3, "type"),
                (4, "type"),
                (5, "batch")
            ]
        );
        assert_eq!(t.refused[0].id.as_deref(), Some("nobody"));
    }

    #[test]
    fn a_single_call_takes_the_routes_type() {
        let body = json!({"userId": "u", "event": "Signed Up", "writeKey": "k", "sentAt": "2026-11-30T10:00:00Z"});
        let t = translate(
            body.to_string().as_bytes(),
            Shape::Single(Call::Track),
            RECEIVED,
        )
        .unwrap();
        let e = &parsed(t.events)["batch"][0];
        assert_eq!(
            (e["type"].as_str(), e["name"].as_str()),
            (Some("track"), Some("Signed Up"))
        );
        assert_eq!(t.write_key.as_deref(), Some("k"));
        assert!(translate(b"[1]", Shape::Batch, RECEIVED).is_err());
        assert!(translate(b"{\"batch\": 1}", Shape::Batch, RECEIVED).is_err());
        assert!(translate(b"{nope", Shape::Single(Call::Page), RECEIVED).is_err());
        // No time at all: the time it was received.
        let bare = json!({"userId": "u", "name": "Home"}).to_string();
        let t = translate(bare.as_bytes(), Shape::Single(Call::Page), RECEIVED).unwrap();
        assert_eq!(parsed(t.events)["batch"][0]["timestamp"], RECEIVED);
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
        assert_eq!(t.event_index, [0, 1, 2], "every one is an event");
        assert_eq!(t.exposure_index, [0, 1]);
        let x = parsed(t.exposures);
        assert_eq!(x["batch"][0]["experiment"], "checkout");
        assert_eq!(x["batch"][0]["variant"], "b");
        assert_eq!(x["batch"][1]["user_id"], "a2");
        assert_eq!(x["batch"][1]["variant"], "Control");
        assert_eq!(x["batch"][0]["exposed_at"], "2026-11-30T10:00:00Z");
    }
}

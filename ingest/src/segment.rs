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

use serde_json::{json, Map, Value};
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
    /// The `/v1/events` body: `{"sent_at"?, "batch": [events]}`; `None` without events.
    pub events: Option<Value>,
    /// The index in the SDK's batch of each event, in order.
    pub event_index: Vec<usize>,
    /// The `/v1/tests` body of the `Experiment Viewed` exposures; `None` without any.
    pub exposures: Option<Value>,
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

/// Translates a body of `shape`, received at `received_at` (epoch ms: the time of a message
/// that carries none). Malformed only when the body is not JSON or not the shape.
pub fn translate(body: &[u8], shape: Shape, received_at: i64) -> Result<Translated, Malformed> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut body) = body else {
        return Err(Malformed("the body must be a JSON object".into()));
    };
    let write_key = body
        .get("writeKey")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body_sent_at = body.get("sentAt").cloned();
    let (messages, batch_context, default_call) = match shape {
        Shape::Batch => {
            let Some(Value::Array(batch)) = body.remove("batch") else {
                return Err(Malformed("a batch body needs a `batch` array".into()));
            };
            (batch, body.remove("context"), None)
        }
        Shape::Single(call) => (vec![Value::Object(body)], None, Some(call)),
    };
    let sent_at = body_sent_at.or_else(|| messages.iter().find_map(|m| m.get("sentAt").cloned()));
    let mut out = Translated {
        write_key,
        events: None,
        event_index: Vec::new(),
        exposures: None,
        exposure_index: Vec::new(),
        refused: Vec::new(),
    };
    let (mut events, mut exposures) = (Vec::new(), Vec::new());
    for (index, message) in messages.into_iter().enumerate() {
        let time = sent_at.clone().unwrap_or_else(|| json!(received_at));
        match event(message, batch_context.as_ref(), default_call, &time) {
            Ok((event, exposure)) => {
                events.push(event);
                out.event_index.push(index);
                if let Some(x) = exposure {
                    exposures.push(x);
                    out.exposure_index.push(index);
                }
            }
            Err(mut refused) => {
                refused.index = index;
                out.refused.push(refused);
            }
        }
    }
    let body = |items: Vec<Value>| {
        let mut b = json!({ "batch": items });
        if let Some(sent) = &sent_at {
            b["sent_at"] = sent.clone();
        }
        b
    };
    out.events = (!events.is_empty()).then(|| body(events));
    out.exposures = (!exposures.is_empty()).then(|| body(exposures));
    Ok(out)
}

/// A string field (an SDK may send a number for an id).
fn text(m: &Map<String, Value>, field: &str) -> Option<String> {
    match m.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One message as an event, and its exposure when it is an `Experiment Viewed`.
fn event(
    message: Value,
    batch_context: Option<&Value>,
    default_call: Option<Call>,
    fallback_time: &Value,
) -> Result<(Value, Option<Value>), Refused> {
    let Value::Object(mut m) = message else {
        return Err(refused(
            None,
            "batch",
            "a message must be a JSON object",
            &message,
        ));
    };
    m.remove("writeKey");
    let raw = Value::Object(m.clone());
    let id = text(&m, "messageId");
    let call = match m.get("type").and_then(Value::as_str) {
        Some(t) => Call::parse(t).ok_or_else(|| {
            let calls: Vec<&str> = Call::ALL.iter().map(|c| c.as_str()).collect();
            refused(
                id.clone(),
                "type",
                &format!("`type` must be one of {}", calls.join(", ")),
                &raw,
            )
        })?,
        None => default_call.ok_or_else(|| {
            refused(
                id.clone(),
                "type",
                "a message in a batch needs its `type`",
                &raw,
            )
        })?,
    };
    let user = text(&m, "userId");
    let anonymous = text(&m, "anonymousId");
    if user.is_none() && anonymous.is_none() {
        return Err(refused(
            id,
            "userId",
            "`userId` or `anonymousId` is required",
            &raw,
        ));
    }
    let name = match call {
        Call::Track => text(&m, "event").ok_or_else(|| {
            refused(
                id.clone(),
                "event",
                "a track call needs its `event` name",
                &raw,
            )
        })?,
        Call::Page | Call::Screen => text(&m, "name").unwrap_or_else(|| call.as_str().to_owned()),
        Call::Identify | Call::Group | Call::Alias => call.as_str().to_owned(),
    };
    let properties = match call {
        // RudderStack's SDKs send identify's traits in `context.traits`.
        Call::Identify => m
            .get("traits")
            .or_else(|| m.get("context")?.get("traits"))
            .cloned(),
        Call::Group => Some(json!({ "group_id": text(&m, "groupId"), "traits": m.get("traits") })),
        Call::Alias => Some(json!({ "previous_id": text(&m, "previousId") })),
        _ => m.get("properties").cloned(),
    };
    let mut context = match batch_context {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Object(own)) = m.get("context") {
        context.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for field in INTO_CONTEXT {
        if let Some(v) = m.get(field).filter(|v| !v.is_null()) {
            context.insert(field.to_owned(), v.clone());
        }
    }
    let timestamp = ["originalTimestamp", "timestamp"]
        .iter()
        .find_map(|f| m.get(*f).filter(|v| !v.is_null()).cloned())
        .unwrap_or_else(|| fallback_time.clone());
    let event_id = id.clone().unwrap_or_else(|| {
        let digest = Sha256::digest(raw.to_string().as_bytes());
        format!("h-{}", &hex::encode(digest)[..32])
    });
    let mut event = json!({ "event_id": event_id, "name": name, "type": call.as_str() });
    let fields = [
        ("user_id", user.clone().map(Value::String)),
        ("anonymous_id", anonymous.clone().map(Value::String)),
        ("properties", properties.filter(|p| !p.is_null())),
        (
            "context",
            (!context.is_empty()).then_some(Value::Object(context)),
        ),
        ("timestamp", Some(timestamp.clone())),
    ];
    for (field, value) in fields {
        if let Some(v) = value {
            event[field] = v;
        }
    }
    // What the translation does not read stays, as on /v1/events: in `extra`, with a warning.
    for (k, v) in m.iter().filter(|(k, _)| !READ.contains(&k.as_str())) {
        event[k.as_str()] = v.clone();
    }
    let exposure = (call == Call::Track && name == "Experiment Viewed")
        .then(|| exposure(&m, user.or(anonymous)?, timestamp))
        .flatten();
    Ok((event, exposure))
}

/// The exposure of an `Experiment Viewed`, when its properties name the experiment and variant.
fn exposure(m: &Map<String, Value>, user: String, at: Value) -> Option<Value> {
    let p = m.get("properties")?.as_object()?;
    let pick = |a: &str, b: &str| text(p, a).or_else(|| text(p, b));
    let experiment = pick("experiment_id", "experiment_name")?;
    let variant = pick("variation_id", "variation_name")?;
    Some(json!({
        "experiment": experiment, "user_id": user, "variant": variant,
        "exposed_at": at, "updated_at": at,
        "properties": { "source": "Experiment Viewed", "message_id": text(m, "messageId") },
    }))
}

fn refused(id: Option<String>, field: &'static str, message: &str, raw: &Value) -> Refused {
    Refused {
        index: 0,
        id,
        field,
        message: message.to_owned(),
        raw: raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: i64 = 1_795_000_000_000;

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
        let events = t.events.unwrap();
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
        assert_eq!(
            one.events.unwrap()["batch"][0]["event_id"],
            two.events.unwrap()["batch"][0]["event_id"]
        );
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
        let e = &t.events.unwrap()["batch"][0];
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
        assert_eq!(t.events.unwrap()["batch"][0]["timestamp"], RECEIVED);
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
        let x = t.exposures.unwrap();
        assert_eq!(x["batch"][0]["experiment"], "checkout");
        assert_eq!(x["batch"][0]["variant"], "b");
        assert_eq!(x["batch"][1]["user_id"], "a2");
        assert_eq!(x["batch"][1]["variant"], "Control");
        assert_eq!(x["batch"][0]["exposed_at"], "2026-11-30T10:00:00Z");
    }
}

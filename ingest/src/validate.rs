//! Validation: a request body becomes stamped records plus per-item rejections. Pure functions,
//! no I/O.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use cauce_store::model::{field_names, Json, Kind, Record, Stamp, Step, SERVER_FIELDS};
use cauce_store::time::{opt_millis, BAD_TIMESTAMP};
use cauce_store::Text;

/// Every limit the API enforces. Each is a setting; the defaults follow the design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The largest request body, bytes (413 above it).
    pub max_body_bytes: usize,
    /// The most items in one batch (413 above it).
    pub max_items: usize,
    /// The largest item, bytes (the item is rejected with `too_large`).
    pub max_item_bytes: usize,
    /// The deepest nesting inside `properties` and `context` (1 = a flat object).
    pub max_depth: usize,
    /// The most keys in any one object inside `properties` and `context`.
    pub max_keys: usize,
    /// The longest id or name, in bytes.
    pub max_id_bytes: usize,
    /// The most steps in one story.
    pub max_steps: usize,
    /// How far in the future a timestamp may be, ms.
    pub max_future_ms: i64,
    /// How far in the past a timestamp may be, ms.
    pub max_past_ms: i64,
    /// The largest clock skew corrected, ms: a batch whose `sent_at` is further than this from
    /// the server's clock has its items rejected with `clock_skew`.
    pub max_skew_ms: i64,
    /// The longest id and message echoed in a rejection (and archived with it), bytes; longer
    /// ones are cut at a character boundary and marked.
    pub max_echo_bytes: usize,
    /// The most warnings listed in one response; the rest are counted in `warnings_omitted`.
    pub max_warnings: usize,
    /// The largest body of the analytics SDKs' routes (`/v1/batch` …), bytes: the Segment
    /// spec's 500 KB.
    pub max_sdk_body_bytes: usize,
}

/// The range of raw client times, epoch ms, that can be milliseconds at all: from 1973-03-03
/// (below it, a number is epoch seconds) to 2262-04-11 (past it, nanoseconds overflow in most
/// readers; and a number that large is micro- or nanoseconds).
pub const PLAUSIBLE_MS: std::ops::Range<i64> = 100_000_000_000..9_200_000_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_items: 500,
            max_item_bytes: 32 * 1024,
            max_depth: 5,
            max_keys: 100,
            max_id_bytes: 256,
            max_steps: 200,
            max_future_ms: 24 * 3600 * 1000,
            max_past_ms: 30 * 24 * 3600 * 1000,
            max_skew_ms: 7 * 24 * 3600 * 1000,
            max_echo_bytes: 256,
            max_warnings: 100,
            max_sdk_body_bytes: 500 * 1024,
        }
    }
}

/// The stable error code of a rejected item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong JSON type (or the item is not an object).
    BadType,
    /// A value has the right type but is not allowed (an unknown outcome, a control character).
    BadValue,
    /// A string that must not be empty is empty.
    EmptyField,
    /// An id or name is longer than the limit.
    TooLong,
    /// A timestamp is neither RFC 3339 nor whole epoch milliseconds.
    BadTimestamp,
    /// A timestamp is too far in the future or the past.
    TimestampOutOfRange,
    /// The batch's `sent_at` is further from the server's clock than the skew it corrects.
    ClockSkew,
    /// The item is larger than the item limit.
    TooLarge,
    /// `properties` or `context` nest deeper than the limit.
    TooDeep,
    /// An object inside `properties` or `context` has more keys than the limit.
    TooManyKeys,
    /// A story has more steps than the limit.
    TooManySteps,
}

impl Code {
    /// The code as it appears in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingField => "missing_field",
            Code::BadType => "bad_type",
            Code::BadValue => "bad_value",
            Code::EmptyField => "empty_field",
            Code::TooLong => "too_long",
            Code::BadTimestamp => "bad_timestamp",
            Code::TimestampOutOfRange => "timestamp_out_of_range",
            Code::ClockSkew => "clock_skew",
            Code::TooLarge => "too_large",
            Code::TooDeep => "too_deep",
            Code::TooManyKeys => "too_many_keys",
            Code::TooManySteps => "too_many_steps",
        }
    }
}

/// Why one item was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rejection {
    /// The item's index in the batch.
    pub index: usize,
    /// The item's id, when one could be read.
    pub id: Option<String>,
    /// The stable error code.
    pub error: Code,
    /// The field at fault (`item` for the item as a whole), as a path such as `steps[2].at`.
    pub field: String,
    /// A human-readable message naming the field.
    pub message: String,
}

/// Why an accepted item drew a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// A top-level field the model does not know (a typo such as `userId`): kept in the lake's
    /// `extra` column, not dropped.
    UnknownField,
    /// A field the server sets (`app_id`, `ts`, `received_at`, `ingest_seq`): the value sent
    /// was ignored.
    ServerField,
}

/// A note on an accepted item: it was accepted, but not quite as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    /// The item's index in the batch.
    pub index: usize,
    /// The field the warning is about.
    pub field: String,
    /// The stable warning code.
    pub warning: WarningCode,
    /// A human-readable message naming the field.
    pub message: String,
}

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not JSON of the form `{"sent_at"?, "batch": [...]}` (400).
    Malformed(String),
    /// `sent_at` is not a timestamp (400).
    BadSentAt(String),
    /// The batch is empty (400).
    EmptyBatch,
    /// The batch has more items than the limit (413).
    TooManyItems {
        /// Items sent.
        items: usize,
        /// The limit.
        max: usize,
    },
}

/// A validated body.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The accepted records, stamped, in batch order.
    pub accepted: Vec<Record>,
    /// The rejected items, in batch order, with the item as sent.
    pub rejected: Vec<(Rejection, &'a str)>,
    /// Warnings on accepted items, in batch order, at most `max_warnings` of them.
    pub warnings: Vec<Warning>,
    /// How many more warnings there were than `warnings` lists.
    pub warnings_omitted: usize,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, deserialize_with = "opt_millis")]
    sent_at: Option<i64>,
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
}

/// Why one item is refused: its code, the field at fault and a message naming it.
pub(crate) struct Fault {
    pub(crate) code: Code,
    pub(crate) field: String,
    pub(crate) message: String,
}

pub(crate) fn fault(code: Code, field: impl Into<String>, message: impl Into<String>) -> Fault {
    Fault {
        code,
        field: field.into(),
        message: message.into(),
    }
}

/// Validates a request body of one kind, received at `received_at` (epoch ms) for `app_id`.
pub fn parse_batch<'a>(
    kind: Kind,
    body: &'a [u8],
    app_id: &str,
    received_at: i64,
    limits: &Limits,
) -> Result<Parsed<'a>, BodyError> {
    // serde_json's words can quote the body (a string of any length): echoed bounded.
    let body: Body<'a> = serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with(BAD_TIMESTAMP) {
            BodyError::BadSentAt(format!("`sent_at`: {}", echo(strip_position(&msg), limits)))
        } else {
            BodyError::Malformed(echo(strip_position(&msg), limits))
        }
    })?;
    if body.batch.is_empty() {
        return Err(BodyError::EmptyBatch);
    }
    if body.batch.len() > limits.max_items {
        return Err(BodyError::TooManyItems {
            items: body.batch.len(),
            max: limits.max_items,
        });
    }
    let stamping = Stamping::new(body.sent_at, app_id, received_at, limits)?;
    let mut parsed = Parsed::with_capacity(body.batch.len());
    for (index, raw) in body.batch.into_iter().enumerate() {
        let outcome = stamping
            .skewed()
            .and_then(|()| parse_item(kind, raw.get(), &stamping.stamp, limits));
        parsed.push(
            index,
            outcome,
            || probe_id(kind, raw.get()),
            raw.get(),
            limits,
        );
    }
    Ok(parsed)
}

/// How a batch's items are stamped: the app, the time received and the client clock's skew
/// (from the batch's `sent_at`), or the fault of every item when that clock is too far off.
pub(crate) struct Stamping {
    pub(crate) stamp: Stamp,
    skewed: Option<Fault>,
}

impl Stamping {
    /// The stamping of a batch sent at `sent_at` (epoch ms, by the client's clock), refused
    /// whole when `sent_at` is not a plausible time.
    pub(crate) fn new(
        sent_at: Option<i64>,
        app_id: &str,
        received_at: i64,
        limits: &Limits,
    ) -> Result<Stamping, BodyError> {
        if let Some(sent) = sent_at.filter(|s| !PLAUSIBLE_MS.contains(s)) {
            return Err(BodyError::BadSentAt(format!(
                "`sent_at`: {}",
                implausible(sent)
            )));
        }
        let skew_ms = sent_at.map_or(0, |sent| received_at.saturating_sub(sent));
        let skewed = (skew_ms.abs() > limits.max_skew_ms).then(|| {
            fault(
                Code::ClockSkew,
                "sent_at",
                format!(
                    "`sent_at` is {} h from the server's clock; the client's clock must be within {} days: fix it, then resend",
                    skew_ms.abs() / 3_600_000,
                    limits.max_skew_ms / 86_400_000
                ),
            )
        });
        Ok(Stamping {
            stamp: Stamp {
                app_id: app_id.to_owned(),
                received_at,
                skew_ms,
            },
            skewed,
        })
    }

    /// Every item's fault when the client's clock is too far off.
    pub(crate) fn skewed(&self) -> Result<(), Fault> {
        match &self.skewed {
            Some(f) => Err(fault(f.code, &f.field, &f.message)),
            None => Ok(()),
        }
    }
}

impl<'a> Parsed<'a> {
    pub(crate) fn with_capacity(items: usize) -> Self {
        Parsed {
            accepted: Vec::with_capacity(items),
            rejected: Vec::new(),
            warnings: Vec::new(),
            warnings_omitted: 0,
        }
    }

    /// Takes the outcome of item `index`: its record and warnings, or its rejection (with its
    /// id, if one can be read, and the item as sent).
    pub(crate) fn push(
        &mut self,
        index: usize,
        outcome: Result<(Record, Vec<Note>), Fault>,
        id: impl FnOnce() -> Option<String>,
        raw: &'a str,
        limits: &Limits,
    ) {
        match outcome {
            Ok((record, notes)) => {
                self.accepted.push(record);
                for (field, warning, message) in notes {
                    if self.warnings.len() < limits.max_warnings {
                        self.warnings.push(Warning {
                            index,
                            field: echo(&field, limits),
                            warning,
                            message: echo(&message, limits),
                        });
                    } else {
                        self.warnings_omitted += 1;
                    }
                }
            }
            Err(f) => self.rejected.push((
                Rejection {
                    index,
                    id: id().map(|id| echo(&id, limits)),
                    error: f.code,
                    field: f.field,
                    message: echo(&f.message, limits),
                },
                raw,
            )),
        }
    }
}

/// A warning before it is placed: the field, the code and the message.
pub(crate) type Note = (String, WarningCode, String);

fn parse_item(
    kind: Kind,
    raw: &str,
    stamp: &Stamp,
    limits: &Limits,
) -> Result<(Record, Vec<Note>), Fault> {
    check_size(raw.len(), limits)?;
    if !raw.trim_start().starts_with('{') {
        return Err(fault(
            Code::BadType,
            "item",
            "an item must be a JSON object",
        ));
    }
    let record = match Record::from_json(kind, raw) {
        Ok(r) => r,
        Err(_) => return Err(explain_decode_error(kind, raw)),
    };
    check_record(&record, stamp, limits)?;
    let (extra, notes) = unknown_fields(kind, raw)?;
    admit(record, extra, notes, stamp, limits)
}

/// An item of `bytes` is within the limit.
pub(crate) fn check_size(bytes: usize, limits: &Limits) -> Result<(), Fault> {
    if bytes > limits.max_item_bytes {
        return Err(fault(
            Code::TooLarge,
            "item",
            format!(
                "item is {bytes} bytes; the limit is {}",
                limits.max_item_bytes
            ),
        ));
    }
    Ok(())
}

/// The note on a field that is not one of `kind`'s, kept in `extra`.
pub(crate) fn unknown_field(kind: Kind, key: &str) -> Note {
    (
        key.to_owned(),
        WarningCode::UnknownField,
        format!(
            "`{key}` is not a field of {}; it was kept in `extra`",
            kind.plural()
        ),
    )
}

/// The last steps of an item's validation, once its record is read and checked: its unknown
/// fields (`extra`) checked, then the record stamped.
pub(crate) fn admit(
    mut record: Record,
    extra: Option<Json>,
    notes: Vec<Note>,
    stamp: &Stamp,
    limits: &Limits,
) -> Result<(Record, Vec<Note>), Fault> {
    check_json("extra", extra.as_ref(), limits)?;
    record.stamp(stamp);
    record.set_extra(extra);
    Ok((record, notes))
}

/// Whether a top-level field is one a client may set: known to the model, not server-set.
/// A client's own `extra` is not: the server sets `extra`.
fn is_client_field(known: &[&str], key: &str) -> bool {
    known.contains(&key) && !SERVER_FIELDS.contains(&key)
}

/// Reads an item's top-level fields that are not client fields (unknown ones, and server-set
/// ones), each key with its value as sent, skipping the rest without building a tree. An item
/// with only client fields allocates nothing.
struct NotClientFields(&'static [&'static str]);

impl<'de> serde::de::DeserializeSeed<'de> for NotClientFields {
    type Value = Vec<(Text<'de>, &'de RawValue)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NotClientFields {
    type Value = Vec<(Text<'de>, &'de RawValue)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if is_client_field(self.0, &key) {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else {
                out.push((key, map.next_value()?));
            }
        }
        Ok(out)
    }
}

/// The item's unknown top-level fields as one JSON object (for `extra`), and a note for each of
/// them and for each server-set field the item tried to set. A client's own `extra` field is
/// unknown like any other: it is kept inside `extra`.
fn unknown_fields(kind: Kind, raw: &str) -> Result<(Option<Json>, Vec<Note>), Fault> {
    use serde::de::DeserializeSeed;
    let known = field_names(kind);
    let mut de = serde_json::Deserializer::from_str(raw);
    let fields = NotClientFields(known).deserialize(&mut de).map_err(|e| {
        let msg = e.to_string();
        fault(
            Code::BadValue,
            "item",
            format!("a field name could not be read: {}", strip_position(&msg)),
        )
    })?;
    let mut notes = Vec::new();
    let mut extra = String::new();
    let mut kept: Vec<&str> = Vec::new();
    for (key, value) in &fields {
        let key: &str = key;
        if key != "extra" && known.contains(&key) {
            notes.push((
                key.to_owned(),
                WarningCode::ServerField,
                format!("`{key}` is set by the server; the value sent was ignored"),
            ));
            continue;
        }
        if kept.contains(&key) {
            continue;
        }
        kept.push(key);
        let name = serde_json::to_string(key).expect("a string always serializes");
        extra.push(if extra.is_empty() { '{' } else { ',' });
        extra.push_str(&name);
        extra.push(':');
        extra.push_str(value.get());
        notes.push(unknown_field(kind, key));
    }
    if extra.is_empty() {
        return Ok((None, notes));
    }
    extra.push('}');
    let extra = RawValue::from_string(extra).expect("the object is built from valid JSON parts");
    Ok((Some(extra), notes))
}

/// Re-decodes a failing item with path tracking to name the field and classify the error.
fn explain_decode_error(kind: Kind, raw: &str) -> Fault {
    fn path_err<T: serde::de::DeserializeOwned>(
        raw: &str,
    ) -> Option<serde_path_to_error::Error<serde_json::Error>> {
        let de = &mut serde_json::Deserializer::from_str(raw);
        serde_path_to_error::deserialize::<_, T>(de).err()
    }
    let err = match kind {
        Kind::Event => path_err::<cauce_store::Event>(raw),
        Kind::Story => path_err::<cauce_store::Story>(raw),
        Kind::Exposure => path_err::<cauce_store::Exposure>(raw),
    };
    let Some(err) = err else {
        return fault(Code::BadValue, "item", "item could not be decoded");
    };
    let path = err.path().to_string();
    let inner = err.inner().to_string();
    let msg = strip_position(&inner);
    let at = |leaf: &str| match (path.as_str(), leaf) {
        (".", "") => "item".to_owned(),
        (".", l) => l.to_owned(),
        (p, "") => p.to_owned(),
        (p, l) => format!("{p}.{l}"),
    };
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = at(name);
        return fault(Code::MissingField, &field, format!("`{field}` is required"));
    }
    classify(&at(""), msg)
}

/// The fault of `field`, from serde's words for why its value could not be read.
fn classify(field: &str, msg: &str) -> Fault {
    if let Some(rest) = msg.strip_prefix(BAD_TIMESTAMP) {
        let detail = rest.trim_start_matches(':').trim();
        return fault(Code::BadTimestamp, field, format!("`{field}`: {detail}"));
    }
    if msg.starts_with("invalid type") {
        if field == "item" {
            return fault(Code::BadType, field, "an item must be a JSON object");
        }
        // `null` for a required field reads as a missing field.
        let code = if msg.starts_with("invalid type: null") {
            Code::MissingField
        } else {
            Code::BadType
        };
        return fault(code, field, format!("`{field}`: {msg}"));
    }
    fault(Code::BadValue, field, format!("`{field}`: {msg}"))
}

/// A time as sent (epoch ms, or RFC 3339 text), read as a record's time fields are.
pub(crate) fn read_time(field: &str, raw: &str) -> Result<i64, Fault> {
    let mut de = serde_json::Deserializer::from_str(raw);
    cauce_store::time::millis(&mut de).map_err(|e| classify(field, strip_position(&e.to_string())))
}

fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

fn check_id(field: &str, value: &str, limits: &Limits) -> Result<(), Fault> {
    if value.is_empty() {
        return Err(fault(
            Code::EmptyField,
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    if value.len() > limits.max_id_bytes {
        return Err(fault(
            Code::TooLong,
            field,
            format!(
                "`{field}` is {} bytes; the limit is {}",
                value.len(),
                limits.max_id_bytes
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(fault(
            Code::BadValue,
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(())
}

fn check_opt_id(field: &str, value: Option<&str>, limits: &Limits) -> Result<(), Fault> {
    value.map_or(Ok(()), |v| check_id(field, v, limits))
}

/// The calls of the analytics SDKs' tracking protocol, an event's `type`.
pub const CALLS: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

fn check_call(call: Option<&str>) -> Result<(), Fault> {
    match call {
        Some(c) if !CALLS.contains(&c) => Err(fault(
            Code::BadValue,
            "type",
            format!("`type` must be one of {}", CALLS.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Why a number is not epoch milliseconds.
fn implausible(ms: i64) -> String {
    if ms < PLAUSIBLE_MS.start {
        format!("{ms} is not epoch milliseconds (epoch seconds? multiply by 1000)")
    } else {
        format!("{ms} is not epoch milliseconds (micro- or nanoseconds?)")
    }
}

/// A string as a rejection echoes it: at most `max_echo_bytes`, cut at a character boundary
/// and marked, so that a huge id never makes a huge response or bad-rows record.
pub fn echo(s: &str, limits: &Limits) -> String {
    let max = limits.max_echo_bytes;
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

fn check_time(field: &str, client_ms: i64, stamp: &Stamp, limits: &Limits) -> Result<(), Fault> {
    if !PLAUSIBLE_MS.contains(&client_ms) {
        return Err(fault(
            Code::BadTimestamp,
            field,
            format!("`{field}`: {}", implausible(client_ms)),
        ));
    }
    let corrected = client_ms.saturating_add(stamp.skew_ms);
    let ahead = corrected - stamp.received_at;
    if ahead > limits.max_future_ms || -ahead > limits.max_past_ms {
        let when = cauce_store::time::format_rfc3339(client_ms);
        return Err(fault(
            Code::TimestampOutOfRange,
            field,
            format!(
                "`{field}` ({when}) is more than {} h in the future or {} days in the past",
                limits.max_future_ms / 3_600_000,
                limits.max_past_ms / 86_400_000
            ),
        ));
    }
    Ok(())
}

fn check_json(field: &str, value: Option<&Json>, limits: &Limits) -> Result<(), Fault> {
    let Some(value) = value else { return Ok(()) };
    match scan_object(value.get(), limits.max_depth, limits.max_keys) {
        Ok(()) => Ok(()),
        Err(ScanError::NotObject) => Err(fault(
            Code::BadType,
            field,
            format!("`{field}` must be a JSON object"),
        )),
        Err(ScanError::TooDeep) => Err(fault(
            Code::TooDeep,
            field,
            format!("`{field}` nests deeper than {} levels", limits.max_depth),
        )),
        Err(ScanError::LoneSurrogate) => Err(fault(
            Code::BadValue,
            field,
            format!("`{field}` holds a lone surrogate escape (such as \\ud800): not Unicode text"),
        )),
        Err(ScanError::TooManyKeys) => Err(fault(
            Code::TooManyKeys,
            field,
            format!(
                "an object in `{field}` has more than {} keys",
                limits.max_keys
            ),
        )),
    }
}

fn check_steps(steps: &[Step], stamp: &Stamp, limits: &Limits) -> Result<(), Fault> {
    if steps.len() > limits.max_steps {
        return Err(fault(
            Code::TooManySteps,
            "steps",
            format!(
                "`steps` has {} steps; the limit is {}",
                steps.len(),
                limits.max_steps
            ),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        check_id(&format!("steps[{i}].name"), &step.name, limits)?;
        check_time(&format!("steps[{i}].at"), step.at, stamp, limits)?;
        check_json(
            &format!("steps[{i}].properties"),
            step.properties.as_ref(),
            limits,
        )?;
    }
    Ok(())
}

pub(crate) fn check_record(record: &Record, stamp: &Stamp, limits: &Limits) -> Result<(), Fault> {
    match record {
        Record::Event(e) => {
            check_id("event_id", &e.event_id, limits)?;
            check_id("name", &e.name, limits)?;
            check_opt_id("user_id", e.user_id.as_deref(), limits)?;
            check_opt_id("session_id", e.session_id.as_deref(), limits)?;
            check_opt_id("anonymous_id", e.anonymous_id.as_deref(), limits)?;
            check_call(e.call.as_deref())?;
            check_time("timestamp", e.timestamp, stamp, limits)?;
            check_json("properties", e.properties.as_ref(), limits)?;
            check_json("context", e.context.as_ref(), limits)
        }
        Record::Story(s) => {
            check_id("story_id", &s.story_id, limits)?;
            check_id("name", &s.name, limits)?;
            check_opt_id("user_id", s.user_id.as_deref(), limits)?;
            check_opt_id("session_id", s.session_id.as_deref(), limits)?;
            check_time("started_at", s.started_at, stamp, limits)?;
            check_time("updated_at", s.updated_at, stamp, limits)?;
            if let Some(ended) = s.ended_at {
                check_time("ended_at", ended, stamp, limits)?;
            }
            check_steps(&s.steps, stamp, limits)?;
            check_json("properties", s.properties.as_ref(), limits)
        }
        Record::Exposure(t) => {
            check_id("experiment", &t.experiment, limits)?;
            check_id("user_id", &t.user_id, limits)?;
            check_id("variant", &t.variant, limits)?;
            check_time("exposed_at", t.exposed_at, stamp, limits)?;
            check_time("updated_at", t.updated_at, stamp, limits)?;
            check_json("properties", t.properties.as_ref(), limits)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ScanError {
    NotObject,
    TooDeep,
    TooManyKeys,
    LoneSurrogate,
}

/// The `\uXXXX` code unit at `at` (which points at the `u`), when the JSON is valid.
fn code_unit(bytes: &[u8], at: usize) -> Option<u16> {
    let hex = std::str::from_utf8(bytes.get(at + 1..at + 5)?).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

/// Checks the `\u` escape at `at` (pointing at the `u`) and returns how many bytes it takes: a
/// surrogate must come as a high one followed at once by a low one, or the text is not Unicode.
fn unicode_escape(bytes: &[u8], at: usize) -> Result<usize, ScanError> {
    let unit = code_unit(bytes, at).ok_or(ScanError::NotObject)?;
    match unit {
        0xD800..=0xDBFF => {
            let low = (bytes.get(at + 5) == Some(&b'\\'))
                .then(|| code_unit(bytes, at + 6))
                .flatten();
            match low {
                Some(0xDC00..=0xDFFF) => Ok(11),
                _ => Err(ScanError::LoneSurrogate),
            }
        }
        0xDC00..=0xDFFF => Err(ScanError::LoneSurrogate),
        _ => Ok(5),
    }
}

/// Checks that raw JSON (already known to be valid) is an object, nests at most `max_depth`
/// levels and has at most `max_keys` keys in any object, without building a tree.
fn scan_object(raw: &str, max_depth: usize, max_keys: usize) -> Result<(), ScanError> {
    let bytes = raw.trim_start().as_bytes();
    if bytes.first() != Some(&b'{') {
        return Err(ScanError::NotObject);
    }
    // One entry per open container: Some(key count) for objects, None for arrays.
    let mut stack: Vec<Option<usize>> = Vec::with_capacity(max_depth + 1);
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if in_string {
            match b {
                b'\\' if bytes.get(i) == Some(&b'u') => i += unicode_escape(bytes, i)?,
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                stack.push((b == b'{').then_some(0));
                if stack.len() > max_depth {
                    return Err(ScanError::TooDeep);
                }
            }
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Some(keys)) = stack.last_mut() {
                    *keys += 1;
                    if *keys > max_keys {
                        return Err(ScanError::TooManyKeys);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads the id of a rejected item, leniently, for the error report.
fn probe_id(kind: Kind, raw: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let get = |f: &str| v.get(f).and_then(|x| x.as_str()).map(str::to_owned);
    match kind {
        Kind::Event => get("event_id"),
        Kind::Story => get("story_id"),
        Kind::Exposure => match (get("experiment"), get("user_id")) {
            (Some(e), Some(u)) => Some(format!("{e}/{u}")),
            (e, u) => e.or(u),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_counts_depth_and_keys_outside_strings() {
        assert_eq!(scan_object(r#"{"a":{"b":[1,{"c":"x:{"}]}}"#, 4, 9), Ok(()));
        assert_eq!(
            scan_object(r#"{"a":{"b":[1,{"c":2}]}}"#, 3, 9),
            Err(ScanError::TooDeep)
        );
        assert_eq!(
            scan_object(r#"{"a":1,"b":2,"c":"\":"}"#, 3, 2),
            Err(ScanError::TooManyKeys)
        );
        assert_eq!(scan_object("[1]", 3, 2), Err(ScanError::NotObject));
    }

    #[test]
    fn surrogates_must_come_in_pairs() {
        let scan = |raw: &str| scan_object(raw, 5, 100);
        assert_eq!(scan(r#"{"a":"\ud83d\ude00 ok"}"#), Ok(()));
        assert_eq!(scan(r#"{"a":"\u00e9\n\\ud800 is text"}"#), Ok(()));
        for lone in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"x\udc00"}"#,
            r#"{"\ud800":1}"#,
            r#"{"a":["\ud800\u0041"]}"#,
            r#"{"a":"\ude00\ud83d"}"#,
        ] {
            assert_eq!(scan(lone), Err(ScanError::LoneSurrogate), "{lone}");
        }
    }
}

//! The fast path of the stream handler: one walk over a DynamoDB Streams event that picks out
//! what the exporter needs and unescapes each image's `doc` as it goes.
//!
//! serde_json walks a `doc` (JSON inside a JSON string, an escape every few bytes) once to find
//! and unescape it into its scratch space, then copies it out; here the walk and the unescaping
//! are one loop that copies eight plain bytes at a time. Everything the exporter does not read is
//! skipped, and checked as JSON while skipped. Anything unexpected (a duplicate field, a missing
//! one, a lone surrogate, nesting deeper than 128 levels) makes the scanner give up, and
//! the caller reads the event record by record with serde_json, which names the problem.

use std::borrow::Cow;

use super::{AttrS, ChangeLite, IdentityLite, ImageLite, RecordLite};

/// How deep the scanner follows nested values (serde_json's limit for what it deserializes).
const MAX_DEPTH: usize = 128;

const ONES: u64 = u64::MAX / 255;
const HIGH: u64 = ONES << 7;

/// The bytes of `w` that are `"`, `\` or a control character, as their high bits. Bytes above
/// the first flagged one may be flagged wrongly; the lowest flag is always right.
fn specials(w: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    (zero(w ^ (ONES * u64::from(b'"')))
        | zero(w ^ (ONES * u64::from(b'\\')))
        | w.wrapping_sub(ONES * 0x20) & !w)
        & HIGH
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

/// What the scanner returns: `None` means "not the shape I expect; ask serde_json".
type Scan<T> = Option<T>;

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&mut self) -> Scan<u8> {
        let b = self.bytes();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(self.at) {
            self.at += 1;
        }
        b.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Scan<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Scan<T>) -> Scan<T> {
        self.depth += 1;
        let out = (self.depth <= MAX_DEPTH).then(|| f(self)).flatten();
        self.depth -= 1;
        out
    }

    /// Reads `open`, items separated by commas, and `close`; `item` reads each item.
    fn sequence(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Scan<()>,
    ) -> Scan<()> {
        self.eat(open)?;
        self.nested(|s| {
            if s.peek()? == close {
                s.at += 1;
                return Some(());
            }
            loop {
                item(s)?;
                match s.peek()? {
                    b',' => s.at += 1,
                    c if c == close => {
                        s.at += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        })
    }

    /// Reads an object, calling `member` with each key; `member` reads the value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Scan<()>) -> Scan<()> {
        self.sequence(b'{', b'}', |s| {
            let key = s.string()?;
            s.eat(b':')?;
            member(s, key)
        })
    }

    /// Reads an array, calling `item` for each element.
    fn array(&mut self, item: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.sequence(b'[', b']', item)
    }

    /// `null`, or a value read by `read`.
    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Scan<T>) -> Scan<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        read(self).map(Some)
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        let end = self.at + word.len();
        (self.bytes().get(self.at..end)? == word).then(|| self.at = end)
    }

    /// The position of the next `"` or `\` from `self.at`; `None` at a control character or
    /// at the end of the input.
    fn plain_end(&self) -> Scan<usize> {
        let b = self.bytes();
        let mut i = self.at;
        while let Some(chunk) = b.get(i..i + 8) {
            let flags = specials(u64::from_le_bytes(chunk.try_into().ok()?));
            if flags != 0 {
                i += flags.trailing_zeros() as usize / 8;
                break;
            }
            i += 8;
        }
        while b
            .get(i)
            .is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20)
        {
            i += 1;
        }
        (b.get(i).is_some_and(|&c| c >= 0x20)).then_some(i)
    }

    /// A string nobody reads: its escapes are checked for form only.
    fn skip_string(&mut self) -> Scan<()> {
        self.eat(b'"')?;
        loop {
            self.at = self.plain_end()?;
            let b = self.bytes();
            self.at += 1;
            if b[self.at - 1] == b'"' {
                return Some(());
            }
            match *b.get(self.at)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    self.at += 1;
                    self.hex4()?;
                }
                _ => return None,
            }
        }
    }

    /// A string: borrowed from the input when it has no escapes, unescaped otherwise.
    fn string(&mut self) -> Scan<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        self.at = self.plain_end()?;
        if self.bytes()[self.at] == b'"' {
            self.at += 1;
            return Some(Cow::Borrowed(&self.text[start..self.at - 1]));
        }
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(&self.bytes()[start..self.at]);
        self.unescape(&mut out)?;
        String::from_utf8(out).ok().map(Cow::Owned)
    }

    /// Copies the rest of a string from its first escape, unescaped, to `out`.
    fn unescape(&mut self, out: &mut Vec<u8>) -> Scan<()> {
        let b = self.bytes();
        loop {
            while let Some(chunk) = b.get(self.at..self.at + 8) {
                let chunk: [u8; 8] = chunk.try_into().ok()?;
                let flags = specials(u64::from_le_bytes(chunk));
                if flags == 0 {
                    out.extend_from_slice(&chunk);
                    self.at += 8;
                } else {
                    let plain = flags.trailing_zeros() as usize / 8;
                    out.extend_from_slice(&chunk[..plain]);
                    self.at += plain;
                    break;
                }
            }
            match *b.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    self.escape(out)?;
                }
                c if c < 0x20 => return None,
                c => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    /// One escape, after its backslash.
    fn escape(&mut self, out: &mut Vec<u8>) -> Scan<()> {
        let c = *self.bytes().get(self.at)?;
        self.at += 1;
        let byte = match c {
            b'"' | b'\\' | b'/' => c,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(self.unicode()?.encode_utf8(&mut utf8).as_bytes());
                return Some(());
            }
            _ => return None,
        };
        out.push(byte);
        Some(())
    }

    fn hex4(&mut self) -> Scan<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// The character of a `\uXXXX` escape (after the `u`), with its low surrogate if it needs one.
    fn unicode(&mut self) -> Scan<char> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return char::from_u32(high);
        }
        self.literal(b"\\u")?;
        let low = self.hex4()?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    /// A number, as the text it is written with.
    fn number(&mut self) -> Scan<&'a str> {
        self.peek()?;
        let b = self.bytes();
        let start = self.at;
        let digits = |s: &mut Self| {
            let from = s.at;
            while b.get(s.at).is_some_and(u8::is_ascii_digit) {
                s.at += 1;
            }
            (s.at > from).then_some(())
        };
        if b.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        if b.get(self.at) == Some(&b'0') {
            self.at += 1;
        } else {
            digits(self)?;
        }
        if b.get(self.at) == Some(&b'.') {
            self.at += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = b.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = b.get(self.at) {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(&self.text[start..self.at])
    }

    /// Skips any value, checking it as JSON.
    /// A value nobody reads, checked as serde_json checks what it ignores: as JSON, but with
    /// any `\uXXXX` escape in its strings (a lone surrogate too: only a string that is read
    /// must be valid Unicode).
    fn skip(&mut self) -> Scan<()> {
        match self.peek()? {
            b'{' => self.sequence(b'{', b'}', |s| {
                s.skip_string()?;
                s.eat(b':')?;
                s.skip()
            }),
            b'[' => self.array(Self::skip),
            b'"' => self.skip_string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// An object with one field of interest, read by `field`, and others skipped. Like serde,
    /// a field given twice is refused.
    fn one_field<T>(
        &mut self,
        name: &str,
        field: impl Fn(&mut Self) -> Scan<T>,
    ) -> Scan<Option<T>> {
        let mut value = None;
        self.object(|s, key| {
            if key != name {
                return s.skip();
            }
            if value.is_some() {
                return None;
            }
            value = Some(field(s)?);
            Some(())
        })?;
        Some(value)
    }

    fn attr_s(&mut self) -> Scan<AttrS<'a>> {
        let s = self.one_field("S", Self::string)??;
        Some(AttrS { s })
    }

    fn image(&mut self) -> Scan<ImageLite<'a>> {
        let (mut kind, mut doc) = (None, None);
        self.object(|s, key| match &*key {
            "kind" => set(&mut kind, s.optional(Self::attr_s)?),
            "doc" => set(&mut doc, s.optional(Self::attr_s)?),
            _ => s.skip(),
        })?;
        Some(ImageLite {
            kind: kind.flatten(),
            doc: doc.flatten(),
        })
    }

    fn change(&mut self) -> Scan<ChangeLite<'a>> {
        let (mut sequence, mut created, mut new_image, mut old_image) = (None, None, None, None);
        self.object(|s, key| match &*key {
            "SequenceNumber" => set(&mut sequence, s.string()?),
            "ApproximateCreationDateTime" => {
                // Read as serde_json reads it (the slow path), to the last bit: `str::parse`
                // rounds a mantissa of more than 19 digits differently.
                let at = s.optional(|s| serde_json::from_str::<f64>(s.number()?).ok())?;
                set(&mut created, at)
            }
            "NewImage" => set(&mut new_image, s.optional(Self::image)?),
            "OldImage" => set(&mut old_image, s.optional(Self::image)?),
            _ => s.skip(),
        })?;
        Some(ChangeLite {
            sequence: sequence?,
            created: created.flatten(),
            new_image: new_image.flatten(),
            old_image: old_image.flatten(),
        })
    }

    fn identity(&mut self) -> Scan<IdentityLite<'a>> {
        let (mut kind, mut principal) = (None, None);
        self.object(|s, key| match &*key {
            "type" => set(&mut kind, s.string()?),
            "principalId" => set(&mut principal, s.string()?),
            _ => s.skip(),
        })?;
        Some(IdentityLite {
            kind: kind?,
            principal: principal?,
        })
    }

    fn record(&mut self) -> Scan<RecordLite<'a>> {
        let (mut event_name, mut source, mut change, mut identity) = (None, None, None, None);
        self.object(|s, key| match &*key {
            "eventName" => set(&mut event_name, s.string()?),
            "eventSourceARN" => set(&mut source, s.optional(Self::string)?),
            "dynamodb" => set(&mut change, s.change()?),
            "userIdentity" => set(&mut identity, s.optional(Self::identity)?),
            _ => s.skip(),
        })?;
        Some(RecordLite {
            event_name: event_name?,
            source: source.flatten(),
            change: change?,
            identity: identity.flatten(),
        })
    }
}

/// Fills a field once; a second value is refused, as serde refuses a duplicate field.
fn set<T>(slot: &mut Option<T>, value: T) -> Scan<()> {
    slot.is_none().then(|| *slot = Some(value))
}

/// Reads the event's `Records`, handing each to `take` as soon as it is read. `None` when the
/// event is not what the scanner expects, or when `take` refuses a record.
pub(super) fn each_record<'a>(
    payload: &'a str,
    mut take: impl FnMut(RecordLite<'a>) -> Scan<()>,
) -> Scan<()> {
    let mut s = Scanner {
        text: payload,
        at: 0,
        depth: 0,
    };
    let mut records = None;
    s.object(|s, key| match &*key {
        "Records" => set(&mut records, s.array(|s| take(s.record()?))?),
        _ => s.skip(),
    })?;
    (s.peek().is_none() && records.is_some()).then_some(())
}

/// All records of an event, as serde_json reads them: the oracle of the scanner.
#[derive(serde::Deserialize)]
struct All<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<RecordLite<'a>>,
}

/// The records the scanner reads, or `None` where it gives up.
fn scanned(payload: &str) -> Option<Vec<RecordLite<'_>>> {
    let mut out = Vec::new();
    each_record(payload, |r| {
        out.push(r);
        Some(())
    })?;
    Some(out)
}

/// The records serde_json reads, or `None` where it refuses.
fn by_serde(payload: &str) -> Option<Vec<RecordLite<'_>>> {
    serde_json::from_str::<All<'_>>(payload)
        .ok()
        .map(|a| a.records)
}

/// How deeply `payload` nests arrays and objects (outside strings).
fn depth(payload: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
    for b in payload.bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth += 1;
                max = max.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Whether every struct of an event is written as an object, as DynamoDB writes it. serde's
/// derived structs also read a struct written as an array of its fields in order; the scanner
/// does not, and leaves such an event to serde_json.
fn objects_only(payload: &str) -> bool {
    use serde_json::Value;
    let object_or_null = |v: Option<&Value>| v.is_none_or(|v| v.is_object() || v.is_null());
    let image = |v: Option<&Value>| {
        object_or_null(v)
            && ["kind", "doc"]
                .iter()
                .all(|k| object_or_null(v.and_then(|i| i.get(k))))
    };
    let Ok(Value::Object(event)) = serde_json::from_str::<Value>(payload) else {
        return false;
    };
    let Some(Value::Array(records)) = event.get("Records") else {
        return false;
    };
    records.iter().all(|r| {
        let change = r.get("dynamodb");
        r.is_object()
            && change.is_some_and(Value::is_object)
            && object_or_null(r.get("userIdentity"))
            && image(change.and_then(|c| c.get("NewImage")))
            && image(change.and_then(|c| c.get("OldImage")))
    })
}

/// Where the scanner and serde_json disagree on `payload`, said in words; `None` when they read
/// the same records or both refuse. The scanner may leave to serde_json only an event nested
/// deeper than it follows, or one with a struct written as an array (which serde reads). For
/// the fuzz target and its twin test.
pub(crate) fn disagreement(payload: &str) -> Option<String> {
    match (scanned(payload), by_serde(payload)) {
        (Some(a), Some(b)) if a == b => None,
        (None, None) => None,
        (None, Some(_)) if depth(payload) > MAX_DEPTH || !objects_only(payload) => None,
        (Some(a), Some(b)) => Some(format!("scanner read {a:?}, serde_json {b:?}")),
        (Some(a), None) => Some(format!("scanner read {a:?} where serde_json refuses")),
        (None, Some(b)) => Some(format!("scanner gave up where serde_json read {b:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/data/dynamodb-stream.json");

    #[test]
    fn the_fixture_scans_to_what_serde_reads() {
        let records = scanned(FIXTURE).expect("the scanner reads a real event");
        assert_eq!(records.len(), 5);
        assert_eq!(Some(records), by_serde(FIXTURE));
    }

    /// One record, written unusually: spacing, an escaped key, nulls, exponents, nested values
    /// in skipped fields, and a `doc` with every kind of escape.
    const ODD: &str = r#" { "x" : [ 1 , -2.5e+3 , { "y" : [ ] } , true , false , null ] ,
      "Records" : [ { "event\u004eame" : "MODIFY" , "eventSourceARN" : null , "userIdentity" : null ,
        "dynamodb" : { "SequenceNumber" : "42" , "ApproximateCreationDateTime" : 1.7958e9 ,
          "OldImage" : null , "Keys" : { "pk" : { "S" : "a\/b" } } ,
          "NewImage" : { "kind" : { "S" : "event" } , "n" : { "N" : "0" } ,
            "doc" : { "B" : "x" , "S" : "{\"name\":\"caf\u00e9 \ud83d\ude00 \\ \/ \b\f\n\r\t\",\"q\":\"\\\"\"}" } } } } ] } "#;

    #[test]
    fn unusual_but_valid_json_scans_to_what_serde_reads() {
        let records = scanned(ODD).expect("valid JSON is read");
        assert_eq!(Some(&records), by_serde(ODD).as_ref());
        let doc = &records[0]
            .change
            .new_image
            .as_ref()
            .unwrap()
            .doc
            .as_ref()
            .unwrap()
            .s;
        assert!(doc.contains("caf\u{e9} \u{1f600} \\ / "), "{doc}");
        assert_eq!(records[0].change.created, Some(1.7958e9));
    }

    #[test]
    fn the_scanner_gives_up_wherever_serde_refuses() {
        let bad = [
            // a duplicate field
            r#"{"Records":[{"eventName":"INSERT","eventName":"REMOVE","dynamodb":{"SequenceNumber":"1"}}]}"#,
            // a lone surrogate
            r#"{"Records":[{"eventName":"\ud800","dynamodb":{"SequenceNumber":"1"}}]}"#,
            // an unknown escape
            r#"{"Records":[{"eventName":"\x","dynamodb":{"SequenceNumber":"1"}}]}"#,
            // a raw control character in a string
            "{\"Records\":[{\"eventName\":\"a\u{1}b\",\"dynamodb\":{\"SequenceNumber\":\"1\"}}]}",
            // a missing required field
            r#"{"Records":[{"eventName":"INSERT"}]}"#,
            // a number where a string belongs, and a bad number
            r#"{"Records":[{"eventName":1,"dynamodb":{"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventName":"I","dynamodb":{"SequenceNumber":"1","x":01}}]}"#,
            // trailing bytes, a trailing comma, a truncated event, no records at all
            r#"{"Records":[]} x"#,
            r#"{"Records":[],}"#,
            r#"{"Records":[{"eventName":"INSERT","dynamodb":{"Sequence"#,
            r#"{"records":[]}"#,
        ];
        for payload in bad {
            assert!(scanned(payload).is_none(), "scanned: {payload}");
            assert!(by_serde(payload).is_none(), "serde read: {payload}");
        }
        let deep = format!(
            r#"{{"x":{}1{},"Records":[]}}"#,
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        // Deeper than the scanner follows: it gives up, and serde_json (the fallback) reads it.
        assert!(scanned(&deep).is_none(), "scanned too deep");
        assert_eq!(by_serde(&deep).map(|r| r.len()), Some(0));
        assert_eq!(scanned(r#"{"Records":[]}"#).map(|r| r.len()), Some(0));
    }
}

//! The properties that the fuzz targets check (`tests/fuzz`, run by `cargo fuzz`), shared with
//! their twin under `cargo test` (`tests/fuzz_twins.rs`). Each takes any bytes and panics when
//! a property fails. Each fuzz target uses one of them.
#![allow(dead_code)]

use serde::Deserialize;
use serde_json::value::RawValue;

use cauce_ingest::validate::{parse_batch, BodyError, Limits};
use cauce_store::{Kind, Record};

/// The server clock of every fuzzed request.
pub const NOW: i64 = 1_790_000_000_000;

/// The longest rejection or warning message: ids and values in it are echoed truncated.
const MAX_MESSAGE: usize = 2_048;

/// The items of a body, as serde_json reads them: the oracle for how many there are.
#[derive(Deserialize)]
struct Items<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
}

/// The request parser and validator. The first byte picks the kind, the rest is the body.
/// Whatever the bytes: no panic; a body serde_json cannot read is refused whole; otherwise every
/// item is either accepted or rejected (never lost, never both), accepted records carry the
/// server's fields and survive a round trip through their stored JSON, and what is echoed back
/// is bounded.
pub fn request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kind = Kind::ALL[usize::from(pick) % Kind::ALL.len()];
    let limits = Limits::default();
    let items = serde_json::from_slice::<Items<'_>>(body).map(|i| i.batch.len());
    let parsed = match parse_batch(kind, body, "app", NOW, &limits) {
        Ok(parsed) => parsed,
        Err(BodyError::Malformed(message)) => {
            assert!(
                !message.is_empty() && message.len() <= MAX_MESSAGE,
                "a {}-byte message: {:?}",
                message.len(),
                message.chars().take(300).collect::<String>()
            );
            return;
        }
        // Met while reading, before any later syntax error: the first problem is the one named.
        Err(BodyError::BadSentAt(message)) => {
            assert!(message.starts_with("`sent_at`") && message.len() <= MAX_MESSAGE);
            return;
        }
        Err(_) => {
            assert!(items.is_ok(), "a body refused for its content was JSON");
            return;
        }
    };
    let n = items.expect("a body the validator reads, serde_json reads");
    assert_eq!(
        parsed.accepted.len() + parsed.rejected.len(),
        n,
        "each item once"
    );
    for r in &parsed.accepted {
        assert_eq!((r.app_id(), r.received_at(), r.kind()), ("app", NOW, kind));
        let json = r.to_json();
        let back = Record::from_json(kind, &json).expect("a stored record reads back");
        assert_eq!(back.to_json(), json, "a stored record round-trips");
    }
    let mut last = None;
    for (rejection, _) in &parsed.rejected {
        assert!(rejection.index < n);
        assert!(
            last < Some(rejection.index),
            "rejections in batch order, once each"
        );
        last = Some(rejection.index);
        let id = rejection.id.as_deref().unwrap_or("");
        assert!(
            id.len() <= limits.max_echo_bytes + 40,
            "a long id is echoed truncated"
        );
        assert!(
            rejection.message.len() <= MAX_MESSAGE,
            "{}",
            rejection.message.len()
        );
    }
    assert!(parsed.warnings.len() <= limits.max_warnings);
    for w in &parsed.warnings {
        assert!(w.index < n && w.message.len() <= MAX_MESSAGE);
    }
}

/// The exporter's stream scanner against serde_json as its oracle: the same records, or both
/// refuse (the scanner may leave only a too-deep event to serde_json). Then the whole decode,
/// fast path or slow, must not panic.
pub fn stream_scan(data: &[u8]) {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(difference) = cauce_exporter::stream::scan_disagreement(payload) {
        panic!("{difference}");
    }
    let _ = cauce_exporter::stream::decode(payload);
}

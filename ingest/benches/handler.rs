//! CPU per event of the API handler's pure work: parse + validate + pack a batch of 100 events
//! (about 330 bytes each, with properties and context), and the same events as a batch of the
//! Segment protocol (read, translated into records and validated, then packed the same). Run
//! with `cargo bench --workspace`.

use std::hint::black_box;

use cauce_ingest::queue::{pack, Packing};
use cauce_ingest::segment::{read, Shape};
use cauce_ingest::validate::{parse_batch, Limits};
use cauce_store::Kind;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const NOW: i64 = 1_790_000_000_000;

fn body(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"event_id":"0d6f1c2e-4b7a-4f9e-9c1d-{i:012}","name":"screen_view","timestamp":{},"user_id":"user-{}","session_id":"sess-{}","properties":{{"screen":"checkout","step":{},"items":[1,2,3],"price":19.99}},"context":{{"app_version":"3.2.1","os":"ios","locale":"es-ES","device":"iPhone15,2"}}}}"#,
                NOW - 5_000 + i as i64,
                i % 37,
                i % 11,
                i % 7
            )
        })
        .collect();
    format!(r#"{{"sent_at":{NOW},"batch":[{}]}}"#, items.join(","))
}

/// The same events as the Segment protocol's `track` messages, as an SDK batches them.
fn sdk_body(n: usize) -> String {
    let at = cauce_store::time::format_rfc3339(NOW - 5_000);
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"track","messageId":"0d6f1c2e-4b7a-4f9e-9c1d-{i:012}","event":"screen_view","originalTimestamp":"{at}","userId":"user-{}","properties":{{"screen":"checkout","step":{},"items":[1,2,3],"price":19.99,"session_id":"sess-{}"}},"context":{{"app":{{"version":"3.2.1"}},"os":{{"name":"iOS"}},"locale":"es-ES","device":{{"model":"iPhone15,2"}}}}}}"#,
                i % 37,
                i % 7,
                i % 11
            )
        })
        .collect();
    format!(r#"{{"batch":[{}],"sentAt":"{at}"}}"#, items.join(","))
}

fn handler(c: &mut Criterion) {
    let limits = Limits::default();
    let packing = Packing::default();
    let body = body(100);
    let mut group = c.benchmark_group("api_handler");
    group.throughput(Throughput::Elements(100));
    group.bench_function("parse_validate_pack_100_events", |b| {
        b.iter(|| {
            let parsed = parse_batch(
                Kind::Event,
                black_box(body.as_bytes()),
                "app_1",
                NOW,
                &limits,
            )
            .unwrap();
            let messages = pack(Kind::Event, "app_1", &parsed.accepted, &[], &packing).unwrap();
            black_box(messages)
        })
    });
    group.bench_function("parse_validate_100_events", |b| {
        b.iter(|| {
            black_box(
                parse_batch(
                    Kind::Event,
                    black_box(body.as_bytes()),
                    "app_1",
                    NOW,
                    &limits,
                )
                .unwrap(),
            )
        })
    });
    let sdk = sdk_body(100);
    group.bench_function("read_translate_validate_pack_100_sdk_messages", |b| {
        b.iter(|| {
            let t = read(black_box(sdk.as_bytes()), Shape::Batch)
                .unwrap()
                .translate("app_1", NOW, &limits)
                .unwrap();
            assert_eq!(t.events.len(), 100);
            let messages = pack(Kind::Event, "app_1", &t.events, &[], &packing).unwrap();
            black_box(messages)
        })
    });
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(sdk.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    group.bench_function("inflate_100_sdk_messages", |b| {
        b.iter(|| {
            use std::io::Read;
            let mut out = Vec::with_capacity(sdk.len());
            flate2::read::GzDecoder::new(black_box(&gz[..]))
                .read_to_end(&mut out)
                .unwrap();
            black_box(out)
        })
    });
    group.bench_function("read_100_sdk_messages", |b| {
        b.iter(|| black_box(read(black_box(sdk.as_bytes()), Shape::Batch).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, handler);
criterion_main!(benches);

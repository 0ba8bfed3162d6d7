//! CPU per event of the API handler's pure work: parse + validate + pack a batch of 100 events
//! (about 330 bytes each, with properties and context). Run with `cargo bench --workspace`.

use std::hint::black_box;

use cauce_ingest::queue::{pack, Packing};
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
    group.finish();
}

criterion_group!(benches, handler);
criterion_main!(benches);

//! Round trip: generated changes → Parquet in a folder lake → read back by pyarrow and DuckDB
//! (from Python, written independently of this code). Identical rows, types as documented in
//! `store/SCHEMA.md`. (The Polars reader's own tests are in `analytics/tests/reader.rs`.)

use std::process::Command;

use cauce_exporter::schema::{schema, type_name};
use cauce_exporter::writer::LakeWriter;
use cauce_store::lake::local::LocalLake;
use cauce_store::{Change, Kind, Op, Record, Stamp};
use serde_json::{json, Value};

const T0: i64 = 1_795_773_600_000; // 2026-11-27T07:00:00Z

fn record(kind: Kind, app: &str, json: Value, n: i64) -> Record {
    let mut r = Record::from_json(kind, &json.to_string()).unwrap();
    r.stamp(&Stamp {
        app_id: app.into(),
        received_at: T0 + 60_000 + n,
        skew_ms: 250,
    });
    r.set_ingest_seq(format!("{:020}{n:05}", 77));
    r
}

/// Records of every kind, with nulls, unicode, nested properties and steps.
fn records() -> Vec<(Op, Record)> {
    let mut out = Vec::new();
    for i in 0..40i64 {
        let app = ["app_b", "app_a"][(i % 2) as usize];
        let mut e = json!({"event_id": format!("e{i}"), "name": "vista_pantalla", "timestamp": T0 + i * 1000});
        if i % 3 != 0 {
            e["user_id"] = json!(format!("usuario-{}", i % 5));
            e["session_id"] = json!(format!("s{}", i % 7));
            e["properties"] = json!({"pantalla": "inicio", "precio": 9.5, "etiquetas": ["ñ", "ü"], "n": {"d": i}});
            e["context"] = json!({"os": "android", "locale": "es-ES"});
        }
        if i % 4 == 1 {
            e["extra"] = json!({"userId": format!("u{i}"), "ñ": [1, {"a": null}]});
        }
        if i % 5 == 2 {
            e["anonymous_id"] = json!(format!("anónimo-{}", i % 3));
            e["type"] = json!(["track", "screen", "identify"][(i % 3) as usize]);
        }
        out.push((Op::Insert, record(Kind::Event, app, e, i)));
    }
    for i in 0..12i64 {
        let outcome = ["in_progress", "completed", "abandoned", "failed"][(i % 4) as usize];
        let mut s = json!({
            "story_id": format!("s{i}"), "name": "checkout", "started_at": T0 + i, "updated_at": T0 + 500 + i,
            "outcome": outcome,
            "steps": [{"name": "cart", "at": T0 + i}, {"name": "pay", "at": T0 + i + 5, "properties": {"method": "card"}}]
        });
        if i % 2 == 0 {
            s["ended_at"] = json!(T0 + i + 9);
            s["user_id"] = json!("u1");
        }
        let op = if i % 5 == 4 { Op::Remove } else { Op::Modify };
        out.push((op, record(Kind::Story, "app_a", s, 100 + i)));
    }
    for i in 0..10i64 {
        let variant = ["control", "b"][(i % 2) as usize];
        let mut t = json!({"experiment": "precio", "user_id": format!("u{i}"), "variant": variant,
            "exposed_at": T0 + i * 10, "updated_at": T0 + i * 10 + 1});
        if i % 3 == 1 {
            t["converted"] = json!(true);
            t["value"] = json!(19.99);
            t["extra"] = json!({"varient": "b"});
        }
        out.push((Op::Insert, record(Kind::Exposure, "app_b", t, 200 + i)));
    }
    out
}

fn changes() -> Vec<Change> {
    records()
        .into_iter()
        .enumerate()
        .map(|(i, (op, r))| {
            let (new_image, old_image) = if op == Op::Remove {
                (None, Some(r))
            } else {
                (Some(r), None)
            };
            Change {
                kind: new_image.as_ref().or(old_image.as_ref()).unwrap().kind(),
                op,
                shard: "sqlite".into(),
                sequence: (i + 1).to_string(),
                ttl_expired: false,
                new_image,
                old_image,
            }
        })
        .collect()
}

/// The row a record must become, as pyarrow reads it.
fn expected(op: Op, r: &Record) -> Value {
    let json_str = |j: &Option<cauce_store::model::Json>| j.as_ref().map(|j| j.get().to_owned());
    match r {
        Record::Event(e) => json!({
            "op": op.as_str(), "app_id": e.app_id, "event_id": e.event_id, "name": e.name,
            "timestamp": e.timestamp, "user_id": e.user_id, "session_id": e.session_id,
            "properties": json_str(&e.properties), "context": json_str(&e.context),
            "ts": e.ts, "received_at": e.received_at, "ingest_seq": e.ingest_seq,
            "extra": json_str(&e.extra), "anonymous_id": e.anonymous_id, "type": e.call,
        }),
        Record::Story(s) => json!({
            "op": op.as_str(), "app_id": s.app_id, "story_id": s.story_id, "name": s.name,
            "user_id": s.user_id, "session_id": s.session_id, "started_at": s.started_at,
            "ended_at": s.ended_at, "updated_at": s.updated_at, "outcome": s.outcome.as_str(),
            "steps": s.steps.iter().map(|st| json!({"name": st.name, "at": st.at, "properties": json_str(&st.properties)})).collect::<Vec<_>>(),
            "properties": json_str(&s.properties), "ts": s.ts, "received_at": s.received_at, "ingest_seq": s.ingest_seq,
            "extra": json_str(&s.extra),
        }),
        Record::Exposure(t) => json!({
            "op": op.as_str(), "app_id": t.app_id, "experiment": t.experiment, "user_id": t.user_id,
            "variant": t.variant, "exposed_at": t.exposed_at, "updated_at": t.updated_at,
            "converted": t.converted, "value": t.value, "properties": json_str(&t.properties),
            "ts": t.ts, "received_at": t.received_at, "ingest_seq": t.ingest_seq,
            "extra": json_str(&t.extra),
        }),
    }
}

fn expected_rows(kind: Kind) -> Vec<Value> {
    let mut rows: Vec<(Op, Record)> = records()
        .into_iter()
        .filter(|(_, r)| r.kind() == kind)
        .collect();
    rows.sort_by(|a, b| (a.1.app_id(), a.1.ts()).cmp(&(b.1.app_id(), b.1.ts())));
    rows.iter().map(|(op, r)| expected(*op, r)).collect()
}

async fn lake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let mut w = LakeWriter::new(usize::MAX);
    for c in changes() {
        w.write(c, 600);
    }
    let written = w.flush(&lake).await.unwrap();
    assert_eq!(written.len(), 3, "one file per kind and hour");
    dir
}

#[tokio::test]
async fn pyarrow_and_duckdb_read_back_identical_rows_and_documented_types() {
    let python = std::env::var("CAUCE_PYTHON")
        .expect("CAUCE_PYTHON must name a Python with pyarrow and duckdb: run ./test.sh");
    let dir = lake().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_lake.py");
    let out = Command::new(python)
        .arg(script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    for kind in Kind::ALL {
        let k = &got[kind.plural()];
        let want = expected_rows(kind);
        assert_eq!(
            k["rows"].as_array().unwrap(),
            &want,
            "{} rows",
            kind.plural()
        );
        assert_eq!(k["duckdb_count"], want.len());
        for f in schema(kind).fields() {
            assert_eq!(
                k["types"][f.name()].as_str().unwrap(),
                type_name(f.data_type()),
                "{}.{} type",
                kind.plural(),
                f.name()
            );
            assert_eq!(
                k["nullable"][f.name()],
                f.is_nullable(),
                "{}.{} nullability",
                kind.plural(),
                f.name()
            );
        }
    }
    let per_app = &got["events"]["duckdb_per_app"];
    assert_eq!(per_app, &json!([["app_a", 20], ["app_b", 20]]));
}

//! DynamoDB Streams event JSON → zstd Parquet bytes on one core, against the naive
//! `aws_lambda_events` + `serde_dynamo` decode and DuckDB's and pyarrow's NDJSON → Parquet
//! conversion of the same records in the same run; the peak memory of the stream handler on a
//! 6 MB batch; and query time over a compacted hour against the same rows in one file. Run with
//! `cargo bench --workspace` (or `cargo bench -p cauce-exporter`). With `CAUCE_BENCH_PROFILE=N`
//! it only runs our conversion, N times, for `perf record`.

#[path = "../tests/support/reference.rs"]
mod reference;

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use cauce_exporter::compact::{compact, CompactConfig};
use cauce_exporter::file::encode;
use cauce_exporter::stream::{decode, export};
use cauce_store::lake::local::LocalLake;
use serde_json::json;

const T0: i64 = 1_795_773_600_000; // 2026-11-27T07:00:00Z

/// One record's `doc`, about 1 KB of JSON.
fn doc(i: usize) -> serde_json::Value {
    let name = ["screen_view", "tap", "purchase"][i % 3];
    json!({
        "app_id": format!("app_{}", i % 20), "event_id": format!("evt-{i:012}"), "name": name,
        "timestamp": T0 + i as i64, "ts": T0 + i as i64 + 250, "received_at": T0 + 1000 + i as i64,
        "ingest_seq": format!("{:020}{:05}", 18_849_496_460_467_696_128u128 + (i / 100) as u128, i % 100),
        "user_id": format!("user-{}", i % 5000), "session_id": format!("sess-{}", i % 20000),
        "properties": {"screen": "checkout", "step": i % 7, "price": 19.99, "currency": "EUR", "items": [1, 2, 3],
            "campaign": "winter-sale-2026", "referrer": "https://example.com/landing/page?utm_source=newsletter&utm_medium=email",
            "ab": {"exp": "new_checkout", "variant": "b"}, "note": "x".repeat(300)},
        "context": {"app_version": "3.2.1", "os": "ios", "os_version": "19.1", "locale": "es-ES", "device": "iPhone15,2",
            "timezone": "Europe/Madrid", "network": "wifi", "carrier": "none"}
    })
}

/// A Streams event of `n` INSERT records, and the same records as NDJSON.
fn event(n: usize, offset: usize) -> (String, String) {
    let mut records = Vec::with_capacity(n);
    let mut ndjson = String::new();
    for i in offset..offset + n {
        let d = doc(i);
        ndjson.push_str(&d.to_string());
        ndjson.push('\n');
        records.push(json!({
            "eventID": format!("{i:032x}"), "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/cauce-events/stream/2026-11-27T00:00:00.000",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_795_773_601, "SequenceNumber": format!("{}", 100_000_000_000_000_000_000u128 + i as u128),
                "SizeBytes": 1100, "StreamViewType": "NEW_AND_OLD_IMAGES",
                "Keys": {"pk": {"S": format!("app_{}#{:02}", i % 20, i % 16)}, "sk": {"S": format!("evt-{i:012}")}},
                "NewImage": {"pk": {"S": format!("app_{}#{:02}", i % 20, i % 16)}, "sk": {"S": format!("evt-{i:012}")},
                    "kind": {"S": "event"}, "app_id": {"S": format!("app_{}", i % 20)}, "doc": {"S": d.to_string()},
                    "user_pk": {"S": format!("app_{}#user-{}", i % 20, i % 5000)}, "user_sk": {"S": format!("{:015}#evt-{i:012}", T0)},
                    "expires_at": {"N": "1798365600"}}
            }
        }));
    }
    (json!({ "Records": records }).to_string(), ndjson)
}

/// Decode (straight into sorted Arrow batches) + encode, no I/O: records per second on this
/// thread, the bytes out, and the share of the time spent decoding.
fn ours(events: &[String]) -> (f64, usize, f64) {
    let start = Instant::now();
    let mut decoding = 0.0;
    let mut bytes = 0;
    let mut rows = 0;
    for e in events {
        let t = Instant::now();
        let decoded = decode(e).unwrap();
        assert!(decoded.bad.is_empty(), "bad records: {:?}", decoded.bad);
        decoding += t.elapsed().as_secs_f64();
        for pb in &decoded.batches {
            rows += pb.batch.num_rows();
            bytes += encode(std::slice::from_ref(&pb.batch)).unwrap().len();
        }
    }
    let total = start.elapsed().as_secs_f64();
    (rows as f64 / total, bytes, decoding / total)
}

/// The issue's naive anchor: `aws_lambda_events` + `serde_dynamo` decode alone (no Arrow, no
/// Parquet), records per second on this thread.
fn naive_decode(events: &[String]) -> f64 {
    let start = Instant::now();
    let mut rows = 0;
    for e in events {
        let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_str(e).unwrap();
        rows += reference::decode_event(&event)
            .into_iter()
            .filter(Result::is_ok)
            .count();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

fn python() -> String {
    std::env::var("CAUCE_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into())
}

/// DuckDB and pyarrow converting the NDJSON to zstd Parquet on one thread: records per second.
fn anchors(ndjson: &std::path::Path, n: usize) -> Option<(f64, f64)> {
    let script = format!(
        r#"
import time, duckdb, pyarrow.json as pj, pyarrow.parquet as pq, pyarrow as pa
pa.set_cpu_count(1); pa.set_io_thread_count(1)
src = "{src}"
best_d = best_p = 1e9
for _ in range(3):
    con = duckdb.connect(); con.execute("SET threads TO 1")
    t = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_ndjson_auto('{{src}}')) TO '{{src}}.duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)")
    best_d = min(best_d, time.perf_counter() - t)
    t = time.perf_counter()
    table = pj.read_json(src, read_options=pj.ReadOptions(use_threads=False))
    pq.write_table(table, src + ".pyarrow.parquet", compression="zstd")
    best_p = min(best_p, time.perf_counter() - t)
print(best_d, best_p)
"#,
        src = ndjson.display()
    );
    let out = Command::new(python()).arg("-c").arg(script).output().ok()?;
    if !out.status.success() {
        eprintln!("anchors skipped: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    Some((n as f64 / it.next()?, n as f64 / it.next()?))
}

fn peak_memory_child(path: &str) {
    let payload = std::fs::read_to_string(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = vm_hwm();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = rt
        .block_on(export(&payload, &LocalLake::new(dir.path()), None))
        .unwrap();
    println!("{} {} {}", before, vm_hwm(), report.written.len());
}

fn vm_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn query_times(dir: &std::path::Path) -> (f64, f64, f64) {
    use polars::prelude::*;
    // Every events file, the query's columns only, as analytics' reader reads a folder lake.
    let scan = |root: &std::path::Path| {
        let lake = LocalLake::new(root);
        let files = lake.list_blocking("events/").unwrap().into_iter().map(|o| {
            let file = std::fs::File::open(lake.path(&o.key)).unwrap();
            let columns = ["app_id", "name", "user_id"].map(String::from).to_vec();
            let df = ParquetReader::new(file).with_columns(Some(columns));
            df.finish().unwrap().lazy()
        });
        concat(files.collect::<Vec<_>>(), UnionArgs::default()).unwrap()
    };
    let run = |root: &std::path::Path| {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let df = scan(root)
                .filter(col("app_id").eq(lit("app_7")))
                .group_by([col("name")])
                .agg([len().alias("n"), col("user_id").n_unique().alias("users")])
                .collect()
                .unwrap();
            assert!(df.height() > 0);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        median_of(times)
    };
    let uncompacted = run(&dir.join("raw"));
    let compacted = run(&dir.join("compacted"));
    let single = run(&dir.join("single"));
    (uncompacted, compacted, single)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--peak-memory") {
        peak_memory_child(&args[i + 1]);
        return;
    }
    let per_event = 3_400; // about 6 MB of event JSON: Lambda's largest batch
    let n_events = 12;
    let built: Vec<(String, String)> = (0..n_events)
        .map(|k| event(per_event, k * per_event))
        .collect();
    let n = per_event * n_events;
    let event_mb = built[0].0.len() as f64 / 1e6;
    let events: Vec<String> = built.iter().map(|(e, _)| e.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let ndjson_path = dir.path().join("records.ndjson");
    let mut f = std::fs::File::create(&ndjson_path).unwrap();
    for (_, nd) in &built {
        f.write_all(nd.as_bytes()).unwrap();
    }
    drop(f);

    if let Ok(loops) = std::env::var("CAUCE_BENCH_PROFILE") {
        // For `perf record`: only our conversion, many times.
        for _ in 0..loops.parse().unwrap_or(20) {
            ours(&events);
        }
        return;
    }
    println!("exporter: {n} records of ~1 KB in {n_events} Streams events of {event_mb:.1} MB; one thread");
    // Ours and the naive decode alternate, so that both see the same machine.
    let mut runs = Vec::new();
    let mut naive = Vec::new();
    for _ in 0..5 {
        runs.push(ours(&events));
        naive.push(naive_decode(&events));
    }
    let rate = median_of(runs.iter().map(|r| r.0).collect());
    let decoding = median_of(runs.iter().map(|r| r.2).collect());
    let naive = median_of(naive);
    println!(
        "  ours (Streams JSON -> Parquet zstd): {rate:>9.0} records/s ({:.2}x the 300,000 target), {:.1} MB out, {:.0}% of the time decoding into columns",
        rate / 300_000.0,
        runs[0].1 as f64 / 1e6,
        decoding * 100.0
    );
    println!(
        "  naive decode alone (aws_lambda_events + serde_dynamo): {naive:>9.0} records/s; ours/naive = {:.2} (the target is 300k/148k = 2.03)",
        rate / naive
    );
    match anchors(&ndjson_path, n) {
        Some((duck, pyarrow)) => {
            println!("  DuckDB  (NDJSON -> Parquet zstd):     {duck:>9.0} records/s; ours/DuckDB = {:.2}", rate / duck);
            println!("  pyarrow (NDJSON -> Parquet zstd):     {pyarrow:>9.0} records/s; ours/pyarrow = {:.2}", rate / pyarrow);
        }
        None => println!("  DuckDB/pyarrow anchors not run (set CAUCE_PYTHON to a Python with duckdb and pyarrow)"),
    }

    // Peak memory of the handler on one 6 MB batch, in a fresh process.
    let batch = dir.path().join("batch.json");
    std::fs::write(&batch, &events[0]).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--peak-memory")
        .arg(&batch)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() == 3 {
        println!("  stream handler peak RSS on a {event_mb:.1} MB batch: {:.0} MB (process before the batch: {:.0} MB; Lambda limit 256 MB)", v[1] as f64 / 1024.0, v[0] as f64 / 1024.0);
    }

    // Query time: the same 40k rows uncompacted (8 files), compacted, and as one file.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let raw = LocalLake::new(dir.path().join("raw"));
        let compacted = LocalLake::new(dir.path().join("compacted"));
        for e in &events {
            export(e, &raw, None).await.unwrap();
            export(e, &compacted, None).await.unwrap();
        }
        let cfg = CompactConfig {
            include_open: true,
            ..CompactConfig::default()
        };
        compact(&compacted, &cfg, &|_, _| {}).await.unwrap();
        let single = LocalLake::new(dir.path().join("single"));
        let all: Vec<_> = events
            .iter()
            .flat_map(|e| {
                let event: aws_lambda_events::event::dynamodb::Event =
                    serde_json::from_str(e).unwrap();
                reference::decode_event(&event)
            })
            .map(Result::unwrap)
            .collect();
        let mut w = cauce_exporter::writer::LakeWriter::new(usize::MAX);
        for c in all {
            w.write(c, 1000);
        }
        w.flush(&single).await.unwrap();
    });
    let (raw, compacted, single) = query_times(dir.path());
    println!("  query (one app's events by name, Polars): uncompacted {raw:.1} ms, compacted {compacted:.1} ms, one file {single:.1} ms; compacted/one file = {:.2} (target <= 1.1)", compacted / single);
}

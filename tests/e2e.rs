//! End to end through the real `cauce` binary: `cauce serve` on a free port, two apps made with
//! `cauce apps create`, 10,000 events (5% resends, 5% invalid) plus stories and tests updated
//! out of order, every response checked, then the store checked against what was sent.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use cauce_store::sqlite::SqliteStore;
use cauce_store::{Kind, Record, RecordStore};
use serde_json::{json, Value};

mod support;

use support::{cli, lake_column, now, serve, Client, BIN};

/// A small deterministic generator, so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one app was sent, and what its store must hold.
#[derive(Default)]
struct Expected {
    /// event_id → the name of the first accepted copy.
    events: BTreeMap<String, String>,
    invalid: usize,
    /// story_id → its newest updated_at.
    stories: BTreeMap<String, i64>,
    /// user → (newest updated_at, converted) of the `onboarding` experiment.
    tests: BTreeMap<String, (i64, bool)>,
}

fn send_events(c: &Client, key: &str, app: &str, n: usize, rng: &mut Rng, exp: &mut Expected) {
    let t0 = now() - 60_000;
    let mut sent: Vec<Value> = Vec::new();
    let mut batch: Vec<Value> = Vec::new();
    let mut batch_invalid = 0;
    for i in 0..n {
        let roll = rng.below(100);
        let item = if roll < 5 && !sent.is_empty() {
            // A resend of an earlier event, under another name: the first copy must win.
            let mut copy = sent[rng.below(sent.len() as u64) as usize].clone();
            copy["name"] = json!("resent");
            copy
        } else if roll < 10 {
            batch_invalid += 1;
            exp.invalid += 1;
            json!({ "event_id": format!("{app}-bad-{i}"), "timestamp": t0 }) // no name
        } else {
            let id = format!("{app}-e{i}");
            let name = ["open", "view", "tap", "buy"][rng.below(4) as usize];
            let ev = json!({
                "event_id": id, "name": name, "timestamp": t0 + i as i64,
                "user_id": format!("u{}", rng.below(50)), "session_id": format!("s{}", rng.below(200)),
                "properties": { "i": i }, "context": { "os": "ios" }
            });
            exp.events.insert(id, name.to_owned());
            sent.push(ev.clone());
            ev
        };
        batch.push(item);
        if batch.len() == 100 || i == n - 1 {
            let (status, body) = c.post("/v1/events", key, &batch);
            let want = if batch_invalid == 0 { 202 } else { 207 };
            assert_eq!(status, want, "{body}");
            assert_eq!(body["accepted"], batch.len() - batch_invalid);
            assert_eq!(body["rejected"].as_array().unwrap().len(), batch_invalid);
            for r in body["rejected"].as_array().unwrap() {
                assert_eq!(
                    (r["error"].as_str(), r["field"].as_str()),
                    (Some("missing_field"), Some("name"))
                );
            }
            batch.clear();
            batch_invalid = 0;
        }
    }
}

fn send_versions(c: &Client, key: &str, app: &str, rng: &mut Rng, exp: &mut Expected) {
    let t0 = now() - 120_000;
    // Every story in three versions, every test in two, all shuffled.
    let mut stories = Vec::new();
    for s in 0..60 {
        for v in 1..=3i64 {
            let outcome = if v == 3 { "completed" } else { "in_progress" };
            let steps: Vec<Value> = (0..v)
                .map(|k| json!({ "name": format!("step{k}"), "at": t0 + k }))
                .collect();
            stories.push(json!({
                "story_id": format!("{app}-s{s}"), "name": "checkout", "user_id": format!("u{s}"),
                "started_at": t0, "updated_at": t0 + v * 1000, "outcome": outcome, "steps": steps
            }));
        }
        exp.stories.insert(format!("{app}-s{s}"), t0 + 3000);
    }
    let mut tests = Vec::new();
    for u in 0..60 {
        for v in 1..=2i64 {
            tests.push(json!({
                "experiment": "onboarding", "user_id": format!("u{u}"), "variant": if u % 2 == 0 { "control" } else { "b" },
                "exposed_at": t0, "updated_at": t0 + v * 1000, "converted": v == 2 && u % 3 == 0
            }));
        }
        exp.tests.insert(format!("u{u}"), (t0 + 2000, u % 3 == 0));
    }
    for items in [&mut stories, &mut tests] {
        for i in (1..items.len()).rev() {
            items.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    for chunk in stories.chunks(50) {
        let (status, body) = c.post("/v1/stories", key, chunk);
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (202, Some(chunk.len() as u64)),
            "{body}"
        );
    }
    for chunk in tests.chunks(50) {
        let (status, body) = c.post("/v1/tests", key, chunk);
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (202, Some(chunk.len() as u64)),
            "{body}"
        );
    }
}

async fn check_store(store: &SqliteStore, app_id: &str, exp: &Expected) {
    let events = store.scan(Kind::Event, app_id).await.unwrap();
    let got: BTreeMap<String, String> = events
        .iter()
        .map(|r| match r {
            Record::Event(e) => (e.event_id.clone(), e.name.clone()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        got.len(),
        exp.events.len(),
        "exactly the valid unique events"
    );
    assert_eq!(got, exp.events, "first copies win");
    let stories = store.scan(Kind::Story, app_id).await.unwrap();
    let got: BTreeMap<String, i64> = stories
        .iter()
        .map(|r| (r.key(), r.updated_at().unwrap()))
        .collect();
    assert_eq!(got, exp.stories, "the newest story versions");
    assert!(stories
        .iter()
        .all(|r| matches!(r, Record::Story(s) if s.steps.len() == 3)));
    let tests = store.scan(Kind::Exposure, app_id).await.unwrap();
    let got: BTreeMap<String, (i64, bool)> = tests
        .iter()
        .map(|r| match r {
            Record::Exposure(t) => (
                t.user_id.clone(),
                (t.updated_at, t.converted.unwrap_or(false)),
            ),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(got, exp.tests, "the newest test versions");
    let bad = store.bad_rows(app_id).await.unwrap();
    assert_eq!(bad.len(), exp.invalid, "every rejected item is archived");
}

/// The lake holds exactly the valid unique events, and every version of stories and tests
/// whose latest is the newest sent.
async fn check_lake(data: &std::path::Path, app_id: &str, exp: &Expected) {
    let mut ids = lake_column(data, "events", app_id, "event_id").await;
    ids.sort();
    let want: Vec<String> = exp.events.keys().cloned().collect();
    assert_eq!(ids, want, "each valid event exactly once in the lake");
    let stories: BTreeSet<String> = lake_column(data, "stories", app_id, "story_id")
        .await
        .into_iter()
        .collect();
    assert_eq!(
        stories,
        exp.stories.keys().cloned().collect::<BTreeSet<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_through_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let server = serve(data);
    let a = cli(
        data,
        &["apps", "create", "--name", "shop", "--rate-limit", "100000"],
    );
    let b = cli(
        data,
        &["apps", "create", "--name", "news", "--rate-limit", "100000"],
    );
    let (a_id, a_key) = (
        a["app_id"].as_str().unwrap(),
        a["api_key"].as_str().unwrap(),
    );
    let (b_id, b_key) = (
        b["app_id"].as_str().unwrap(),
        b["api_key"].as_str().unwrap(),
    );
    let listed = Command::new(BIN)
        .args(["apps", "list", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 2);

    // Two clients at once, one per app, 5,000 events each.
    let base = server.base.clone();
    let (a_key2, b_key2) = (a_key.to_owned(), b_key.to_owned());
    let sender = |key: String, app: &'static str, seed: u64| {
        let base = base.clone();
        std::thread::spawn(move || {
            let c = Client::new(&base);
            let mut rng = Rng(seed);
            let mut exp = Expected::default();
            send_events(&c, &key, app, 5_000, &mut rng, &mut exp);
            send_versions(&c, &key, app, &mut rng, &mut exp);
            exp
        })
    };
    let ta = sender(a_key2, "A", 0x9e37_79b9_7f4a_7c15);
    let tb = sender(b_key2, "B", 0xd1b5_4a32_d192_ed03);
    let (exp_a, exp_b) = (ta.join().unwrap(), tb.join().unwrap());
    assert!(
        exp_a.invalid > 100 && exp_b.invalid > 100,
        "about 5% invalid"
    );

    // Wait until the writer has stored everything.
    let c = Client::new(&server.base);
    c.drain(Duration::from_secs(120), Duration::from_millis(100));

    let store = SqliteStore::open(data.join("store.db")).unwrap();
    check_store(&store, a_id, &exp_a).await;
    check_store(&store, b_id, &exp_b).await;
    check_lake(data, a_id, &exp_a).await;
    check_lake(data, b_id, &exp_b).await;

    // B's key can neither read nor write A's data.
    let (status, body) = c.get("/v1/users/u1/timeline?limit=1000", Some(b_key));
    assert_eq!(status, 200);
    assert_eq!(body["app_id"], b_id);
    let keys: BTreeSet<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event_id"].as_str().or(r["story_id"].as_str()))
        .collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.starts_with("B-")),
        "{keys:?}"
    );
    let intrusion = json!({ "app_id": a_id, "event_id": "A-e0", "name": "forged", "timestamp": now(), "user_id": "u1" });
    let (status, body) = c.post("/v1/events", b_key, &[intrusion]);
    assert_eq!(status, 202);
    assert_eq!(body["warnings"][0]["warning"], "server_field", "{body}");
    // A typo is kept, not dropped: the item is accepted, the field named in `warnings`, and the
    // value lands in the lake's `extra` column.
    let typo = json!({ "event_id": "B-typo", "name": "open", "timestamp": now(), "userId": "u7" });
    let (status, body) = c.post("/v1/events", b_key, &[typo]);
    assert_eq!(status, 202);
    assert_eq!(
        (
            &body["warnings"][0]["field"],
            &body["warnings"][0]["warning"]
        ),
        (&json!("userId"), &json!("unknown_field")),
        "{body}"
    );
    let start = Instant::now();
    while c.get("/healthz", None).1["pending"] != 0 {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        lake_column(data, "events", b_id, "extra").await,
        [r#"{"userId":"u7"}"#],
        "the unknown field in the lake"
    );
    let forged = store.get(Kind::Event, b_id, "A-e0").await.unwrap();
    assert!(forged.is_some(), "the forged event landed in B's own app");
    let original = store.get(Kind::Event, a_id, "A-e0").await.unwrap().unwrap();
    let Record::Event(original) = original else {
        unreachable!()
    };
    assert_ne!(original.name, "forged", "A's event is untouched");

    // A disabled app is refused from then on (after the key cache's two seconds).
    cli(data, &["apps", "disable", b_id]);
    std::thread::sleep(Duration::from_millis(2_100));
    let (status, body) = c.post(
        "/v1/events",
        b_key,
        &[json!({ "event_id": "late", "name": "x", "timestamp": now() })],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("disabled_key"))
    );
}

//! Builds small lakes from hand-written records, through the exporter's real writer.
#![allow(dead_code)]

use cauce_analytics::{report, LakeSource, Reports, Scope, Settings};
use cauce_exporter::writer::LakeWriter;
use cauce_store::lake::local::LocalLake;
use cauce_store::{Change, Kind, Op, Record, Stamp};
use serde_json::{json, Value};

/// Monday 2026-11-02T00:00:00Z.
pub const MONDAY: i64 = 1_793_577_600_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

/// Records under construction, each received a second after its client time.
#[derive(Default)]
pub struct Lake {
    records: Vec<(Op, Record)>,
    again: Vec<(Op, Record)>,
}

impl Lake {
    fn push(&mut self, kind: Kind, app: &str, body: Value, at: i64) {
        let mut r = Record::from_json(kind, &body.to_string()).unwrap();
        r.stamp(&Stamp {
            app_id: app.into(),
            received_at: at + 1_000,
            skew_ms: 0,
        });
        let n = self.records.len();
        r.set_ingest_seq(format!("{:020}{:05}", n / 1000, n % 1000));
        let op = if r.kind().is_upsert() && self.records.iter().any(|(_, o)| o.key() == r.key()) {
            Op::Modify
        } else {
            Op::Insert
        };
        self.records.push((op, r));
    }

    /// Removes the last record's key (a user's delete): a removal row carrying its version.
    pub fn remove_last(&mut self) {
        let (_, last) = self.records.last().expect("a record to remove").clone();
        self.records.push((Op::Remove, last));
    }

    /// Exports the last record once more, in another file of the same hour: a stream batch
    /// retried and split differently. Readers must count it once.
    pub fn export_again(&mut self) {
        let last = self
            .records
            .last()
            .expect("a record to export again")
            .clone();
        self.again.push(last);
    }

    /// An event at `ts` (epoch ms); `user` and `session` may be empty for none.
    pub fn event(&mut self, app: &str, id: &str, name: &str, user: &str, session: &str, ts: i64) {
        let mut e = json!({"event_id": id, "name": name, "timestamp": ts});
        if !user.is_empty() {
            e["user_id"] = json!(user);
        }
        if !session.is_empty() {
            e["session_id"] = json!(session);
        }
        self.push(Kind::Event, app, e, ts);
    }

    /// A story version: its steps one minute apart from `start`, `updated` its version time.
    #[allow(clippy::too_many_arguments)]
    pub fn story(
        &mut self,
        app: &str,
        id: &str,
        user: Option<&str>,
        steps: &[&str],
        outcome: &str,
        start: i64,
        ended: Option<i64>,
        updated: i64,
    ) {
        let steps: Vec<Value> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"name": s, "at": start + i as i64 * 60_000}))
            .collect();
        let mut s = json!({"story_id": id, "name": "checkout", "started_at": start,
            "updated_at": updated, "outcome": outcome, "steps": steps});
        if let Some(u) = user {
            s["user_id"] = json!(u);
        }
        if let Some(e) = ended {
            s["ended_at"] = json!(e);
        }
        self.push(Kind::Story, app, s, updated);
    }

    /// A test version.
    pub fn test(
        &mut self,
        app: &str,
        experiment: &str,
        user: &str,
        variant: &str,
        converted: Option<bool>,
        version: i64,
    ) {
        let mut t = json!({"experiment": experiment, "user_id": user, "variant": variant,
            "exposed_at": MONDAY, "updated_at": MONDAY + version});
        if let Some(c) = converted {
            t["converted"] = json!(c);
        }
        self.push(Kind::Exposure, app, t, MONDAY + version);
    }

    /// Writes the lake into a temporary folder, one file per kind and ingest hour.
    pub async fn write(self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        let n = self.records.len();
        let mut w = LakeWriter::new(usize::MAX);
        for (i, (op, r)) in self.records.into_iter().chain(self.again).enumerate() {
            if i == n {
                w.flush(&lake).await.unwrap();
            }
            let (new_image, old_image) = (Some(r), None);
            w.write(
                Change {
                    kind: new_image.as_ref().map(Record::kind).unwrap(),
                    op,
                    shard: "test".into(),
                    sequence: format!("{:09}", i + 1),
                    ttl_expired: false,
                    new_image,
                    old_image,
                },
                500,
            );
        }
        w.flush(&lake).await.unwrap();
        dir
    }
}

impl Lake {
    /// Every report over the whole lake, with the default settings.
    pub async fn reports(self) -> Reports {
        let dir = self.write().await;
        reports(dir.path(), &Scope::default(), &Settings::default())
    }
}

/// Every report over a folder lake.
pub fn reports(dir: &std::path::Path, scope: &Scope, settings: &Settings) -> Reports {
    let source = LakeSource::folder(dir);
    report::run(&source, scope, &report::ALL, settings).unwrap()
}

/// A report's table as JSON rows.
pub fn rows(reports: &Reports, name: &str, table: &str) -> Vec<Value> {
    let df = reports.table(name, table).unwrap();
    match cauce_analytics::output::json::rows(df).unwrap() {
        Value::Array(rows) => rows,
        other => panic!("not rows: {other}"),
    }
}

/// Whether two floats agree to 1e-12.
pub fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-12)
}

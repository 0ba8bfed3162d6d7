//! Pure transforms, no I/O: changes → rows grouped by partition → sorted Arrow `RecordBatch`es
//! in the schemas of [`crate::schema`].

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, ListBuilder, StringBuilder, StructBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use cauce_store::{Change, Event, Kind, Op, Record, Story, Test};

use crate::error::Result;
use crate::layout::Partition;
use crate::schema::{schema, step_fields};

/// The rows of one partition, sorted by `app_id` then `ts`, ready to be written as one file.
#[derive(Debug, Clone)]
pub struct PartitionBatch {
    /// Where the rows go.
    pub partition: Partition,
    /// The feed (shard) of the first change among these rows.
    pub shard: String,
    /// The feed position of the first change among these rows (with the shard, names the file).
    pub first_sequence: String,
    /// The rows.
    pub batch: RecordBatch,
}

/// One row: what happened, and the record it happened to.
pub type Row<'a> = (Op, &'a Record);

/// Groups changes by partition (the kind and the hour of `received_at`) and builds one sorted
/// batch per partition. TTL expiries are not deletions in the lake: they are skipped.
pub fn partition_changes(changes: &[Change]) -> Result<Vec<PartitionBatch>> {
    type Group<'a> = ((&'a str, &'a str), Vec<Row<'a>>);
    let mut groups: BTreeMap<Partition, Group<'_>> = BTreeMap::new();
    for c in changes.iter().filter(|c| !c.ttl_expired) {
        let Some(record) = c.record() else { continue };
        let p = Partition::of(c.kind, record.received_at());
        groups
            .entry(p)
            .or_insert_with(|| ((c.shard.as_str(), c.sequence.as_str()), Vec::new()))
            .1
            .push((c.op, record));
    }
    groups
        .into_iter()
        .map(|(partition, ((shard, first), mut rows))| {
            sort_rows(&mut rows);
            Ok(PartitionBatch {
                partition,
                shard: shard.to_owned(),
                first_sequence: first.to_owned(),
                batch: to_batch(partition.kind, &rows)?,
            })
        })
        .collect()
}

/// Sorts rows by `app_id`, then `ts`; rows that tie keep their feed order.
pub fn sort_rows(rows: &mut [Row<'_>]) {
    rows.sort_by(|a, b| {
        a.1.app_id()
            .cmp(b.1.app_id())
            .then_with(|| a.1.ts().cmp(&b.1.ts()))
    });
}

fn times() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// Columns shared by every kind: `op`, `app_id` first; `ts`, `received_at`, `ingest_seq` last.
#[derive(Default)]
struct Common {
    op: StringBuilder,
    app_id: StringBuilder,
    ts: TimestampMillisecondBuilder,
    received_at: TimestampMillisecondBuilder,
    ingest_seq: StringBuilder,
}

impl Common {
    fn new() -> Self {
        Common {
            ts: times(),
            received_at: times(),
            ..Default::default()
        }
    }

    fn push(&mut self, op: Op, app_id: &str, ts: i64, received_at: i64, seq: &str) {
        self.op.append_value(op.as_str());
        self.app_id.append_value(app_id);
        self.ts.append_value(ts);
        self.received_at.append_value(received_at);
        self.ingest_seq.append_value(seq);
    }

    fn assemble(mut self, middle: Vec<ArrayRef>) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> =
            vec![Arc::new(self.op.finish()), Arc::new(self.app_id.finish())];
        out.extend(middle);
        out.push(Arc::new(self.ts.finish()));
        out.push(Arc::new(self.received_at.finish()));
        out.push(Arc::new(self.ingest_seq.finish()));
        out
    }
}

fn json(b: &mut StringBuilder, v: Option<&cauce_store::model::Json>) {
    b.append_option(v.map(|j| j.get()));
}

/// Builds the batch of one kind from rows of that kind (rows of other kinds are skipped).
pub fn to_batch(kind: Kind, rows: &[Row<'_>]) -> Result<RecordBatch> {
    let columns = match kind {
        Kind::Event => events(rows),
        Kind::Story => stories(rows),
        Kind::Test => tests(rows),
    };
    Ok(RecordBatch::try_new(schema(kind), columns)?)
}

fn events(rows: &[Row<'_>]) -> Vec<ArrayRef> {
    let mut c = Common::new();
    let (mut id, mut name, mut ts, mut user, mut session, mut props, mut ctx) = (
        StringBuilder::new(),
        StringBuilder::new(),
        times(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    for (op, r) in rows {
        let Record::Event(e) = r else { continue };
        let Event {
            app_id, event_id, ..
        } = e;
        c.push(*op, app_id, e.ts, e.received_at, &e.ingest_seq);
        id.append_value(event_id);
        name.append_value(&e.name);
        ts.append_value(e.timestamp);
        user.append_option(e.user_id.as_deref());
        session.append_option(e.session_id.as_deref());
        json(&mut props, e.properties.as_ref());
        json(&mut ctx, e.context.as_ref());
    }
    c.assemble(vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(ts.finish()),
        Arc::new(user.finish()),
        Arc::new(session.finish()),
        Arc::new(props.finish()),
        Arc::new(ctx.finish()),
    ])
}

fn stories(rows: &[Row<'_>]) -> Vec<ArrayRef> {
    let mut c = Common::new();
    let (mut id, mut name, mut user, mut session, mut props) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut started, mut ended, mut updated, mut outcome) =
        (times(), times(), times(), StringBuilder::new());
    let step = StructBuilder::new(
        step_fields(),
        vec![
            Box::new(StringBuilder::new()),
            Box::new(times()),
            Box::new(StringBuilder::new()),
        ],
    );
    let mut steps = ListBuilder::new(step);
    for (op, r) in rows {
        let Record::Story(s) = r else { continue };
        let Story {
            app_id, story_id, ..
        } = s;
        c.push(*op, app_id, s.ts, s.received_at, &s.ingest_seq);
        id.append_value(story_id);
        name.append_value(&s.name);
        user.append_option(s.user_id.as_deref());
        session.append_option(s.session_id.as_deref());
        started.append_value(s.started_at);
        ended.append_option(s.ended_at);
        updated.append_value(s.updated_at);
        outcome.append_value(s.outcome.as_str());
        let values = steps.values();
        for st in &s.steps {
            values
                .field_builder::<StringBuilder>(0)
                .expect("step name")
                .append_value(&st.name);
            values
                .field_builder::<TimestampMillisecondBuilder>(1)
                .expect("step at")
                .append_value(st.at);
            let props = values
                .field_builder::<StringBuilder>(2)
                .expect("step props");
            json(props, st.properties.as_ref());
            values.append(true);
        }
        steps.append(true);
        json(&mut props, s.properties.as_ref());
    }
    c.assemble(vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(user.finish()),
        Arc::new(session.finish()),
        Arc::new(started.finish()),
        Arc::new(ended.finish()),
        Arc::new(updated.finish()),
        Arc::new(outcome.finish()),
        Arc::new(steps.finish()),
        Arc::new(props.finish()),
    ])
}

fn tests(rows: &[Row<'_>]) -> Vec<ArrayRef> {
    let mut c = Common::new();
    let (mut exp, mut user, mut variant, mut props) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut exposed, mut updated) = (times(), times());
    let (mut converted, mut value) = (BooleanBuilder::new(), Float64Builder::new());
    for (op, r) in rows {
        let Record::Test(t) = r else { continue };
        let Test { app_id, .. } = t;
        c.push(*op, app_id, t.ts, t.received_at, &t.ingest_seq);
        exp.append_value(&t.experiment);
        user.append_value(&t.user_id);
        variant.append_value(&t.variant);
        exposed.append_value(t.exposed_at);
        updated.append_value(t.updated_at);
        converted.append_option(t.converted);
        value.append_option(t.value);
        json(&mut props, t.properties.as_ref());
    }
    c.assemble(vec![
        Arc::new(exp.finish()),
        Arc::new(user.finish()),
        Arc::new(variant.finish()),
        Arc::new(exposed.finish()),
        Arc::new(updated.finish()),
        Arc::new(converted.finish()),
        Arc::new(value.finish()),
        Arc::new(props.finish()),
    ])
}

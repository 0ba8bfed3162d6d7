//! Pure transforms, no I/O: rows → Arrow columns grouped by partition → sorted `RecordBatch`es
//! in the schemas of [`crate::schema`].
//!
//! Rows are appended to the builders of their partition in feed order, as they are decoded;
//! each partition's batch is sorted by `app_id`, then `ts` when it is finished.

use std::ops::Deref;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, ListBuilder, StringBuilder, StructBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{ArrayRef, RecordBatch, UInt32Array};
use arrow_select::take::take_record_batch;
use cauce_store::{Change, Event, Exposure, Kind, Op, Record, Story};
use serde_json::value::RawValue;

use cauce_store::lake::layout::Partition;
use cauce_store::lake::schema::SORT_COLUMNS;

use crate::error::{ExportError, Result};
use crate::schema::{schema, step_fields};

/// The rows of one partition, sorted by `app_id` then `ts`, ready to be written as one file.
#[derive(Debug, Clone, PartialEq)]
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

/// Rows being gathered, one set of column builders per partition (the kind and the hour of
/// `received_at`). A batch of changes rarely spans more than two hours, so the few open
/// partitions are kept in a list.
#[derive(Default)]
pub struct Partitions {
    open: Vec<Open>,
}

struct Open {
    partition: Partition,
    shard: String,
    first_sequence: String,
    columns: Columns,
}

impl Partitions {
    /// Appends one record's row, from the feed position `shard`/`sequence`, to its partition.
    /// The record may own its fields or borrow them from its JSON ([`cauce_store::RecordRef`]).
    pub fn push<S: Str, J: Obj>(
        &mut self,
        op: Op,
        row: &Record<S, J>,
        shard: &str,
        sequence: &str,
    ) -> Result<()> {
        let partition = Partition::of(row.kind(), row.received_at());
        let i = match self.open.iter().position(|o| o.partition == partition) {
            Some(i) => i,
            None => {
                self.open.push(Open {
                    partition,
                    shard: shard.to_owned(),
                    first_sequence: sequence.to_owned(),
                    columns: Columns::new(partition.kind),
                });
                self.open.len() - 1
            }
        };
        self.open[i].columns.push(op, row)
    }

    /// One sorted batch per partition, in partition order.
    pub fn finish(mut self) -> Result<Vec<PartitionBatch>> {
        self.open.sort_by_key(|o| o.partition);
        self.open
            .into_iter()
            .map(|o| {
                Ok(PartitionBatch {
                    partition: o.partition,
                    shard: o.shard,
                    first_sequence: o.first_sequence,
                    batch: sorted(o.columns.finish()?)?,
                })
            })
            .collect()
    }
}

impl std::fmt::Debug for Partitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.open.iter().map(|o| o.partition))
            .finish()
    }
}

/// Groups changes by partition and builds one sorted batch per partition. TTL expiries are not
/// deletions in the lake: they are skipped.
pub fn partition_changes(changes: &[Change]) -> Result<Vec<PartitionBatch>> {
    let mut parts = Partitions::default();
    for c in changes.iter().filter(|c| !c.ttl_expired) {
        let Some(record) = c.record() else { continue };
        parts.push(c.op, record, &c.shard, &c.sequence)?;
    }
    parts.finish()
}

/// Sorts a batch into the lake's order ([`SORT_COLUMNS`]: `app_id`, then `ts`); rows that tie
/// keep their order. A batch that is already in order is returned as it is.
pub fn sorted(batch: RecordBatch) -> Result<RecordBatch> {
    let [app, ts] = SORT_COLUMNS.map(|c| batch.column_by_name(c));
    let (Some(app), Some(ts)) = (app, ts) else {
        return Err(ExportError::BadFile(format!(
            "a batch without the sort columns {SORT_COLUMNS:?}"
        )));
    };
    let app = app.as_string::<i32>();
    let ts = ts.as_primitive::<TimestampMillisecondType>();
    let key = |i: u32| (app.value(i as usize), ts.value(i as usize));
    let n = batch.num_rows() as u32;
    if (1..n).all(|i| key(i - 1) <= key(i)) {
        return Ok(batch);
    }
    let mut order: Vec<u32> = (0..n).collect();
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    Ok(take_record_batch(&batch, &UInt32Array::from(order))?)
}

fn times() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// How a record holds a string: `String`, or borrowed from its JSON.
pub trait Str: Deref<Target = str> {}
impl<S: Deref<Target = str>> Str for S {}

/// How a record holds a JSON object: boxed, or borrowed from its JSON.
pub trait Obj: Deref<Target = RawValue> {}
impl<J: Deref<Target = RawValue>> Obj for J {}

fn json<J: Obj>(b: &mut StringBuilder, v: &Option<J>) {
    b.append_option(v.as_deref().map(RawValue::get));
}

/// Columns shared by every kind: `op`, `app_id` first; `ts`, `received_at`, `ingest_seq`,
/// `extra` after the kind's own; then the kind's columns added since (see
/// [`cauce_store::lake::schema::columns`]).
#[derive(Default)]
struct Common {
    op: StringBuilder,
    app_id: StringBuilder,
    ts: TimestampMillisecondBuilder,
    received_at: TimestampMillisecondBuilder,
    ingest_seq: StringBuilder,
    extra: StringBuilder,
}

impl Common {
    fn new() -> Self {
        Common {
            ts: times(),
            received_at: times(),
            ..Default::default()
        }
    }

    fn push<S: Str, J: Obj>(&mut self, op: Op, row: &Record<S, J>) {
        self.op.append_value(op.as_str());
        self.app_id.append_value(row.app_id());
        self.ts.append_value(row.ts());
        self.received_at.append_value(row.received_at());
        self.ingest_seq.append_value(row.ingest_seq());
        self.extra
            .append_option(row.extra().map(|j| RawValue::get(j)));
    }

    fn assemble(mut self, (own, added): KindArrays) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> =
            vec![Arc::new(self.op.finish()), Arc::new(self.app_id.finish())];
        out.extend(own);
        out.push(Arc::new(self.ts.finish()));
        out.push(Arc::new(self.received_at.finish()));
        out.push(Arc::new(self.ingest_seq.finish()));
        out.push(Arc::new(self.extra.finish()));
        out.extend(added);
        out
    }
}

/// A kind's own columns, and those added to it since its first files.
type KindArrays = (Vec<ArrayRef>, Vec<ArrayRef>);

/// The column builders of one kind.
struct Columns {
    common: Common,
    kind: KindColumns,
}

enum KindColumns {
    Event(EventColumns),
    Story(Box<StoryColumns>),
    Exposure(ExposureColumns),
}

impl Columns {
    fn new(kind: Kind) -> Self {
        Columns {
            common: Common::new(),
            kind: match kind {
                Kind::Event => KindColumns::Event(EventColumns::new()),
                Kind::Story => KindColumns::Story(Box::new(StoryColumns::new())),
                Kind::Exposure => KindColumns::Exposure(ExposureColumns::new()),
            },
        }
    }

    fn kind(&self) -> Kind {
        match self.kind {
            KindColumns::Event(_) => Kind::Event,
            KindColumns::Story(_) => Kind::Story,
            KindColumns::Exposure(_) => Kind::Exposure,
        }
    }

    fn push<S: Str, J: Obj>(&mut self, op: Op, row: &Record<S, J>) -> Result<()> {
        match (&mut self.kind, row) {
            (KindColumns::Event(b), Record::Event(e)) => b.push(e),
            (KindColumns::Story(b), Record::Story(s)) => b.push(s),
            (KindColumns::Exposure(b), Record::Exposure(t)) => b.push(t),
            _ => {
                return Err(ExportError::KindMismatch {
                    columns: self.kind(),
                    row: row.kind(),
                })
            }
        }
        self.common.push(op, row);
        Ok(())
    }

    fn finish(self) -> Result<RecordBatch> {
        let kind = self.kind();
        let middle = match self.kind {
            KindColumns::Event(b) => b.finish(),
            KindColumns::Story(b) => (b.finish(), Vec::new()),
            KindColumns::Exposure(b) => (b.finish(), Vec::new()),
        };
        Ok(RecordBatch::try_new(
            schema(kind),
            self.common.assemble(middle),
        )?)
    }
}

struct EventColumns {
    id: StringBuilder,
    name: StringBuilder,
    timestamp: TimestampMillisecondBuilder,
    user: StringBuilder,
    session: StringBuilder,
    props: StringBuilder,
    ctx: StringBuilder,
    anonymous: StringBuilder,
    call: StringBuilder,
}

impl EventColumns {
    fn new() -> Self {
        EventColumns {
            id: StringBuilder::new(),
            name: StringBuilder::new(),
            timestamp: times(),
            user: StringBuilder::new(),
            session: StringBuilder::new(),
            props: StringBuilder::new(),
            ctx: StringBuilder::new(),
            anonymous: StringBuilder::new(),
            call: StringBuilder::new(),
        }
    }

    fn push<S: Str, J: Obj>(&mut self, e: &Event<S, J>) {
        self.id.append_value(&*e.event_id);
        self.name.append_value(&*e.name);
        self.timestamp.append_value(e.timestamp);
        self.user.append_option(e.user_id.as_deref());
        self.session.append_option(e.session_id.as_deref());
        json(&mut self.props, &e.properties);
        json(&mut self.ctx, &e.context);
        self.anonymous.append_option(e.anonymous_id.as_deref());
        self.call.append_option(e.call.as_deref());
    }

    fn finish(mut self) -> KindArrays {
        let own: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.props.finish()),
            Arc::new(self.ctx.finish()),
        ];
        let added: Vec<ArrayRef> = vec![
            Arc::new(self.anonymous.finish()),
            Arc::new(self.call.finish()),
        ];
        (own, added)
    }
}

struct StoryColumns {
    id: StringBuilder,
    name: StringBuilder,
    user: StringBuilder,
    session: StringBuilder,
    started: TimestampMillisecondBuilder,
    ended: TimestampMillisecondBuilder,
    updated: TimestampMillisecondBuilder,
    outcome: StringBuilder,
    steps: ListBuilder<StructBuilder>,
    props: StringBuilder,
}

impl StoryColumns {
    fn new() -> Self {
        let step = StructBuilder::new(
            step_fields(),
            vec![
                Box::new(StringBuilder::new()),
                Box::new(times()),
                Box::new(StringBuilder::new()),
            ],
        );
        StoryColumns {
            id: StringBuilder::new(),
            name: StringBuilder::new(),
            user: StringBuilder::new(),
            session: StringBuilder::new(),
            started: times(),
            ended: times(),
            updated: times(),
            outcome: StringBuilder::new(),
            steps: ListBuilder::new(step),
            props: StringBuilder::new(),
        }
    }

    fn push<S: Str, J: Obj>(&mut self, s: &Story<S, J>) {
        self.id.append_value(&*s.story_id);
        self.name.append_value(&*s.name);
        self.user.append_option(s.user_id.as_deref());
        self.session.append_option(s.session_id.as_deref());
        self.started.append_value(s.started_at);
        self.ended.append_option(s.ended_at);
        self.updated.append_value(s.updated_at);
        self.outcome.append_value(s.outcome.as_str());
        let values = self.steps.values();
        for st in &s.steps {
            values
                .field_builder::<StringBuilder>(0)
                .expect("step name")
                .append_value(&*st.name);
            values
                .field_builder::<TimestampMillisecondBuilder>(1)
                .expect("step at")
                .append_value(st.at);
            let props = values
                .field_builder::<StringBuilder>(2)
                .expect("step props");
            json(props, &st.properties);
            values.append(true);
        }
        self.steps.append(true);
        json(&mut self.props, &s.properties);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.started.finish()),
            Arc::new(self.ended.finish()),
            Arc::new(self.updated.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.steps.finish()),
            Arc::new(self.props.finish()),
        ]
    }
}

struct ExposureColumns {
    experiment: StringBuilder,
    user: StringBuilder,
    variant: StringBuilder,
    exposed: TimestampMillisecondBuilder,
    updated: TimestampMillisecondBuilder,
    converted: BooleanBuilder,
    value: Float64Builder,
    props: StringBuilder,
}

impl ExposureColumns {
    fn new() -> Self {
        ExposureColumns {
            experiment: StringBuilder::new(),
            user: StringBuilder::new(),
            variant: StringBuilder::new(),
            exposed: times(),
            updated: times(),
            converted: BooleanBuilder::new(),
            value: Float64Builder::new(),
            props: StringBuilder::new(),
        }
    }

    fn push<S: Str, J: Obj>(&mut self, t: &Exposure<S, J>) {
        self.experiment.append_value(&*t.experiment);
        self.user.append_value(&*t.user_id);
        self.variant.append_value(&*t.variant);
        self.exposed.append_value(t.exposed_at);
        self.updated.append_value(t.updated_at);
        self.converted.append_option(t.converted);
        self.value.append_option(t.value);
        json(&mut self.props, &t.properties);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.experiment.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.variant.finish()),
            Arc::new(self.exposed.finish()),
            Arc::new(self.updated.finish()),
            Arc::new(self.converted.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.props.finish()),
        ]
    }
}

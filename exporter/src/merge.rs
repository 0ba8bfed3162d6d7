//! A streaming k-way merge of sorted lake files in local folders, in a fixed memory budget.
//!
//! Every lake file is sorted by `app_id`, then `ts` ([`SORT_COLUMNS`]). Merging such files
//! reads each a batch at a time and writes the rows out in the same order, so memory holds a
//! batch per input, never a whole hour. Batches are sized in bytes, from each file's own
//! statistics, so an hour of large stories takes no more memory than an hour of small events,
//! and no batch comes near Arrow's 2 GiB limit of 32-bit string offsets.
//!
//! Copies (rows equal on [`copy_columns`]) are byte-identical, so they share `app_id` and `ts`:
//! they meet within one run of rows that tie on the sort key, and only that run is searched for
//! them. Any copy may be kept.
//!
//! A file written before a nullable column existed (`extra`) reads that column as null.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{new_null_array, ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::DataType;
use arrow_select::interleave::interleave_record_batch;
use cauce_store::lake::schema::{copy_columns, SORT_COLUMNS};
use cauce_store::Kind;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;

use crate::error::{ExportError, Result};
use crate::file::{sort_columns, writer_properties};
use crate::schema::schema;

/// How the merge spends memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The most files merged at once; more inputs are merged in passes.
    pub fan_in: usize,
    /// The bytes of decoded rows held per input (and for the output batch).
    pub batch_bytes: usize,
}

impl Default for Budget {
    /// 16 inputs at 4 MiB a batch. A batch can stay pooled until the output batch that takes
    /// its last rows is written, so the peak is about twice `fan_in × batch_bytes`, plus the
    /// output's row group ([`crate::file::ROW_GROUP_BYTES`]): under 200 MiB.
    fn default() -> Self {
        Budget {
            fan_in: 16,
            batch_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What a merge read and wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    /// Rows read.
    pub rows_in: usize,
    /// Rows written (copies dropped).
    pub rows_out: usize,
}

/// The most and fewest rows in one batch, whatever the row size.
const MAX_BATCH_ROWS: usize = 8 * 1024;
const MIN_BATCH_ROWS: usize = 16;

/// Rows per batch for rows of `row_bytes` in `budget`.
fn batch_rows(row_bytes: usize, budget: &Budget) -> usize {
    (budget.batch_bytes / row_bytes.max(1)).clamp(MIN_BATCH_ROWS, MAX_BATCH_ROWS)
}

/// Gives a batch the lake's schema of its kind: a nullable column the file lacks is null; any
/// other difference makes the file a bad one.
fn conform(kind: Kind, batch: RecordBatch) -> Result<RecordBatch> {
    let target = schema(kind);
    if batch.schema() == target {
        return Ok(batch);
    }
    let columns = target
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => Err(ExportError::BadFile(format!(
                "column `{}` is {}, not {}",
                f.name(),
                c.data_type(),
                f.data_type()
            ))),
            None if f.is_nullable() => Ok(new_null_array(f.data_type(), batch.num_rows())),
            None => Err(ExportError::BadFile(format!(
                "a {kind} file without the column `{}`",
                f.name()
            ))),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(target, columns)?)
}

/// One input, read a batch at a time; its current batch is `pool[batch]`.
struct Cursor {
    kind: Kind,
    /// Where `app_id` and `ts` are in the kind's schema.
    sort: (usize, usize),
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    batch: usize,
    row: usize,
    len: usize,
    app: StringArray,
    ts: TimestampMillisecondArray,
}

/// Positions of the sort columns in the lake's schema.
fn sort_positions(kind: Kind) -> (usize, usize) {
    let s = schema(kind);
    let at = |c: &str| {
        s.index_of(c)
            .expect("the lake's schema has the sort columns")
    };
    (at(SORT_COLUMNS[0]), at(SORT_COLUMNS[1]))
}

/// A batch's sort columns.
fn sort_arrays(
    batch: &RecordBatch,
    (app, ts): (usize, usize),
) -> (StringArray, TimestampMillisecondArray) {
    (
        batch.column(app).as_string::<i32>().clone(),
        batch
            .column(ts)
            .as_primitive::<TimestampMillisecondType>()
            .clone(),
    )
}

/// Opens an input, and says how many rows its batches hold.
fn open(path: &Path, budget: &Budget) -> Result<(ParquetRecordBatchReader, usize)> {
    let file = File::open(path).map_err(|e| ExportError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| ExportError::BadFile(format!("{}: {e}", path.display())))?;
    let meta = builder.metadata();
    let rows = meta.file_metadata().num_rows().max(1) as usize;
    let bytes: i64 = meta.row_groups().iter().map(|g| g.total_byte_size()).sum();
    let rows_per_batch = batch_rows(bytes.max(0) as usize / rows, budget);
    Ok((
        builder.with_batch_size(rows_per_batch).build()?,
        rows_per_batch,
    ))
}

impl Cursor {
    /// The sort key of the current row.
    fn key(&self) -> (&str, i64) {
        (self.app.value(self.row), self.ts.value(self.row))
    }

    /// Loads the next non-empty batch into the pool; `false` when the file is done.
    fn load(&mut self, pool: &mut Vec<RecordBatch>) -> Result<bool> {
        for next in self.reader.by_ref() {
            let batch = conform(self.kind, next?).map_err(|e| match e {
                ExportError::BadFile(m) => {
                    ExportError::BadFile(format!("{}: {m}", self.path.display()))
                }
                e => e,
            })?;
            if batch.num_rows() > 0 {
                self.len = batch.num_rows();
                self.row = 0;
                self.batch = pool.len();
                (self.app, self.ts) = sort_arrays(&batch, self.sort);
                pool.push(batch);
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The copy key of one row: the values of [`copy_columns`], joined.
fn copy_key(batch: &RecordBatch, row: usize, columns: &[usize]) -> String {
    let mut key = String::new();
    for &c in columns {
        let column = batch.column(c);
        match column.data_type() {
            DataType::Utf8 => key.push_str(column.as_string::<i32>().value(row)),
            _ => key.push_str(
                &column
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .to_string(),
            ),
        }
        key.push('\u{1f}');
    }
    key
}

/// Merges sorted lake files of one kind into `sink`, in the lake's order and without copies,
/// a batch of at most `budget.batch_bytes` at a time. `inputs` must be at most `fan_in` long.
pub fn merge(
    kind: Kind,
    inputs: &[PathBuf],
    budget: &Budget,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<Merged> {
    let target = schema(kind);
    let copies: Vec<usize> = copy_columns(kind)
        .iter()
        .map(|c| target.index_of(c).expect("copy columns are columns"))
        .collect();
    let mut pool: Vec<RecordBatch> = Vec::new();
    let mut cursors = Vec::with_capacity(inputs.len());
    let sort = sort_positions(kind);
    let mut out_rows = MAX_BATCH_ROWS;
    for path in inputs {
        let (reader, rows) = open(path, budget)?;
        out_rows = out_rows.min(rows);
        let mut c = Cursor {
            kind,
            sort,
            path: path.clone(),
            reader,
            batch: 0,
            row: 0,
            len: 0,
            app: StringArray::new_null(0),
            ts: TimestampMillisecondArray::new_null(0),
        };
        if c.load(&mut pool)? {
            cursors.push(c);
        }
    }
    let mut stats = Merged::default();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(out_rows);
    let mut tie: Vec<(usize, usize)> = Vec::new();
    // The sort key of the run of tying rows: its app column and row, and its time.
    let mut tie_key: Option<(StringArray, usize, i64)> = None;
    loop {
        let next = (0..cursors.len()).min_by(|&a, &b| cursors[a].key().cmp(&cursors[b].key()));
        let Some(i) = next else { break };
        let c = &cursors[i];
        let (app, ts) = c.key();
        let same = tie_key
            .as_ref()
            .is_some_and(|(a, r, t)| *t == ts && a.value(*r) == app);
        if !same {
            settle(&pool, &mut tie, &copies, &mut out);
            if out.len() >= out_rows {
                stats.rows_out += emit(&mut pool, &mut out, &mut cursors, sink)?;
            }
            let c = &cursors[i];
            tie_key = Some((c.app.clone(), c.row, c.ts.value(c.row)));
        }
        let c = &mut cursors[i];
        tie.push((c.batch, c.row));
        stats.rows_in += 1;
        c.row += 1;
        if c.row == c.len && !c.load(&mut pool)? {
            cursors.swap_remove(i);
        }
    }
    settle(&pool, &mut tie, &copies, &mut out);
    stats.rows_out += emit(&mut pool, &mut out, &mut cursors, sink)?;
    Ok(stats)
}

/// Moves a run of rows that tie on the sort key to the output, one row per copy key.
fn settle(
    pool: &[RecordBatch],
    tie: &mut Vec<(usize, usize)>,
    copies: &[usize],
    out: &mut Vec<(usize, usize)>,
) {
    if tie.len() == 1 {
        out.push(tie[0]);
    } else {
        let mut seen: Vec<String> = Vec::with_capacity(tie.len());
        for &(b, r) in tie.iter() {
            let key = copy_key(&pool[b], r, copies);
            if !seen.contains(&key) {
                seen.push(key);
                out.push((b, r));
            }
        }
    }
    tie.clear();
}

/// Writes the gathered rows as one batch, then drops every pooled batch no cursor still reads.
fn emit(
    pool: &mut Vec<RecordBatch>,
    out: &mut Vec<(usize, usize)>,
    cursors: &mut [Cursor],
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<usize> {
    let n = out.len();
    if n > 0 {
        let refs: Vec<&RecordBatch> = pool.iter().collect();
        sink(interleave_record_batch(&refs, out)?)?;
        out.clear();
    }
    let mut kept = Vec::with_capacity(cursors.len());
    for c in cursors.iter_mut() {
        kept.push(pool[c.batch].clone());
        c.batch = kept.len() - 1;
    }
    *pool = kept;
    Ok(n)
}

/// Sorted lake files written to a local folder, each closed once it reaches the target size.
pub struct Outputs {
    dir: PathBuf,
    stem: String,
    target_bytes: u64,
    writer: Option<ArrowWriter<File>>,
    files: Vec<PathBuf>,
}

impl Outputs {
    /// Outputs named `{stem}-{n}.parquet` in `dir`, each about `target_bytes`.
    pub fn new(dir: &Path, stem: &str, target_bytes: u64) -> Self {
        Outputs {
            dir: dir.to_owned(),
            stem: stem.to_owned(),
            target_bytes,
            writer: None,
            files: Vec::new(),
        }
    }

    /// Appends a sorted batch, after every batch before it.
    pub fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let path = self
                    .dir
                    .join(format!("{}-{:04}.parquet", self.stem, self.files.len()));
                let file = File::create(&path).map_err(|e| ExportError::io(&path, e))?;
                let props = writer_properties(&sort_columns(&batch));
                self.files.push(path);
                self.writer
                    .insert(ArrowWriter::try_new(file, batch.schema(), Some(props))?)
            }
        };
        writer.write(&batch)?;
        if (writer.bytes_written() + writer.in_progress_size()) as u64 >= self.target_bytes {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.close()?;
        }
        Ok(())
    }

    /// Closes the last file and returns every file written, in order.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.close()?;
        Ok(std::mem::take(&mut self.files))
    }
}

/// Merges any number of sorted files of one kind into sorted outputs of about `target_bytes`
/// each in `dir`, in passes of at most `fan_in` files (intermediate runs go to `dir` too and
/// are removed once merged).
pub fn merge_all(
    kind: Kind,
    mut inputs: Vec<PathBuf>,
    dir: &Path,
    stem: &str,
    target_bytes: u64,
    budget: &Budget,
) -> Result<(Merged, Vec<PathBuf>)> {
    let fan_in = budget.fan_in.max(2);
    let mut rows_in = None;
    let mut pass = 0;
    while inputs.len() > fan_in {
        let mut next = Vec::new();
        for (n, group) in inputs.chunks(fan_in).enumerate() {
            let mut run = Outputs::new(dir, &format!("run-{pass}-{n}"), u64::MAX);
            let merged = merge(kind, group, budget, &mut |b| run.write(b))?;
            if pass == 0 {
                *rows_in.get_or_insert(0) += merged.rows_in;
            } else {
                // An intermediate run is done with once merged.
                group.iter().for_each(|f| drop(std::fs::remove_file(f)));
            }
            next.extend(run.finish()?);
        }
        inputs = next;
        pass += 1;
    }
    let mut outputs = Outputs::new(dir, stem, target_bytes);
    let merged = merge(kind, &inputs, budget, &mut |b| outputs.write(b))?;
    let files = outputs.finish()?;
    Ok((
        Merged {
            rows_in: rows_in.unwrap_or(merged.rows_in),
            rows_out: merged.rows_out,
        },
        files,
    ))
}

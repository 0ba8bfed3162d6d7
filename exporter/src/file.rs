//! One lake file: Parquet encoding with properties set on purpose (zstd, bounded row groups,
//! statistics on every column, and the sort order `app_id`, `ts` recorded in the file), and
//! decoding a file back into Arrow, for compaction and tests.

use arrow_array::RecordBatch;
use bytes::Bytes;
use cauce_store::lake::schema::SORT_COLUMNS;
use cauce_store::lake::Lake;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::Result;

/// Rows per row group, at most.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Bytes per row group, at most. `ArrowWriter` buffers one row group in memory: this bounds it.
pub const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// The writer properties of every lake file.
pub fn writer_properties(sorted_by: &[usize]) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(
            sorted_by
                .iter()
                .map(|&i| SortingColumn {
                    column_idx: i as i32,
                    descending: false,
                    nulls_first: false,
                })
                .collect(),
        ))
        .set_created_by("cauce".to_owned())
        .build()
}

/// The positions of `app_id` and `ts` in a batch's schema, the lake's sort order.
pub fn sort_columns(batch: &RecordBatch) -> Vec<usize> {
    SORT_COLUMNS
        .iter()
        .filter_map(|c| batch.schema().index_of(c).ok())
        .collect()
}

/// Encodes batches (of one schema, already sorted) as one Parquet file in memory.
pub fn encode(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let props = writer_properties(&sort_columns(first));
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, first.schema(), Some(props))?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(out)
}

/// Decodes one Parquet file.
pub fn decode(bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(64 * 1024)
        .build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// Decodes every Parquet file under a prefix, in key order.
pub async fn decode_prefix(lake: &dyn Lake, prefix: &str) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for o in lake.list(prefix).await? {
        if o.key.ends_with(".parquet") {
            out.extend(decode(lake.get(&o.key).await?)?);
        }
    }
    Ok(out)
}

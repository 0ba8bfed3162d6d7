//! Reading lake files back into Arrow, for compaction and tests.

use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::Result;
use crate::lake::Lake;

/// Decodes one Parquet file.
pub fn read_file(bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(64 * 1024)
        .build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// Reads every Parquet file under a prefix, in key order.
pub async fn read_prefix(lake: &dyn Lake, prefix: &str) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for o in lake.list(prefix).await? {
        if o.key.ends_with(".parquet") {
            out.extend(read_file(lake.get(&o.key).await?)?);
        }
    }
    Ok(out)
}

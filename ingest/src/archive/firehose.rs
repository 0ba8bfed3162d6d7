//! The raw archive through Amazon Data Firehose, for the `api` Lambda: each request's lines are
//! records of the delivery stream (`CAUCE_RAW_STREAM`), which buffers them and lands them
//! gzip-compressed in the raw bucket under `dt=YYYY-MM-DD/hour=HH/` (see
//! `terraform/modules/lake`). `PutRecordBatch` takes up to 500 records; records it refuses
//! (throttled) are sent again, a few times, before the put fails.

use async_trait::async_trait;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use aws_sdk_firehose::Client;

use super::RawArchive;
use crate::error::{IngestError, Result};

/// Records a `PutRecordBatch` call takes at most.
const BATCH: usize = 500;
/// Tries of the records that Firehose refused.
const TRIES: usize = 3;

/// A Firehose delivery stream.
#[derive(Debug, Clone)]
pub struct FirehoseArchive {
    client: Client,
    stream: String,
}

impl FirehoseArchive {
    /// The archive on the delivery stream named `stream`.
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        FirehoseArchive {
            client,
            stream: stream.into(),
        }
    }
}

#[async_trait]
impl RawArchive for FirehoseArchive {
    async fn put(&self, _received_at: i64, lines: Vec<Vec<u8>>) -> Result<()> {
        for chunk in lines.chunks(BATCH) {
            let mut records: Vec<Record> = chunk
                .iter()
                .map(|l| Record::builder().data(Blob::new(l.clone())).build())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| IngestError::aws("Firehose", "PutRecordBatch", e))?;
            for attempt in 1..=TRIES {
                let out = self
                    .client
                    .put_record_batch()
                    .delivery_stream_name(&self.stream)
                    .set_records(Some(records.clone()))
                    .send()
                    .await
                    .map_err(|e| IngestError::aws("Firehose", "PutRecordBatch", e))?;
                if out.failed_put_count() == 0 {
                    break;
                }
                let answers = out.request_responses();
                let first = answers.iter().find_map(|r| r.error_code()).unwrap_or("?");
                if attempt == TRIES {
                    return Err(IngestError::Partial {
                        operation: "PutRecordBatch",
                        failed: out.failed_put_count() as usize,
                        reason: first.to_owned(),
                    });
                }
                records = records
                    .into_iter()
                    .zip(answers)
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(rec, _)| rec)
                    .collect();
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

//! The AWS queue: SQS FIFO, with a FIFO dead-letter queue.
//!
//! Sends go out in `SendMessageBatch` calls (10 entries and 256 KiB at most each); entries that
//! SQS refuses are retried with exponential backoff. The message sequence number that SQS
//! assigns feeds `ingest_seq`. A message dead-lettered by Cauce carries its reason in the
//! `cauce_error` message attribute; the redrive policy is the safety net behind it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;

use super::{DeadLetter, Delivery, OutMessage, Queue};
use crate::error::{IngestError, Result};

/// The message attribute that carries a dead letter's reason.
pub const REASON_ATTRIBUTE: &str = "cauce_error";
/// The most entries in one SQS batch call.
const BATCH_ENTRIES: usize = 10;
/// The largest total payload of one `SendMessageBatch` call.
const BATCH_BYTES: usize = 256 * 1024;
/// How many times refused entries are retried.
const SEND_RETRIES: u32 = 5;

/// An SQS FIFO queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dlq_url: String,
    wait: Duration,
}

fn sqs_err<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
) -> impl Fn(E) -> IngestError {
    move |e| IngestError::aws("SQS", op, e)
}

impl SqsQueue {
    /// A queue over existing SQS FIFO queues. `wait` is the long-poll time of `receive`.
    pub fn new(client: Client, url: String, dlq_url: String, wait: Duration) -> Self {
        SqsQueue {
            client,
            url,
            dlq_url,
            wait,
        }
    }

    /// Creates `{name}.fifo` and its dead-letter queue `{name}-dlq.fifo` as the Terraform does,
    /// for tests and development. Messages received `max_receives` times move to the DLQ.
    pub async fn create(
        client: Client,
        name: &str,
        max_receives: u32,
        visibility_timeout: Duration,
    ) -> Result<Self> {
        let dlq = client
            .create_queue()
            .queue_name(format!("{name}-dlq.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .map_err(sqs_err("CreateQueue"))?;
        let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
        let attrs = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_err("GetQueueAttributes"))?;
        let dlq_arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receives,
        });
        let main = client
            .create_queue()
            .queue_name(format!("{name}.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(sqs_err("CreateQueue"))?;
        let url = main.queue_url().unwrap_or_default().to_owned();
        Ok(SqsQueue::new(client, url, dlq_url, Duration::from_secs(0)))
    }

    /// Receives up to `max` dead letters and keeps them hidden, with their receipt handles:
    /// the DLQ is FIFO, so each group shows only while its earlier messages are held.
    async fn hold_dead_letters(&self, max: usize) -> Result<Vec<(DeadLetter, String)>> {
        let mut held = Vec::new();
        while held.len() < max {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages((max - held.len()).clamp(1, BATCH_ENTRIES) as i32)
                .visibility_timeout(60)
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(sqs_err("ReceiveMessage"))?;
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                let dead = DeadLetter {
                    id: m.message_id().unwrap_or_default().to_owned(),
                    group: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                        .cloned()
                        .unwrap_or_default(),
                    body: m.body().unwrap_or_default().to_owned(),
                    reason: m
                        .message_attributes()
                        .and_then(|a| a.get(REASON_ATTRIBUTE))
                        .and_then(|v| v.string_value())
                        .unwrap_or("exceeded the redrive policy's receive count")
                        .to_owned(),
                };
                held.push((dead, m.receipt_handle().unwrap_or_default().to_owned()));
            }
        }
        Ok(held)
    }

    /// Makes held messages visible again at once.
    async fn let_go(&self, url: &str, held: &[(DeadLetter, String)]) -> Result<()> {
        let receipts: Vec<&str> = held.iter().map(|(_, r)| r.as_str()).collect();
        self.change_visibility(url, &receipts, 0).await
    }

    /// Hides received messages for `seconds` from now (0: visible at once).
    async fn change_visibility(&self, url: &str, receipts: &[&str], seconds: i32) -> Result<()> {
        for chunk in receipts.chunks(BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*receipt)
                        .visibility_timeout(seconds)
                        .build()
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_err("ChangeMessageVisibilityBatch"))?;
            refused("ChangeMessageVisibilityBatch", out.failed())?;
        }
        Ok(())
    }

    /// The messages of a queue, visible or in flight (approximately, as SQS counts them).
    async fn messages(&self, url: &str) -> Result<u64> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(sqs_err("GetQueueAttributes"))?;
        let attrs = out.attributes();
        let get = |n: QueueAttributeName| -> u64 {
            attrs
                .and_then(|a| a.get(&n))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    async fn send_batch(&self, batch: &[OutMessage]) -> Result<()> {
        let mut todo: Vec<usize> = (0..batch.len()).collect();
        for attempt in 0..=SEND_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let entries = todo
                .iter()
                .map(|&i| {
                    let m = &batch[i];
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .message_group_id(&m.group)
                        .message_deduplication_id(&m.dedup_id)
                        .build()
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_err("SendMessageBatch"))?;
            if out.failed().is_empty() {
                return Ok(());
            }
            if let Some(fatal) = out.failed().iter().find(|f| f.sender_fault()) {
                return Err(IngestError::Partial {
                    operation: "SendMessageBatch",
                    failed: out.failed().len(),
                    reason: format!("{}: {}", fatal.code(), fatal.message().unwrap_or("")),
                });
            }
            todo = out
                .failed()
                .iter()
                .filter_map(|f| f.id().parse().ok())
                .collect();
            tracing::warn!(
                failed = todo.len(),
                attempt,
                "SQS refused entries; retrying."
            );
        }
        Err(IngestError::Partial {
            operation: "SendMessageBatch",
            failed: todo.len(),
            reason: "still refused after retries".into(),
        })
    }
}

/// Fails when SQS refused any entry of a batch call.
fn refused(operation: &'static str, failed: &[BatchResultErrorEntry]) -> Result<()> {
    match failed.first() {
        None => Ok(()),
        Some(f) => Err(IngestError::Partial {
            operation,
            failed: failed.len(),
            reason: format!("{}: {}", f.code(), f.message().unwrap_or("")),
        }),
    }
}

/// Splits messages into `SendMessageBatch` calls of at most 10 entries and 256 KiB.
fn batches(messages: &[OutMessage]) -> Vec<&[OutMessage]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        let full = i - start == BATCH_ENTRIES || bytes + m.body.len() > BATCH_BYTES;
        if i > start && full {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += m.body.len();
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: Vec<OutMessage>) -> Result<()> {
        // Batches go one after another: a group's order across batches must hold.
        for batch in batches(&messages) {
            self.send_batch(batch).await?;
        }
        Ok(())
    }

    async fn receive(&self, max: usize) -> Result<Vec<Delivery>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, BATCH_ENTRIES) as i32)
            .wait_time_seconds(self.wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(sqs_err("ReceiveMessage"))?;
        out.messages()
            .iter()
            .map(|m| {
                let attr = |name: MessageSystemAttributeName| {
                    m.attributes().and_then(|a| a.get(&name)).cloned()
                };
                let id = m.message_id().unwrap_or_default().to_owned();
                Ok(Delivery {
                    sequence: attr(MessageSystemAttributeName::SequenceNumber)
                        .ok_or_else(|| IngestError::no_sequence(&id))?,
                    id,
                    receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                    group: attr(MessageSystemAttributeName::MessageGroupId).unwrap_or_default(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1),
                })
            })
            .collect()
    }

    async fn ack(&self, deliveries: &[Delivery]) -> Result<()> {
        for chunk in deliveries.chunks(BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&d.receipt)
                        .build()
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_err("DeleteMessageBatch"))?;
            refused("DeleteMessageBatch", out.failed())?;
        }
        Ok(())
    }

    async fn release(
        &self,
        deliveries: &[Delivery],
        reason: &str,
        retry_in: Duration,
    ) -> Result<()> {
        // SQS hides a message for at most 12 hours.
        let hide = retry_in.as_secs().min(43_200) as i32;
        tracing::warn!(
            messages = deliveries.len(),
            error = reason,
            "Releasing messages for a retry."
        );
        let receipts: Vec<&str> = deliveries.iter().map(|d| d.receipt.as_str()).collect();
        self.change_visibility(&self.url, &receipts, hide).await
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        let reason_attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason)
            .build()?;
        self.client
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(&delivery.body)
            .message_group_id(&delivery.group)
            .message_deduplication_id(cauce_store::keys::content_hash(delivery.id.as_bytes()))
            .message_attributes(REASON_ATTRIBUTE, reason_attr)
            .send()
            .await
            .map_err(sqs_err("SendMessage"))?;
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&delivery.receipt)
            .send()
            .await
            .map_err(sqs_err("DeleteMessage"))?;
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>> {
        let held = self.hold_dead_letters(max).await?;
        self.let_go(&self.dlq_url, &held).await?;
        Ok(held.into_iter().map(|(d, _)| d).collect())
    }

    async fn replay(&self, ids: &[String]) -> Result<usize> {
        let held = self.hold_dead_letters(usize::MAX).await?;
        let (chosen, others): (Vec<_>, Vec<_>) =
            held.into_iter().partition(|(d, _)| ids.contains(&d.id));
        self.let_go(&self.dlq_url, &others).await?;
        for (dead, receipt) in &chosen {
            // A dedup id of its own per dead letter: a replay that is retried within SQS's
            // five minutes sends it once.
            let dedup = cauce_store::keys::content_hash(format!("replay\0{}", dead.id).as_bytes());
            self.client
                .send_message()
                .queue_url(&self.url)
                .message_body(&dead.body)
                .message_group_id(&dead.group)
                .message_deduplication_id(dedup)
                .send()
                .await
                .map_err(sqs_err("SendMessage"))?;
            self.client
                .delete_message()
                .queue_url(&self.dlq_url)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(sqs_err("DeleteMessage"))?;
        }
        Ok(chosen.len())
    }

    async fn pending(&self) -> Result<u64> {
        self.messages(&self.url).await
    }

    async fn dead_lettered(&self) -> Result<u64> {
        self.messages(&self.dlq_url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(bytes: usize) -> OutMessage {
        OutMessage::new("g".into(), "x".repeat(bytes), 1)
    }

    #[test]
    fn batches_respect_entry_and_byte_limits() {
        let many: Vec<_> = (0..23).map(|_| msg(10)).collect();
        let sizes: Vec<_> = batches(&many).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
        let big: Vec<_> = (0..3).map(|_| msg(100 * 1024)).collect();
        let sizes: Vec<_> = batches(&big).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![2, 1]);
    }
}

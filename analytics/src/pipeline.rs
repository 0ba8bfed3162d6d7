//! How far the lake of the AWS deployment is complete, from what AWS itself measures of the
//! pipeline in front of it. The `reporter` Lambda writes it as the lake's watermark
//! ([`cauce_store::lake::watermark`]) before each run, so its reports, and `cauce report` over
//! the S3 lake, say it and can gate on it as they do in embedded mode.
//!
//! A record is not in the lake yet while it waits in the ingest queue (SQS) or in a table's
//! stream that the exporter has not read. Neither service tells the receive time of its oldest
//! record, but both ages are measured every minute: the queue's `ApproximateAgeOfOldestMessage`
//! (`AWS/SQS`) and the exporter's `IteratorAge` (`AWS/Lambda`: how old the last record of each
//! stream batch it read was). A record still pending was received no earlier than the largest
//! of each age measured lately before now, so every record received before
//! `now − queue age − stream age − margin` is in the lake; the margin covers the metrics'
//! one-minute period, CloudWatch's delay in publishing them, and the API's requests in flight.
//!
//! An empty queue needs no metric. An exporter without an `IteratorAge` for [`RECENT_MS`] has
//! read nothing: the streams are idle (a stuck one is retried and keeps reporting its age; a
//! mapping turned off is not seen). A queue that holds messages without a recent age is
//! unknown: then no watermark is written, and the last one stands. Records in a dead-letter
//! queue are not in the lake until they are sent again; the alarms report them.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_sqs::types::QueueAttributeName;

use cauce_store::lake::watermark::Watermark;

use crate::error::{AnalyticsError, Result};

/// The largest delay allowed for: the metrics' one-minute period, CloudWatch's publication
/// delay (a few minutes) and the requests the API holds before the queue has them.
pub const MARGIN_MS: i64 = 5 * 60_000;

/// How far back the ages are read: an age older than this is not the pipeline's state now.
pub const RECENT_MS: i64 = 10 * 60_000;

/// The parts of the deployment whose ages bound the lake's completeness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// The ingest queue's URL (`CAUCE_QUEUE_URL`).
    pub queue_url: String,
    /// The exporter function's name (`CAUCE_EXPORTER_FUNCTION`).
    pub exporter_function: String,
}

impl Pipeline {
    /// The pipeline from the environment, when both of its settings are there.
    pub fn from_env() -> Result<Option<Pipeline>> {
        let queue = std::env::var("CAUCE_QUEUE_URL").ok();
        let exporter = std::env::var("CAUCE_EXPORTER_FUNCTION").ok();
        match (queue, exporter) {
            (Some(queue_url), Some(exporter_function)) => Ok(Some(Pipeline {
                queue_url,
                exporter_function,
            })),
            (None, None) => Ok(None),
            _ => Err(AnalyticsError::Invalid(
                "CAUCE_QUEUE_URL and CAUCE_EXPORTER_FUNCTION go together: set both or neither"
                    .into(),
            )),
        }
    }

    /// The queue's name, the last part of its URL (the metrics' `QueueName`).
    pub fn queue_name(&self) -> &str {
        self.queue_url.rsplit('/').next().unwrap_or(&self.queue_url)
    }
}

/// What was measured: how far behind each part is, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lags {
    /// The oldest queued message's age: 0 when the queue is empty, `None` when it holds
    /// messages whose age was not measured lately.
    pub queue_ms: Option<i64>,
    /// The exporter's largest iterator age lately: 0 when it read nothing.
    pub stream_ms: i64,
}

/// The watermark that `lags`, measured at `now_ms`, give; `None` when the queue's is unknown.
pub fn watermark(lags: Lags, now_ms: i64) -> Option<Watermark> {
    let behind = lags.queue_ms? + lags.stream_ms + MARGIN_MS;
    Some(Watermark::new(now_ms - behind, now_ms))
}

/// Measures the pipeline's lags at `now_ms`.
pub async fn measure(
    sqs: &aws_sdk_sqs::Client,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    pipeline: &Pipeline,
    now_ms: i64,
) -> Result<Lags> {
    let counts = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ];
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&pipeline.queue_url)
        .set_attribute_names(Some(counts.to_vec()))
        .send()
        .await
        .map_err(|e| AnalyticsError::aws("sqs:GetQueueAttributes", e.into_service_error()))?;
    let held: u64 = attributes
        .attributes()
        .into_iter()
        .flatten()
        .filter(|(name, _)| counts.contains(name))
        .map(|(_, n)| n.parse::<u64>().unwrap_or(u64::MAX))
        .sum();
    let queue_ms = if held == 0 {
        Some(0)
    } else {
        let name = pipeline.queue_name();
        let seconds = largest(cloudwatch, SQS_AGE, ("QueueName", name), now_ms).await?;
        seconds.map(|s| (s * 1000.0) as i64)
    };
    let exporter = ("FunctionName", pipeline.exporter_function.as_str());
    let ms = largest(cloudwatch, ITERATOR_AGE, exporter, now_ms).await?;
    Ok(Lags {
        queue_ms,
        stream_ms: ms.map_or(0, |ms| ms as i64),
    })
}

/// The queue's oldest message's age (`AWS/SQS`), seconds.
const SQS_AGE: (&str, &str) = ("AWS/SQS", "ApproximateAgeOfOldestMessage");

/// The exporter's iterator age (`AWS/Lambda`), ms.
const ITERATOR_AGE: (&str, &str) = ("AWS/Lambda", "IteratorAge");

/// The largest value of a metric (its namespace and name) for one dimension over the last
/// [`RECENT_MS`] before `now_ms`; `None` without a datapoint.
async fn largest(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    (namespace, metric): (&str, &str),
    (dimension, value): (&str, &str),
    now_ms: i64,
) -> Result<Option<f64>> {
    let out = cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(Dimension::builder().name(dimension).value(value).build())
        .start_time(DateTime::from_millis(now_ms - RECENT_MS))
        .end_time(DateTime::from_millis(now_ms))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            AnalyticsError::aws("cloudwatch:GetMetricStatistics", e.into_service_error())
        })?;
    Ok(out
        .datapoints()
        .iter()
        .filter_map(|d| d.maximum())
        .reduce(f64::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_behind_by_both_ages_and_the_margin_or_unknown() {
        let now = 1_790_000_000_000;
        let idle = Lags {
            queue_ms: Some(0),
            stream_ms: 0,
        };
        assert_eq!(
            watermark(idle, now).unwrap().complete_before_ms,
            now - MARGIN_MS
        );
        let behind = Lags {
            queue_ms: Some(90_000),
            stream_ms: 4_000,
        };
        let w = watermark(behind, now).unwrap();
        assert_eq!(w.complete_before_ms, now - 94_000 - MARGIN_MS);
        assert_eq!(w.written_at_ms, now);
        let unknown = Lags {
            queue_ms: None,
            stream_ms: 0,
        };
        assert_eq!(watermark(unknown, now), None);
        let p = Pipeline {
            queue_url: "https://sqs.eu-west-1.amazonaws.com/123/cauce-ingest.fifo".into(),
            exporter_function: "cauce-exporter".into(),
        };
        assert_eq!(p.queue_name(), "cauce-ingest.fifo");
    }
}

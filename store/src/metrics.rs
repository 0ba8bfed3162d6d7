//! One metrics vocabulary for both modes, through the `metrics` facade: every stage records
//! under the names in [`CATALOG`]; `cauce serve` serves them as Prometheus text at `/metrics`,
//! and the Lambdas print them in CloudWatch's Embedded Metric Format ([`emf`]).
//!
//! Labels are bounded: `kind` (3 values), `code` (the API's error codes), `route` (the route
//! patterns), `status`, `outcome`, `reason`; and `app`, which is the app's id for the first
//! [`apps_limit`] apps a process sees and `other` after them (`all` when the limit is 0), so a
//! deployment with thousands of apps cannot blow up a time-series database or a CloudWatch bill.

pub mod emf;

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};

use metrics::Unit;

/// Items the API accepted (durable in the queue). Labels: `kind`, `app`.
pub const ITEMS_ACCEPTED: &str = "cauce_items_accepted_total";
/// Items the API rejected. Labels: `kind`, `code`, `app`.
pub const ITEMS_REJECTED: &str = "cauce_items_rejected_total";
/// Items the writer found already stored (a resend): kept once. Labels: `kind`, `app`.
pub const ITEMS_DEDUPLICATED: &str = "cauce_items_deduplicated_total";
/// Items the writer stored (first copies and newer versions). Labels: `kind`, `app`.
pub const ITEMS_STORED: &str = "cauce_items_stored_total";
/// HTTP requests, by route pattern and status, with their latency. Labels: `route`, `status`.
pub const REQUEST_DURATION: &str = "cauce_request_duration_seconds";
/// Accepted items not yet stored (embedded queue; SQS has its own metrics).
pub const QUEUE_DEPTH: &str = "cauce_queue_depth";
/// Age of the oldest message in the queue (embedded queue).
pub const QUEUE_OLDEST_AGE: &str = "cauce_queue_oldest_age_seconds";
/// Messages in the dead letters now (embedded queue).
pub const DEAD_LETTERS: &str = "cauce_dead_letters";
/// Messages per writer batch.
pub const WRITER_BATCH: &str = "cauce_writer_batch_messages";
/// Messages the writer could not store. Labels: `reason` (`transient`: retried; `poison`:
/// dead-lettered).
pub const WRITER_FAILURES: &str = "cauce_writer_failures_total";
/// Messages moved to the dead letters.
pub const DEAD_LETTERED: &str = "cauce_dead_lettered_total";
/// Changes the exporter has not yet written to the lake (embedded change feed).
pub const EXPORT_LAG_RECORDS: &str = "cauce_export_lag_records";
/// How far the lake is behind: the age of the oldest change not yet in it (embedded, measured
/// at each scrape), or of the oldest record in the batch just written (the Lambda).
pub const EXPORT_LAG_SECONDS: &str = "cauce_export_lag_seconds";
/// Parquet files written to the lake. Labels: `kind`.
pub const EXPORT_FILES: &str = "cauce_export_files_total";
/// Bytes of Parquet written to the lake. Labels: `kind`.
pub const EXPORT_BYTES: &str = "cauce_export_bytes_total";
/// Rows written to the lake. Labels: `kind`.
pub const EXPORT_ROWS: &str = "cauce_export_rows_total";
/// Changes the exporter could not turn into rows, archived under `bad_rows/`.
pub const EXPORT_BAD_ROWS: &str = "cauce_export_bad_rows_total";
/// Compaction runs. Labels: `outcome` (`ok`, `error`).
pub const COMPACTION_RUNS: &str = "cauce_compaction_runs_total";
/// Files compaction read.
pub const COMPACTION_INPUTS: &str = "cauce_compaction_input_files_total";
/// Files compaction wrote.
pub const COMPACTION_OUTPUTS: &str = "cauce_compaction_output_files_total";
/// Report runs. Labels: `outcome` (`ok`, `error`).
pub const REPORT_RUNS: &str = "cauce_report_runs_total";
/// How long a report run took.
pub const REPORT_DURATION: &str = "cauce_report_duration_seconds";
/// Lambda cold starts (a new execution environment), under the `function` dimension.
pub const COLD_STARTS: &str = "cauce_cold_starts_total";

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Only goes up (Prometheus counter; an EMF value per flush is the increase since the last).
    Counter,
    /// A level, set when it is measured.
    Gauge,
    /// A distribution of values.
    Histogram,
}

/// One metric of the vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Its name, the same in Prometheus and in CloudWatch.
    pub name: &'static str,
    /// What it is.
    pub kind: Type,
    /// Its unit.
    pub unit: Unit,
    /// Its labels (dimensions in CloudWatch).
    pub labels: &'static [&'static str],
    /// What it counts, for Prometheus' `# HELP`.
    pub help: &'static str,
}

const fn metric(
    name: &'static str,
    kind: Type,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

use Type::{Counter, Gauge, Histogram};

/// Every metric Cauce records, with its unit and labels.
#[rustfmt::skip]
pub const CATALOG: &[Metric] = &[
    metric(ITEMS_ACCEPTED, Counter, Unit::Count, &["kind", "app"], "Items accepted by the API (durable in the queue)."),
    metric(ITEMS_REJECTED, Counter, Unit::Count, &["kind", "code", "app"], "Items rejected by the API, by error code."),
    metric(ITEMS_DEDUPLICATED, Counter, Unit::Count, &["kind", "app"], "Items the writer found already stored (resends), kept once."),
    metric(ITEMS_STORED, Counter, Unit::Count, &["kind", "app"], "Items the writer stored: first copies and newer versions."),
    metric(REQUEST_DURATION, Histogram, Unit::Seconds, &["route", "status"], "HTTP request latency, by route pattern and status."),
    metric(QUEUE_DEPTH, Gauge, Unit::Count, &[], "Accepted items waiting in the queue (embedded)."),
    metric(QUEUE_OLDEST_AGE, Gauge, Unit::Seconds, &[], "Age of the oldest message in the queue (embedded)."),
    metric(DEAD_LETTERS, Gauge, Unit::Count, &[], "Messages in the dead letters (embedded)."),
    metric(WRITER_BATCH, Histogram, Unit::Count, &[], "Messages per writer batch."),
    metric(WRITER_FAILURES, Counter, Unit::Count, &["reason"], "Messages the writer could not store: transient (retried) or poison (dead-lettered)."),
    metric(DEAD_LETTERED, Counter, Unit::Count, &[], "Messages moved to the dead letters."),
    metric(EXPORT_LAG_RECORDS, Gauge, Unit::Count, &[], "Changes not yet in the lake (embedded change feed)."),
    metric(EXPORT_LAG_SECONDS, Gauge, Unit::Seconds, &[], "How far the lake is behind: age of the oldest record not yet in it (embedded) or in the batch just written (Lambda)."),
    metric(EXPORT_FILES, Counter, Unit::Count, &["kind"], "Parquet files written to the lake."),
    metric(EXPORT_BYTES, Counter, Unit::Bytes, &["kind"], "Bytes of Parquet written to the lake."),
    metric(EXPORT_ROWS, Counter, Unit::Count, &["kind"], "Rows written to the lake."),
    metric(EXPORT_BAD_ROWS, Counter, Unit::Count, &[], "Changes that could not be exported, archived under bad_rows/."),
    metric(COMPACTION_RUNS, Counter, Unit::Count, &["outcome"], "Compaction runs."),
    metric(COMPACTION_INPUTS, Counter, Unit::Count, &[], "Files compaction read."),
    metric(COMPACTION_OUTPUTS, Counter, Unit::Count, &[], "Files compaction wrote."),
    metric(REPORT_RUNS, Counter, Unit::Count, &["outcome"], "Report runs."),
    metric(REPORT_DURATION, Histogram, Unit::Seconds, &[], "How long a report run took."),
    metric(COLD_STARTS, Counter, Unit::Count, &[], "Lambda cold starts."),
];

/// Gives the installed recorder every metric's unit and help text.
pub fn describe() {
    for m in CATALOG {
        match m.kind {
            Counter => metrics::describe_counter!(m.name, m.unit, m.help),
            Gauge => metrics::describe_gauge!(m.name, m.unit, m.help),
            Histogram => metrics::describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

/// The default of [`apps_limit`].
pub const DEFAULT_APPS: usize = 100;

/// How many apps get a label of their own: `CAUCE_METRICS_APPS`, else [`DEFAULT_APPS`].
pub fn apps_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("CAUCE_METRICS_APPS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_APPS)
    })
}

/// The `app` label of `app_id`: itself for the first [`apps_limit`] apps this process saw, then
/// `other`; `all` when the limit is 0.
pub fn app_label(app_id: &str) -> String {
    static SEEN: OnceLock<AppLabels> = OnceLock::new();
    SEEN.get_or_init(|| AppLabels::new(apps_limit()))
        .label(app_id)
}

/// The apps that have a label of their own, up to a limit.
#[derive(Debug, Default)]
struct AppLabels {
    limit: usize,
    seen: RwLock<HashSet<String>>,
}

impl AppLabels {
    fn new(limit: usize) -> Self {
        AppLabels {
            limit,
            seen: RwLock::default(),
        }
    }

    fn label(&self, app_id: &str) -> String {
        if self.limit == 0 {
            return "all".to_owned();
        }
        let known = |seen: &HashSet<String>| seen.contains(app_id);
        if known(&self.seen.read().unwrap_or_else(|p| p.into_inner())) {
            return app_id.to_owned();
        }
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if known(&seen) || seen.len() < self.limit {
            seen.insert(app_id.to_owned());
            return app_id.to_owned();
        }
        "other".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_names_each_metric_once_in_prometheus_style() {
        let mut names = HashSet::new();
        for m in CATALOG {
            assert!(names.insert(m.name), "{} twice", m.name);
            assert!(m.name.starts_with("cauce_"), "{}", m.name);
            let counter_suffix = m.name.ends_with("_total");
            assert_eq!(counter_suffix, m.kind == Counter, "{}", m.name);
        }
    }

    #[test]
    fn apps_past_the_limit_share_one_label() {
        let labels = AppLabels::new(2);
        assert_eq!(labels.label("a"), "a");
        assert_eq!(labels.label("b"), "b");
        assert_eq!(labels.label("c"), "other");
        assert_eq!(labels.label("a"), "a");
        assert_eq!(AppLabels::new(0).label("a"), "all");
    }
}

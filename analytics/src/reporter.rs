//! The scheduled reporter: every report over the lake, written back to the lake per app.
//!
//! Objects written (keys relative to the lake's root):
//! * `reports/{app}/{report}.json`: `{app_id, report, generated_at, scope, data}`, where `data`
//!   is the report's JSON (see [`crate::output::json`]);
//! * `reports/{app}/dashboard.html`: the app's self-contained page;
//! * `reports/index.json`: `{generated_at, apps}`.
//!
//! The keys are [`cauce_store::lake::layout`]'s. The Lambda `reporter` runs
//! [`handle`] on an EventBridge schedule over the S3 lake; `cauce serve` runs [`publish`] on an
//! interval over `DATA/lake`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use cauce_store::lake::layout::{dashboard_key, report_key, REPORTS_INDEX};
use cauce_store::lake::watermark::Watermark;
use cauce_store::lake::Lake;

use crate::error::Result;
use crate::output::{html, json};
use crate::report::{self, Reports, Settings};
use crate::source::{LakeSource, Scope};

/// How many event days a scheduled run reports on by default: a quarter, enough for
/// retention cohorts, anomaly baselines and most experiments.
pub const REPORT_DAYS: u32 = 90;

/// The `reporter` Lambda's settings, read once from the environment at start.
#[derive(Debug, Clone, PartialEq)]
pub struct ReporterSettings {
    /// `CAUCE_LAKE`: where the lake is, `s3://bucket/prefix`.
    pub lake: String,
    /// `CAUCE_REPORT_DAYS` (default [`REPORT_DAYS`]; 0 = the whole lake): the event days
    /// reported on, up to the run's day. Only their partitions are read.
    pub days: u32,
    /// `CAUCE_REPORT_MAX_GB` (default 9): the most Parquet a run copies to `/tmp` (a Lambda
    /// has at most 10 GB); past it the run fails and says how much its scope holds.
    pub max_bytes: u64,
    /// `CAUCE_QUEUE_URL` and `CAUCE_EXPORTER_FUNCTION`: the pipeline whose ages give the lake's
    /// watermark, written before each run (see [`crate::pipeline`]); none, no watermark.
    #[cfg(feature = "aws")]
    pub pipeline: Option<crate::pipeline::Pipeline>,
    /// `CAUCE_FEATURES` (default `true`): whether each run also writes the feature table for ML
    /// ([`crate::features::AsOf::scheduled`]), from the same days as the reports.
    pub features: bool,
}

impl ReporterSettings {
    /// Reads the settings; a missing or malformed one is an error that names it.
    pub fn from_env() -> Result<Self> {
        use cauce_store::env::{parsed, required};
        let max_gb: f64 = parsed("CAUCE_REPORT_MAX_GB", 9.0, "a number of GB")?;
        let settings = ReporterSettings {
            lake: required("CAUCE_LAKE")?,
            days: parsed("CAUCE_REPORT_DAYS", REPORT_DAYS, "a whole number of days")?,
            max_bytes: (max_gb * 1e9) as u64,
            #[cfg(feature = "aws")]
            pipeline: crate::pipeline::Pipeline::from_env()?,
            features: parsed("CAUCE_FEATURES", true, "true or false")?,
        };
        settings.check()?;
        Ok(settings)
    }

    /// Refuses settings whose days are too few for the feature table's windows.
    pub fn check(&self) -> Result<()> {
        use crate::features::{LONGEST_WINDOW, SCHEDULED_DAYS, SCHEDULED_HORIZON_DAYS};
        if self.features && self.days > 0 && self.days < SCHEDULED_DAYS {
            return Err(crate::error::AnalyticsError::Invalid(format!(
                "CAUCE_REPORT_DAYS is {}, but the feature table reads {SCHEDULED_DAYS} days \
                 ({LONGEST_WINDOW} before its as-of day and a {SCHEDULED_HORIZON_DAYS}-day \
                 horizon after it): set at least {SCHEDULED_DAYS}, 0 for the whole lake, or \
                 CAUCE_FEATURES=false",
                self.days
            )));
        }
        Ok(())
    }
}

/// What a run wrote.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Published {
    /// The apps reported on.
    pub apps: Vec<String>,
    /// The objects written.
    pub objects: usize,
    /// When the reports were computed.
    pub generated_at: String,
    /// The feature table, when the run wrote one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<crate::features::Published>,
}

/// Describes a scope and the lake's completeness for people.
pub fn describe_complete(scope: &Scope, watermark: Option<&Watermark>) -> String {
    let complete = match watermark {
        Some(w) => format!("the lake is complete before {}", w.complete_before),
        None => "the lake's completeness is unknown (no watermark)".to_owned(),
    };
    format!("{}; {complete}", describe(scope))
}

/// Describes a scope for people.
pub fn describe(scope: &Scope) -> String {
    let day = |d: Option<chrono::NaiveDate>, open: &str| {
        d.map_or_else(|| open.to_owned(), |d| d.to_string())
    };
    format!(
        "event days {} to {}",
        day(scope.from, "the first"),
        day(scope.to, "the last")
    )
}

/// Renders every app's objects: pure apart from the lake read.
pub fn render(
    source: &LakeSource,
    scope: &Scope,
    settings: &Settings,
    watermark: Option<&Watermark>,
    now: DateTime<Utc>,
) -> Result<(Published, Vec<(String, Bytes)>)> {
    let reports = report::run(source, scope, &report::ALL, settings)?;
    render_reports(&reports, scope, watermark, now)
}

/// Renders the objects of reports already computed. Each says up to when the lake was
/// complete (`complete_before`, null without a watermark).
pub fn render_reports(
    reports: &Reports,
    scope: &Scope,
    watermark: Option<&Watermark>,
    now: DateTime<Utc>,
) -> Result<(Published, Vec<(String, Bytes)>)> {
    let complete_before = watermark.map(|w| w.complete_before.clone());
    let generated_at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let apps = reports.apps()?;
    let mut objects = Vec::new();
    for app in &apps {
        let mine = reports.for_app(app)?;
        for r in &mine.0 {
            let body = json!({
                "app_id": app, "report": r.name, "generated_at": generated_at,
                "scope": describe(scope), "complete_before": complete_before,
                "data": json::report(r)?,
            });
            objects.push((report_key(app, r.name), Bytes::from(body.to_string())));
        }
        let subtitle = format!(
            "{}; generated {generated_at}",
            describe_complete(scope, watermark)
        );
        let page = html::page(app, &subtitle, &mine)?;
        objects.push((dashboard_key(app), Bytes::from(page)));
    }
    let index = json!({"generated_at": generated_at, "apps": apps});
    objects.push((REPORTS_INDEX.into(), Bytes::from(index.to_string())));
    let published = Published {
        apps,
        objects: objects.len(),
        generated_at,
        features: None,
    };
    Ok((published, objects))
}

/// Writes rendered objects to the lake, each whole.
pub async fn write(lake: &dyn Lake, objects: Vec<(String, Bytes)>) -> Result<()> {
    for (key, bytes) in objects {
        lake.put(&key, bytes).await?;
    }
    Ok(())
}

/// Computes every app's reports from `source` as of `now` and writes them into `lake`.
/// Reports are CPU work: this blocks the thread while Polars runs (on a multi-threaded runtime).
pub async fn publish(
    lake: &dyn Lake,
    source: &LakeSource,
    scope: &Scope,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Published> {
    use cauce_store::metrics::{REPORT_DURATION, REPORT_RUNS};
    let start = std::time::Instant::now();
    let run = async {
        let watermark = cauce_store::lake::watermark::read(lake).await?;
        let (published, objects) = tokio::task::block_in_place(|| {
            render(source, scope, settings, watermark.as_ref(), now)
        })?;
        write(lake, objects).await?;
        Ok(published)
    };
    let result = run.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(REPORT_RUNS, "outcome" => outcome).increment(1);
    metrics::histogram!(REPORT_DURATION).record(start.elapsed().as_secs_f64());
    result
}

/// Writes the lake's watermark from the pipeline's ages, now. A failure, or a queue whose age is
/// unknown, is logged and leaves the last watermark: the reports are still made, and say how
/// complete the lake is by the one there.
#[cfg(feature = "aws")]
pub async fn mark_complete(lake: &dyn Lake, pipeline: &crate::pipeline::Pipeline) {
    let config = cauce_store::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let now = cauce_store::time::now_ms();
    let written = match crate::pipeline::measure(&sqs, &cloudwatch, pipeline, now).await {
        Ok(lags) => match crate::pipeline::watermark(lags, now) {
            Some(mark) => cauce_store::lake::watermark::write(lake, &mark)
                .await
                .map(|()| {
                    tracing::info!(complete_before = %mark.complete_before, ?lags, "Watermark written.");
                })
                .map_err(crate::error::AnalyticsError::from),
            None => {
                tracing::warn!(?lags, "The queue holds messages of unknown age: the watermark is left as it was.");
                Ok(())
            }
        },
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "The lake's watermark was not written; the last one stands.");
    }
}

/// The Lambda handler for an EventBridge schedule event: copies the Parquet of the last
/// `run.days` event days (as of the event's time) to `/tmp`, computes every report over them,
/// and writes the objects back under `reports/`; then, unless `run.features` is off, the
/// feature table as of the event's time ([`crate::features::AsOf::scheduled`]) from the same
/// days, under `features/`.
#[cfg(feature = "aws")]
pub async fn handle(
    lake: &dyn Lake,
    run: &ReporterSettings,
    settings: &Settings,
    event: &aws_lambda_events::event::eventbridge::EventBridgeEvent,
) -> Result<Published> {
    tracing::info!(source = %event.source, days = run.days, "Scheduled report run.");
    run.check()?;
    if let Some(pipeline) = &run.pipeline {
        mark_complete(lake, pipeline).await;
    }
    let now = event.time.unwrap_or_else(Utc::now);
    let scope = Scope::last_days(run.days, now.date_naive());
    let source = LakeSource::fetch(lake, &scope, run.max_bytes).await?;
    let mut published = publish(lake, &source, &scope, settings, now).await?;
    tracing::info!(
        apps = published.apps.len(),
        objects = published.objects,
        "Reports written."
    );
    if run.features {
        let as_of = crate::features::AsOf::scheduled(now);
        let table = crate::features::publish(&source, lake, &as_of, now.timestamp_millis()).await?;
        tracing::info!(rows = table.rows, table = %table.table, "Feature table written.");
        published.features = Some(table);
    }
    Ok(published)
}

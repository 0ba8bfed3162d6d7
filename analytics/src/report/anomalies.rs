//! `anomalies`: hours whose volume departs from a robust seasonal baseline.
//!
//! Method: every hour from an app's first to its last active hour is counted (hours without
//! events count 0). The baseline of an hour is the median count of all hours at the same hour
//! of the day (UTC) in scope, which absorbs daily seasonality; the spread is their median
//! absolute deviation (MAD). The score is `(events − baseline) / scale`, where `scale` is
//! `1.4826 × MAD` (the normal-consistent MAD) but at least `sqrt(max(baseline, 1))`, the Poisson
//! noise of a count, so that very regular series do not turn small wobbles into anomalies. An
//! hour is a `spike` when `score ≥ threshold` and a `drop` when `score ≤ −threshold`. Hours of
//! the day with fewer than `min_baseline_days` values have no baseline and are not scored, and
//! an hour is judged only when its count or its baseline reaches `min_events` (sparse hours
//! swing by whole sessions).

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order, Settings};
use crate::error::Result;
use crate::exprs::{count, hour, hour_of_day};
use crate::source::{LakeSource, Scope};

/// The normal-consistency factor of the MAD.
const MAD_SCALE: f64 = 1.4826;

fn larger(a: Expr, b: Expr) -> Expr {
    when(a.clone().gt_eq(b.clone())).then(a).otherwise(b)
}

/// Rows `{app_id, hour, events, baseline, score, kind}` for the anomalous hours, by app and hour.
pub fn anomalies(source: &LakeSource, scope: &Scope, settings: &Settings) -> Result<DataFrame> {
    let counts = source
        .frame(Kind::Event, scope)?
        .group_by([col("app_id"), hour()])
        .agg([count("events")]);
    let every_hour = datetime_ranges(
        Some(col("first")),
        Some(col("last")),
        Some(Duration::parse("1h")),
        None,
        ClosedWindow::Both,
        Some(TimeUnit::Milliseconds),
        Some(TimeZone::UTC),
    )?;
    let hours = counts
        .clone()
        .group_by([col("app_id")])
        .agg([
            col("hour").min().alias("first"),
            col("hour").max().alias("last"),
        ])
        .select([col("app_id"), every_hour.alias("hour")])
        .explode(cols(["hour"]), crate::exprs::EXPLODE)
        .join(
            counts,
            [col("app_id"), col("hour")],
            [col("app_id"), col("hour")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([col("events").fill_null(lit(0i64)), hour_of_day("hour")]);
    let per_hour_of_day = [col("app_id"), col("hour_of_day")];
    let events = || col("events").cast(DataType::Float64);
    let baseline = events().median().over(per_hour_of_day.clone())?;
    let mad = (events() - col("baseline"))
        .abs()
        .median()
        .over(per_hour_of_day.clone())?;
    let samples = len().over(per_hour_of_day)?;
    let scale = larger(
        col("mad") * lit(MAD_SCALE),
        larger(col("baseline"), lit(1.0)).sqrt(),
    );
    let threshold = settings.anomaly_threshold;
    let min_events = f64::from(settings.min_events);
    collect(
        hours
            .with_columns([baseline.alias("baseline"), samples.alias("samples")])
            .with_column(mad.alias("mad"))
            .filter(col("samples").gt_eq(lit(settings.min_baseline_days)))
            .filter(
                events()
                    .gt_eq(lit(min_events))
                    .or(col("baseline").gt_eq(lit(min_events))),
            )
            .with_column(((events() - col("baseline")) / scale).alias("score"))
            .filter(col("score").abs().gt_eq(lit(threshold)))
            .with_column(
                when(col("score").gt(lit(0.0)))
                    .then(lit("spike"))
                    .otherwise(lit("drop"))
                    .alias("kind"),
            )
            .select([
                col("app_id"),
                col("hour"),
                col("events"),
                col("baseline"),
                col("score"),
                col("kind"),
            ])
            .sort(["app_id", "hour"], order(&[false, false])),
    )
}

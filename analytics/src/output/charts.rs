//! SVG charts for the HTML page, drawn with plotters: volume over time with anomalies marked,
//! the funnels, retention as a heatmap, and experiment rates with their 95% intervals.
//!
//! Each chart takes one app's reports and returns `None` when there is nothing to draw.

use chrono::DateTime;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde_json::Value;

use crate::error::{AnalyticsError, Result};
use crate::output::json;
use crate::report::Reports;
use crate::stats::Z95;

/// A chart: a title and its SVG document.
#[derive(Debug, Clone)]
pub struct Chart {
    /// What the chart shows.
    pub title: String,
    /// The `<svg>` element.
    pub svg: String,
}

const WIDTH: u32 = 900;
const FONT: &str = "sans-serif";
const ACCENT: RGBColor = RGBColor(37, 99, 235);
const SPIKE: RGBColor = RGBColor(220, 38, 38);
const DROP: RGBColor = RGBColor(234, 179, 8);

fn failed<E: std::fmt::Debug>(chart: &'static str) -> impl Fn(E) -> AnalyticsError {
    move |e| AnalyticsError::Chart {
        chart,
        reason: format!("{e:?}"),
    }
}

fn rows(reports: &Reports, name: &str, table: &str) -> Result<Vec<Value>> {
    match reports.table(name, table) {
        Some(df) => match json::rows(df)? {
            Value::Array(rows) => Ok(rows),
            _ => Ok(Vec::new()),
        },
        None => Ok(Vec::new()),
    }
}

fn text<'a>(row: &'a Value, field: &str) -> &'a str {
    row[field].as_str().unwrap_or_default()
}

fn number(row: &Value, field: &str) -> f64 {
    row[field].as_f64().unwrap_or(0.0)
}

/// An axis label without decimals.
fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

fn epoch_hours(rfc3339: &str) -> f64 {
    DateTime::parse_from_rfc3339(rfc3339).map_or(0.0, |t| t.timestamp() as f64 / 3600.0)
}

/// Hourly events as a line; spikes (red) and drops (amber) as dots.
pub fn volume(reports: &Reports) -> Result<Option<Chart>> {
    let hourly = rows(reports, "volume", "hourly")?;
    if hourly.is_empty() {
        return Ok(None);
    }
    let points: Vec<(f64, f64)> = hourly
        .iter()
        .map(|r| (epoch_hours(text(r, "hour")), number(r, "events")))
        .collect();
    let anomalies = rows(reports, "anomalies", "anomalies")?;
    let (x0, x1) = (
        points[0].0,
        points[points.len() - 1].0.max(points[0].0 + 1.0),
    );
    let top = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut svg = String::new();
    {
        let fail = failed("volume");
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(&fail)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(&fail)?;
        let day = |h: &f64| {
            DateTime::from_timestamp((*h * 3600.0) as i64, 0)
                .map_or_else(String::new, |t| t.format("%m-%d %Hh").to_string())
        };
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&day)
            .y_label_formatter(&whole)
            .y_desc("events per hour")
            .label_style((FONT, 12))
            .draw()
            .map_err(&fail)?;
        chart
            .draw_series(LineSeries::new(points, ACCENT.stroke_width(1)))
            .map_err(&fail)?;
        chart
            .draw_series(anomalies.iter().map(|a| {
                let color = if text(a, "kind") == "spike" {
                    SPIKE
                } else {
                    DROP
                };
                Circle::new(
                    (epoch_hours(text(a, "hour")), number(a, "events")),
                    5,
                    color.filled(),
                )
            }))
            .map_err(&fail)?;
        root.present().map_err(&fail)?;
    }
    Ok(Some(Chart {
        title: format!(
            "Events per hour ({} anomal{} marked)",
            anomalies.len(),
            if anomalies.len() == 1 { "y" } else { "ies" }
        ),
        svg,
    }))
}

/// The vertical axis of a chart with one column per item (funnel steps, experiment variants).
struct Axis<'a> {
    chart: &'static str,
    height: u32,
    columns: usize,
    top: f64,
    desc: &'a str,
    label: &'a dyn Fn(&f64) -> String,
}

/// A chart's drawing area: x in `0..columns`, y in `0..top`.
type Columns<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A failed draw, as this crate's error.
type Failure<'f> = &'f dyn Fn(
    DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>,
) -> AnalyticsError;

/// Draws a chart with one column per item: the shared frame and y axis, then `draw`'s series.
fn columns(
    axis: Axis<'_>,
    draw: impl FnOnce(&mut Columns<'_, '_>, Failure<'_>) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let fail = failed(axis.chart);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, axis.height)).into_drawing_area();
        root.fill(&WHITE).map_err(&fail)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .y_label_area_size(56)
            .x_label_area_size(10)
            .build_cartesian_2d(0.0..axis.columns as f64, 0.0..axis.top)
            .map_err(&fail)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_label_formatter(axis.label)
            .y_desc(axis.desc)
            .label_style((FONT, 12))
            .draw()
            .map_err(&fail)?;
        draw(&mut chart, &fail)?;
        root.present().map_err(&fail)?;
    }
    Ok(svg)
}

/// One bar chart per story: users reaching each step.
pub fn funnels(reports: &Reports) -> Result<Vec<Chart>> {
    let rows = rows(reports, "funnels", "funnels")?;
    let mut charts = Vec::new();
    for story in rows.chunk_by(|a, b| a["story"] == b["story"]) {
        let top = story
            .iter()
            .map(|r| number(r, "users_reached"))
            .fold(1.0, f64::max)
            * 1.2;
        let axis = Axis {
            chart: "funnel",
            height: 300,
            columns: story.len(),
            top,
            desc: "users",
            label: &whole,
        };
        let svg = columns(axis, |chart, fail| {
            chart
                .draw_series(story.iter().enumerate().map(|(i, r)| {
                    let x = i as f64;
                    Rectangle::new(
                        [(x + 0.15, 0.0), (x + 0.85, number(r, "users_reached"))],
                        ACCENT.mix(0.8).filled(),
                    )
                }))
                .map_err(fail)?;
            chart
                .draw_series(story.iter().enumerate().map(|(i, r)| {
                    let label = format!(
                        "{} · {} ({:.0}%)",
                        text(r, "step"),
                        number(r, "users_reached"),
                        number(r, "conversion_from_start") * 100.0
                    );
                    Text::new(
                        label,
                        (i as f64 + 0.15, number(r, "users_reached") + top * 0.04),
                        (FONT, 12),
                    )
                }))
                .map_err(fail)?;
            Ok(())
        })?;
        charts.push(Chart {
            title: format!("Funnel: {}", text(&story[0], "story")),
            svg,
        });
    }
    Ok(charts)
}

/// Cohorts (rows) by week offset (columns), shaded by retention.
pub fn retention(reports: &Reports) -> Result<Option<Chart>> {
    let rows = rows(reports, "retention", "retention")?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut cohorts: Vec<&str> = rows.iter().map(|r| text(r, "cohort_week")).collect();
    cohorts.dedup();
    let offsets = rows
        .iter()
        .map(|r| number(r, "week_offset"))
        .fold(0.0, f64::max)
        + 1.0;
    let height = 60 + 28 * cohorts.len() as u32;
    let mut svg = String::new();
    {
        let fail = failed("retention");
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&fail)?;
        let rows_n = cohorts.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(24)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..offsets, 0.0..rows_n)
            .map_err(&fail)?;
        let cohort_label = |y: &f64| {
            let i = (rows_n - y - 0.5).round();
            if (rows_n - y - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                cohorts
                    .get(i as usize)
                    .map_or_else(String::new, |c| (*c).to_owned())
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(offsets as usize + 1)
            .x_label_formatter(&|x| {
                if *x < offsets - 0.5 {
                    format!("week +{}", x.floor())
                } else {
                    String::new()
                }
            })
            .y_labels(cohorts.len() * 2 + 1)
            .y_label_formatter(&cohort_label)
            .label_style((FONT, 12))
            .draw()
            .map_err(&fail)?;
        let row_of = |r: &Value| cohorts.iter().position(|c| *c == text(r, "cohort_week"));
        chart
            .draw_series(rows.iter().filter_map(|r| {
                let (x, y) = (number(r, "week_offset"), rows_n - 1.0 - row_of(r)? as f64);
                let shade = number(r, "retention").clamp(0.0, 1.0);
                Some(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    ACCENT.mix(0.1 + 0.9 * shade).filled(),
                ))
            }))
            .map_err(&fail)?;
        chart
            .draw_series(rows.iter().filter_map(|r| {
                let (x, y) = (number(r, "week_offset"), rows_n - 1.0 - row_of(r)? as f64);
                Some(Text::new(
                    format!("{:.0}%", number(r, "retention") * 100.0),
                    (x + 0.4, y + 0.6),
                    (FONT, 12),
                ))
            }))
            .map_err(&fail)?;
        root.present().map_err(&fail)?;
    }
    Ok(Some(Chart {
        title: "Weekly retention by first-seen cohort".into(),
        svg,
    }))
}

/// One chart per experiment: each variant's conversion rate with its 95% Wald interval.
pub fn experiments(reports: &Reports) -> Result<Vec<Chart>> {
    let rows = rows(reports, "experiments", "experiments")?;
    let mut charts = Vec::new();
    for experiment in rows.chunk_by(|a, b| a["experiment"] == b["experiment"]) {
        let interval = |r: &Value| {
            let (p, n) = (
                number(r, "conversion_rate"),
                number(r, "exposures").max(1.0),
            );
            let half = Z95 * (p * (1.0 - p) / n).sqrt();
            ((p - half).max(0.0), p, (p + half).min(1.0))
        };
        let top = experiment
            .iter()
            .map(|r| interval(r).2)
            .fold(0.01, f64::max)
            * 1.25;
        let axis = Axis {
            chart: "experiment",
            height: 280,
            columns: experiment.len(),
            top,
            desc: "conversion rate",
            label: &|v| format!("{:.0}%", v * 100.0),
        };
        let svg = columns(axis, |chart, fail| {
            chart
                .draw_series(experiment.iter().enumerate().map(|(i, r)| {
                    let (low, mid, high) = interval(r);
                    ErrorBar::new_vertical(i as f64 + 0.5, low, mid, high, ACCENT.filled(), 12)
                }))
                .map_err(fail)?;
            chart
                .draw_series(experiment.iter().enumerate().map(|(i, r)| {
                    let (_, mid, high) = interval(r);
                    Text::new(
                        format!("{} {:.1}%", text(r, "variant"), mid * 100.0),
                        (i as f64 + 0.52, high + top * 0.03),
                        (FONT, 12),
                    )
                }))
                .map_err(fail)?;
            Ok(())
        })?;
        charts.push(Chart {
            title: format!("Experiment: {}", text(&experiment[0], "experiment")),
            svg,
        });
    }
    Ok(charts)
}

/// Every chart of one app's reports, in page order.
pub fn all(reports: &Reports) -> Result<Vec<Chart>> {
    let mut out = Vec::new();
    out.extend(volume(reports)?);
    out.extend(funnels(reports)?);
    out.extend(retention(reports)?);
    out.extend(experiments(reports)?);
    Ok(out)
}

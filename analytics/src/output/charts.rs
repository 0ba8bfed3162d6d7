//! SVG charts for the HTML page, drawn with plotters: volume over time with anomalies marked,
//! the funnels, retention as a heatmap, and experiment rates with their 95% intervals.
//!
//! Each chart takes one app's reports and returns `None` when there is nothing to draw.

use crate::error::{AnalyticsError, Result};
use crate::output::columns::Columns;
use crate::report::Reports;
use chrono::DateTime;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

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

/// Epoch milliseconds as hours, the volume chart's x.
fn epoch_hours(ms: i64) -> f64 {
    ms as f64 / 3_600_000.0
}

/// An axis label without decimals.
fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

/// Hourly events as a line; spikes (red) and drops (amber) as dots.
pub fn volume(reports: &Reports) -> Result<Option<Chart>> {
    let hourly = Columns::of(reports, "volume", "hourly");
    if hourly.is_empty() {
        return Ok(None);
    }
    let points: Vec<(f64, f64)> = hourly
        .times_ms("hour")?
        .into_iter()
        .map(epoch_hours)
        .zip(hourly.numbers("events")?)
        .collect();
    let found = Columns::of(reports, "anomalies", "anomalies");
    let anomalies: Vec<(f64, f64, bool)> = found
        .times_ms("hour")?
        .into_iter()
        .map(epoch_hours)
        .zip(found.numbers("events")?)
        .zip(found.texts("kind")?)
        .map(|((hour, events), kind)| (hour, events, kind == "spike"))
        .collect();
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
            .draw_series(anomalies.iter().map(|&(hour, events, spike)| {
                let color = if spike { SPIKE } else { DROP };
                Circle::new((hour, events), 5, color.filled())
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
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A failed draw, as this crate's error.
type Failure<'f> = &'f dyn Fn(
    DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>,
) -> AnalyticsError;

/// Draws a chart with one column per item: the shared frame and y axis, then `draw`'s series.
fn columns(
    axis: Axis<'_>,
    draw: impl FnOnce(&mut Plot<'_, '_>, Failure<'_>) -> Result<()>,
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

/// A step of a funnel, as the `funnels` report holds it.
struct Step {
    story: String,
    step: String,
    users: f64,
    from_start: f64,
}

/// One bar chart per story: users reaching each step.
pub fn funnels(reports: &Reports) -> Result<Vec<Chart>> {
    let t = Columns::of(reports, "funnels", "funnels");
    let steps: Vec<Step> = t
        .texts("story")?
        .into_iter()
        .zip(t.texts("step")?)
        .zip(t.numbers("users_reached")?)
        .zip(t.numbers("conversion_from_start")?)
        .map(|(((story, step), users), from_start)| Step {
            story,
            step,
            users,
            from_start,
        })
        .collect();
    let mut charts = Vec::new();
    for story in steps.chunk_by(|a, b| a.story == b.story) {
        let top = story.iter().map(|s| s.users).fold(1.0, f64::max) * 1.2;
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
                .draw_series(story.iter().enumerate().map(|(i, s)| {
                    let x = i as f64;
                    Rectangle::new(
                        [(x + 0.15, 0.0), (x + 0.85, s.users)],
                        ACCENT.mix(0.8).filled(),
                    )
                }))
                .map_err(fail)?;
            chart
                .draw_series(story.iter().enumerate().map(|(i, s)| {
                    let label = format!("{} · {} ({:.0}%)", s.step, s.users, s.from_start * 100.0);
                    Text::new(label, (i as f64 + 0.15, s.users + top * 0.04), (FONT, 12))
                }))
                .map_err(fail)?;
            Ok(())
        })?;
        charts.push(Chart {
            title: format!("Funnel: {}", story[0].story),
            svg,
        });
    }
    Ok(charts)
}

/// A cell of the retention table.
struct Cell {
    cohort: String,
    offset: f64,
    retention: f64,
}

/// Cohorts (rows) by week offset (columns), shaded by retention.
pub fn retention(reports: &Reports) -> Result<Option<Chart>> {
    let t = Columns::of(reports, "retention", "retention");
    if t.is_empty() {
        return Ok(None);
    }
    let cells: Vec<Cell> = t
        .texts("cohort_week")?
        .into_iter()
        .zip(t.numbers("week_offset")?)
        .zip(t.numbers("retention")?)
        .map(|((cohort, offset), retention)| Cell {
            cohort,
            offset,
            retention,
        })
        .collect();
    let mut cohorts: Vec<&str> = cells.iter().map(|c| c.cohort.as_str()).collect();
    cohorts.dedup();
    let offsets = cells.iter().map(|c| c.offset).fold(0.0, f64::max) + 1.0;
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
        let place = |c: &Cell| {
            let row = cohorts.iter().position(|name| *name == c.cohort)?;
            Some((c.offset, rows_n - 1.0 - row as f64))
        };
        chart
            .draw_series(cells.iter().filter_map(|c| {
                let (x, y) = place(c)?;
                let shade = c.retention.clamp(0.0, 1.0);
                Some(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    ACCENT.mix(0.1 + 0.9 * shade).filled(),
                ))
            }))
            .map_err(&fail)?;
        chart
            .draw_series(cells.iter().filter_map(|c| {
                let (x, y) = place(c)?;
                Some(Text::new(
                    format!("{:.0}%", c.retention * 100.0),
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

/// A variant of an experiment, as the `experiments` report holds it.
struct Variant {
    experiment: String,
    variant: String,
    rate: f64,
    /// The report's 95% interval of this variant's rate minus the control's (none for the
    /// control itself).
    difference: Option<(f64, f64)>,
}

/// One chart per experiment: each variant's conversion rate, and for the variants compared
/// with the control, the report's 95% interval of the difference, drawn around the variant's
/// rate (control rate + the interval's ends).
pub fn experiments(reports: &Reports) -> Result<Vec<Chart>> {
    let t = Columns::of(reports, "experiments", "experiments");
    let variants: Vec<Variant> = t
        .texts("experiment")?
        .into_iter()
        .zip(t.texts("variant")?)
        .zip(t.numbers("conversion_rate")?)
        .zip(t.optional_numbers("ci95_low")?)
        .zip(t.optional_numbers("ci95_high")?)
        .map(|((((experiment, variant), rate), low), high)| Variant {
            experiment,
            variant,
            rate,
            difference: low.zip(high),
        })
        .collect();
    let mut charts = Vec::new();
    for experiment in variants.chunk_by(|a, b| a.experiment == b.experiment) {
        let control = experiment
            .iter()
            .find(|v| v.difference.is_none())
            .map(|v| v.rate);
        let interval = |v: &Variant| match (control, v.difference) {
            (Some(c), Some((low, high))) => ((c + low).max(0.0), (c + high).min(1.0)),
            _ => (v.rate, v.rate),
        };
        let top = experiment
            .iter()
            .map(|v| interval(v).1.max(v.rate))
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
                .draw_series(experiment.iter().enumerate().map(|(i, v)| {
                    let (low, high) = interval(v);
                    ErrorBar::new_vertical(i as f64 + 0.5, low, v.rate, high, ACCENT.filled(), 12)
                }))
                .map_err(fail)?;
            chart
                .draw_series(experiment.iter().enumerate().map(|(i, v)| {
                    let high = interval(v).1.max(v.rate);
                    Text::new(
                        format!("{} {:.1}%", v.variant, v.rate * 100.0),
                        (i as f64 + 0.52, high + top * 0.03),
                        (FONT, 12),
                    )
                }))
                .map_err(fail)?;
            Ok(())
        })?;
        charts.push(Chart {
            title: format!("Experiment: {}", experiment[0].experiment),
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

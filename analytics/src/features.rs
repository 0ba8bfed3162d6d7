//! The per-user feature table for ML (`cauce features`): one row per (app, user) active in the
//! 28 days before an as-of time, with features computed strictly from data before it, and
//! labels over the horizon after it. Laid out for SageMaker Feature Store: a record identifier
//! (`user_key`), an `event_time` (ISO-8601), only integral, fractional and string columns, and
//! none of its reserved names. `feature_definitions.json` beside the Parquet describes each
//! column in Feature Store's own terms.
//!
//! Point in time, by the event time: events count when their `ts` is before the as-of time;
//! a story or a test counts in the version it had then (the latest `updated_at` before it), so
//! a story completed later is still in progress here. Labels are the only columns that read
//! the horizon `[as_of, as_of + horizon)`.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use polars::prelude::*;
use serde_json::{json, Value};

use cauce_store::lake::Lake;
use cauce_store::Kind;

use crate::error::{AnalyticsError, Result};
use crate::exprs::{count_if, ms, DAY_MS};
use crate::source::LakeSource;

/// The columns Feature Store refuses as feature names.
pub const RESERVED: [&str; 3] = ["is_deleted", "write_time", "api_invocation_time"];

/// How one column is typed in Feature Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureType {
    /// A 64-bit integer.
    Integral,
    /// A 64-bit float.
    Fractional,
    /// UTF-8 text.
    String,
}

impl FeatureType {
    fn as_str(self) -> &'static str {
        match self {
            FeatureType::Integral => "Integral",
            FeatureType::Fractional => "Fractional",
            FeatureType::String => "String",
        }
    }

    fn dtype(self) -> DataType {
        match self {
            FeatureType::Integral => DataType::Int64,
            FeatureType::Fractional => DataType::Float64,
            FeatureType::String => DataType::String,
        }
    }
}

/// What a column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Identifies the row (the record identifier, the event time, the app and the user).
    Key,
    /// A feature: reads only data before the as-of time.
    Feature,
    /// A label: reads the horizon after it.
    Label,
}

/// One column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: FeatureType,
    /// Its role.
    pub role: Role,
    /// What it counts, for people.
    pub description: String,
}

/// When the table is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// The as-of day: features read data before its midnight (UTC).
    pub day: NaiveDate,
    /// The days after it that labels read.
    pub horizon_days: u32,
}

impl AsOf {
    /// The as-of time, epoch ms.
    pub fn ms(&self) -> i64 {
        self.day
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis()
    }

    /// The as-of time as `event_time` writes it: `2026-11-20T00:00:00Z`.
    pub fn event_time(&self) -> String {
        DateTime::from_timestamp_millis(self.ms())
            .expect("a day in range")
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// The table a scheduled run at `now` writes (`cauce serve`'s report job, the `reporter`
    /// Lambda): as of [`SCHEDULED_HORIZON_DAYS`] days before `now`'s day, so that its labels
    /// are complete.
    pub fn scheduled(now: DateTime<Utc>) -> AsOf {
        AsOf {
            day: now.date_naive() - chrono::Days::new(u64::from(SCHEDULED_HORIZON_DAYS)),
            horizon_days: SCHEDULED_HORIZON_DAYS,
        }
    }

    fn horizon_label(&self) -> String {
        format!("label_active_next_{}d", self.horizon_days)
    }
}

/// The windows the activity features count over, in days.
const WINDOWS: [i64; 3] = [1, 7, 28];

/// The horizon of the table that scheduled runs write ([`AsOf::scheduled`]).
pub const SCHEDULED_HORIZON_DAYS: u32 = 7;

/// The fewest event days up to a scheduled run's day that hold every window of its table: the
/// longest window before the as-of day, and the horizon after it.
pub const SCHEDULED_DAYS: u32 = LONGEST_WINDOW as u32 + SCHEDULED_HORIZON_DAYS + 1;

/// The longest window, in days.
pub const LONGEST_WINDOW: i64 = WINDOWS[WINDOWS.len() - 1];

/// Every column of the table, in order.
pub fn definitions(as_of: &AsOf) -> Vec<Definition> {
    let d = |name: &str, ty, role, description: &str| Definition {
        name: name.to_owned(),
        ty,
        role,
        description: description.to_owned(),
    };
    use FeatureType::{Fractional, Integral, String as Text};
    let mut out = vec![
        d(
            "user_key",
            Text,
            Role::Key,
            "The record identifier: `{app_id}/{user_id}`.",
        ),
        d(
            "event_time",
            Text,
            Role::Key,
            "The as-of time (ISO-8601, UTC): every feature reads data before it.",
        ),
        d("app_id", Text, Role::Key, "The app."),
        d("user_id", Text, Role::Key, "The user."),
    ];
    for w in WINDOWS {
        out.push(d(
            &format!("events_{w}d"),
            Integral,
            Role::Feature,
            &format!("Events in the {w} days before the as-of time."),
        ));
    }
    out.extend([
        d("active_days_28d", Integral, Role::Feature, "Days with at least one event, of the 28 before."),
        d("sessions_28d", Integral, Role::Feature, "Distinct sessions in the 28 days before."),
        d("distinct_events_28d", Integral, Role::Feature, "Distinct event names in the 28 days before."),
        d("days_since_last_event", Fractional, Role::Feature, "Days from the last event to the as-of time (recency)."),
        d("days_since_first_event", Fractional, Role::Feature, "Days from the first event in the lake to the as-of time (tenure)."),
        d("trend_7d_vs_28d", Fractional, Role::Feature, "Events a day in the last 7 days over events a day in the last 28 (below 1: coming back less)."),
        d("stories_started_28d", Integral, Role::Feature, "Stories started in the 28 days before, as they stood at the as-of time."),
        d("story_completions_28d", Integral, Role::Feature, "Of those, completed before the as-of time."),
        d("story_dropoffs_28d", Integral, Role::Feature, "Of those, abandoned or failed before the as-of time."),
        d("experiments_exposed", Integral, Role::Feature, "Experiments the user was exposed to before the as-of time."),
        d("experiment_conversions", Integral, Role::Feature, "Of those, converted before the as-of time (as the tests stood then)."),
    ]);
    out.push(d(
        &as_of.horizon_label(),
        Integral,
        Role::Label,
        &format!(
            "1 when the user has an event in the {} days from the as-of time, else 0.",
            as_of.horizon_days
        ),
    ));
    out.push(d(
        &format!("label_events_next_{}d", as_of.horizon_days),
        Integral,
        Role::Label,
        &format!(
            "Events in the {} days from the as-of time.",
            as_of.horizon_days
        ),
    ));
    out
}

/// The feature table of every app's users as of `as_of`, with the columns of [`definitions`].
pub fn user_features(source: &LakeSource, as_of: &AsOf) -> Result<DataFrame> {
    let t = as_of.ms();
    let since = |days: i64| ms("ts").gt_eq(lit(t - days * DAY_MS));
    let user = [col("app_id"), col("user_id")];

    // Events: every one before the as-of time (the tenure reads the whole lake), by user.
    let events = source
        .frame_as_of(Kind::Event, t)?
        .filter(col("user_id").is_not_null());
    let mut aggs: Vec<Expr> = WINDOWS
        .iter()
        .map(|&w| count_if(since(w)).alias(format!("events_{w}d")))
        .collect();
    let recent = |e: Expr| e.filter(since(28));
    aggs.extend([
        recent(ms("ts") / lit(DAY_MS))
            .n_unique()
            .cast(DataType::Int64)
            .alias("active_days_28d"),
        recent(col("session_id"))
            .drop_nulls()
            .n_unique()
            .cast(DataType::Int64)
            .alias("sessions_28d"),
        recent(col("name"))
            .n_unique()
            .cast(DataType::Int64)
            .alias("distinct_events_28d"),
        ((lit(t) - ms("ts").max()).cast(DataType::Float64) / lit(DAY_MS as f64))
            .alias("days_since_last_event"),
        ((lit(t) - ms("ts").min()).cast(DataType::Float64) / lit(DAY_MS as f64))
            .alias("days_since_first_event"),
    ]);
    let activity = events
        .group_by(user.clone())
        .agg(aggs)
        .filter(col("events_28d").gt(lit(0)))
        .with_column(
            ((col("events_7d").cast(DataType::Float64) / lit(7.0))
                / (col("events_28d").cast(DataType::Float64) / lit(28.0)))
            .alias("trend_7d_vs_28d"),
        );

    // Stories as they stood at the as-of time.
    let window_start = t - 28 * DAY_MS;
    let ended_before = ms("ended_at").lt(lit(t));
    let stories = source
        .frame_as_of(Kind::Story, t)?
        .filter(col("user_id").is_not_null())
        .filter(
            ms("started_at")
                .gt_eq(lit(window_start))
                .and(ms("started_at").lt(lit(t))),
        )
        .group_by(user.clone())
        .agg([
            len().cast(DataType::Int64).alias("stories_started_28d"),
            count_if(
                col("outcome")
                    .eq(lit("completed"))
                    .and(ended_before.clone()),
            )
            .alias("story_completions_28d"),
            count_if(
                col("outcome")
                    .eq(lit("abandoned"))
                    .or(col("outcome").eq(lit("failed")))
                    .and(ended_before),
            )
            .alias("story_dropoffs_28d"),
        ]);

    // Exposures as they stood at the as-of time.
    let tests = source
        .frame_as_of(Kind::Exposure, t)?
        .filter(ms("exposed_at").lt(lit(t)))
        .group_by(user.clone())
        .agg([
            col("experiment")
                .n_unique()
                .cast(DataType::Int64)
                .alias("experiments_exposed"),
            count_if(col("converted").fill_null(lit(false))).alias("experiment_conversions"),
        ]);

    // Labels: the horizon after the as-of time.
    let end = t + i64::from(as_of.horizon_days) * DAY_MS;
    let events_next = format!("label_events_next_{}d", as_of.horizon_days);
    let labels = source
        .frame(Kind::Event, &crate::Scope::default())?
        .filter(col("user_id").is_not_null())
        .filter(ms("ts").gt_eq(lit(t)).and(ms("ts").lt(lit(end))))
        .group_by(user.clone())
        .agg([len().cast(DataType::Int64).alias(events_next.as_str())]);

    let join = |left: LazyFrame, right: LazyFrame| {
        left.join(
            right,
            user.clone(),
            user.clone(),
            JoinArgs::new(JoinType::Left),
        )
    };
    let mut table = join(join(join(activity, stories), tests), labels);
    let defs = definitions(as_of);
    // A user without stories, tests or later events has counts of 0 there.
    let active = as_of.horizon_label();
    let zero_filled: Vec<Expr> = defs
        .iter()
        .filter(|d| d.ty == FeatureType::Integral && d.role != Role::Key && d.name != active)
        .map(|d| col(d.name.as_str()).fill_null(lit(0i64)))
        .collect();
    table = table.with_columns(zero_filled).with_columns([
        col(events_next.as_str())
            .gt(lit(0i64))
            .cast(DataType::Int64)
            .alias(active.as_str()),
        concat_str([col("app_id"), col("user_id")], "/", false).alias("user_key"),
        lit(as_of.event_time()).alias("event_time"),
    ]);
    let select: Vec<Expr> = defs
        .iter()
        .map(|d| col(d.name.as_str()).cast(d.ty.dtype()))
        .collect();
    Ok(table
        .select(select)
        .sort(["app_id", "user_id"], SortMultipleOptions::default())
        .collect()?)
}

/// `feature_definitions.json`: the columns in Feature Store's terms (`FeatureDefinitions` of
/// `CreateFeatureGroup`), with the record identifier, the event time, and what each reads.
pub fn manifest(as_of: &AsOf, rows: usize, complete: bool) -> Value {
    let defs = definitions(as_of);
    let role = |r: Role| match r {
        Role::Key => "key",
        Role::Feature => "feature",
        Role::Label => "label",
    };
    json!({
        "RecordIdentifierFeatureName": "user_key",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": defs.iter().map(|d| json!({
            "FeatureName": d.name,
            "FeatureType": d.ty.as_str(),
        })).collect::<Vec<_>>(),
        "as_of": as_of.event_time(),
        "horizon_days": as_of.horizon_days,
        "labels_complete": complete,
        "rows": rows,
        "columns": defs.iter().map(|d| json!({
            "name": d.name,
            "type": d.ty.as_str(),
            "role": role(d.role),
            "description": d.description,
        })).collect::<Vec<_>>(),
    })
}

/// What [`publish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    /// Users in the table.
    pub rows: usize,
    /// The table's lake key.
    pub table: String,
    /// Its manifest's lake key.
    pub definitions: String,
    /// Whether the labels' horizon had ended at `now_ms`.
    pub labels_complete: bool,
}

/// Computes the table as of `as_of` from `source` and writes it, zstd Parquet, with its
/// manifest into `lake` (see [`keys`]), replacing the day's earlier table. The labels are
/// complete when the horizon has ended at `now_ms`; the manifest says whether they were.
pub async fn publish(
    source: &LakeSource,
    lake: &dyn Lake,
    as_of: &AsOf,
    now_ms: i64,
) -> Result<Published> {
    let mut table = tokio::task::block_in_place(|| user_features(source, as_of))?;
    check(&table)?;
    let horizon_end = as_of.ms() + i64::from(as_of.horizon_days) * DAY_MS;
    let labels_complete = now_ms >= horizon_end;
    let mut parquet = std::io::Cursor::new(Vec::new());
    ParquetWriter::new(&mut parquet)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut table)?;
    let defs = manifest(as_of, table.height(), labels_complete);
    let (table_key, manifest_key) = keys(as_of.day);
    lake.put(&table_key, parquet.into_inner().into()).await?;
    let json = serde_json::to_vec_pretty(&defs).expect("JSON values serialize");
    lake.put(&manifest_key, json.into()).await?;
    Ok(Published {
        rows: table.height(),
        table: table_key,
        definitions: manifest_key,
        labels_complete,
    })
}

/// The lake key of the table of `day`: `features/user/dt=DAY/features.parquet`, and of its
/// manifest.
pub fn keys(day: NaiveDate) -> (String, String) {
    let dir = format!("features/user/dt={day}");
    (
        format!("{dir}/features.parquet"),
        format!("{dir}/feature_definitions.json"),
    )
}

/// Checks a table against Feature Store's rules: only its three types, no reserved name.
pub fn check(table: &DataFrame) -> Result<()> {
    for c in table.columns() {
        let name = c.name().as_str();
        if RESERVED.contains(&name) {
            return Err(AnalyticsError::Invalid(format!(
                "{name} is reserved by Feature Store"
            )));
        }
        if !matches!(
            c.dtype(),
            DataType::Int64 | DataType::Float64 | DataType::String
        ) {
            return Err(AnalyticsError::Invalid(format!(
                "{name} is {}: Feature Store takes integral, fractional and string columns only",
                c.dtype()
            )));
        }
    }
    Ok(())
}

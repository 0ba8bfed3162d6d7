//! The reports: each a function of the lake and a [`Scope`] that returns tables. The rows of
//! the tables, as JSON, are the contract (see the README's "Reports" section).

mod anomalies;
mod experiments;
mod funnels;
mod paths;
mod retention;
mod stories;
mod volume;

use std::collections::BTreeMap;

use polars::prelude::*;

pub use anomalies::anomalies;
pub use experiments::experiments;
pub use funnels::funnels;
pub use paths::paths;
pub use retention::retention;
pub use stories::stories;
pub use volume::{active_users, daily_volume, hourly_volume, top_events};

use crate::error::{AnalyticsError, Result};
use crate::source::{LakeSource, Scope};

/// Every report, in the order they are shown.
pub const ALL: [&str; 7] = [
    "volume",
    "anomalies",
    "funnels",
    "paths",
    "retention",
    "stories",
    "experiments",
];

/// Report settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The length of the event paths (n-grams) counted by `paths`.
    pub path_length: usize,
    /// How many rows per app `paths` and `top_events` keep.
    pub top: usize,
    /// The robust z-score from which an hour is an anomaly.
    pub anomaly_threshold: f64,
    /// How many values an hour of the day needs before it has a baseline.
    pub min_baseline_days: u32,
    /// Hours with fewer events than this, against a baseline below it too, are too sparse to
    /// judge: a handful of sessions would look like a spike.
    pub min_events: u32,
    /// Planned allocation per experiment, variant → weight; equal allocation otherwise.
    pub weights: BTreeMap<String, BTreeMap<String, f64>>,
    /// The users (both arms) an experiment plans to expose: the sequential test is tightest
    /// there.
    pub planned_users: f64,
    /// Fewer exposures than this in an arm draws a `min_sample` warning.
    pub min_exposures: u64,
    /// Fewer conversions than this in an arm draws a `min_sample` warning.
    pub min_conversions: u64,
    /// The days before each user's exposure whose events are CUPED's covariate.
    pub cuped_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            path_length: 3,
            top: 10,
            anomaly_threshold: 5.0,
            min_baseline_days: 3,
            min_events: 30,
            weights: BTreeMap::new(),
            planned_users: 10_000.0,
            min_exposures: 100,
            min_conversions: 10,
            cuped_days: 14,
        }
    }
}

/// One report: its name and its tables (most reports have one, named like the report).
#[derive(Debug, Clone)]
pub struct Report {
    /// The report's name, one of [`ALL`].
    pub name: &'static str,
    /// Its tables, by name.
    pub tables: Vec<(&'static str, DataFrame)>,
}

/// Reports computed together.
#[derive(Debug, Clone, Default)]
pub struct Reports(pub Vec<Report>);

impl Reports {
    /// The report called `name`.
    pub fn get(&self, name: &str) -> Option<&Report> {
        self.0.iter().find(|r| r.name == name)
    }

    /// The table `table` of the report `name`.
    pub fn table(&self, name: &str, table: &str) -> Option<&DataFrame> {
        self.get(name)?
            .tables
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, df)| df)
    }

    /// The apps that appear in any table, sorted.
    pub fn apps(&self) -> Result<Vec<String>> {
        let mut apps = std::collections::BTreeSet::new();
        for report in &self.0 {
            for (_, df) in &report.tables {
                for app in df.column("app_id")?.str()?.iter().flatten() {
                    apps.insert(app.to_owned());
                }
            }
        }
        Ok(apps.into_iter().collect())
    }

    /// The same reports restricted to one app's rows.
    pub fn for_app(&self, app: &str) -> Result<Reports> {
        let mut out = Vec::with_capacity(self.0.len());
        for report in &self.0 {
            let mut tables = Vec::with_capacity(report.tables.len());
            for (name, df) in &report.tables {
                let mask = df.column("app_id")?.str()?.equal(app);
                tables.push((*name, df.filter(&mask)?));
            }
            out.push(Report {
                name: report.name,
                tables,
            });
        }
        Ok(Reports(out))
    }
}

/// Checks report names (`--only`), keeping [`ALL`]'s order. Empty means every report.
pub fn select(only: &[String]) -> Result<Vec<&'static str>> {
    if let Some(bad) = only.iter().find(|n| !ALL.contains(&n.as_str())) {
        return Err(AnalyticsError::Invalid(format!(
            "unknown report {bad:?}; the reports are {}",
            ALL.join(", ")
        )));
    }
    Ok(ALL
        .into_iter()
        .filter(|n| only.is_empty() || only.iter().any(|o| o == n))
        .collect())
}

/// Computes one report.
pub fn one(name: &str, source: &LakeSource, scope: &Scope, settings: &Settings) -> Result<Report> {
    let single = |name: &'static str, df: DataFrame| Report {
        name,
        tables: vec![(name, df)],
    };
    Ok(match name {
        "volume" => Report {
            name: "volume",
            tables: vec![
                ("daily", daily_volume(source, scope)?),
                ("hourly", hourly_volume(source, scope)?),
                ("top_events", top_events(source, scope, settings)?),
                ("active_users", active_users(source, scope)?),
            ],
        },
        "anomalies" => single("anomalies", anomalies(source, scope, settings)?),
        "funnels" => single("funnels", funnels(source, scope)?),
        "paths" => single("paths", paths(source, scope, settings)?),
        "retention" => single("retention", retention(source, scope)?),
        "stories" => single("stories", stories(source, scope)?),
        "experiments" => single("experiments", experiments(source, scope, settings)?),
        other => return Err(AnalyticsError::Invalid(format!("unknown report {other:?}"))),
    })
}

/// Computes the reports named in `names` (see [`select`]).
pub fn run(
    source: &LakeSource,
    scope: &Scope,
    names: &[&str],
    settings: &Settings,
) -> Result<Reports> {
    names
        .iter()
        .map(|n| one(n, source, scope, settings))
        .collect::<Result<Vec<_>>>()
        .map(Reports)
}

/// Sort options: ascending on every key except those listed as descending.
pub(crate) fn order(descending: &[bool]) -> SortMultipleOptions {
    SortMultipleOptions::default()
        .with_order_descending_multi(descending.to_vec())
        .with_maintain_order(true)
}

/// Collects a lazy frame; report queries are collected once, here.
pub(crate) fn collect(frame: LazyFrame) -> Result<DataFrame> {
    Ok(frame.collect()?)
}

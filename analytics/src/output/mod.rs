//! Report outputs: [`json`] for machines, [`markdown`] and [`html`] (with [`charts`]) for people;
//! [`columns`] reads a report table with the types a chart or a summary needs.

pub mod charts;
pub mod columns;
pub mod html;
pub mod json;
pub mod markdown;

use polars::prelude::DataFrame;
use serde_json::Value;

use crate::error::Result;

/// Tables drawn as charts only on pages for people (the JSON has them).
pub const CHART_ONLY: [&str; 1] = ["hourly"];

/// A table for people: its column names (without `skip`) and its first `max_rows` rows as text.
pub fn text_table(
    df: &DataFrame,
    skip: &[&str],
    max_rows: usize,
) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let columns: Vec<_> = df
        .columns()
        .iter()
        .filter(|c| !skip.contains(&c.name().as_str()))
        .collect();
    let mut rows = Vec::with_capacity(df.height().min(max_rows));
    for i in 0..df.height().min(max_rows) {
        let mut row = Vec::with_capacity(columns.len());
        for c in &columns {
            row.push(cell(&json::value(c.get(i)?)));
        }
        rows.push(row);
    }
    Ok((columns.iter().map(|c| c.name().to_string()).collect(), rows))
}

/// A JSON value as a table cell: floats with 4 decimals, null as an en dash.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

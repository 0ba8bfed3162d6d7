//! Report outputs: [`json`] for machines, [`markdown`] and [`html`] (with [`charts`]) for people.

pub mod charts;
pub mod html;
pub mod json;
pub mod markdown;

use serde_json::Value;

/// A JSON value as a table cell: floats with 4 decimals, null as an en dash.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

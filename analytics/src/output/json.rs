//! Reports as JSON: each table an array of row objects. Dates are `YYYY-MM-DD`, times RFC 3339
//! in UTC, missing values `null`.

use chrono::{DateTime, NaiveDate};
use polars::prelude::*;
use serde_json::{Map, Number, Value};

use crate::error::Result;
use crate::report::{Report, Reports};

/// One cell as JSON.
pub fn value(v: AnyValue<'_>) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(i) => i.into(),
        AnyValue::Int16(i) => i.into(),
        AnyValue::Int32(i) => i.into(),
        AnyValue::Int64(i) => i.into(),
        AnyValue::UInt8(i) => i.into(),
        AnyValue::UInt16(i) => i.into(),
        AnyValue::UInt32(i) => i.into(),
        AnyValue::UInt64(i) => i.into(),
        AnyValue::Float32(f) => float(f64::from(f)),
        AnyValue::Float64(f) => float(f),
        AnyValue::Date(d) => NaiveDate::from_epoch_days(d).map_or(Value::Null, |d| {
            Value::String(d.format("%Y-%m-%d").to_string())
        }),
        AnyValue::Datetime(t, unit, _) | AnyValue::DatetimeOwned(t, unit, _) => {
            let ms = match unit {
                TimeUnit::Milliseconds => t,
                TimeUnit::Microseconds => t / 1_000,
                TimeUnit::Nanoseconds => t / 1_000_000,
            };
            DateTime::from_timestamp_millis(ms).map_or(Value::Null, |t| {
                Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            })
        }
        other => Value::String(other.to_string()),
    }
}

/// A float, or null when it is not finite (JSON has no NaN).
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A table as an array of row objects, columns in order.
pub fn rows(df: &DataFrame) -> Result<Value> {
    let columns = df.columns();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut row = Map::new();
        for c in columns {
            row.insert(c.name().to_string(), value(c.get(i)?));
        }
        out.push(Value::Object(row));
    }
    Ok(Value::Array(out))
}

/// One report: its table's rows, or an object of tables when it has several (`volume`).
pub fn report(report: &Report) -> Result<Value> {
    if let [(_, df)] = report.tables.as_slice() {
        return rows(df);
    }
    let mut tables = Map::new();
    for (name, df) in &report.tables {
        tables.insert((*name).to_owned(), rows(df)?);
    }
    Ok(Value::Object(tables))
}

/// Reports as one object whose keys are the report names.
pub fn reports(reports: &Reports) -> Result<Value> {
    let mut out = Map::new();
    for r in &reports.0 {
        out.insert(r.name.to_owned(), report(r)?);
    }
    Ok(Value::Object(out))
}

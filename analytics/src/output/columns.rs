//! A report table read column by column, with the type the reader needs: what charts and
//! summaries are drawn from. A column that is missing, renamed, of another type or null where a
//! value is needed is an error that names it, never a silent zero.

use polars::prelude::{Column, DataFrame, DataType, TimeUnit};

use crate::error::{AnalyticsError, Result};
use crate::report::Reports;

/// One table of one report (no rows when the reports do not hold it).
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    what: (&'a str, &'a str),
    df: Option<&'a DataFrame>,
}

impl<'a> Columns<'a> {
    /// The table `table` of the report `report`.
    pub fn of(reports: &'a Reports, report: &'a str, table: &'a str) -> Self {
        Columns {
            what: (report, table),
            df: reports.table(report, table),
        }
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.df.is_none_or(|df| df.height() == 0)
    }

    fn wrong(&self, name: &str, what: &str) -> AnalyticsError {
        let (report, table) = self.what;
        AnalyticsError::Invalid(format!(
            "the report table {report}.{table}: column `{name}` {what}"
        ))
    }

    fn column(&self, name: &str) -> Result<Option<&'a Column>> {
        match self.df {
            None => Ok(None),
            Some(df) => match df.column(name) {
                Ok(c) => Ok(Some(c)),
                Err(_) => Err(self.wrong(name, "is missing")),
            },
        }
    }

    /// A numeric column as floats; nulls stay `None`.
    pub fn optional_numbers(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let Some(c) = self.column(name)? else {
            return Ok(Vec::new());
        };
        if !c.dtype().is_primitive_numeric() {
            return Err(self.wrong(name, "is not numeric"));
        }
        Ok(c.cast(&DataType::Float64)?.f64()?.iter().collect())
    }

    /// A numeric column without nulls, as floats.
    pub fn numbers(&self, name: &str) -> Result<Vec<f64>> {
        self.optional_numbers(name)?
            .into_iter()
            .map(|v| v.ok_or_else(|| self.wrong(name, "has a null")))
            .collect()
    }

    /// A text or date column as text (dates as `YYYY-MM-DD`).
    pub fn texts(&self, name: &str) -> Result<Vec<String>> {
        let Some(c) = self.column(name)? else {
            return Ok(Vec::new());
        };
        if !matches!(c.dtype(), DataType::String | DataType::Date) {
            return Err(self.wrong(name, "is not text or a date"));
        }
        let text = c.cast(&DataType::String)?;
        text.str()?
            .iter()
            .map(|v| {
                v.map(str::to_owned)
                    .ok_or_else(|| self.wrong(name, "has a null"))
            })
            .collect()
    }

    /// A time column as epoch milliseconds.
    pub fn times_ms(&self, name: &str) -> Result<Vec<i64>> {
        let Some(c) = self.column(name)? else {
            return Ok(Vec::new());
        };
        let per_ms = match c.dtype() {
            DataType::Datetime(TimeUnit::Milliseconds, _) => 1,
            DataType::Datetime(TimeUnit::Microseconds, _) => 1_000,
            DataType::Datetime(TimeUnit::Nanoseconds, _) => 1_000_000,
            _ => return Err(self.wrong(name, "is not a time")),
        };
        c.cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|v| {
                v.map(|v| v / per_ms)
                    .ok_or_else(|| self.wrong(name, "has a null"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;
    use crate::report::Report;

    #[test]
    fn a_renamed_or_retyped_column_is_an_error_not_zeros() {
        let df = df!("events" => [3i64, 4], "kind" => ["spike", "drop"]).unwrap();
        let reports = Reports(vec![Report {
            name: "anomalies",
            tables: vec![("anomalies", df)],
        }]);
        let t = Columns::of(&reports, "anomalies", "anomalies");
        assert_eq!(t.numbers("events").unwrap(), [3.0, 4.0]);
        assert_eq!(t.texts("kind").unwrap(), ["spike", "drop"]);
        let missing = t.numbers("score").unwrap_err().to_string();
        assert!(missing.contains("anomalies.anomalies") && missing.contains("`score` is missing"));
        assert!(t
            .numbers("kind")
            .unwrap_err()
            .to_string()
            .contains("not numeric"));
        assert!(t
            .times_ms("events")
            .unwrap_err()
            .to_string()
            .contains("not a time"));
        // A report that was not computed has no rows, and that is not an error.
        let absent = Columns::of(&reports, "funnels", "funnels");
        assert!(absent.is_empty() && absent.numbers("users_reached").unwrap().is_empty());
    }
}

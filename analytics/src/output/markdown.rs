//! Reports as Markdown: a section per report, a table per report table.

use std::fmt::Write;

use polars::prelude::DataFrame;

use crate::error::Result;
use crate::output::{text_table, CHART_ONLY};
use crate::report::Reports;

/// One table as a Markdown table, leaving out the columns in `skip`.
pub fn table(df: &DataFrame, skip: &[&str]) -> Result<String> {
    if df.height() == 0 {
        return Ok("_No rows._\n".into());
    }
    let (columns, rows) = text_table(df, skip, usize::MAX)?;
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(columns.clone());
    out.push_str(&line(columns.iter().map(|_| "---".to_owned()).collect()));
    for row in rows {
        out.push_str(&line(
            row.into_iter().map(|c| c.replace('|', "\\|")).collect(),
        ));
    }
    Ok(out)
}

/// A document with every report: `title`, then a section per report.
pub fn document(reports: &Reports, title: &str, skip: &[&str]) -> Result<String> {
    let mut out = format!("# {title}\n");
    for report in &reports.0 {
        let _ = write!(out, "\n## {}\n", report.name);
        for (name, df) in &report.tables {
            if CHART_ONLY.contains(name) {
                continue;
            }
            if report.tables.len() > 1 {
                let _ = write!(out, "\n### {name}\n");
            }
            out.push('\n');
            out.push_str(&table(df, skip)?);
        }
    }
    Ok(out)
}

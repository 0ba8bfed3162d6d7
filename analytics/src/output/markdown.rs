//! Reports as Markdown: a section per report, a table per report table.

use std::fmt::Write;

use serde_json::Value;

use crate::error::Result;
use crate::output::{cell, json};
use crate::report::Reports;

/// One table as a Markdown table, leaving out the columns in `skip`.
pub fn table(rows: &Value, skip: &[&str]) -> String {
    let Some(rows) = rows.as_array().filter(|r| !r.is_empty()) else {
        return "_No rows._\n".into();
    };
    let columns: Vec<&String> = rows[0]
        .as_object()
        .map(|o| o.keys().filter(|k| !skip.contains(&k.as_str())).collect())
        .unwrap_or_default();
    let mut out = String::new();
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(columns.iter().map(|c| c.to_string()).collect()));
    out.push_str(&line(columns.iter().map(|_| "---".to_owned()).collect()));
    for row in rows {
        let cells = columns
            .iter()
            .map(|c| cell(&row[c.as_str()]).replace('|', "\\|"))
            .collect();
        out.push_str(&line(cells));
    }
    out
}

/// A document with every report: `title`, then a section per report.
pub fn document(reports: &Reports, title: &str, skip: &[&str]) -> Result<String> {
    let mut out = format!("# {title}\n");
    for report in &reports.0 {
        let _ = write!(out, "\n## {}\n", report.name);
        for (name, df) in &report.tables {
            if report.tables.len() > 1 {
                let _ = write!(out, "\n### {name}\n");
            }
            out.push('\n');
            out.push_str(&table(&json::rows(df)?, skip));
        }
    }
    Ok(out)
}
